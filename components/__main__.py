"""Entry point of the secstack component package: `pulumi package add <repo>/components` runs this file, which
hosts the public components (components/package.py) so that an SDK can be generated in any language."""
import sys
from pathlib import Path

# The plugin runs with components/ as its working directory; the components import each other as `components.*`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi.provider.experimental import component_provider_host  # noqa: E402

from components.package import PACKAGE, public_components, version  # noqa: E402

if __name__ == "__main__":
    component_provider_host(public_components(), name=PACKAGE, version=version())

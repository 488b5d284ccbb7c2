"""Pulumi program: config -> validated settings -> SecurityPlatform. Run by `pulumi up` and `secstack preview`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stacks.program import main  # noqa: E402

main()

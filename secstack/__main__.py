"""`python -m secstack ...` is the same as the `secstack` command."""
import sys

from secstack.cli import main

sys.exit(main())

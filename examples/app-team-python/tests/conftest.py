import sys
from pathlib import Path

# The example's own modules (app_team.py) sit one level up; `components` comes from the installed secstack package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sys
from pathlib import Path

# Plain helper modules of this folder (host_processes.py) import by name.
sys.path.insert(0, str(Path(__file__).parent))

"""The code passes ruff's error rules (pyproject.toml [tool.ruff.lint]: undefined and unused names, bad imports,
syntax): a stray unused import or an undefined name fails the suite with the file and line."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_no_errors():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "aob_pipeline", "tests", "bench"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

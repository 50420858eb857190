"""The code passes ruff (pyproject.toml [tool.ruff.lint]: undefined and unused names, bad imports, syntax, import
order, Python 3.11 spellings, bugbear) and the library passes mypy (pyproject.toml [tool.mypy]): a stray unused
import, an unsorted import block or a type error in aob_pipeline/lib or aob_pipeline/defs fails the suite with the file
and line."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_no_errors():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "aob_pipeline", "tests", "bench"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_no_errors_in_lib_and_defs():
    # the files, options and cache folder come from [tool.mypy]; a cold cache takes about a minute
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    checked = re.search(r"no issues found in (\d+) source files", result.stdout)
    assert checked and int(checked.group(1)) > 160, result.stdout  # lib/ and defs/, not an empty selection

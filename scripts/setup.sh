#!/usr/bin/env bash
# Create .venv (if missing) and install the project with its test and ui extras. Safe to run again: it reinstalls
# only when pyproject.toml or setup.py changed. torch is installed first, pinned to the CPU build, so nothing later
# pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# Submitted agents run in the bubblewrap sandbox (docs/AGENT_PROTOCOL.md#the-sandbox). Installed here only when
# running as root; otherwise the README says how (`sudo apt-get install bubblewrap`).
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing bubblewrap (the sandbox of submitted agents)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
      || echo "setup: bubblewrap could not be installed; untrusted agents will be refused until it is"
  else
    echo "setup: bubblewrap (bwrap) is not installed: untrusted agents are refused until it is" \
         "(sudo apt-get install bubblewrap)"
  fi
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.aob-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  echo "setup: installing dependencies (first time takes a few minutes)"
  # AOB_TORCH_INDEX_URL: where the CPU build comes from when no local wheel provides it, e.g.
  # https://download.pytorch.org/whl/cpu (PyPI's own torch for Linux is the multi-GB CUDA build).
  .venv/bin/python -m pip install -q --disable-pip-version-check ${AOB_TORCH_INDEX_URL:+--index-url "$AOB_TORCH_INDEX_URL"} "torch==2.13.0"
  # The project (editable), its tests and the 'ui' extra: the Dagster UI (`aob ui`) and the dg tooling.
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,ui]'
  touch "$stamp"
fi

#!/usr/bin/env bash
# Set everything up and run the whole test suite on 2 workers (tests of one file stay on one worker, so
# module fixtures such as a generated world are built once). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$PWD/.aob_home/numba_cache}
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"

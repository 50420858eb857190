"""Test-wide isolation: nothing a test does touches the developer's $AOB_HOME or Dagster instance."""

import os
import sys
import tempfile
from pathlib import Path

# Shared test doubles in this folder (llm_servers.py: the scripted LLM servers) import by name.
sys.path.insert(0, str(Path(__file__).resolve().parent))

_session_home = tempfile.mkdtemp(prefix="aob-test-home-")
os.environ["AOB_HOME"] = _session_home
os.environ["DAGSTER_HOME"] = os.path.join(_session_home, "dagster")
os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "aob-numba-cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.pop("ANTHROPIC_API_KEY", None)
os.environ.pop("AOB_DATA_DIR", None)  # the checkout's own assets_data/ and dbt_like_sql/ (lib/settings.py)
# No test reaches a real model: provider endpoints and keys come only from the tests' own scripted servers.
for _name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "AOB_LLM_PRICES", "AOB_LLM_JUDGE_MODEL",
              "AOB_LLM_JUDGE_BASE_URL", "AOB_TRAJFM_MODEL", "AOB_TRAJFM_BASE_URL"):
    os.environ.pop(_name, None)
# Embeddings of the maintenance manual are cached across test sessions (content-hash keyed, so never stale).
os.environ.setdefault("AOB_EMBEDDING_CACHE_DIR", os.path.join(tempfile.gettempdir(), "aob-embedding-cache"))

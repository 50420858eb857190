import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from synthetic import build_frames  # noqa: E402


@pytest.fixture(scope="session")
def frames():
    return build_frames()

import os
import shutil
import tempfile

import numpy as np
import pytest

# Compiled kernels go to a throw-away cache directory, never the user's ~/.cache (child
# processes inherit it through GRAPHC_CACHE_DIR). Set GRAPHC_CACHE_DIR (or cache_dir in
# GRAPHC_FLAGS) yourself to keep a cache between runs: reruns then compile much less.
_OWN_CACHE = None
if not os.environ.get("GRAPHC_CACHE_DIR") and "cache_dir" not in os.environ.get("GRAPHC_FLAGS", ""):
    _OWN_CACHE = tempfile.mkdtemp(prefix="graphc-test-cache-")
    os.environ["GRAPHC_CACHE_DIR"] = _OWN_CACHE
    try:
        from graphc.config import config as _config
    except ImportError:
        pass
    else:
        _config.cache_dir = _OWN_CACHE


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)

import pytest

from graphc.rewrite import framework


@pytest.fixture(autouse=True)
def _rewrite_errors_raise(monkeypatch):
    """In these tests a failing rewrite is an error, not a warning."""
    monkeypatch.setattr(framework, "RAISE_REWRITE_ERRORS", True)

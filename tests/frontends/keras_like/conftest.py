import pytest

import graphc
from frontends.keras_like import backend as K


@pytest.fixture(autouse=True)
def fresh_session():
    """Each test starts with layer names from _1 and a seeded frontend generator."""
    K.clear_session()
    K.set_random_seed(1234)
    yield
    K.clear_session()


@pytest.fixture
def float64():
    """Build and run in float64 (tight tolerances for the update-rule comparisons)."""
    old = graphc.config.floatX
    graphc.config.floatX = "float64"
    yield
    graphc.config.floatX = old


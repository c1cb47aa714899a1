"""graphc.config: defaults, GRAPHC_FLAGS parsing, validation, the NaN guard."""

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.reference import NodeRuntimeError
from graphc.config import Config, parse_flags


def test_flags_parse_into_a_config() -> None:
    cfg = Config()
    parse_flags("floatX=float64, mode=PY,nan_guard=true", cfg)
    assert (cfg.floatX, cfg.mode, cfg.nan_guard) == ("float64", "PY", True)


@pytest.mark.parametrize(
    "flags, message",
    [("floatX=float16x", "floatX"), ("speed=11", "unknown setting"), ("floatX", "key=value"),
     ("mode=TURBO", "mode")],
)
def test_bad_flags_are_clear_errors(flags: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_flags(flags, Config())


def test_nan_guard_names_the_op() -> None:
    x = T.vector("x")
    y = T.log(x)  # produces NaN for negative input
    f = graphc.function([x], y * 2.0, mode="PY")
    assert np.isnan(f(np.array([-1.0], "float32"))).all()
    graphc.config.nan_guard = True
    try:
        with pytest.raises(NodeRuntimeError, match="NaN guard.*log.*test_config.py"):
            f(np.array([-1.0], "float32"))
    finally:
        graphc.config.nan_guard = False

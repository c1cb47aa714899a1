import ast
import inspect
import os
import re
import shutil
import tempfile
import warnings
from typing import Any

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


# -- every test that compiles with mode="PY" also runs against the default mode -----------
#
# A test is doubled (ids ``[PY]`` and ``[FAST_RUN]``) when its source, or the source of a
# function of its module that it names (helpers such as ``_fn``, followed transitively),
# contains ``mode="PY"``. Under ``[FAST_RUN]``, ``graphc.function(..., mode="PY")`` called
# from test code compiles both a PY and a FAST_RUN function and returns a ``DualFunction``:
# each call runs the native one first, restores the shared variables it read, runs the PY
# one from the same start, and asserts both agree (outputs, new shared values, or the same
# exception type). The test sees the PY results, so its own assertions are unchanged.
# Library code (``Variable.eval``, ``verify_grad``) imports ``graphc.compile.function``
# directly and is not doubled. tests/backend and tests/test_differential*.py are not doubled
# either: they compare native modes with PY themselves. Tests in ``_NATIVE_ONLY`` observe
# side effects of running (how often a perform runs), which a double run would break: under
# ``[FAST_RUN]`` they get the native function alone, so their assertions check the native
# executor's laziness. GRAPHC_TEST_DUAL=0 in the environment turns the doubling off (quick
# local runs of PY semantics only).

_PY_MODE = re.compile(r"""mode\s*=\s*["']PY["']""")
# Per module file: names of its functions that compile in mode "PY" (directly or through a
# helper they name).
_PY_FUNCTIONS: dict[str, set[str]] = {}
_NATIVE_ONLY = {
    "tests/ops/test_control.py::" + name for name in (
        "test_ifelse_evaluates_only_the_taken_branch", "test_ifelse_lists_are_lazy_too",
        "test_work_shared_by_condition_and_branch_runs_once",
        "test_switch_evaluates_both_branches_elementwise")
}
# Tests that compare native modes with PY themselves.
_NOT_DOUBLED_DIRS = ("tests/backend/", "tests/test_differential")


def _py_mode_functions(path: str) -> set[str]:
    if path not in _PY_FUNCTIONS:
        names: set[str] = set()
        try:
            with open(path, encoding="utf-8") as f:
                source = f.read()
        except OSError:
            source = ""
        if _PY_MODE.search(source):
            defs: dict[str, tuple[bool, set[str]]] = {}
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                    used |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
                    direct = bool(_PY_MODE.search(ast.get_source_segment(source, node) or ""))
                    old = defs.get(node.name, (False, set()))
                    defs[node.name] = (old[0] or direct, old[1] | used)
            names = {n for n, (direct, _) in defs.items() if direct}
            grown = True
            while grown:
                grown = False
                for n, (_, used) in defs.items():
                    if n not in names and used & names:
                        names.add(n)
                        grown = True
        _PY_FUNCTIONS[path] = names
    return _PY_FUNCTIONS[path]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "_graphc_dual_mode" not in metafunc.fixturenames or os.environ.get("GRAPHC_TEST_DUAL") == "0":
        return
    if metafunc.definition.nodeid.startswith(_NOT_DOUBLED_DIRS):
        return
    try:
        path = inspect.getsourcefile(metafunc.function) or ""
    except TypeError:
        return
    if metafunc.function.__name__ in _py_mode_functions(path):
        metafunc.parametrize("_graphc_dual_mode", ["PY", "FAST_RUN"], indirect=True)


@pytest.fixture(autouse=True)
def _graphc_dual_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if getattr(request, "param", "PY") != "FAST_RUN":
        return
    import graphc

    native_only = request.node.nodeid.split("[")[0] in _NATIVE_ONLY
    monkeypatch.setattr(graphc, "function", _dual_function_factory(graphc.function, native_only))


def _dual_function_factory(original: Any, native_only: bool = False) -> Any:
    def function(*args: Any, mode: Any = None, **kwargs: Any) -> Any:
        if not (isinstance(mode, str) and mode.upper() == "PY"):
            return original(*args, mode=mode, **kwargs)
        if native_only:
            return original(*args, mode="FAST_RUN", **kwargs)
        py_fn = original(*args, mode="PY", **kwargs)

        def compile_native() -> Any:  # on the first call: many tests only inspect the graph
            try:
                return original(*args, mode="FAST_RUN", **kwargs)
            except Exception as e:
                raise ModeDisagreement(
                    f"mode PY compiles but FAST_RUN raises {type(e).__name__}: {e}") from e

        return DualFunction(py_fn, compile_native, lazy=True)

    function.__wrapped__ = original
    return function


class ModeDisagreement(AssertionError):
    """FAST_RUN and PY computed different things."""


# float32 native transcendental math is a few ulp from NumPy's, and native sums accumulate in
# float64 where NumPy sums float32 pairwise: differences of order n * eps relative to the
# magnitude of the values summed.
_RTOL = {"float16": 1e-2, "float32": 2e-5, "float64": 1e-11, "complex64": 2e-5, "complex128": 1e-11}


def assert_same_values(native: Any, ref: Any, what: str, loose: float = 1.0,
                       rtol: float | None = None) -> None:
    """``native`` agrees with ``ref``: dtype, shape, NaN positions, values within tolerance
    (``rtol``, by default the dtype's, times ``loose``)."""
    native, ref = np.asarray(native), np.asarray(ref)
    if native.dtype != ref.dtype or native.shape != ref.shape:
        raise ModeDisagreement(
            f"{what}: FAST_RUN gives {native.dtype}{native.shape}, PY gives {ref.dtype}{ref.shape}")
    if ref.dtype.kind not in "fc":
        if not np.array_equal(native, ref):
            raise ModeDisagreement(f"{what}: FAST_RUN\n{native}\n!= PY\n{ref}")
        return
    nan_n, nan_r = np.isnan(native), np.isnan(ref)
    if not np.array_equal(nan_n, nan_r):
        raise ModeDisagreement(f"{what}: NaN positions differ: FAST_RUN\n{native}\nPY\n{ref}")
    ok = ~nan_r
    inf_r = np.isinf(ref) & ok
    if not np.array_equal(native[inf_r], ref[inf_r]) or np.isinf(native[ok & ~inf_r]).any():
        raise ModeDisagreement(f"{what}: infinities differ: FAST_RUN\n{native}\nPY\n{ref}")
    finite = ok & ~inf_r
    a, b = native[finite].astype(np.complex128 if ref.dtype.kind == "c" else np.float64), \
        ref[finite].astype(np.complex128 if ref.dtype.kind == "c" else np.float64)
    if a.size == 0:
        return
    rtol = (rtol if rtol is not None else _RTOL.get(ref.dtype.name, 1e-5)) * loose
    scale = max(float(np.abs(b).max()), np.finfo(ref.dtype).tiny)
    err = np.abs(a - b)
    # The absolute part covers cancellation in sums (terms far bigger than the result).
    bad = err > rtol * np.abs(b) + rtol * 0.1 * max(scale, 1.0)
    if bad.any():
        k = int(np.argmax(bad))
        raise ModeDisagreement(
            f"{what}: values differ ({int(bad.sum())} of {b.size}; first FAST_RUN {a[k]!r} vs PY "
            f"{b[k]!r}, rtol {rtol}): FAST_RUN\n{native}\nPY\n{ref}")


def _snapshot(values: list[Any]) -> list[Any]:
    return [np.array(v, copy=True) if isinstance(v, np.ndarray) else v for v in values]


class DualFunction:
    """A PY-compiled function that checks every call against its FAST_RUN twin."""

    def __init__(self, py_fn: Any, native_fn: Any, loose: float = 1.0, rtol: float | None = None,
                 lazy: bool = False) -> None:
        """``native_fn``: the FAST_RUN function, or with ``lazy`` a callable compiling it when
        first needed."""
        object.__setattr__(self, "py_fn", py_fn)
        object.__setattr__(self, "_native", native_fn)
        object.__setattr__(self, "_lazy", lazy)
        object.__setattr__(self, "loose", loose)
        object.__setattr__(self, "rtol", rtol)

    @property
    def native_fn(self) -> Any:
        if self._lazy:
            native = self._native()
            for name, value in getattr(self, "_settings", {}).items():
                setattr(native, name, value)
            object.__setattr__(self, "_native", native)
            object.__setattr__(self, "_lazy", False)
        return self._native

    def __getattr__(self, name: str) -> Any:
        return getattr(self.py_fn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.py_fn, name, value)
        if not self._lazy:
            setattr(self._native, name, value)
        else:  # applied when the native function is compiled
            object.__setattr__(self, "_settings", {**getattr(self, "_settings", {}), name: value})

    def __repr__(self) -> str:
        return f"DualFunction({self.py_fn!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        containers = [s.container for s in self.py_fn.shared_inputs]
        start = [c.value for c in containers]
        start_copies = _snapshot(start)
        arg_copies, kwarg_copies = _snapshot(list(args)), dict(zip(kwargs, _snapshot(list(kwargs.values()))))
        native_error = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                native_out = self.native_fn(*args, **kwargs)
            except Exception as e:  # compared with PY's below
                native_error = e
        native_shared = _snapshot([c.value for c in containers])
        for given, before in zip(list(args) + list(kwargs.values()),
                                 arg_copies + list(kwarg_copies.values())):
            if isinstance(given, np.ndarray) and not np.array_equal(given, before, equal_nan=True):
                raise ModeDisagreement("FAST_RUN modified an input array in place")
        for c, value in zip(containers, start_copies):
            c.value = value
        try:
            py_out = self.py_fn(*args, **kwargs)
        except Exception as e:
            if native_error is None:
                raise ModeDisagreement(
                    f"PY raises {type(e).__name__}: {e}, FAST_RUN returns normally") from e
            if not isinstance(native_error, type(e)) and not isinstance(e, type(native_error)):
                raise ModeDisagreement(
                    f"PY raises {type(e).__name__}: {e}; FAST_RUN raises "
                    f"{type(native_error).__name__}: {native_error}") from e
            raise
        if native_error is not None:
            raise ModeDisagreement(
                f"FAST_RUN raises {type(native_error).__name__}: {native_error}; PY returns normally"
            ) from native_error
        object.__setattr__(self, "last_native", native_out if isinstance(native_out, list) else [native_out])
        if isinstance(py_out, list):
            if not isinstance(native_out, list) or len(native_out) != len(py_out):
                raise ModeDisagreement(f"FAST_RUN returns {native_out!r}, PY returns {py_out!r}")
            for k, (n, r) in enumerate(zip(native_out, py_out)):
                assert_same_values(n, r, f"output {k}", self.loose, self.rtol)
        else:
            assert_same_values(native_out, py_out, "output", self.loose, self.rtol)
        for s, n, c in zip(self.py_fn.shared_inputs, native_shared, containers):
            assert_same_values(n, c.value, f"new value of shared variable {s!r}", self.loose, self.rtol)
        return py_out

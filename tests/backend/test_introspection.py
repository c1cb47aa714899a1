"""fn.llvm_ir() / fn.asm() / fn.native_kernels(): the native code of a compiled function."""

from __future__ import annotations

import pytest

import graphc
import graphc.tensor as T
from graphc.compile.function import NoNativeCodeError
from graphc.compile.mode import Mode


def _fn(mode: str | Mode = "FAST_RUN") -> graphc.compile.function.Function:
    x, y = T.fmatrix("x"), T.fmatrix("y")
    return graphc.function([x, y], [T.exp(x) * y + 1.5, T.dot(x, y.T)], mode=mode)


def test_whole_module_and_per_kernel() -> None:
    fn = _fn()
    kernels = fn.native_kernels()
    assert kernels
    node, name = kernels[0]
    assert node in fn.fgraph.toposort()
    whole = fn.llvm_ir()
    assert f"@{name}(" in whole and "define" in whole
    one = fn.llvm_ir(node)
    assert one.startswith("define") and f"@{name}(" in one and one.rstrip().endswith("}")
    assert fn.llvm_ir(name) == one == fn.llvm_ir(0)
    raw = fn.llvm_ir(node, optimized=False)
    assert name in raw and raw.startswith("define") and raw != one
    asm = fn.asm(node)
    assert asm.startswith(f"{name}:") and "ret" in asm
    assert name + ":" in fn.asm()


def test_errors_name_the_problem() -> None:
    fn = _fn()
    with pytest.raises(KeyError, match="no kernel named"):
        fn.llvm_ir("gck_nonexistent")
    native = {n for n, _ in fn.native_kernels()}
    others = [n for n in fn.fgraph.toposort() if n not in native]
    for node in others:
        with pytest.raises(ValueError, match="reference perform"):
            fn.asm(node)


@pytest.mark.parametrize("method", ["llvm_ir", "asm", "native_kernels"])
def test_reference_mode_has_no_native_code(method: str) -> None:
    fn = _fn("PY")
    with pytest.raises(NoNativeCodeError, match="mode 'PY'.*FAST_RUN"):
        getattr(fn, method)()


def test_debug_mode_exposes_the_same_kernels() -> None:
    assert [k for _, k in _fn("DEBUG").native_kernels()] == [k for _, k in _fn().native_kernels()]

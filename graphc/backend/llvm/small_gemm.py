"""Native small and skinny matrix products: one function per dtype, compiled once per process.

``C (m x n) = alpha * A (m x k) @ B (k x n) [+ C]`` with one small dimension (<= SMALL)
and m*n*k in [MIN_WORK, MAX_WORK): there SciPy's OpenBLAS splits the product over its
threads, whose synchronization costs more than the product: the W3 step's three skinny
products (10 output columns, a depth of 10, or 10 output rows; 2^20.3 multiply-adds
each) took 37-40, 53-70 and 50-56 us per call through sgemm, and take 26-31 us each
here (measured under load, one thread). The Dot, Gemm and MatMul kernels
(graphc.backend.llvm.blas) call ``graphc_small_sgemm`` / ``graphc_small_dgemm`` first
(through a cell holding the address, like the BLAS routines) and call BLAS when it
declines (status 1) or the cell is empty.

Two loop forms, each given element strides of A, B and C (so both a row-major array and
a transposed view are read in place, and the product can be computed transposed,
``C^T = B^T A^T``, by swapping operands and strides):

* *dots* (few output columns, ``n <= SMALL``, A unit-stride along k, k not small): each
  output is a dot product along k, vectorized along k; blocks of 4 rows x 2 columns
  give 8 independent chains. B's columns are copied into a k-contiguous buffer in
  chunks of k (unless B already is a transposed view).
* *rows* (everything else that qualifies): vectorized along the output's columns,
  blocks of 4 rows x 2 vectors (8 chains), A's elements broadcast. B's panels (k chunk
  x 2 vectors) are copied into a buffer when B is not unit-stride along its columns.
  Which orientation (C or C^T) is chosen by a cost estimate (vector lanes used, scalar
  writes into a strided C, copies).

Rows and columns past the edge of a block repeat the last valid one (loads stay in
bounds) and are not written; partial vectors use masked loads and stores (only there:
a masked load costs a uop on the FMA ports). Vectors start at the 64-byte boundary at
or before the data (NumPy's buffers are 16-byte aligned; split loads cost ~1.5x), the
lanes before it masked off. Nothing
here reads or writes outside ``A[i*sa0 + p*sa1]``, ``B[p*sb0 + j*sb1]``,
``C[i*so0 + j*so1]`` for ``i < m, p < k, j < n``, whatever the strides.

The module is compiled (or loaded from the compile cache) in a thread started by the first
product a process runs, not while compiling functions, and that product waits for it
(graphc.backend.llvm.blas): which path a product takes never depends on timing, so
results are reproducible. ``GRAPHC_SMALL_GEMM=0`` leaves the cells empty (A/B measurements).
"""

from __future__ import annotations

import ctypes
import os
import threading

import numpy as np
from llvmlite import ir

from graphc.backend.llvm.irutil import I32, I64, PTR, reg_type
from graphc.backend.llvm.small_gemm_loops import (
    BUF_BYTES,
    LETTER,
    SMALL,
    build_dots,
    build_rows,
    cost,
    i64c,
    imin,
)

# m*n*k in [MIN_WORK, MAX_WORK): measured (AVX-512, 2 cores, SciPy's OpenBLAS 0.3): below,
# OpenBLAS runs these single-threaded with small-matrix kernels faster than ours (W4's
# products by ~0.1 us each, 64-256 x 64-128 x 10 by 1.5-2x); from its threading threshold
# (2^18) up it splits them over threads, and from ~2^20 the synchronization costs more
# than the product (256x512x10: 37-77 us against ~29); far above, output-bound products
# gain from its two threads (4096x10x512: 443 against 1180 us).
# The function reads them from a named cell at each call (tests widen them: ``set_limits``).
MIN_WORK, MAX_WORK = 2.0 ** 20, 2.0 ** 24
LIMITS = "graphc_small_gemm_limits"
_LIMITS = (ctypes.c_double * 2)(MIN_WORK, MAX_WORK)
OPT = -1  # jit.LIGHT: the loops are written vectorized

_lock = threading.Lock()
_CELLS = {dt: ctypes.c_void_p(0) for dt in LETTER}
_state: dict[str, object] = {}


def symbol(dtype: str) -> str:
    """The external cell kernels load the entry point of ``dtype``'s function from."""
    return f"graphc_small_{LETTER[dtype]}gemm"


def _impl_name(dtype: str) -> str:
    return f"gc_small_{LETTER[dtype]}gemm_impl"


def signature(dtype: str) -> ir.FunctionType:
    """``i32 (m, n, k, T alpha, A, sa0, sa1, B, sb0, sb1, C, sc0, sc1, i32 accumulate)``:
    0 when done, 1 when declined (nothing written)."""
    t = reg_type(dtype)
    return ir.FunctionType(I32, [I64, I64, I64, t, PTR, I64, I64, PTR, I64, I64, PTR, I64, I64, I32])


def enabled() -> bool:
    return os.environ.get("GRAPHC_SMALL_GEMM", "1") != "0"


def build(module: ir.Module, dtype: str) -> None:
    """Add ``dtype``'s entry point (see ``signature``) and its two loop forms to ``module``."""
    rows, dots = build_rows(module, dtype), build_dots(module, dtype)
    fn = ir.Function(module, signature(dtype), name=_impl_name(dtype))
    fn.attributes.add("nounwind")
    m, n, k, alpha, A, sa0, sa1, B, sb0, sb1, O, so0, so1, accumulate = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    one = i64c(1)

    def norm(d: ir.Value, s: ir.Value) -> ir.Value:  # a stride along a length-1 axis is never used
        return b.select(b.icmp_signed("==", d, one), one, s)

    sa0, sa1, sb0, sb1 = norm(m, sa0), norm(k, sa1), norm(k, sb0), norm(n, sb1)
    so0, so1 = norm(m, so0), norm(n, so1)
    small = i64c(SMALL)
    le = b.icmp_signed
    lo = imin(b, imin(b, m, n), k)
    f64 = ir.DoubleType()
    work = b.fmul(b.fmul(b.sitofp(m, f64), b.sitofp(n, f64)), b.sitofp(k, f64))
    limits = ir.GlobalVariable(module, ir.ArrayType(f64, 2), LIMITS)
    limits.linkage = "external"
    least, most = (b.load(b.gep(limits, [i64c(0), i64c(q)], source_etype=limits.value_type), typ=f64)
                   for q in (0, 1))
    sized = b.and_(b.fcmp_ordered(">=", work, least), b.fcmp_ordered("<", work, most))
    ok = b.and_(b.and_(le("<=", lo, small), sized), le(">", lo, i64c(0)))
    go = fn.append_basic_block("go")
    decline = fn.append_basic_block("decline")
    b.cbranch(ok, go, decline)
    b.position_at_end(decline)
    b.ret(ir.Constant(I32, 1))
    b.position_at_end(go)
    buf = b.alloca(ir.ArrayType(ir.IntType(8), BUF_BYTES), name="buf")
    buf.align = 64
    buf.type = PTR
    acc = b.icmp_signed("!=", accumulate, ir.Constant(I32, 0))
    deep = le(">", k, small)
    plain = [m, n, k, alpha, A, sa0, sa1, B, sb0, sb1, O, so0, so1, acc, buf]
    swapped = [n, m, k, alpha, B, sb1, sb0, A, sa1, sa0, O, so1, so0, acc, buf]
    dots_plain = b.and_(b.and_(deep, le("<=", n, small)), le("==", sa1, one))
    dots_swapped = b.and_(b.and_(deep, le("<=", m, small)), le("==", sb0, one))
    lanes = 64 // np.dtype(dtype).itemsize
    with b.if_else(b.or_(dots_plain, dots_swapped)) as (as_dots, as_rows):
        with as_dots:
            b.call(dots, [b.select(dots_plain, x, y) for x, y in zip(plain, swapped)])
        with as_rows:
            flip = b.fcmp_ordered("<", cost(b, lanes, n, m, k, sa0, so0), cost(b, lanes, m, n, k, sb1, so1))
            b.call(rows, [b.select(flip, y, x) for x, y in zip(plain, swapped)])
    b.ret(ir.Constant(I32, 0))


# -- compiling and binding ------------------------------------------------------------------------
def _text(dtype: str) -> str:
    from graphc.backend.llvm import jit

    module = ir.Module(name=f"graphc_small_{LETTER[dtype]}gemm")
    build(module, dtype)
    return jit.module_text(module)


def cell_address(dtype: str) -> int:
    return ctypes.addressof(_CELLS[dtype])


def ready(dtype: str, wait: bool = False) -> bool:
    """Whether ``dtype``'s cell holds the function. The first call starts compiling it (or
    loading it from the compile cache) in a thread, once per process: ~80-150 ms of LLVM
    cold, which the first products do not wait for (they call BLAS until the cell is
    filled); ``wait`` waits. False when disabled (GRAPHC_SMALL_GEMM=0, ``switch``) or the
    build failed (BLAS does everything)."""
    if _CELLS[dtype].value:
        return True
    if not enabled() or dtype not in LETTER or dtype in _state.get("off", ()):
        return False
    with _lock:
        if _CELLS[dtype].value or _state.get(f"failed-{dtype}"):
            return bool(_CELLS[dtype].value)
        addr = _state.get(f"addr-{dtype}")
        if addr:
            _CELLS[dtype].value = addr
            return True
        thread = _state.get(f"thread-{dtype}")
        if thread is None or not thread.is_alive():  # none yet, or a forked child's copy of one
            thread = threading.Thread(target=_build_in_thread, args=(dtype,), daemon=True,
                                      name=f"graphc-small-{LETTER[dtype]}gemm")
            _state[f"thread-{dtype}"] = thread
            thread.start()
    if wait:
        thread.join()  # type: ignore[union-attr]
    return bool(_CELLS[dtype].value)


def _build_in_thread(dtype: str) -> None:
    try:
        addr = _compile(dtype)
    except Exception:  # noqa: BLE001 - BLAS computes the products instead
        _state[f"failed-{dtype}"] = True
        return
    with _lock:
        _state[f"addr-{dtype}"] = addr
        if dtype not in _state.get("off", ()):
            _CELLS[dtype].value = addr


def _compile(dtype: str) -> int:
    import llvmlite.binding as llvm

    from graphc.backend.llvm import cache, jit

    llvm.add_symbol(LIMITS, ctypes.addressof(_LIMITS))

    name = _impl_name(dtype)
    key = cache.module_key([name], OPT)
    entry = cache.load(key)
    if entry is not None and entry.names == [name]:
        engine, addresses = jit.load_object(entry.obj, [name])
    else:
        text = _text(dtype)
        obj, opt_text = jit.build_object(text, OPT, unlocked=True)
        engine, addresses = jit.load_object(obj, [name])
        cache.store(cache.Entry(key, [name], {}, obj, cache.pack_ir(text, opt_text), []))
    _state[f"engine-{dtype}"] = engine  # keeps the code alive (for the whole process)
    return addresses[name]


def set_limits(least: float = MIN_WORK, most: float = MAX_WORK) -> tuple[float, float]:
    """Products with ``least <= m*n*k < most`` (and a small dimension) run natively from now
    on; returns the previous limits (for tests and measurements)."""
    old = (_LIMITS[0], _LIMITS[1])
    _LIMITS[0], _LIMITS[1] = least, most
    return old


def switch(dtype: str, on: bool) -> None:
    """Use (``on``) or not the native small products of ``dtype`` in kernels from now on
    (for tests and measurements; the code stays loaded)."""
    off = _state.setdefault("off", set())
    if on:
        off.discard(dtype)  # type: ignore[union-attr]
        ready(dtype, wait=True)
    else:
        off.add(dtype)  # type: ignore[union-attr]
        _CELLS[dtype].value = 0

"""Elementwise kernel code generation from a ScalarDAG.

A kernel is ``i32 kernel(i64 start, i64 stop, PyArrayObject *in0, ..., *out0, ...)``:
it reads data pointers, shapes, strides and flags straight from the NumPy array
structs (their layout is NumPy's public ABI; checked at import by
``pyarray_layout_ok``), so a call from Python passes only the arrays. The
caller has already checked dtypes, ranks and broadcast-compatible shapes and
allocated the outputs with the broadcast shape.

The math lives in one internal function per kernel (``<name>.body``: a loop over
unit-stride pointers that LLVM vectorizes), called by two paths: when every
array is C-contiguous with the output's shape (inputs that are statically one
element are loaded once), once over the flat range [start, stop) so threads can
share it; otherwise through the process-wide strided driver
(graphc.backend.llvm.strided_driver), which walks the output's dimensions with
per-array strides (0 along broadcast dimensions) and calls the body, through the
kernel's ``<name>.strided`` thunk, once per block of the innermost dimension,
operands that are not unit-stride being first copied into small buffers (as
NumPy's buffered iteration), so the math still runs on vectors. Returns 0, 1 when an
op reported an error (the executor then re-runs the reference to raise it), 2
for unaligned data, 3 when asked for part of a strided run.
"""

from __future__ import annotations

import ctypes
import hashlib

import numpy as np
from llvmlite import ir

from graphc.backend.llvm import strided_driver
from graphc.backend.llvm.expr import ScalarDAG, SNode, topo_order
from graphc.backend.llvm.irutil import I8, I32, I64, NATIVE_DTYPES, PTR, const, mem_type
from graphc.backend.llvm.jit import BODY_SUFFIX
from graphc.backend.llvm.scalar import Ctx, Unsupported, check_apply, lower_apply

# PyArrayObject_fields: PyObject_HEAD, data, nd, dimensions, strides, base, descr, flags.
OFF_DATA, OFF_DIMS, OFF_STRIDES, OFF_FLAGS = 16, 32, 40, 64
NPY_C_CONTIGUOUS, NPY_ALIGNED = 0x0001, 0x0100
STATUS_OK, STATUS_ERROR, STATUS_UNALIGNED, STATUS_NOT_CONTIGUOUS = 0, 1, 2, 3
THUNK_SUFFIX = ".strided"


def pyarray_layout_ok() -> bool:
    """Whether this process's ndarray struct has the field offsets the kernels read."""
    try:
        a = np.zeros((3, 4), "float32")[:, ::2]
        base = id(a)
        data = ctypes.c_void_p.from_address(base + OFF_DATA).value
        dims = ctypes.c_void_p.from_address(base + OFF_DIMS).value
        strides = ctypes.c_void_p.from_address(base + OFF_STRIDES).value
        flags = ctypes.c_int.from_address(base + OFF_FLAGS).value
        shape = tuple((ctypes.c_int64 * 2).from_address(dims))
        st = tuple((ctypes.c_int64 * 2).from_address(strides))
        c = np.zeros(5)
        cflags = ctypes.c_int.from_address(id(c) + OFF_FLAGS).value
        return (data == a.ctypes.data and shape == a.shape and st == a.strides
                and not flags & NPY_C_CONTIGUOUS and bool(cflags & NPY_C_CONTIGUOUS)
                and bool(cflags & NPY_ALIGNED) and ctypes.sizeof(ctypes.c_void_p) == 8)
    except Exception:
        return False


def kernel_name(dag: ScalarDAG, ndim: int) -> str:
    digest = hashlib.sha1(f"{ndim}|{dag.key()}".encode()).hexdigest()[:20]
    return f"gck_{digest}"


def _field(b: ir.IRBuilder, obj: ir.Value, off: int, ty: ir.Type) -> ir.Value:
    return b.load(b.gep(obj, [ir.Constant(I64, off)], source_etype=I8), typ=ty)


def _load_elem(b: ir.IRBuilder, data: ir.Value, idx: ir.Value, dtype: str) -> ir.Value:
    v = b.load(b.gep(data, [idx], source_etype=mem_type(dtype)), typ=mem_type(dtype))
    return b.icmp_unsigned("!=", v, ir.Constant(I8, 0)) if dtype == "bool" else v


def _store_elem(b: ir.IRBuilder, v: ir.Value, data: ir.Value, idx: ir.Value, dtype: str) -> None:
    if dtype == "bool":
        v = b.zext(v, I8)
    b.store(v, b.gep(data, [idx], source_etype=mem_type(dtype)))


def evaluate(ctx: Ctx, outputs: list[SNode], inputs: list[ir.Value]) -> list[ir.Value]:
    """Lower the DAG on the given input values (each node once)."""
    memo: dict[int, ir.Value] = {}
    order = topo_order(outputs)
    for node in order:
        if node.kind == "input":
            memo[id(node)] = inputs[node.index]
        elif node.kind == "const":
            memo[id(node)] = const(node.dtype, node.value)
        else:
            args = [(memo[id(a)], a.dtype) for a in node.args]
            memo[id(node)] = lower_apply(ctx, node.op, node.params, args, node.dtype, node.impl)
    return [memo[id(o)] for o in outputs]


def _loop(b: ir.IRBuilder, n: ir.Value, body, start: ir.Value | None = None) -> None:
    """``for i in range(start, n): body(i)`` (start defaults to 0; n >= 1 then)."""
    pre = b.block
    head = b.append_basic_block("loop")
    after = b.append_basic_block("after")
    if start is None:
        start = ir.Constant(I64, 0)
        b.branch(head)
    else:
        b.cbranch(b.icmp_signed("<", start, n), head, after)
    b.position_at_end(head)
    i = b.phi(I64, name="i")
    i.add_incoming(start, pre)
    body(i)
    nxt = b.add(i, ir.Constant(I64, 1), flags=["nuw", "nsw"])
    i.add_incoming(nxt, b.block)
    b.cbranch(b.icmp_signed("<", nxt, n), head, after)
    b.position_at_end(after)


def check_dag(dag: ScalarDAG) -> None:
    """Raise Unsupported unless every op of ``dag`` has a native lowering for its dtypes."""
    for node in topo_order(dag.outputs):
        if node.dtype not in NATIVE_DTYPES:
            raise Unsupported(f"dtype {node.dtype} has no native kernels")
        if node.kind == "apply":
            check_apply(node.op, node.params, [a.dtype for a in node.args], node.impl)


def _build_body(module: ir.Module, name: str, dag: ScalarDAG, in_dtypes: list[str],
                out_dtypes: list[str], scalar_in: list[bool]) -> ir.Function:
    """``i32 body(i64 lo, i64 hi, ptr in0, ..., ptr out0, ...)``: the math over elements
    [lo, hi) of unit-stride pointers (statically one-element inputs: element 0 each time).

    Both paths of the kernel call it (the contiguous one once, the strided one per block),
    so the math, often a long vectorized polynomial, is compiled once per kernel instead of
    once per path: about half the IR to optimize and code-generate."""
    nin, nout = len(in_dtypes), len(out_dtypes)
    fn = ir.Function(module, ir.FunctionType(I32, [I64, I64] + [PTR] * (nin + nout)), name=name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")  # two call sites: inlining would undo the sharing
    fn.attributes.add("nounwind")
    lo, hi = fn.args[:2]
    ptrs = list(fn.args[2:])
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    status = b.alloca(I32, name="status")
    b.store(ir.Constant(I32, STATUS_OK), status)
    ctx = Ctx(b, status)
    run = fn.append_basic_block("run")
    done = fn.append_basic_block("done")
    b.cbranch(b.icmp_signed("<", lo, hi), run, done)
    b.position_at_end(run)
    fixed = {i: _load_elem(b, ptrs[i], ir.Constant(I64, 0), in_dtypes[i])
             for i in range(nin) if scalar_in[i]}

    def step(i: ir.Value) -> None:
        vals = [fixed[k] if k in fixed else _load_elem(b, ptrs[k], i, in_dtypes[k])
                for k in range(nin)]
        for j, v in enumerate(evaluate(ctx, dag.outputs, vals)):
            _store_elem(b, v, ptrs[nin + j], i, out_dtypes[j])

    _loop(b, hi, step, start=lo)
    b.branch(done)
    b.position_at_end(done)
    b.ret(b.load(status, typ=I32))
    return fn


def _build_thunk(module: ir.Module, name: str, body_fn: ir.Function, nargs: int) -> ir.Function:
    """``i32 thunk(i64 lo, i64 hi, ptr ptrs)``: the body on ``ptrs[0..nargs)``, the form in
    which the shared strided driver (graphc.backend.llvm.strided_driver) calls every kernel."""
    fn = ir.Function(module, ir.FunctionType(I32, [I64, I64, PTR]), name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    lo, hi, ptrs = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    args = [b.load(b.gep(ptrs, [ir.Constant(I64, k)], source_etype=PTR), typ=PTR) for k in range(nargs)]
    b.ret(b.call(body_fn, [lo, hi, *args]))
    return fn


def build_kernel(module: ir.Module, dag: ScalarDAG, ndim: int, out_dtypes: list[str]) -> str:
    """Add the kernel for ``dag`` over ``ndim``-d arrays to ``module``; returns its name."""
    name = kernel_name(dag, ndim)
    if name in module.globals:
        return name
    check_dag(dag)
    for d in out_dtypes:
        if d not in NATIVE_DTYPES:
            raise Unsupported(f"dtype {d} has no native kernels")
    nin, nout = len(dag.inputs), len(dag.outputs)
    in_dtypes = [d for d, _ in dag.inputs]
    dtypes = in_dtypes + out_dtypes
    scalar_in = [s for _, s in dag.inputs]
    body_fn = _build_body(module, name + BODY_SUFFIX, dag, in_dtypes, out_dtypes, scalar_in)
    strided_driver.prefetch()
    fn = ir.Function(module, ir.FunctionType(I32, [I64, I64] + [PTR] * (nin + nout)), name=name)
    fn.attributes.add("nounwind")
    # The wrapper is straight-line checks around a call: unoptimized it costs a few ns more
    # a call and a third less compile time per kernel (the body keeps the full pipeline).
    fn.attributes.add("optnone")
    fn.attributes.add("noinline")
    start, stop = fn.args[:2]
    arrays = list(fn.args[2:])
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    status = b.alloca(I32, name="status")
    b.store(ir.Constant(I32, STATUS_OK), status)

    def call_body(lo: ir.Value, hi: ir.Value, ptrs: list[ir.Value]) -> None:
        rc = b.call(body_fn, [lo, hi, *ptrs])
        b.store(b.or_(b.load(status, typ=I32), rc), status)

    flags = [_field(b, a, OFF_FLAGS, I32) for a in arrays]
    aligned = ir.Constant(ir.IntType(1), 1)
    for f in flags:
        aligned = b.and_(aligned, b.icmp_unsigned("!=", b.and_(f, ir.Constant(I32, NPY_ALIGNED)),
                                                  ir.Constant(I32, 0)))
    bad = fn.append_basic_block("unaligned")
    go = fn.append_basic_block("go")
    b.cbranch(aligned, go, bad)
    b.position_at_end(bad)
    b.ret(ir.Constant(I32, STATUS_UNALIGNED))
    b.position_at_end(go)

    odims = _field(b, arrays[nin], OFF_DIMS, PTR)
    shape = [b.load(b.gep(odims, [ir.Constant(I64, d)], source_etype=I64), typ=I64) for d in range(ndim)]
    n = ir.Constant(I64, 1)
    for s in shape:
        n = b.mul(n, s)
    data = [_field(b, a, OFF_DATA, PTR) for a in arrays]
    dims = [_field(b, a, OFF_DIMS, PTR) for a in arrays]

    contig = ir.Constant(ir.IntType(1), 1)
    for k in range(len(arrays)):
        if k < nin and scalar_in[k]:
            continue
        c = b.icmp_unsigned("!=", b.and_(flags[k], ir.Constant(I32, NPY_C_CONTIGUOUS)), ir.Constant(I32, 0))
        for d in range(ndim):
            dk = b.load(b.gep(dims[k], [ir.Constant(I64, d)], source_etype=I64), typ=I64)
            c = b.and_(c, b.icmp_signed("==", dk, shape[d]))
        contig = b.and_(contig, c)

    done = fn.append_basic_block("done")
    work = fn.append_basic_block("work")
    b.cbranch(b.icmp_signed(">", n, ir.Constant(I64, 0)), work, done)
    b.position_at_end(work)
    flat = fn.append_basic_block("contiguous")
    strided = fn.append_basic_block("strided")
    b.cbranch(contig, flat, strided)

    b.position_at_end(flat)
    call_body(start, b.select(b.icmp_signed("<", stop, n), stop, n), data)
    b.branch(done)

    b.position_at_end(strided)
    # Only the contiguous path is split between threads: a part of a strided run is refused.
    whole = fn.append_basic_block("whole")
    refuse = fn.append_basic_block("refuse")
    b.cbranch(b.and_(b.icmp_signed("==", start, ir.Constant(I64, 0)), b.icmp_signed(">=", stop, n)),
              whole, refuse)
    b.position_at_end(refuse)
    b.ret(ir.Constant(I32, STATUS_NOT_CONTIGUOUS))
    b.position_at_end(whole)
    thunk = _build_thunk(module, name + THUNK_SUFFIX, body_fn, len(arrays))
    table = b.alloca(PTR, size=len(arrays), name="arrays")
    for k, a in enumerate(arrays):
        b.store(a, b.gep(table, [ir.Constant(I64, k)], source_etype=PTR))
    meta = ir.GlobalVariable(module, ir.ArrayType(I64, len(arrays)), name=name + ".meta")
    meta.linkage, meta.global_constant = "internal", True
    meta.initializer = ir.Constant(ir.ArrayType(I64, len(arrays)), [
        np.dtype(d).itemsize | (strided_driver.SCALAR_FLAG if k < nin and scalar_in[k] else 0)
        for k, d in enumerate(dtypes)])
    rc = b.call(strided_driver.declare(module), [thunk, table, ir.Constant(I64, len(arrays)),
                                                 ir.Constant(I64, nin), meta, ir.Constant(I64, ndim)])
    b.store(b.or_(b.load(status, typ=I32), rc), status)
    b.branch(done)

    b.position_at_end(done)
    b.ret(b.load(status, typ=I32))
    return name

"""Reduction kernels: Reduce (sum prod max min all any) over any axes, a Fused node's
absorbed reduction (so ``sum(exp(x) * y)`` is one loop that never stores ``exp(x) * y``),
and Argmax/Argmin (their kernels in reduce_arg.py). Large inputs split across threads in
the runner (reduce_threads.py).

The value reduced at each position is a scalar DAG over broadcast inputs (one input
and no op for a plain Reduce), so both cases are one kernel. Two loop orders, chosen
by whether the last axis (the one with unit stride in C order) is reduced:

- reduced: each output element accumulates its slices; the innermost axis runs in
  blocks of BLOCK elements, each summed by a loop LLVM vectorizes (``reassoc``), and
  block results are added into the element's total;
- kept: the output is produced BLOCK columns at a time into a stack buffer, adding
  one input row segment per reduced position (elementwise, vectorized).

In both, operands that are not unit-stride along the innermost axis (transposed,
broadcast) are first copied into small buffers, so the math always runs on vectors.

Accuracy: float32 sums accumulate in float64 (the result is then rounded once), so
they are more accurate than NumPy's pairwise float32 sum, where a naive float32 loop
is off by ~1e-4 relative at 1e6 elements. float64 sums accumulate per block and then
across blocks. max/min propagate NaN as NumPy does; argmax/argmin return the first
extreme (the first NaN if any), over the reduced axes flattened in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

import numpy as np
from llvmlite import ir

from graphc.backend.llvm import reduce_threads
from graphc.backend.llvm.expr import ScalarDAG, dag_from_fused, input_dependencies, s_input
from graphc.backend.llvm.irutil import (
    I32,
    NATIVE_DTYPES,
    call_intr,
    cast,
    const,
    is_float,
    is_signed,
    reg_type,
    to_bool,
)
from graphc.backend.llvm.kernel import check_dag, evaluate
from graphc.backend.llvm.lowering import (
    Arr,
    Gate,
    NativeNode,
    c64,
    copy_strided,
    entry_alloca,
    for_range,
    kernel_id,
    nest,
    new_kernel,
    register_lowering,
)
from graphc.backend.llvm.scalar import Ctx, Unsupported
from graphc.backend.reference import run_node
from graphc.graph.basic import Apply
from graphc.ops.elemwise import SumToShape
from graphc.ops.reduce import Argmax, Argmin, Reduce
from graphc.rewrite.fused import Fused

BLOCK = 256
# max/min/argmax/argmin fold in integer keys, cheap enough that the per-block horizontal
# step shows at 256 (argmax over (1000, 10000) float32 rows: 1.59 ms at 256, less at 1024).
EXTREME_BLOCK = 1024
# Columns per pass when the last axis is kept: each reduced row is read in segments this
# long (longer segments stream better; the accumulators must stay in L1).
KEPT_BLOCK = 256
KINDS = ("add", "mul", "max", "min", "and", "or")
_NO_IDENTITY = ("max", "min", "argmax", "argmin")  # an empty reduction is an error


# -- the accumulation of one kind ----------------------------------------------------------
class _Acc:
    """How values of ``edtype`` fold into an accumulator for ``kind`` and the output dtype."""

    def __init__(self, kind: str, edtype: str, out_dtype: str) -> None:
        self.kind, self.edtype, self.out = kind, edtype, out_dtype
        self.keyed = False
        if kind in ("and", "or"):
            self.dtype = "bool"
        elif kind in ("max", "min"):
            if edtype == "bool" or out_dtype != edtype:
                raise Unsupported(f"{kind} of {edtype} into {out_dtype}")
            self.dtype = edtype
            if is_float(edtype):  # folded as ordered integer keys (see _key)
                self.keyed = True
                self.dtype = "int32" if edtype == "float32" else "int64"
        else:  # NumPy casts each element to the output dtype, then folds in it
            self.dtype = "float64" if (kind == "add" and out_dtype == "float32") else out_dtype
        if self.dtype not in NATIVE_DTYPES or out_dtype not in NATIVE_DTYPES:
            raise Unsupported(f"dtype {out_dtype} has no native reductions")
        self.ty = reg_type(self.dtype)

    def identity(self) -> ir.Constant:
        k, t = self.kind, self.dtype
        if k in ("add", "or"):
            return const(t, 0)
        if k in ("mul", "and"):
            return const(t, 1)
        if self.keyed:
            v = np.array(-np.inf if k == "max" else np.inf, self.edtype).view(t)[()]
            return const(t, int(v) ^ ((int(v) >> (8 * v.nbytes - 1)) & _low_mask(t)))
        if is_float(t):
            return const(t, -np.inf if k == "max" else np.inf)
        info = np.iinfo(t)
        return const(t, info.min if k == "max" else info.max)

    def value(self, b: ir.IRBuilder, v: ir.Value) -> ir.Value:
        """An element as the accumulator folds it."""
        if self.kind in ("and", "or"):
            return to_bool(b, v, self.edtype)
        if self.keyed:
            # -0 + 0 is +0: zeros of both signs tie, as NumPy's comparisons have them.
            key = _key(b, b.bitcast(b.fadd(v, ir.Constant(v.type, 0.0)), self.ty), self.dtype)
            info = np.iinfo(self.dtype)
            nan_key = const(self.dtype, info.max if self.kind == "max" else info.min)
            return b.select(b.fcmp_unordered("uno", v, v), nan_key, key)
        if self.kind in ("max", "min"):
            return v
        return cast(b, cast(b, v, self.edtype, self.out), self.out, self.dtype)

    def nan_key(self) -> ir.Constant | None:
        """The key of NaN (it wins every comparison), None when the values cannot be NaN."""
        if not self.keyed:
            return None
        info = np.iinfo(self.dtype)
        return const(self.dtype, info.max if self.kind == "max" else info.min)

    def better(self, b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
        """x strictly beats y (max: greater, min: smaller), in accumulator terms."""
        op = ">" if self.kind == "max" else "<"
        if is_float(self.dtype):
            return b.fcmp_ordered(op, x, y)
        signed = self.keyed or is_signed(self.dtype)
        return b.icmp_signed(op, x, y) if signed else b.icmp_unsigned(op, x, y)

    def fold(self, b: ir.IRBuilder, acc: ir.Value, v: ir.Value) -> ir.Value:
        k, t = self.kind, self.dtype
        if k == "and":
            return b.and_(acc, v)
        if k == "or":
            return b.or_(acc, v)
        if is_float(t):
            if k == "add":
                return b.fadd(acc, v, flags=("reassoc",))
            if k == "mul":
                return b.fmul(acc, v, flags=("reassoc",))
            return call_intr(b, "maximum" if k == "max" else "minimum", acc, v)
        if k == "add":
            return b.add(acc, v)
        if k == "mul":
            return b.mul(acc, v)
        sign = "s" if (self.keyed or is_signed(t)) else "u"
        return call_intr(b, f"{sign}{k}", acc, v)

    def finish(self, b: ir.IRBuilder, acc: ir.Value) -> ir.Value:
        if self.keyed:
            return b.bitcast(_key(b, acc, self.dtype), reg_type(self.out))
        return cast(b, acc, self.dtype, self.out)


def _low_mask(t: str) -> int:
    return (1 << (8 * np.dtype(t).itemsize - 1)) - 1


def _key(b: ir.IRBuilder, bits: ir.Value, t: str) -> ir.Value:
    """A float's bits as a signed integer in the float order (-0 just below +0, so callers
    add +0 first); its own inverse. Float max/min fold these keys with integer max/min, which vectorize to one
    instruction (a float fold honouring NaN needs compare-and-blend chains LLVM does not
    interleave), and NaN gets the extreme key, so it wins as in NumPy."""
    width = 8 * np.dtype(t).itemsize
    sign = b.ashr(bits, ir.Constant(bits.type, width - 1))
    return b.xor(bits, b.and_(sign, const(t, _low_mask(t))))


# -- the kernel ------------------------------------------------------------------------------
class _Values:
    """The DAG's value over a block of the innermost axis, from unit-stride pointers."""

    def __init__(self, b: ir.IRBuilder, ctx: Ctx, dag: ScalarDAG, arrs: list[Arr], size: int = BLOCK) -> None:
        self.b, self.ctx, self.dag, self.arrs = b, ctx, dag, arrs
        self.scalar = [s for _, s in dag.inputs]
        self.tmp = [None if s else entry_alloca(b, a.ty, size) for a, s in zip(arrs, self.scalar)]
        # Statically one-element inputs: loaded once (they always hold their element).
        self.fixed = {k: a.load(c64(0)) for k, a in enumerate(arrs) if self.scalar[k]}

    def block(self, offs: Sequence[ir.Value], lstrides: Sequence[ir.Value], first: ir.Value,
              m: ir.Value) -> Callable[[ir.Value], ir.Value]:
        """Prepare ``m`` positions from ``first`` along the innermost axis; returns value(j)."""
        b = self.b
        ptrs: dict[int, ir.Value] = {}
        for k, a in enumerate(self.arrs):
            if k in self.fixed:
                continue
            st = lstrides[k]
            base = b.add(offs[k], b.mul(first, st))
            unit = b.icmp_signed("==", st, c64(1))
            tmp = self.tmp[k]
            with b.if_then(b.not_(unit)):
                copy_strided(b, a.ty, tmp, a.ptr(base), m, st)
            ptrs[k] = b.select(unit, a.ptr(base), tmp)

        def value(j: ir.Value) -> ir.Value:
            vals = []
            for k, a in enumerate(self.arrs):
                if k in self.fixed:
                    vals.append(self.fixed[k])
                    continue
                v = b.load(b.gep(ptrs[k], [j], source_etype=a.ty), typ=a.ty)
                vals.append(b.icmp_unsigned("!=", v, ir.Constant(v.type, 0)) if a.dtype == "bool" else v)
            return evaluate(self.ctx, self.dag.outputs, vals)[0]

        return value


def _blocks(b: ir.IRBuilder, length: ir.Value, body: Callable[[ir.Value, ir.Value], None],
            size: int = BLOCK) -> None:
    """``body(first, m)`` for consecutive blocks of at most ``size`` positions of ``length``."""
    nblocks = b.udiv(b.add(length, c64(size - 1)), c64(size))

    def one(bi: ir.Value) -> None:
        first = b.mul(bi, c64(size))
        left = b.sub(length, first)
        body(first, b.select(b.icmp_signed("<", left, c64(size)), left, c64(size)))

    for_range(b, nblocks, one)


def _setup(module: ir.Module, name: str, dag: ScalarDAG, ndim: int, out_dtype: str,
           out_ndim: int) -> tuple[ir.IRBuilder, list[Arr], Arr, list[ir.Value], list[list[ir.Value]], Ctx,
                                   ir.Value]:
    nin = len(dag.inputs)
    fn, b, ptrs = new_kernel(module, name, nin + 1)
    status = entry_alloca(b, I32)
    b.store(ir.Constant(I32, 0), status)
    arrs = [Arr(b, p, d, ndim) for p, (d, _) in zip(ptrs[:nin], dag.inputs)]
    out = Arr(b, ptrs[nin], out_dtype, out_ndim)
    shape = []
    for d in range(ndim):  # the broadcast shape (the caller checked the shapes are compatible)
        s = arrs[0].dims[d]
        for a in arrs[1:]:
            s = b.select(b.icmp_signed("==", a.dims[d], c64(1)), s, a.dims[d])
        shape.append(s)
    strides = [[a.bstride(d) for d in range(ndim)] for a in arrs]
    return b, arrs, out, shape, strides, Ctx(b, status), status


def _contiguous_strides(b: ir.IRBuilder, dims: Sequence[ir.Value]) -> list[ir.Value]:
    out: list[ir.Value] = []
    acc: ir.Value = c64(1)
    for d in reversed(dims):
        out.insert(0, acc)
        acc = b.mul(acc, d)
    return out


def build_reduce(module: ir.Module, name: str, dag: ScalarDAG, ndim: int, axes: tuple[int, ...],
                 kind: str, out_dtype: str) -> None:
    """``out = reduce_kind(dag(inputs...), axes)`` with ``out`` C-contiguous."""
    check_dag(dag)
    acc = _Acc(kind, dag.outputs[0].dtype, out_dtype)
    kept = [d for d in range(ndim) if d not in axes]
    b, arrs, out, shape, strides, ctx, status = _setup(module, name, dag, ndim, out_dtype, len(kept))
    if ndim - 1 in axes:
        size = EXTREME_BLOCK if acc.keyed else BLOCK
    else:
        size = KEPT_BLOCK
    vals = _Values(b, ctx, dag, arrs, size)
    nin = len(arrs)
    ostr = _contiguous_strides(b, [shape[d] for d in kept])
    last = ndim - 1

    if ndim == 0:  # a 0-d reduction over no axes: the value itself
        v = vals.block([c64(0)] * nin, [c64(0)] * nin, c64(0), c64(1))(c64(0))
        out.store(acc.finish(b, acc.value(b, v)), c64(0))
    elif last in axes:
        total = entry_alloca(b, acc.ty)
        part = entry_alloca(b, acc.ty)
        red = [d for d in axes if d != last]
        lstr = [s[last] for s in strides]

        def per_output(offs: list[ir.Value]) -> None:
            b.store(acc.identity(), total)

            def per_row(roffs: list[ir.Value]) -> None:
                def per_block(first: ir.Value, m: ir.Value) -> None:
                    value = vals.block(roffs, lstr, first, m)
                    b.store(acc.identity(), part)

                    def step(j: ir.Value) -> None:
                        v = acc.value(b, value(j))
                        b.store(acc.fold(b, b.load(part, typ=acc.ty), v), part)

                    for_range(b, m, step)
                    b.store(acc.fold(b, b.load(total, typ=acc.ty), b.load(part, typ=acc.ty)), total)

                _blocks(b, shape[last], per_block, size)

            nest(b, [shape[d] for d in red], [[s[d] for d in red] for s in strides], offs[:nin], per_row)
            out.store(acc.finish(b, b.load(total, typ=acc.ty)), offs[nin])

        nest(b, [shape[d] for d in kept], [[s[d] for d in kept] for s in strides] + [ostr],
             [c64(0)] * (nin + 1), per_output)
    else:
        buf = entry_alloca(b, acc.ty, size)
        outer = kept[:-1]
        lstr = [s[last] for s in strides]

        def per_outer(offs: list[ir.Value]) -> None:
            def per_block(first: ir.Value, m: ir.Value) -> None:
                for_range(b, m, lambda j: b.store(acc.identity(), b.gep(buf, [j], source_etype=acc.ty)))

                def per_row(roffs: list[ir.Value]) -> None:
                    value = vals.block(roffs, lstr, first, m)

                    def step(j: ir.Value) -> None:
                        p = b.gep(buf, [j], source_etype=acc.ty)
                        b.store(acc.fold(b, b.load(p, typ=acc.ty), acc.value(b, value(j))), p)

                    for_range(b, m, step)

                nest(b, [shape[d] for d in axes], [[s[d] for d in axes] for s in strides], offs[:nin],
                     per_row)
                obase = b.add(offs[nin], first)
                for_range(b, m, lambda j: out.store(
                    acc.finish(b, b.load(b.gep(buf, [j], source_etype=acc.ty), typ=acc.ty)),
                    b.add(obase, j)))

            _blocks(b, shape[last], per_block, size)

        nest(b, [shape[d] for d in outer], [[s[d] for d in outer] for s in strides] + [ostr[:-1]],
             [c64(0)] * (nin + 1), per_outer)
    b.ret(b.load(status, typ=I32))


# -- lowerings -------------------------------------------------------------------------------
def _reduce_native(node: Apply, dag: ScalarDAG, taken: list[int], axes: tuple[int, ...], kind: str,
                   out_dtype: str, build: Callable[[ir.Module, str], None], tag: tuple) -> NativeNode:
    ndim = node.inputs[taken[0]].ndim
    if any(node.inputs[i].ndim != ndim for i in taken):
        raise Unsupported("inputs of different ranks")
    if any(len(d) != len(taken) for d in input_dependencies(dag)):
        raise Unsupported("an input the reduced value does not read")
    kept = [d for d in range(ndim) if d not in axes]
    name = kernel_id("gcred", kind, ndim, axes, out_dtype, *tag)
    nin = len(taken)
    empty_fails = kind in _NO_IDENTITY
    kept_shape, reduced_shape = _picker(kept), _picker(axes)

    def runner(cfunc: Callable[..., int]) -> Callable[[list[Any]], list[Any]]:
        gate = Gate(node)
        get, alloc = gate.getter(taken), gate.allocator(0)
        split = reduce_threads.Splitter(kind, axes, ndim) if ndim else None
        rt = reduce_threads

        def run(values: list[Any]) -> list[Any]:
            arrays = get(values)
            if nin == 1:
                shape = arrays[0].shape
            else:
                try:
                    shape = np.broadcast_shapes(*(a.shape for a in arrays))
                except ValueError:
                    return run_node(node, values)  # raises the reference's error
            if empty_fails and 0 in reduced_shape(shape):
                return run_node(node, values)
            out = alloc(kept_shape(shape))
            if split is not None and (nin > 1 or arrays[0].size >= rt.THREAD_MIN_ELEMENTS):
                rc = split(cfunc, arrays, shape, out)
                if rc is not None:
                    return run_node(node, values) if rc else [out]
            if cfunc(0, 0, *arrays, out):
                return run_node(node, values)
            return [out]

        return run

    return NativeNode(name, nin + 1, lambda m: build(m, name), runner)


def _picker(dims: Sequence[int]) -> Callable[[tuple[int, ...]], tuple[int, ...]]:
    """``lambda shape: tuple(shape[d] for d in dims)``, without a generator per call."""
    if not dims:
        return lambda shape: ()
    if len(dims) == 1:
        (d0,) = dims
        return lambda shape: (shape[d0],)
    return itemgetter(*dims)


def _identity_dag(node: Apply) -> ScalarDAG:
    x = node.inputs[0]
    if x.dtype not in NATIVE_DTYPES:
        raise Unsupported(f"dtype {x.dtype} has no native reductions")
    return ScalarDAG([(x.dtype, all(s == 1 for s in x.type.shape) and x.ndim > 0)], [s_input(0, x.dtype)])


@register_lowering(Reduce)
def lower_reduce(node: Apply) -> NativeNode | None:
    op = node.op
    dag = _identity_dag(node)
    _Acc(op.kind, node.inputs[0].dtype, op.dtype)  # raises Unsupported early
    ndim = node.inputs[0].ndim
    return _reduce_native(node, dag, [0], op.axis, op.kind, op.dtype,
                          lambda m, name: build_reduce(m, name, dag, ndim, op.axis, op.kind, op.dtype),
                          (dag.key(),))


@register_lowering(Fused)
def lower_fused_reduce(node: Apply) -> NativeNode | None:
    red = node.op.reduce
    if red is None or not isinstance(red, Reduce):
        return None  # the elementwise kernels run it
    found = dag_from_fused(node)
    if found is None:
        return None
    dag, taken = found
    check_dag(dag)
    _Acc(red.kind, dag.outputs[0].dtype, red.dtype)
    ndim = node.inputs[taken[0]].ndim
    return _reduce_native(node, dag, taken, red.axis, red.kind, red.dtype,
                          lambda m, name: build_reduce(m, name, dag, ndim, red.axis, red.kind, red.dtype),
                          (dag.key(),))


def _build_arg(module: ir.Module, name: str, dtype: str, ndim: int, axes: tuple[int, ...],
               kind: str) -> None:
    from graphc.backend.llvm.reduce_arg import build_argreduce  # it imports this module

    build_argreduce(module, name, dtype, ndim, axes, kind)


@register_lowering(Argmax, Argmin)
def lower_argreduce(node: Apply) -> NativeNode | None:
    x = node.inputs[0]
    if x.dtype not in NATIVE_DTYPES or x.dtype == "bool":
        return None
    kind = "argmax" if isinstance(node.op, Argmax) else "argmin"
    dag = _identity_dag(node)
    axes = node.op.axis
    return _reduce_native(node, dag, [0], axes, kind, "int64",
                          lambda m, name: _build_arg(m, name, x.dtype, x.ndim, axes, kind),
                          (x.dtype,))


@register_lowering(SumToShape)
def lower_sum_to_shape(node: Apply) -> NativeNode | None:
    """The gradient of a broadcast operand: a sum over the axes known statically to be
    broadcast (leading ones, and those of static length 1 in ``like``). Where the run-time
    shapes ask for more (an axis of unknown length that turns out to be 1), the reference
    runs."""
    g, like = node.inputs
    lead = g.ndim - like.ndim
    if lead < 0 or g.dtype not in ("float32", "float64"):
        return None
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(like.type.shape) if n == 1)
    kept = [d for d in range(g.ndim) if d not in axes]
    dag = _identity_dag(node)
    dtype = g.dtype
    name = kernel_id("gcred", "add", g.ndim, axes, dtype, dag.key())

    def runner(cfunc: Callable[..., int]) -> Callable[[list[Any]], list[Any]]:
        gate = Gate(node)
        get, alloc = gate.getter((0,)), gate.allocator(0)

        def run(values: list[Any]) -> list[Any]:
            (a,) = get(values)
            shape = tuple(getattr(values[1], "shape", ()))
            if len(shape) != like.ndim or any(
                    shape[d - lead] != (1 if d in axes else a.shape[d]) for d in range(lead, a.ndim)):
                return run_node(node, values)
            out = alloc(shape)
            if cfunc(0, 0, a, out):
                return run_node(node, values)
            return [out]

        return run

    if not kept and not axes:
        return None
    return NativeNode(name, 2, lambda m: build_reduce(m, name, dag, g.ndim, axes, "add", dtype), runner)

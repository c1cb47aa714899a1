"""Native lowerings of whole nodes that are not elementwise: BLAS products, reductions,
softmax, label picking.

A lowering maps an Apply to a :class:`NativeNode`: the name of one kernel with the
elementwise kernels' calling convention (``i32 name(i64 start, i64 stop,
PyArrayObject *arrays...)``, see graphc.backend.llvm.kernel), a function that adds
that kernel to an LLVM module, and a function that makes the node's runner once the
kernel is compiled. The runner is the gate in front of native code: it checks dtypes,
ranks and shapes, allocates the outputs and calls the kernel. A kernel returning a
nonzero status (an index out of range, a layout it does not handle, an op error)
makes the runner run the reference ``perform``, which computes the value or raises
the reference's error, so native code never reads or writes out of bounds.

Kernel names are hashes of everything their code depends on, so the executor's
process-wide kernel cache (and an on-disk cache) can share them between functions.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from llvmlite import ir

from graphc.backend.llvm.irutil import I8, I32, I64, PTR, mem_type
from graphc.backend.llvm.kernel import NPY_ALIGNED, OFF_DATA, OFF_DIMS, OFF_FLAGS, OFF_STRIDES
from graphc.backend.llvm.scalar import Unsupported
from graphc.backend.reference import NodeRuntimeError, describe_failure, run_node
from graphc.config import config
from graphc.graph.basic import Apply

Runner = Callable[[list[Any]], list[Any]]
STATUS_OK, STATUS_REFUSED = 0, 1  # any nonzero status: the reference runs instead


@dataclass
class NativeNode:
    """One node's kernel: its symbol, its array count, how to build it and how to run it."""

    name: str
    nargs: int
    build: Callable[[ir.Module], None]
    runner: Callable[[Callable[..., int]], Runner]


LoweringFn = Callable[[Apply], "NativeNode | None"]
_LOWERINGS: dict[type, LoweringFn] = {}


def register_lowering(*op_types: type) -> Callable[[LoweringFn], LoweringFn]:
    """Register ``fn(node) -> NativeNode | None`` for nodes whose op is one of ``op_types``."""

    def deco(fn: LoweringFn) -> LoweringFn:
        for t in op_types:
            _LOWERINGS[t] = fn
        return fn

    return deco


_MODULES = ("blas", "reduce_kernels", "nnet_kernels", "index_kernels", "random_kernels", "shape_kernels")
_loaded = False


def _load_lowerings() -> None:
    # Imported here, not at module level: these modules import this one. One that fails
    # to import costs only its own lowerings (its nodes run their reference perform).
    global _loaded
    _loaded = True
    for mod in _MODULES:
        try:
            importlib.import_module(f"graphc.backend.llvm.{mod}")
        except Exception as exc:  # pragma: no cover - a broken module must not stop compiling
            warnings.warn(f"graphc: native lowerings in {mod} unavailable: {exc}", stacklevel=2)


def native_lowering(node: Apply) -> NativeNode | None:
    """The NativeNode for ``node``, or None (no lowering, or not for these dtypes/params)."""
    if not _loaded:
        _load_lowerings()
    for cls in type(node.op).__mro__:
        fn = _LOWERINGS.get(cls)
        if fn is not None:
            try:
                return fn(node)
            except Unsupported:
                return None
    return None


def kernel_id(prefix: str, *parts: Any) -> str:
    return f"{prefix}_{hashlib.sha1(repr(parts).encode()).hexdigest()[:20]}"


# -- IR helpers --------------------------------------------------------------------------
def field(b: ir.IRBuilder, obj: ir.Value, off: int, ty: ir.Type) -> ir.Value:
    return b.load(b.gep(obj, [ir.Constant(I64, off)], source_etype=I8), typ=ty)


def c64(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


class Arr:
    """Loads of one ndarray's fields (data pointer, dims, element strides)."""

    def __init__(self, b: ir.IRBuilder, obj: ir.Value, dtype: str, ndim: int) -> None:
        self.b, self.dtype, self.ndim = b, dtype, ndim
        self.ty = mem_type(dtype)
        self.data = field(b, obj, OFF_DATA, PTR)
        dims = field(b, obj, OFF_DIMS, PTR)
        strides = field(b, obj, OFF_STRIDES, PTR)
        shift = c64(int(np.log2(np.dtype(dtype).itemsize)))
        self.dims = [b.load(b.gep(dims, [c64(d)], source_etype=I64), typ=I64) for d in range(ndim)]
        # NPY_ALIGNED (checked on entry) guarantees byte strides are multiples of the itemsize.
        self.strides = [b.ashr(b.load(b.gep(strides, [c64(d)], source_etype=I64), typ=I64), shift)
                        for d in range(ndim)]

    def bstride(self, d: int) -> ir.Value:
        """The element stride along ``d``, 0 where the dimension is 1 (broadcast)."""
        b = self.b
        return b.select(b.icmp_signed("==", self.dims[d], c64(1)), c64(0), self.strides[d])

    def ptr(self, off: ir.Value) -> ir.Value:
        return self.b.gep(self.data, [off], source_etype=self.ty)

    def load(self, off: ir.Value) -> ir.Value:
        v = self.b.load(self.ptr(off), typ=self.ty)
        return self.b.icmp_unsigned("!=", v, ir.Constant(I8, 0)) if self.dtype == "bool" else v

    def store(self, v: ir.Value, off: ir.Value) -> None:
        if self.dtype == "bool":
            v = self.b.zext(v, I8)
        self.b.store(v, self.ptr(off))


def new_kernel(module: ir.Module, name: str, nargs: int) -> tuple[ir.Function, ir.IRBuilder, list[ir.Value]]:
    """Declare the kernel ``name`` and return it with a builder past the alignment check
    (unaligned arrays: the reference runs) and its array arguments."""
    fn = ir.Function(module, ir.FunctionType(I32, [I64, I64] + [PTR] * nargs), name=name)
    fn.attributes.add("nounwind")
    arrays = list(fn.args[2:])
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ok = ir.Constant(ir.IntType(1), 1)
    for a in arrays:
        f = field(b, a, OFF_FLAGS, I32)
        ok = b.and_(ok, b.icmp_unsigned("!=", b.and_(f, ir.Constant(I32, NPY_ALIGNED)), ir.Constant(I32, 0)))
    go = fn.append_basic_block("go")
    bad = fn.append_basic_block("unaligned")
    b.cbranch(ok, go, bad)
    b.position_at_end(bad)
    b.ret(ir.Constant(I32, 2))
    b.position_at_end(go)
    return fn, b, arrays


def entry_alloca(b: ir.IRBuilder, ty: ir.Type, count: int = 1, name: str = "") -> ir.Value:
    """A stack slot in the function's entry block (an alloca inside a loop would grow the stack)."""
    fn = b.function
    eb = ir.IRBuilder(fn.entry_basic_block)
    eb.position_at_start(fn.entry_basic_block)
    return eb.alloca(ty, size=count if count > 1 else None, name=name)


def copy_strided(b: ir.IRBuilder, ty: ir.Type, dst: ir.Value, src: ir.Value, n: ir.Value,
                 stride: ir.Value) -> None:
    """``dst[j] = src[j * stride]`` for ``j < n``, through one out-of-line helper per element
    type and module: inlined into every kernel, LLVM vectorizes each copy as gathers, which
    costs compile time and gains little."""
    fname = f"gc.copy_strided.{ty}"
    fn = b.module.globals.get(fname)
    if fn is None:
        fn = ir.Function(b.module, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, I64]), name=fname)
        fn.linkage = "internal"
        fn.attributes.add("noinline")
        fn.attributes.add("nounwind")
        hb = ir.IRBuilder(fn.append_basic_block("entry"))
        d, s, count, st = fn.args

        def body(j: ir.Value) -> None:
            v = hb.load(hb.gep(s, [hb.mul(j, st)], source_etype=ty), typ=ty)
            hb.store(v, hb.gep(d, [j], source_etype=ty))

        for_range(hb, count, body)
        hb.ret_void()
    b.call(fn, [dst, src, n, stride])


def for_range(b: ir.IRBuilder, n: ir.Value, body: Callable[[ir.Value], None],
              start: ir.Value | None = None) -> None:
    """``for i in range(start, n): body(i)``; safe for empty ranges."""
    pre = b.block
    head = b.append_basic_block("loop")
    after = b.append_basic_block("after")
    start = c64(0) if start is None else start
    b.cbranch(b.icmp_signed("<", start, n), head, after)
    b.position_at_end(head)
    i = b.phi(I64, name="i")
    i.add_incoming(start, pre)
    body(i)
    nxt = b.add(i, c64(1), flags=["nsw"])
    i.add_incoming(nxt, b.block)
    b.cbranch(b.icmp_signed("<", nxt, n), head, after)
    b.position_at_end(after)


def nest(b: ir.IRBuilder, sizes: Sequence[ir.Value], strides: Sequence[Sequence[ir.Value]],
         offs: Sequence[ir.Value], inner: Callable[[list[ir.Value]], None]) -> None:
    """Nested loops over ``sizes``; ``strides[k][d]`` advances offset ``k`` along loop ``d``;
    ``inner`` receives the offsets."""

    def level(d: int, cur: list[ir.Value]) -> None:
        if d == len(sizes):
            inner(cur)
            return
        for_range(b, sizes[d], lambda j: level(d + 1, [b.add(o, b.mul(j, strides[k][d]))
                                                         for k, o in enumerate(cur)]))

    level(0, list(offs))


# -- run time ----------------------------------------------------------------------------
class Gate:
    """Input conversion and output buffers of one native node."""

    def __init__(self, node: Apply) -> None:
        self.node = node
        self.in_dt = [np.dtype(v.dtype) for v in node.inputs]
        self.in_nd = [v.ndim for v in node.inputs]
        self.out_dt = [np.dtype(v.dtype) for v in node.outputs]
        self.pools: list[list[np.ndarray]] = [[] for _ in node.outputs]

    def fail(self, values: Sequence[Any], exc: Exception) -> None:
        raise NodeRuntimeError(describe_failure(self.node, list(values), exc)) from exc

    def arrays(self, values: Sequence[Any], which: Sequence[int]) -> list[np.ndarray]:
        """``values[i]`` for ``i`` in ``which`` as arrays of the declared dtype and rank."""
        out = []
        for i in which:
            a = values[i]
            dt = self.in_dt[i]
            if type(a) is not np.ndarray or a.dtype is not dt:
                a = np.asarray(a, dtype=dt)
            if a.ndim != self.in_nd[i]:
                self.fail(values, ValueError(f"input {i} has {a.ndim} dimensions, expected {self.in_nd[i]}"))
            out.append(a)
        return out

    def getter(self, which: Sequence[int]) -> Callable[[Sequence[Any]], list[np.ndarray]]:
        """``arrays(values, which)`` specialized: the common case (arrays already of the
        declared dtype and rank) costs a few type checks; anything else goes through
        ``arrays``."""
        which = tuple(which)
        specs = [(i, self.in_dt[i], self.in_nd[i]) for i in which]
        ndarray = np.ndarray
        slow = self.arrays
        if len(specs) == 1:
            ((i0, d0, n0),) = specs

            def get1(values: Sequence[Any]) -> list[np.ndarray]:
                a = values[i0]
                if type(a) is ndarray and a.dtype is d0 and a.ndim == n0:
                    return [a]
                return slow(values, which)

            return get1
        if len(specs) == 2:
            (i0, d0, n0), (i1, d1, n1) = specs

            def get2(values: Sequence[Any]) -> list[np.ndarray]:
                a, b = values[i0], values[i1]
                if (type(a) is ndarray and a.dtype is d0 and a.ndim == n0
                        and type(b) is ndarray and b.dtype is d1 and b.ndim == n1):
                    return [a, b]
                return slow(values, which)

            return get2

        def get(values: Sequence[Any]) -> list[np.ndarray]:
            out = [values[i] for i in which]
            for a, (_, d, n) in zip(out, specs):
                if type(a) is not ndarray or a.dtype is not d or a.ndim != n:
                    return slow(values, which)
            return out

        return get

    def allocator(self, j: int) -> Callable[[tuple[int, ...]], np.ndarray]:
        """``alloc(j, shape)`` as a closure over output ``j``'s pool and dtype."""
        pool, dt = self.pools[j], self.out_dt[j]
        getrefcount, empty = sys.getrefcount, np.empty

        def alloc(shape: tuple[int, ...]) -> np.ndarray:
            for buf in pool:
                if getrefcount(buf) == 3 and buf.shape == shape:  # the pool, `buf`, the argument
                    return buf
            buf = empty(shape, dt)
            if len(pool) >= 2:
                pool.pop(0)
            pool.append(buf)
            return buf

        return alloc

    def alloc(self, j: int, shape: tuple[int, ...]) -> np.ndarray:
        """An output buffer, reused once nothing else refers to it (fresh pages fault)."""
        pool = self.pools[j]
        getrefcount = sys.getrefcount
        for buf in pool:
            if getrefcount(buf) == 3 and buf.shape == shape:  # the pool, `buf`, the argument
                return buf
        buf = np.empty(shape, self.out_dt[j])
        if len(pool) >= 2:
            pool.pop(0)
        pool.append(buf)
        return buf


def broadcast_shape(values: Sequence[Any], shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    first = shapes[0]
    if all(s == first for s in shapes):
        return first
    return tuple(np.broadcast_shapes(*shapes))


def make_runner(node: Apply, native: NativeNode, cfunc: Callable[..., int], debug: bool) -> Runner:
    """The node's runner, with the NaN guard and (``debug``) a reference check per call."""
    run = native.runner(cfunc)
    cfg = config

    def guarded(values: list[Any]) -> list[Any]:
        outs = run(values)
        if cfg.nan_guard:  # read per call: it may be switched on after compiling
            for o in outs:
                if o.dtype.kind == "f" and np.isnan(o).any():
                    raise NodeRuntimeError(f"NaN guard: {node.op} produced NaN (built at {node.trace})")
        return outs

    guarded.fresh = True  # type: ignore[attr-defined]  # outputs are new arrays, never inputs
    if not debug:
        return guarded

    def checked(values: list[Any]) -> list[Any]:
        from graphc.backend.llvm.executor import _compare

        outs = guarded(values)
        ref = run_node(node, list(values))
        for k, (got, want) in enumerate(zip(outs, ref)):
            _compare(node, k, np.asarray(got), np.asarray(want))
        return outs

    checked.fresh = True  # type: ignore[attr-defined]
    return checked

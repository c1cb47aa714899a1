"""The plan interpreter: one generic native function running a plan's table.

``PyObject *interp(ndarray table, PyObject **args, Py_ssize_t nargs)`` is written in
LLVM IR once (compiled once per process and kept in the on-disk compile cache: its
code has no address in it) and bound as a ``METH_FASTCALL`` builtin to each plan's
table (graphc.backend.llvm.plan describes what it does). The table is int64 words: a
header of section offsets and counts, then one slot per value (an object address), then
the sections: argument checks, shared-variable checks, guards, view rebinds, kernel
calls, update swaps. A kernel call whose start word is negative runs through the native
parallel-for (graphc.backend.llvm.parallel, its address in the header) over ``[0, stop)``
with ``-start`` threads, as the per-node path splits that kernel.
"""

from __future__ import annotations

import ctypes
from typing import Any

from llvmlite import ir

from graphc.backend.llvm.irutil import F32, F64, I8, I32, I64, PTR, as_callee
from graphc.backend.llvm.kernel import OFF_DATA, OFF_DIMS, OFF_FLAGS

INTERP = "graphc_plan_interp_v5"
FLOAT_VALUE_OFF = 16  # PyFloatObject: ob_refcnt, ob_type, ob_fval
OK, MISS, REPAIR, BUSY, FAILED = 0, 1, 2, 3, 4
ARITY_BUCKETS = (3, 4, 6, 8, 12, 16, 24, 40)
MAX_ARRAYS = ARITY_BUCKETS[-1]  # kernels with more arrays: no plan
OFF_ND, OFF_DESCR = 24, 56
NPY_C_CONTIGUOUS, NPY_OWNDATA, NPY_ALIGNED, NPY_WRITEABLE = 0x1, 0x4, 0x100, 0x400
# Header words of the table.
H_BUSY, H_NARGS, H_ARGS, H_NSHARED, H_SHARED, H_NGUARD, H_GUARD = 0, 1, 2, 3, 4, 5, 6
H_NREBIND, H_REBIND, H_NSTEPS, H_STEPS, H_NSWAP, H_SWAP = 7, 8, 9, 10, 11, 12
H_FLOAT, H_LATE, HEADER = 13, 14, 16  # PyFloat_Type; steps run with the GIL released; size
H_PARFOR = 15  # graphc_parallel_for's address (0: none; then no step is split)


# -- the interpreter -----------------------------------------------------------------------
def _container_value_offset() -> int | None:
    """Where a Container (``__slots__ = ("value",)``) keeps its value, verified."""
    from graphc.compile.shared import Container

    probe = object()
    c = Container(probe)
    off = Container.__basicsize__ - 8
    if off >= 16 and ctypes.c_void_p.from_address(id(c) + off).value == id(probe):
        return off
    return None


def build_interpreter(module: ir.Module, value_off: int) -> None:
    """``PyObject *interp(ndarray table, PyObject **args, Py_ssize_t nargs)``: see module doc."""
    from graphc.backend.llvm.entry import _declare

    from_i64 = _declare(module, "PyLong_FromLongLong", PTR, [I64])
    save = _declare(module, "PyEval_SaveThread", PTR, [])
    restore = _declare(module, "PyEval_RestoreThread", ir.VoidType(), [PTR])
    fn = ir.Function(module, ir.FunctionType(PTR, [PTR, PTR, I64]), name=INTERP)
    table, args, nargs = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    slices = b.alloca(PTR, size=ir.Constant(I64, MAX_ARRAYS))  # a split step's arrays

    def c(v: int) -> ir.Constant:
        return ir.Constant(I64, v)

    def at(p: ir.Value, off: int | ir.Value, ty: ir.Type) -> ir.Value:
        off = c(off) if isinstance(off, int) else off
        return b.gep(p, [off], source_etype=ty)

    tbl = b.load(at(table, OFF_DATA, I8), typ=PTR)

    def T(i: int | ir.Value) -> ir.Value:
        return b.load(at(tbl, i, I64), typ=I64)

    def setT(i: int | ir.Value, v: ir.Value) -> None:
        b.store(v, at(tbl, i, I64))

    def obj(i: int | ir.Value) -> ir.Value:
        return b.inttoptr(T(i), PTR)

    def slot_obj(i: ir.Value) -> ir.Value:
        """The object in the slot whose index is word ``i``."""
        return obj(T(i))

    def ret(code: int | ir.Value) -> None:
        b.ret(b.call(from_i64, [c(code) if isinstance(code, int) else code]))

    def require(cond: ir.Value, code: int) -> None:
        ok = fn.append_basic_block("ok")
        bad = fn.append_basic_block("bad")
        b.cbranch(cond, ok, bad, )
        b.position_at_end(bad)
        ret(code)
        b.position_at_end(ok)

    def loop(n: ir.Value, body: Any) -> None:
        from graphc.backend.llvm.lowering import for_range

        for_range(b, n, body)

    require(b.icmp_signed("==", nargs, T(H_NARGS)), MISS)
    require(b.icmp_signed("==", T(H_BUSY), c(0)), BUSY)
    cur = b.alloca(I64)
    b.store(T(H_ARGS), cur)

    def one_arg(k: ir.Value) -> None:
        # Spec: slot, type, descr, ndim, flags mask, scalar slot, scalar size, dims.
        base = b.load(cur, typ=I64)
        o = b.load(at(args, k, PTR), typ=PTR)
        otype = b.ptrtoint(b.load(at(o, 8, I8), typ=PTR), I64)
        nd = T(b.add(base, c(3)))
        first = b.add(base, c(7))
        with b.if_else(b.icmp_unsigned("==", otype, T(b.add(base, c(1))))) as (array, other):
            with array:
                mask = b.trunc(T(b.add(base, c(4))), I32)
                flags = b.load(at(o, OFF_FLAGS, I8), typ=I32)
                same = b.and_(b.icmp_unsigned("==", b.ptrtoint(b.load(at(o, OFF_DESCR, I8), typ=PTR), I64),
                                              T(b.add(base, c(2)))),
                              b.icmp_signed("==", b.sext(b.load(at(o, OFF_ND, I8), typ=I32), I64), nd))
                require(b.and_(same, b.icmp_unsigned("==", b.and_(flags, mask), mask)), MISS)
                dims = b.load(at(o, OFF_DIMS, I8), typ=PTR)
                loop(nd, lambda d: require(b.icmp_signed("==", b.load(at(dims, d, I64), typ=I64),
                                                         T(b.add(first, d))), MISS))
                setT(T(base), b.ptrtoint(o, I64))
            with other:
                # A Python float for a 0-d float input (``filter`` accepts it): stored into the
                # plan's own 0-d array, rounded as ``astype`` rounds.
                sslot = T(b.add(base, c(5)))
                require(b.and_(b.icmp_signed(">=", sslot, c(0)),
                               b.icmp_unsigned("==", otype, T(H_FLOAT))), MISS)
                buf = b.inttoptr(T(sslot), PTR)
                data = b.load(at(buf, OFF_DATA, I8), typ=PTR)
                value = b.load(at(o, FLOAT_VALUE_OFF, I8), typ=F64)
                with b.if_else(b.icmp_signed("==", T(b.add(base, c(6))), c(4))) as (single, double):
                    with single:
                        b.store(b.fptrunc(value, F32), data)
                    with double:
                        b.store(value, data)
                setT(T(base), T(sslot))
        b.store(b.add(first, nd), cur)

    loop(nargs, one_arg)

    def shared(j: ir.Value) -> None:
        base = b.add(T(H_SHARED), b.mul(j, c(2)))
        value = b.load(at(obj(base), value_off, I8), typ=PTR)
        require(b.icmp_unsigned("==", b.ptrtoint(value, I64), T(T(b.add(base, c(1))))), REPAIR)

    loop(T(H_NSHARED), shared)
    want = c(NPY_OWNDATA | NPY_WRITEABLE)

    def guard(j: ir.Value) -> None:
        base = b.add(T(H_GUARD), b.mul(j, c(2)))
        o = slot_obj(base)
        flags = b.sext(b.load(at(o, OFF_FLAGS, I8), typ=I32), I64)
        require(b.and_(b.icmp_signed("==", b.load(o, typ=I64), T(b.add(base, c(1)))),
                       b.icmp_unsigned("==", b.and_(flags, want), want)), REPAIR)

    loop(T(H_NGUARD), guard)
    setT(H_BUSY, c(1))

    def rebind(j: ir.Value) -> None:
        base = b.add(T(H_REBIND), b.mul(j, c(3)))
        src = b.load(at(slot_obj(b.add(base, c(1))), OFF_DATA, I8), typ=PTR)
        b.store(at(src, T(b.add(base, c(2))), I8), at(slot_obj(base), OFF_DATA, I8))

    loop(T(H_NREBIND), rebind)
    state = b.call(save, [])
    b.store(T(H_STEPS), cur)
    ktype = [ir.FunctionType(I32, [I64, I64] + [PTR] * n) for n in range(MAX_ARRAYS + 1)]

    def step(k: ir.Value, released: bool) -> None:
        base = b.load(cur, typ=I64)
        start, stop, n = T(b.add(base, c(1))), T(b.add(base, c(2))), T(b.add(base, c(3)))
        first = b.add(base, c(4))
        join = fn.append_basic_block("called")
        default = fn.append_basic_block("bad_arity")
        split = fn.append_basic_block("split")
        whole = fn.append_basic_block("whole")
        rcs = []
        b.cbranch(b.icmp_signed("<", start, c(0)), split, whole)
        b.position_at_end(split)
        # i32 graphc_parallel_for(ptr kernel, i64 size, i64 threads, i64 nargs, ptr arrays)
        loop(n, lambda j: b.store(slot_obj(b.add(first, j)), at(slices, j, PTR)))
        parfor = as_callee(b.inttoptr(T(H_PARFOR), PTR), ir.FunctionType(I32, [PTR, I64, I64, I64, PTR]))
        args = [b.inttoptr(T(base), PTR), stop, b.neg(start), n, b.bitcast(slices, PTR)]
        rcs.append((b.call(parfor, args), b.block))
        b.branch(join)
        b.position_at_end(whole)
        sw = b.switch(n, default)
        # A kernel is called with the arity of its bucket, the arrays it does not take null:
        # the C calling convention lets a callee ignore trailing arguments (few cases to
        # compile instead of one per arity).
        low = 0
        for top in ARITY_BUCKETS:
            blk = fn.append_basic_block(f"arity{top}")
            for arity in range(low, top + 1):
                sw.add_case(c(arity), blk)
            b.position_at_end(blk)
            # Beyond the step's own arrays, its first one again (never a read past its words).
            arrays = [slot_obj(b.add(first, b.select(b.icmp_signed(">", n, c(j)), c(j), c(0))
                                     if j >= low else c(j))) for j in range(top)]
            callee = as_callee(b.inttoptr(T(base), PTR), ktype[top])
            rcs.append((b.call(callee, [start, stop, *arrays]), b.block))
            b.branch(join)
            low = top + 1
        b.position_at_end(default)
        b.branch(join)
        b.position_at_end(join)
        rc = b.phi(I32)
        for v, blk in rcs:
            rc.add_incoming(v, blk)
        rc.add_incoming(ir.Constant(I32, 99), default)
        bad = fn.append_basic_block("step_failed")
        ok = fn.append_basic_block("step_ok")
        b.cbranch(b.icmp_signed("==", rc, ir.Constant(I32, 0)), ok, bad)
        b.position_at_end(bad)
        if released:
            b.call(restore, [state])
        setT(H_BUSY, c(0))
        ret(b.add(k, c(FAILED)))
        b.position_at_end(ok)
        b.store(b.add(first, n), cur)

    loop(T(H_LATE), lambda k: step(k, True))
    b.call(restore, [state])
    # Steps writing shared values in place (and those after them) keep the GIL: Python code
    # (``get_value``, another thread) never sees a value half written.
    from graphc.backend.llvm.lowering import for_range

    for_range(b, T(H_NSTEPS), lambda k: step(k, False), start=T(H_LATE))

    def swap(j: ir.Value) -> None:
        base = b.add(T(H_SWAP), b.mul(j, c(3)))
        cont = obj(base)
        i_in, i_out = T(b.add(base, c(1))), T(b.add(base, c(2)))
        old, new = T(i_in), T(i_out)
        cell = at(cont, value_off, I8)
        go = fn.append_basic_block("swap")
        skip = fn.append_basic_block("swapped")
        # Another thread may have replaced the value meanwhile: its update wins.
        b.cbranch(b.icmp_unsigned("==", b.ptrtoint(b.load(cell, typ=PTR), I64), old), go, skip)
        b.position_at_end(go)
        newp, oldp = b.inttoptr(new, PTR), b.inttoptr(old, PTR)
        b.store(b.add(b.load(newp, typ=I64), c(1)), newp)
        b.store(newp, cell)
        b.store(b.sub(b.load(oldp, typ=I64), c(1)), oldp)  # the plan still holds it: never 0
        setT(i_in, new)
        setT(i_out, old)
        b.branch(skip)
        b.position_at_end(skip)

    loop(T(H_NSWAP), swap)
    ret(OK)


_interp: dict[str, Any] = {}


def interpreter() -> tuple[int, int] | None:
    """(address of the interpreter, container value offset), compiled once per process."""
    if "addr" not in _interp:
        _interp["addr"] = None
        try:
            from graphc.backend.llvm import entry as fast
            from graphc.backend.llvm import kernel_parts

            off = _container_value_offset()
            if off is not None and fast.available():
                compiled, _ = kernel_parts.compile_kernels({INTERP: lambda m: build_interpreter(m, off)}, 2)
                if compiled is not None:
                    _interp["module"] = compiled
                    _interp["addr"] = (compiled.addresses[INTERP], off)
        except Exception:  # pragma: no cover - no plans, the per-node path stays
            _interp["addr"] = None
    return _interp["addr"]

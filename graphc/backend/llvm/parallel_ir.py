"""The native parallel-for's code, written in LLVM IR (graphc.backend.llvm.parallel runs it).

``build_pool(module)`` adds every function: the worker loop, the slice claimer, the job
(publish, run slices here too, wait), the exported ``graphc_parallel_for`` and
``graphc_parallel_each``, and two ``METH_FASTCALL`` entries for Python. The pool is a
block of ``POOL_BYTES`` laid out as the ``P_*`` offsets say; its tunables (spin and
yield cycles, slices per thread, grain, back-off cap) are words the Python side sets.
"""

from __future__ import annotations

from llvmlite import ir

from graphc.backend.llvm.irutil import I32, I64, PTR
from graphc.backend.llvm.kernel import OFF_DATA

PARALLEL_FOR = "graphc_parallel_for"
PARALLEL_EACH = "graphc_parallel_each"
WORKER = "graphc_parallel_worker_v1"
ENTRY_FOR = "graphc_parallel_for_v1__py"
ENTRY_EACH = "graphc_parallel_each_v1__py"
POOL_CELL = "graphc_parallel_pool"  # external: a cell holding the current pool's address
NAMES = (PARALLEL_FOR, PARALLEL_EACH, WORKER, ENTRY_FOR, ENTRY_EACH)

ARITY_BUCKETS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48)
MAX_ARRAYS = ARITY_BUCKETS[-1]  # kernels with more arrays are split by the Python pool
MAX_SLICES = 255
STATUS_BAD_ARITY = 98

# Pool layout (bytes): words written by different threads on their own cache lines.
P_TICKET, P_WAKE, P_SLEEPERS, P_DONE, P_CSLEEP, P_STATUS, P_BUSY = 0, 64, 128, 192, 196, 256, 320
P_KERNEL, P_SIZE, P_NARGS, P_ARRAYS, P_CHUNK, P_MODE = 384, 392, 400, 408, 416, 424
P_SLICES, P_SPIN, P_STOP, P_PER_THREAD, P_GRAIN, P_YIELD = 448, 456, 464, 472, 480, 488
P_SKIP, P_MAX_SKIP = 496, 504
POOL_BYTES = 512

SYS_FUTEX, SYS_SCHED_YIELD = 202, 24  # x86-64
FUTEX_WAIT_PRIVATE, FUTEX_WAKE_PRIVATE = 128, 129
WAIT_TIMEOUT_NS = 100_000_000  # a sleeper rechecks at least this often (a safety net only)
OB_TYPE_OFFSET = 8


def _c(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _c32(v: int) -> ir.Constant:
    return ir.Constant(I32, v)


def _callee(ptr: ir.Value, fnty: ir.FunctionType) -> ir.Value:
    """``ptr`` made callable by llvmlite (an indirect call needs a ``function_type``)."""
    cls = type(ptr)
    ptr.__class__ = type("Callee", (cls,), {"function_type": fnty})
    return ptr


class _Gen:
    """IR helpers over one function being built."""

    def __init__(self, module: ir.Module, fn: ir.Function) -> None:
        self.m, self.fn = module, fn
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.syscall = _decl(module, "syscall", I64, [I64], var_arg=True)
        self.pause = _decl(module, "llvm.x86.sse2.pause", ir.VoidType(), [])
        self.tsc = _decl(module, "llvm.readcyclecounter", I64, [])

    def field(self, pool: ir.Value, off: int) -> ir.Value:
        return self.b.gep(pool, [_c(off)], source_etype=ir.IntType(8))

    def load(self, pool: ir.Value, off: int, ty: ir.Type = I64, order: str | None = None) -> ir.Value:
        p = self.field(pool, off)
        if order is None:
            return self.b.load(p, typ=ty)
        return self.b.load_atomic(p, order, ty.width // 8, typ=ty)

    def store(self, pool: ir.Value, off: int, v: ir.Value, order: str | None = None) -> None:
        p = self.field(pool, off)
        if order is None:
            self.b.store(v, p)
        else:
            # (llvmlite's store_atomic checks a pointee type, which opaque pointers lack)
            self.b._insert(ir.instructions.StoreAtomicInstr(self.b.block, v, p, order, v.type.width // 8))

    def rmw(self, op: str, pool: ir.Value, off: int, v: ir.Value) -> ir.Value:
        return self.b.atomic_rmw(op, self.field(pool, off), v, "seq_cst")

    def futex(self, pool: ir.Value, off: int, op: int, val: ir.Value, timeout: ir.Value | None) -> None:
        addr = self.b.ptrtoint(self.field(pool, off), I64)
        tmo = self.b.ptrtoint(timeout, I64) if timeout is not None else _c(0)
        self.b.call(self.syscall, [_c(SYS_FUTEX), addr, _c(op), self.b.sext(val, I64), tmo, _c(0), _c(0)])

    def relax(self, pool: ir.Value, t0: ir.Value) -> ir.Value:
        """One wait of a spin loop begun at time-stamp ``t0``: ``pause``, or after
        ``P_YIELD`` cycles ``sched_yield`` (a thread we wait for may be queued behind us on
        this CPU: the scheduler often puts a woken thread beside its waker on a busy
        machine); returns the cycles waited so far."""
        b = self.b
        waited = b.sub(b.call(self.tsc, []), t0)
        polite = b.icmp_unsigned(">=", waited, self.load(pool, P_YIELD, I64, "monotonic"))
        with b.if_else(polite) as (then, otherwise):
            with then:
                b.call(self.syscall, [_c(SYS_SCHED_YIELD)])
            with otherwise:
                b.call(self.pause, [])
        return waited

    def timespec(self) -> ir.Value:
        ts = self.b.alloca(I64, size=2)
        self.b.store(_c(0), ts)
        self.b.store(_c(WAIT_TIMEOUT_NS), self.b.gep(ts, [_c(1)], source_etype=I64))
        return ts

    def block(self, name: str) -> ir.Block:
        return self.fn.append_basic_block(name)


def _decl(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type],
          var_arg: bool = False) -> ir.Function:
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ret, args, var_arg=var_arg), name=name)
    return fn


def _build_call_kernel(module: ir.Module) -> ir.Function:
    """``i32 call(kernel, lo, hi, nargs, arrays)``: the kernel called with its ``nargs``
    arrays, STATUS_BAD_ARITY beyond MAX_ARRAYS. Up to 8 arrays each arity has its call;
    above, a kernel is called with the arity of its bucket, the extra arguments repeating
    its first array (never a read past ``arrays[nargs - 1]``): the C calling convention lets
    a callee ignore trailing arguments, as the plan interpreter relies on too (one case per
    arity made the module ~5x longer to build and compile)."""
    fn = ir.Function(module, ir.FunctionType(I32, [PTR, I64, I64, I64, PTR]), name="graphc_parallel_call")
    fn.linkage = "internal"
    kernel, lo, hi, nargs, arrays = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    bad = fn.append_basic_block("bad_arity")
    sw = b.switch(nargs, bad)
    low = 0
    for top in ARITY_BUCKETS:
        blk = fn.append_basic_block(f"arity{top}")
        for n in range(low, top + 1):
            sw.add_case(_c(n), blk)
        b.position_at_end(blk)
        args = []
        for k in range(top):
            at = _c(k) if k < low else b.select(b.icmp_signed(">", nargs, _c(k)), _c(k), _c(0))
            args.append(b.load(b.gep(arrays, [at], source_etype=PTR), typ=PTR))
        fnty = ir.FunctionType(I32, [I64, I64] + [PTR] * top)
        callee = _callee(b.bitcast(kernel, PTR), fnty)
        b.ret(b.call(callee, [lo, hi, *args]))
        low = top + 1
    b.position_at_end(bad)
    b.ret(_c32(STATUS_BAD_ARITY))
    return fn


def _build_run_slices(module: ir.Module, call: ir.Function) -> ir.Function:
    """``i64 run(pool, gen)``: claim and run slices of job ``gen`` until none is left;
    returns how many this thread ran."""
    fn = ir.Function(module, ir.FunctionType(I64, [PTR, I64]), name="graphc_parallel_slices")
    fn.linkage = "internal"
    pool, gen = fn.args
    g = _Gen(module, fn)
    b = g.b
    ran = b.alloca(I64)
    b.store(_c(0), ran)
    loop, claim, run, out = g.block("loop"), g.block("claim"), g.block("run"), g.block("out")
    b.branch(loop)
    b.position_at_end(loop)
    t = g.load(pool, P_TICKET, I64, "acquire")
    ns = b.and_(b.lshr(t, _c(16)), _c(0xFFFF))
    k = b.and_(t, _c(0xFFFF))
    same = b.icmp_unsigned("==", b.lshr(t, _c(32)), gen)
    b.cbranch(b.and_(same, b.icmp_unsigned("<", k, ns)), claim, out)
    b.position_at_end(claim)
    pair = b.cmpxchg(g.field(pool, P_TICKET), t, b.add(t, _c(1)), "acq_rel", "acquire")
    b.cbranch(b.extract_value(pair, 1), run, loop)
    b.position_at_end(run)
    kernel = b.inttoptr(g.load(pool, P_KERNEL), PTR)
    size, nargs = g.load(pool, P_SIZE), g.load(pool, P_NARGS)
    arrays = b.inttoptr(g.load(pool, P_ARRAYS), PTR)
    chunk, mode = g.load(pool, P_CHUNK), g.load(pool, P_MODE)
    lo = b.mul(k, chunk)
    hi = b.add(lo, chunk)
    hi = b.select(b.icmp_signed("<", hi, size), hi, size)
    each = b.icmp_unsigned("!=", mode, _c(0))
    lo = b.select(each, _c(0), lo)
    hi = b.select(each, _c(0), hi)
    mine = b.select(each, b.gep(arrays, [b.mul(k, nargs)], source_etype=PTR), arrays)
    rc = b.call(call, [kernel, lo, hi, nargs, mine])
    b.store(b.add(b.load(ran, typ=I64), _c(1)), ran)
    g.rmw("or", pool, P_STATUS, rc)
    done = b.add(g.rmw("add", pool, P_DONE, _c32(1)), _c32(1))
    last = b.icmp_unsigned("==", b.zext(done, I64), ns)
    with b.if_then(last):
        with b.if_then(b.icmp_unsigned("!=", g.load(pool, P_CSLEEP, I32, "seq_cst"), _c32(0))):
            g.futex(pool, P_DONE, FUTEX_WAKE_PRIVATE, _c32(1), None)
    b.branch(loop)
    b.position_at_end(out)
    b.ret(b.load(ran, typ=I64))
    return fn


def _build_worker(module: ir.Module, run: ir.Function) -> None:
    """``void worker(pool)``: wait for a new generation, run its slices, again; returns only
    when the pool's stop word is set."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR]), name=WORKER)
    (pool,) = fn.args
    g = _Gen(module, fn)
    b = g.b
    ts = g.timespec()
    mygen = b.alloca(I64)
    t0 = b.alloca(I64)
    b.store(b.lshr(g.load(pool, P_TICKET, I64, "acquire"), _c(32)), mygen)
    outer, spin, idle, sleep, woke, got = (g.block(n) for n in
                                           ("outer", "spin", "idle", "sleep", "woke", "got"))
    b.branch(outer)
    b.position_at_end(outer)
    b.store(b.call(g.tsc, []), t0)
    b.branch(spin)

    b.position_at_end(spin)
    t = g.load(pool, P_TICKET, I64, "acquire")
    b.cbranch(b.icmp_unsigned("!=", b.lshr(t, _c(32)), b.load(mygen, typ=I64)), got, idle)
    b.position_at_end(idle)
    waited = g.relax(pool, b.load(t0, typ=I64))
    go_on = b.icmp_unsigned("<", waited, g.load(pool, P_SPIN, I64, "monotonic"))
    b.cbranch(go_on, spin, sleep)

    b.position_at_end(sleep)
    with b.if_then(b.icmp_unsigned("!=", g.load(pool, P_STOP, I64, "acquire"), _c(0))):
        b.ret_void()
    g.rmw("add", pool, P_SLEEPERS, _c32(1))
    w = g.load(pool, P_WAKE, I32, "seq_cst")
    t = g.load(pool, P_TICKET, I64, "seq_cst")
    with b.if_then(b.icmp_unsigned("==", b.lshr(t, _c(32)), b.load(mygen, typ=I64))):
        g.futex(pool, P_WAKE, FUTEX_WAIT_PRIVATE, w, ts)
    g.rmw("sub", pool, P_SLEEPERS, _c32(1))
    b.branch(woke)
    b.position_at_end(woke)
    t = g.load(pool, P_TICKET, I64, "acquire")
    b.cbranch(b.icmp_unsigned("!=", b.lshr(t, _c(32)), b.load(mygen, typ=I64)), got, sleep)

    b.position_at_end(got)
    t = g.load(pool, P_TICKET, I64, "acquire")
    gen = b.lshr(t, _c(32))
    b.store(gen, mygen)
    b.call(run, [pool, gen])
    b.branch(outer)


def _build_job(module: ir.Module, call: ir.Function, run: ir.Function) -> ir.Function:
    """``i32 job(mode, kernel, size, nslices, nargs, arrays)``: mode 0 splits [0, size),
    mode 1 runs one slice per array group (see the module doc)."""
    fn = ir.Function(module, ir.FunctionType(I32, [I64, PTR, I64, I64, I64, PTR]), name="graphc_parallel_job")
    fn.linkage = "internal"
    mode, kernel, size, nslices, nargs, arrays = fn.args
    g = _Gen(module, fn)
    b = g.b
    ts = g.timespec()
    cell = module.globals.get(POOL_CELL)
    if cell is None:
        cell = ir.GlobalVariable(module, PTR, name=POOL_CELL)  # external: bound by add_symbol
    inline, pooled, publish, bad = g.block("inline"), g.block("pooled"), g.block("publish"), g.block("bad")
    chunk_v = b.alloca(I64)
    ns_v = b.alloca(I64)
    checked = g.block("checked")
    b.cbranch(b.icmp_unsigned(">", nargs, _c(MAX_ARRAYS)), bad, checked)
    b.position_at_end(bad)
    b.ret(_c32(STATUS_BAD_ARITY))
    b.position_at_end(checked)
    pool = b.load(cell, typ=PTR)
    is_each = b.icmp_unsigned("!=", mode, _c(0))
    b.store(nslices, ns_v)
    b.store(_c(0), chunk_v)
    have = b.icmp_unsigned("!=", b.ptrtoint(pool, I64), _c(0))
    with b.if_then(b.and_(have, b.not_(is_each))):
        threads = b.select(b.icmp_signed("<=", nslices, _c(0)), g.load(pool, P_SLICES), nslices)
        threads = b.select(b.icmp_signed(">", threads, _c(MAX_SLICES)), _c(MAX_SLICES), threads)
        ns = b.mul(threads, g.load(pool, P_PER_THREAD))
        ns = b.select(b.icmp_signed(">", ns, _c(MAX_SLICES)), _c(MAX_SLICES), ns)
        ns = b.select(b.icmp_signed("<", ns, _c(1)), _c(1), ns)
        chunk = b.sdiv(b.add(size, b.sub(ns, _c(1))), ns)
        chunk = b.and_(b.add(chunk, _c(63)), _c(~63))
        grain = g.load(pool, P_GRAIN)
        chunk = b.select(b.icmp_signed("<", chunk, grain), grain, chunk)
        chunk = b.select(b.icmp_signed("<", chunk, _c(64)), _c(64), chunk)
        b.store(chunk, chunk_v)
        b.store(b.sdiv(b.add(size, b.sub(chunk, _c(1))), chunk), ns_v)
    ns = b.load(ns_v, typ=I64)
    ok = b.and_(have, b.and_(b.icmp_signed(">", ns, _c(1)), b.icmp_signed("<=", ns, _c(MAX_SLICES))))
    b.cbranch(ok, pooled, inline)

    b.position_at_end(pooled)
    pair = b.cmpxchg(g.field(pool, P_BUSY), _c32(0), _c32(1), "acquire", "monotonic")
    backing_off = g.block("backing_off")
    b.cbranch(b.extract_value(pair, 1), backing_off, inline)
    # After a split that lost time (see below), the next jobs run on this thread alone.
    b.position_at_end(backing_off)
    skip = g.load(pool, P_SKIP)
    skipping = g.block("skipping")
    b.cbranch(b.icmp_signed(">", skip, _c(0)), skipping, publish)
    b.position_at_end(skipping)
    g.store(pool, P_SKIP, b.sub(skip, _c(1)))
    g.store(pool, P_BUSY, _c32(0), "release")
    b.branch(inline)

    b.position_at_end(publish)
    g.store(pool, P_KERNEL, b.ptrtoint(kernel, I64))
    g.store(pool, P_SIZE, size)
    g.store(pool, P_NARGS, nargs)
    g.store(pool, P_ARRAYS, b.ptrtoint(arrays, I64))
    g.store(pool, P_CHUNK, b.load(chunk_v, typ=I64))
    g.store(pool, P_MODE, mode)
    g.store(pool, P_DONE, _c32(0), "monotonic")
    g.store(pool, P_STATUS, _c32(0), "monotonic")
    old = g.load(pool, P_TICKET, I64, "monotonic")
    gen = b.and_(b.add(b.lshr(old, _c(32)), _c(1)), _c(0xFFFFFFFF))
    g.store(pool, P_TICKET, b.or_(b.shl(gen, _c(32)), b.shl(ns, _c(16))), "seq_cst")
    with b.if_then(b.icmp_unsigned("!=", g.load(pool, P_SLEEPERS, I32, "seq_cst"), _c32(0))):
        g.rmw("add", pool, P_WAKE, _c32(1))
        g.futex(pool, P_WAKE, FUTEX_WAKE_PRIVATE, _c32(0x7FFFFFFF), None)
    started = b.call(g.tsc, [])
    mine = b.call(run, [pool, gen])
    # Wait for the slices the workers claimed: spin, then sleep on the done counter.
    t0 = b.call(g.tsc, [])
    wait, idle, sleep, finished = g.block("wait"), g.block("idle"), g.block("sleep"), g.block("finished")
    b.branch(wait)
    b.position_at_end(wait)
    d = g.load(pool, P_DONE, I32, "acquire")
    b.cbranch(b.icmp_unsigned("==", b.zext(d, I64), ns), finished, idle)
    b.position_at_end(idle)
    waited = g.relax(pool, t0)
    b.cbranch(b.icmp_unsigned("<", waited, g.load(pool, P_SPIN, I64, "monotonic")), wait, sleep)
    b.position_at_end(sleep)
    g.store(pool, P_CSLEEP, _c32(1), "seq_cst")
    d = g.load(pool, P_DONE, I32, "seq_cst")
    with b.if_then(b.icmp_unsigned("!=", b.zext(d, I64), ns)):
        g.futex(pool, P_DONE, FUTEX_WAIT_PRIVATE, d, ts)
    g.store(pool, P_CSLEEP, _c32(0), "seq_cst")
    b.branch(wait)
    b.position_at_end(finished)
    # The split lost time when waiting for the workers' slices took longer than running
    # them here would have (at this thread's pace): then skip the next 1, 3, 7... jobs (at
    # most P_MAX_SKIP), on a busy machine where a worker shares a core; a win resets it.
    own = b.sub(t0, started)
    waited = b.sub(b.call(g.tsc, []), t0)
    theirs = b.sub(ns, mine)
    lost = b.and_(b.and_(b.icmp_signed(">", mine, _c(0)), b.icmp_signed(">", theirs, _c(0))),
                  b.icmp_unsigned(">", b.mul(waited, mine), b.mul(own, theirs)))
    longer = b.add(b.mul(g.load(pool, P_SKIP), _c(2)), _c(1))
    cap = g.load(pool, P_MAX_SKIP)
    longer = b.select(b.icmp_signed(">", longer, cap), cap, longer)
    g.store(pool, P_SKIP, b.select(lost, longer, _c(0)))
    rc = g.load(pool, P_STATUS, I32, "acquire")
    g.store(pool, P_BUSY, _c32(0), "release")
    b.ret(rc)

    # On this thread alone: the whole range, or each slice in turn.
    b.position_at_end(inline)
    whole, seq = g.block("whole"), g.block("each")
    b.cbranch(is_each, seq, whole)
    b.position_at_end(whole)
    b.ret(b.call(call, [kernel, _c(0), size, nargs, arrays]))
    b.position_at_end(seq)
    acc = b.alloca(I32)
    b.store(_c32(0), acc)
    from graphc.backend.llvm.lowering import for_range

    def one(k: ir.Value) -> None:
        mine = b.gep(arrays, [b.mul(k, nargs)], source_etype=PTR)
        b.store(b.or_(b.load(acc, typ=I32), b.call(call, [kernel, _c(0), _c(0), nargs, mine])), acc)

    for_range(b, nslices, one)
    b.ret(b.load(acc, typ=I32))
    return fn


def _build_exports(module: ir.Module, job: ir.Function) -> None:
    fn = ir.Function(module, ir.FunctionType(I32, [PTR, I64, I64, I64, PTR]), name=PARALLEL_FOR)
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    kernel, size, ns, nargs, arrays = fn.args
    b.ret(b.call(job, [_c(0), kernel, size, ns, nargs, arrays]))
    fn = ir.Function(module, ir.FunctionType(I32, [PTR, I64, I64, PTR]), name=PARALLEL_EACH)
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    kernel, ns, nargs, arrays = fn.args
    b.ret(b.call(job, [_c(1), kernel, _c(0), ns, nargs, arrays]))


def _build_entry(module: ir.Module, name: str, job: ir.Function, each: bool) -> None:
    """``f(size, threads, *arrays)`` (or ``f(nslices, *arrays)`` when ``each``), a
    ``METH_FASTCALL`` builtin bound to an int64 array ``[kernel, id(ndarray), nargs]``."""
    from graphc.backend.llvm.entry import _declare, _message

    raise_ = _declare(module, "PyErr_SetString", ir.VoidType(), [PTR, PTR])
    occurred = _declare(module, "PyErr_Occurred", PTR, [])
    as_i64 = _declare(module, "PyLong_AsLongLong", I64, [PTR])
    from_i64 = _declare(module, "PyLong_FromLongLong", PTR, [I64])
    is_subtype = _declare(module, "PyType_IsSubtype", I32, [PTR, PTR])
    save = _declare(module, "PyEval_SaveThread", PTR, [])
    restore = _declare(module, "PyEval_RestoreThread", ir.VoidType(), [PTR])
    exc = module.globals.get("PyExc_TypeError") or ir.GlobalVariable(module, PTR, name="PyExc_TypeError")
    fn = ir.Function(module, ir.FunctionType(PTR, [PTR, PTR, I64]), name=name)
    bound, args, nargs = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    null = ir.Constant(PTR, None)

    def check(cond: ir.Value, key: str, text: str) -> None:
        ok, bad = fn.append_basic_block("ok"), fn.append_basic_block("bad")
        b.cbranch(cond, ok, bad)
        b.position_at_end(bad)
        msg = _message(module, key, text)
        b.call(raise_, [b.load(exc, typ=PTR), b.gep(msg, [_c32(0), _c32(0)])])
        b.ret(null)
        b.position_at_end(ok)

    def arg(k: int) -> ir.Value:
        return b.load(b.gep(args, [_c(k)], source_etype=PTR), typ=PTR)

    def as_int(k: int) -> ir.Value:
        v = b.call(as_i64, [arg(k)])
        with b.if_then(b.icmp_signed("==", v, _c(-1)), likely=False):
            with b.if_then(b.icmp_unsigned("!=", b.call(occurred, []), null)):
                b.ret(null)
        return v

    words = b.load(b.gep(bound, [_c(OFF_DATA)], source_etype=ir.IntType(8)), typ=PTR)
    kernel = b.load(words, typ=PTR)
    array_type = b.load(b.gep(words, [_c(1)], source_etype=I64), typ=PTR)
    n = b.load(b.gep(words, [_c(2)], source_etype=I64), typ=I64)
    first = 1 if each else 2
    check(b.icmp_signed(">=", nargs, _c(first)), f"par{first}", "graphc parallel entry: too few arguments")
    a = as_int(0)
    if each:
        check(b.and_(b.icmp_signed(">=", a, _c(1)), b.icmp_signed("<=", a, _c(MAX_SLICES))),
              "parslices", "graphc parallel entry: bad slice count")
        want = b.add(b.mul(a, n), _c(1))
        threads = a
    else:
        check(b.icmp_signed(">=", a, _c(0)), "parsize", "graphc parallel entry: negative size")
        threads = as_int(1)
        want = b.add(n, _c(2))
    check(b.icmp_signed("==", nargs, want), "parcount", "graphc parallel entry: wrong number of arrays")
    from graphc.backend.llvm.lowering import for_range

    def typed(k: ir.Value) -> None:
        obj = b.load(b.gep(args, [k], source_etype=PTR), typ=PTR)
        otype = b.load(b.gep(obj, [_c(OB_TYPE_OFFSET)], source_etype=ir.IntType(8)), typ=PTR)
        with b.if_then(b.icmp_unsigned("!=", otype, array_type)):
            check(b.icmp_signed("!=", b.call(is_subtype, [otype, array_type]), _c32(0)), "partype",
                  "graphc parallel entry: arrays must be ndarrays")

    for_range(b, nargs, typed, start=_c(first))
    arrays = b.gep(args, [_c(first)], source_etype=PTR)
    state = b.call(save, [])
    if each:
        rc = b.call(job, [_c(1), kernel, _c(0), threads, n, arrays])
    else:
        rc = b.call(job, [_c(0), kernel, a, threads, n, arrays])
    b.call(restore, [state])
    b.ret(b.call(from_i64, [b.sext(rc, I64)]))


def build_pool(module: ir.Module) -> None:
    """Every function of the pool (see the module doc), once per module."""
    if WORKER in module.globals:
        return
    call = _build_call_kernel(module)
    run = _build_run_slices(module, call)
    _build_worker(module, run)
    job = _build_job(module, call, run)
    _build_exports(module, job)
    _build_entry(module, ENTRY_FOR, job, each=False)
    _build_entry(module, ENTRY_EACH, job, each=True)

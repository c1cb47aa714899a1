"""A native parallel-for: persistent worker threads woken in a few microseconds.

Large kernels are split across threads (executor ``_run_split``, reduce_threads). A
Python thread pool's round trip costs ~50-80 us, a quarter of a 1e6-element kernel;
this pool's costs a few us. Its code is LLVM IR written here, compiled once per process
(kept in the on-disk compile cache: no address is in it).

Workers are Python daemon threads that each call the native ``graphc_parallel_worker``
through ctypes (which releases the GIL for the thread's whole life) and never return.
A job is published through one 64-bit *ticket* word: generation (32 bits), slice count
(16) and next unclaimed slice (16). Every thread, the caller included, claims slices with
a compare-and-swap on the ticket until none is left, so a worker that wakes late finds
its slice taken by the caller instead of delaying the call, and a worker that sees a new
generation can never run a slice of an old job. Idle workers spin briefly (``pause``;
after ``YIELD_CYCLES`` of the time-stamp counter ``sched_yield``, since on a busy machine
the thread waited for may be queued on this CPU), then after ``SPIN_CYCLES`` sleep on a
futex (libc ``syscall``); the caller waits for the slices' completion count the same
way. Round trip (2 cores): ~0.4 us with the workers spinning, ~2 us to wake a sleeping
one (measured under load; the Python pool's was 50-80 us). A split whose workers' slices
took longer than the caller would have (a worker sharing a busy core) makes the next 1,
3, 7... (at most ``MAX_SKIP``) jobs run on the calling thread; a split that pays resets
that. One job runs at a time: a
caller finding the pool busy (another thread, or a kernel called from a worker) runs its
job on its own thread. A forked child forgets the pool (its threads do not exist there)
and starts its own on first use; at exit the workers stay asleep and the pool's memory
and code are never freed, so exit neither hangs nor unmaps code a worker is running.

The native interface (for other native code: the plan interpreter may call it), bound
with ``llvmlite.binding.add_symbol`` once the pool is compiled (``symbols()``):

``i32 graphc_parallel_for(ptr kernel, i64 size, i64 threads, i64 nargs, ptr arrays)``
    runs ``kernel(lo, hi, arrays[0], ..., arrays[nargs - 1])`` (the kernels' convention:
    ``i32 (i64 start, i64 stop, PyArrayObject *...)``) over slices of ``[0, size)``: as
    many as ``threads`` (``<= 0``: the pool's thread count) times ``SLICES_PER_THREAD``,
    each a multiple of 64 elements (but the last) and at least ``GRAIN``; returns the OR
    of the statuses. Needs no GIL; the arrays must stay alive during the call.
``i32 graphc_parallel_each(ptr kernel, i64 nslices, i64 nargs, ptr arrays)``
    runs ``kernel(0, 0, arrays[k * nargs], ..., arrays[k * nargs + nargs - 1])`` for each
    slice ``k < nslices`` (each slice its own arrays: reductions over views); OR of statuses.

Both return ``STATUS_BAD_ARITY`` when ``nargs`` is above ``MAX_ARRAYS``, and run on the
calling thread when there is no pool (``ensure(threads)`` starts it; not in a forked child
until it calls ``ensure`` itself) or when another job is running. Call ``symbols()``
before loading object code that refers to them (it binds the symbols); the GIL may be
held or not (the workers never take it).

From Python, ``splitter(cfunc, threads)`` and ``each(cfunc, threads)`` give builtins bound to a
kernel (its address and arity from its fast entry or ctypes prototype): ``f(size,
threads, *arrays)`` and ``f(nslices, *arrays)``. They check the argument count and that
every array is an ndarray, and release the GIL while the job runs.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import sys
import threading
from typing import Any

import numpy as np
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
#: Idle workers (and a waiting caller) spin this many time-stamp counter cycles before
#: sleeping on the futex (~40-80 us here): back-to-back calls find the workers awake.
SPIN_CYCLES = 200_000
#: After this many cycles (~2 us) of spinning, a waiting thread yields its CPU each turn.
YIELD_CYCLES = 5_000
MAX_WORKERS = 63
#: After a split that lost time, up to this many next jobs run on the calling thread (see
#: ``_build_job``; 0: never).
MAX_SKIP = 63
#: The pool's code is compiled unoptimized: ~20 ms instead of ~140 at O2 (cold cache), and
#: its paths (a claim, a call, spin loops) are a few instructions either way.
OPT = 0
#: A range is cut in this many slices per thread (claimed by whichever thread is free: a
#: worker that wakes late or is preempted delays the call less), none under GRAIN elements.
SLICES_PER_THREAD = 2  # (1-8 measured alike under load; 2 bounds a shared core's lag)
GRAIN = 4096
#: False: kernels split through the Python thread pools instead (GRAPHC_NATIVE_POOL=0),
#: for before/after comparisons; read per call.
ENABLED = os.environ.get("GRAPHC_NATIVE_POOL", "1") != "0"

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


# -- the process's pool ---------------------------------------------------------------------
_lock = threading.Lock()
_state: dict[str, Any] = {}
_KEEP: list[Any] = []  # never freed: workers may still run this code at interpreter exit
_cell = ctypes.c_void_p(0)  # the pool the native code uses (POOL_CELL); 0: none
_ready = -1  # workers of this process's pool, -1: no pool
_bound: dict[Any, Any] = {}  # kernel caller -> its parallel builtin (or None)
_each_bound: dict[Any, Any] = {}


def supported() -> bool:
    return sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")


def _compile() -> dict[str, int] | None:
    """The pool's functions' addresses (compiled once per process, through the cache)."""
    if "addrs" in _state:
        return _state["addrs"]
    _state["addrs"] = None
    if not supported():
        return None
    try:
        import llvmlite.binding as llvm

        from graphc.backend.llvm import cache
        from graphc.backend.llvm import entry as fast

        if not fast.available():
            return None
        libc = ctypes.CDLL(None)
        llvm.add_symbol("syscall", ctypes.cast(libc.syscall, ctypes.c_void_p).value)
        llvm.add_symbol(POOL_CELL, ctypes.addressof(_cell))
        compiled, _ = cache.compile_kernels({n: build_pool for n in NAMES}, OPT)
        if compiled is None or any(n not in compiled.addresses for n in NAMES):
            return None
        _KEEP.append(compiled)
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(compiled))  # its code outlives the interpreter
        addrs = dict(compiled.addresses)
        llvm.add_symbol(PARALLEL_FOR, addrs[PARALLEL_FOR])
        llvm.add_symbol(PARALLEL_EACH, addrs[PARALLEL_EACH])
        _state["addrs"] = addrs
    except Exception:  # pragma: no cover - the Python pool stays
        _state["addrs"] = None
    return _state["addrs"]


def symbols() -> dict[str, int] | None:
    """The exported functions' addresses (``PARALLEL_FOR``, ``PARALLEL_EACH``), bound as
    symbols for code loaded afterwards; None when the native pool is not available."""
    addrs = _compile()
    return None if addrs is None else {n: addrs[n] for n in (PARALLEL_FOR, PARALLEL_EACH)}


def _new_pool() -> int:
    buf = (ctypes.c_char * (POOL_BYTES + 64))()
    _KEEP.append(buf)
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(buf))
    addr = (ctypes.addressof(buf) + 63) & ~63
    ctypes.c_int64.from_address(addr + P_SPIN).value = SPIN_CYCLES
    ctypes.c_int64.from_address(addr + P_SLICES).value = 2
    ctypes.c_int64.from_address(addr + P_PER_THREAD).value = SLICES_PER_THREAD
    ctypes.c_int64.from_address(addr + P_GRAIN).value = GRAIN
    ctypes.c_int64.from_address(addr + P_YIELD).value = YIELD_CYCLES
    ctypes.c_int64.from_address(addr + P_MAX_SKIP).value = MAX_SKIP
    _state.update(pool=addr, workers=0, pid=os.getpid())
    return addr


def _add_workers(threads: int) -> None:
    want = min(max(0, threads - 1), MAX_WORKERS)
    addrs = _state["addrs"]
    proto = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    worker = proto(addrs[WORKER])
    _KEEP.append(worker)
    pool = _state["pool"]
    while _state["workers"] < want:
        k = _state["workers"]
        t = threading.Thread(target=worker, args=(pool,), name=f"graphc-parallel-{k + 1}", daemon=True)
        t.start()
        _state["workers"] = k + 1
    ctypes.c_int64.from_address(pool + P_SLICES).value = max(2, want + 1)


def ensure(threads: int) -> bool:
    """Whether the native pool runs here, with at least ``threads - 1`` workers (started
    now if needed)."""
    global _ready
    if _ready >= threads - 1 or _ready == MAX_WORKERS:  # (-1: no pool)
        return True
    with _lock:
        if _compile() is None:
            return False
        if _state.get("pool") is None:
            _new_pool()
        if _state["workers"] < min(threads - 1, MAX_WORKERS):
            _add_workers(threads)
        _cell.value = _state["pool"]
        _ready = _state["workers"]
    return True


def _forget() -> None:
    # A forked child has none of the parent's worker threads: a new pool on first use (and
    # a new lock: another thread of the parent may have held this one).
    global _lock, _ready
    _lock = threading.Lock()
    _ready = -1
    _cell.value = None
    _state.pop("pool", None)
    _state["workers"] = 0


os.register_at_fork(after_in_child=_forget)

_ENTRY_NAME = re.compile(r"graphc_entry_(\d+)__py$")


def kernel_of(cfunc: Any) -> tuple[int, int] | None:
    """(address, array count) of the kernel ``cfunc`` calls: a shared fast entry
    (graphc.backend.llvm.entry) or a ctypes prototype; None for anything else."""
    self = getattr(cfunc, "__self__", None)
    if type(self) is np.ndarray and self.dtype == np.int64 and self.shape == (2,):
        m = _ENTRY_NAME.match(getattr(cfunc, "__name__", ""))
        if m and int(self[1]) == id(np.ndarray):
            return int(self[0]), int(m.group(1))
        return None
    if isinstance(cfunc, ctypes._CFuncPtr):
        types = getattr(cfunc, "argtypes", None) or ()
        if len(types) >= 2 and all(t is ctypes.py_object for t in types[2:]):
            addr = ctypes.cast(cfunc, ctypes.c_void_p).value
            if addr:
                return addr, len(types) - 2
    return None


def _bind(cfunc: Any, table: dict[Any, Any], name: str) -> Any:
    try:
        return table[cfunc]
    except KeyError:
        pass
    except TypeError:  # unhashable: not a kernel caller
        return None
    found = kernel_of(cfunc)
    if found is None:  # not cached: a recording wrapper would keep its recorded arrays alive
        return None
    par = None
    addrs = _compile()
    if found is not None and addrs is not None and found[1] <= MAX_ARRAYS:
        from graphc.backend.llvm.entry import make_builtin_on

        words = np.array([found[0], id(np.ndarray), found[1]], dtype=np.int64)
        par = make_builtin_on(addrs[name], name, words)
    table[cfunc] = par
    return par


def splitter(cfunc: Any, threads: int) -> Any:
    """``f(size, threads, *arrays) -> status``: the kernel behind ``cfunc`` split over
    [0, size) by the native pool (started if needed); None when it cannot be."""
    if not ENABLED:
        return None
    par = _bind(cfunc, _bound, ENTRY_FOR)
    if par is None or not ensure(threads):
        return None
    return par


def each(cfunc: Any, threads: int) -> Any:
    """``f(nslices, *arrays) -> status``: slice ``k`` runs ``cfunc``'s kernel on (0, 0,
    arrays[k * n:(k + 1) * n]); None when the native pool cannot run it."""
    if not ENABLED:
        return None
    par = _bind(cfunc, _each_bound, ENTRY_EACH)
    if par is None or not ensure(threads):
        return None
    return par


__all__ = ["PARALLEL_EACH", "PARALLEL_FOR", "each", "ensure", "kernel_of", "splitter", "symbols"]

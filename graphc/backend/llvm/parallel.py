"""A native parallel-for: persistent worker threads woken in a few microseconds.

Large kernels are split across threads (executor ``_run_split``, reduce_threads). A
Python thread pool's round trip costs ~50-80 us, a quarter of a 1e6-element kernel;
this pool's costs a few us. Its code is LLVM IR (graphc.backend.llvm.parallel_ir),
compiled once per process (kept in the on-disk compile cache: no address is in it).

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

from graphc.backend.llvm.parallel_ir import (
    ENTRY_EACH,
    ENTRY_FOR,
    MAX_ARRAYS,
    NAMES,
    P_BUSY,
    P_GRAIN,
    P_MAX_SKIP,
    P_PER_THREAD,
    P_SKIP,
    P_SLICES,
    P_SPIN,
    P_TICKET,
    P_YIELD,
    PARALLEL_EACH,
    PARALLEL_FOR,
    POOL_BYTES,
    POOL_CELL,
    STATUS_BAD_ARITY,
    WORKER,
    build_pool,
)

#: Idle workers (and a waiting caller) spin this many time-stamp counter cycles before
#: sleeping on the futex (~90 us at 2.3 GHz): back-to-back calls find the workers awake.
SPIN_CYCLES = 200_000
#: After this many cycles (~2 us) of spinning, a waiting thread yields its CPU each turn.
YIELD_CYCLES = 5_000
MAX_WORKERS = 63
#: After a split that lost time, up to this many next jobs run on the calling thread (see
#: ``parallel_ir._build_job``; 0: never).
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

        from graphc.backend.llvm import entry as fast
        from graphc.backend.llvm import kernel_parts

        if not fast.available():
            return None
        libc = ctypes.CDLL(None)
        llvm.add_symbol("syscall", ctypes.cast(libc.syscall, ctypes.c_void_p).value)
        llvm.add_symbol(POOL_CELL, ctypes.addressof(_cell))
        compiled, _ = kernel_parts.compile_kernels({n: build_pool for n in NAMES}, OPT)
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


__all__ = ["MAX_ARRAYS", "PARALLEL_EACH", "PARALLEL_FOR", "P_BUSY", "P_SKIP", "P_TICKET", "STATUS_BAD_ARITY",
           "build_pool", "each", "ensure", "kernel_of", "splitter", "symbols"]

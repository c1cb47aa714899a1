"""Large reductions split across threads, inside the reduce lowerings' runners.

The executor splits large elementwise kernels by element ranges; a reduction kernel
instead gets array *views*, so no kernel or executor change is needed:

- when the first kept axis is long enough, the output is split along it: each
  thread reduces its slice of the inputs into its slice of the output (C-contiguous,
  since it is the output's first axis). Every output element is computed exactly as
  by one thread;
- otherwise (full reductions, or a short first kept axis) the first long reduced axis
  is split: each thread reduces a slab into a partial result, combined here with
  NumPy (float32 sums add their partials in float64; max/min propagate NaN;
  argmax/argmin of a full reduction take the first best partial, NaN first, so the
  first-occurrence rule holds).

Kernels release the GIL while they run (see entry.py), so the threads run in parallel.
The slices run on the native pool (graphc.backend.llvm.parallel: a round trip of a few
us) when it is available, else on a Python thread pool (50-80 us).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np

from graphc.backend.llvm import parallel

# A split's own cost is now ~15 us of Python (views, partial results; the native pool's
# round trip is a few us), but under load a 1e6 split ran slower than one thread (W6: sum
# 0.23 vs 0.17 ms, max 0.19 vs 0.15) and no gain could be measured: kept at 2**20.
#: Reductions over fewer elements run on one thread (tests lower it).
THREAD_MIN_ELEMENTS = 1 << 20
#: Threads to use; None: the executor's kernel_threads() (GRAPHC_THREADS, else the CPUs).
THREADS: int | None = None

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()


def _forget_pool() -> None:
    # A forked child has none of the parent's threads: waiting on that pool would hang.
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


_kernel_threads: list[Callable[[], int]] = []  # the executor's, imported on first use


def thread_count() -> int:
    if THREADS is not None:
        return max(1, int(THREADS))
    if not _kernel_threads:
        try:
            from graphc.backend.llvm.executor import kernel_threads
        except Exception:  # pragma: no cover - the executor is being reworked
            return max(1, min(os.cpu_count() or 1, 4))
        _kernel_threads.append(kernel_threads)
    return _kernel_threads[0]()


def _submit_all(calls: Sequence[Callable[[], int]]) -> int:
    """Run ``calls`` (the first on this thread); OR of their statuses. Calls of one kernel
    (``partial(cfunc, 0, 0, *arrays)``) go through the native pool when it runs here
    (graphc.backend.llvm.parallel: a round trip of a few us), else a Python thread pool."""
    first = calls[0]
    if type(first) is partial and all(type(c) is partial and c.func is first.func and not c.keywords
                                      for c in calls):
        par = parallel.each(first.func, len(calls))
        if par is not None:
            return par(len(calls), *[a for c in calls for a in c.args[2:]])
    global _pool, _pool_size
    workers = len(calls) - 1
    if _pool is None or _pool_size < workers:
        with _lock:
            if _pool is None or _pool_size < workers:
                _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="graphc-reduce")
                _pool_size = workers
    futures = [_pool.submit(c) for c in calls[1:]]
    rc = calls[0]()
    for f in futures:
        rc |= f.result()
    return rc


def _bounds(n: int, parts: int) -> list[tuple[int, int]]:
    step = -(-n // parts)
    return [(lo, min(n, lo + step)) for lo in range(0, n, step)]


def _slicer(arrays: Sequence[np.ndarray], shape: tuple[int, ...],
            d: int) -> Callable[[int, int], list[np.ndarray]]:
    """Views of the inputs restricted to [lo, hi) along axis ``d`` (broadcast inputs as they are)."""
    lead = (slice(None),) * d
    full = [a.shape[d] == shape[d] for a in arrays]

    def views(lo: int, hi: int) -> list[np.ndarray]:
        idx = lead + (slice(lo, hi),)
        return [a[idx] if f else a for a, f in zip(arrays, full)]

    return views


_COMBINE = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum,
            "and": np.logical_and, "or": np.logical_or}


class Splitter:
    """``split(cfunc, arrays, shape, out)``: the status of a threaded run, or None when
    this call is not worth (or not able to be) split."""

    def __init__(self, kind: str, axes: Sequence[int], ndim: int) -> None:
        self.kind, self.threads = kind, 1
        self.axes = tuple(axes)
        self.kept = [d for d in range(ndim) if d not in self.axes]
        self.arg = kind in ("argmax", "argmin")

    def __call__(self, cfunc: Callable[..., int], arrays: list[np.ndarray], shape: tuple[int, ...],
                 out: np.ndarray) -> int | None:
        if math.prod(shape) < THREAD_MIN_ELEMENTS:
            return None
        # Read per (large) call, so GRAPHC_THREADS and THREADS apply to compiled functions too.
        t = self.threads = thread_count()
        if t < 2:
            return None
        if self.kept and shape[self.kept[0]] >= t:
            return self._split_kept(cfunc, arrays, shape, out)
        for d in self.axes:
            if shape[d] >= t:
                if self.arg and (self.kept or d != 0):
                    return None  # partial indices would need the values per output element
                return self._split_reduced(cfunc, arrays, shape, out, d)
        return None

    def _split_kept(self, cfunc: Callable[..., int], arrays: list[np.ndarray], shape: tuple[int, ...],
                    out: np.ndarray) -> int:
        d = self.kept[0]
        views = _slicer(arrays, shape, d)
        calls = [partial(cfunc, 0, 0, *views(lo, hi), out[lo:hi])
                 for lo, hi in _bounds(shape[d], self.threads)]
        return _submit_all(calls)

    def _split_reduced(self, cfunc: Callable[..., int], arrays: list[np.ndarray], shape: tuple[int, ...],
                       out: np.ndarray, d: int) -> int:
        views = _slicer(arrays, shape, d)
        bounds = _bounds(shape[d], self.threads)
        parts = np.empty((len(bounds), *out.shape), out.dtype)  # one block: parts[k] C-contiguous
        calls = [partial(cfunc, 0, 0, *views(lo, hi), parts[k, ...]) for k, (lo, hi) in enumerate(bounds)]
        rc = _submit_all(calls)
        if rc:
            return rc
        if self.arg:  # a full reduction split along axis 0: flat index = lo * row + partial
            x = arrays[0]
            row = math.prod(shape[1:])
            idx = [lo * row + int(p) for (lo, _), p in zip(bounds, parts)]
            vals = np.array([x[np.unravel_index(i, shape)] for i in idx], dtype=x.dtype)
            pick = np.argmax(vals) if self.kind == "argmax" else np.argmin(vals)
            out[()] = idx[int(pick)]
            return 0
        if self.kind == "add" and out.dtype == np.float32:
            # One more rounding than one thread, not two: the partials add in float64.
            out[...] = np.add.reduce(parts, axis=0, dtype=np.float64)
        else:
            _COMBINE[self.kind].reduce(parts, axis=0, out=out)
        return 0


__all__ = ["Splitter", "THREAD_MIN_ELEMENTS", "THREADS", "thread_count"]

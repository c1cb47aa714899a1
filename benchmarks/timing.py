"""Timing shared by the in-process benchmarks (W1, W2, W6): contenders in alternating blocks.

Each round runs every contender in turn, as a block: first ``settle`` seconds of calls that
are not counted (at least two), then ``repeat`` timed calls. The settling matters on a
2-core machine: the thread pools of NumPy's and SciPy's OpenBLAS, XLA and PyTorch's
OpenMP keep spinning for up to ~0.2 s after their last call (OpenBLAS: 2^28 cycles), and
a contender timed right after another framework's block found the second core taken
(graphc's two-thread W1 at 1e6 measured 0.34 or 0.49 ms from run to run; W2 at n = 1024
0.93-0.95x NumPy, 0.98x once settled). Rounds alternate, so a drifting load hits all.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def in_blocks(fns: dict[str, Callable[[], object]], repeat: int, rounds: int = 3, settle: float = 0.2,
              stat: str = "median") -> dict[str, float]:
    """Median (or ``stat="min"``: minimum) seconds per call of each contender over ``rounds``
    blocks of ``repeat`` timed calls, each block after ``settle`` seconds of uncounted calls."""
    for fn in fns.values():
        fn()  # warm up (and compile, for the JITs)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start, k = time.perf_counter(), 0
            while k < 2 or time.perf_counter() - start < settle:
                fn()
                k += 1
            for _ in range(repeat):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    agg = np.min if stat == "min" else np.median
    return {name: float(agg(ts)) for name, ts in times.items()}

"""Timing harness shared by the W3/W4 step benchmarks.

A contender is a function ``make(name, config) -> step | None`` (None: not installed
here) where ``step()`` runs one training step and returns its loss. Each contender is
timed in its own process by default: NumPy's OpenBLAS, SciPy's OpenBLAS (graphc's
BLAS) and XLA each keep a thread pool whose threads spin for a while after a call, so
on a 2-core machine two frameworks in one process mostly measure their pools fighting
(a 0.7 ms step became 30 ms). ``--same-process`` times them side by side anyway.

Within a process, calls are timed in ``rounds`` blocks of ``repeat`` consecutive steps
after a warm-up; the first two calls of each block are not counted; the median is
reported. The first step's loss comes back too, so the caller can check that every
contender computes the same thing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

Maker = Callable[[str, dict], "Callable[[], Any] | None"]


def time_step(step: Callable[[], Any], repeat: int, rounds: int, warmup: int = 3) -> dict[str, float]:
    first = float(np.asarray(step()))
    for _ in range(warmup):
        step()
    times = []
    for _ in range(rounds):
        for k in range(repeat + 2):
            t0 = time.perf_counter()
            step()
            if k >= 2:
                times.append(time.perf_counter() - t0)
    return {"median": float(np.median(times)), "min": float(np.min(times)), "first_loss": first}


def measure(script: str, make: Maker, names: list[str], config: dict, args: argparse.Namespace) -> dict:
    """``{name: {"median", "min", "first_loss"}}`` for each contender available here."""
    results: dict[str, dict] = {}
    if args.same_process:
        steps = {n: make(n, config) for n in names}
        for n, s in steps.items():
            if s is not None:
                results[n] = time_step(s, args.repeat, args.rounds)
        return results
    for n in names:
        cmd = [sys.executable, script, "--worker", n, "--config", json.dumps(config),
               "--repeat", str(args.repeat), "--rounds", str(args.rounds)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        if proc.returncode != 0:
            print(f"  ({n} failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else '?'})")
            continue
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        if out is not None:
            results[n] = out
    return results


def worker(make: Maker, args: argparse.Namespace) -> None:
    step = make(args.worker, json.loads(args.config))
    print(json.dumps(None if step is None else time_step(step, args.repeat, args.rounds)))


def add_arguments(ap: argparse.ArgumentParser, repeat: int, rounds: int) -> None:
    ap.add_argument("--repeat", type=int, default=repeat, help="timed calls per block")
    ap.add_argument("--rounds", type=int, default=rounds, help="blocks per contender")
    ap.add_argument("--same-process", action="store_true",
                    help="time every contender in this process (BLAS pools then interfere)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)


def check_losses(results: dict, reference: str = "NumPy", rtol: float = 1e-3) -> None:
    if reference not in results:
        return
    want = results[reference]["first_loss"]
    for name, r in results.items():
        if not np.isclose(r["first_loss"], want, rtol=rtol):
            print(f"  (warning: {name}'s first loss {r['first_loss']:.6f} != {reference}'s {want:.6f})")

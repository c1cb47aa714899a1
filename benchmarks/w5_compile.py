"""W5: compile time of the W3 training step, cold (empty compile cache) and warm.

Each measurement runs in a new process, as a user's script would: ``graphc.function``
of the W3 step (784-512-10 MLP, softmax crossentropy, SGD updates) with
``GRAPHC_CACHE_DIR`` pointing at a fresh directory (cold: every kernel is generated,
optimized at O3 and code-generated) or at the directory a previous run filled (warm:
object code is loaded from the cache). Also shown: the import of graphc (llvmlite's
binding is most of it), the graph building and ``grad``, and the rewrite and native
parts of ``graphc.function``; for reference, ``jax.jit``'s first call of the same step
in a new process (JAX has a persistent cache too, off by default; this is its default).

The children keep compiled bytecode in a throw-away ``PYTHONPYCACHEPREFIX`` (filled by
one run first), as an installed package has it; ``--no-bytecode`` runs them as the
environment says (with ``PYTHONDONTWRITEBYTECODE=1`` every process compiles graphc's
sources again, ~20 ms of a warm compile). CPU times (this process, all threads) are
shown too: on a loaded machine they vary less than wall times. ``graphc.function`` keeps
the garbage collector off while it rewrites and compiles, so a new process's first full
collection (~15 ms over everything imported) comes after it, in the caller's code; the
line on full GC passes shows what still falls inside.

    python benchmarks/w5_compile.py [--runs 3] [--no-bytecode]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

_GRAPHC = """
import gc, json, sys, time
gc_time, gc_start = [0.0, 0.0], [0.0]
def _gc(phase, info):  # full collections (the first of a process costs ~15 ms here)
    if info["generation"] == 2:
        if phase == "start":
            gc_start[0] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - gc_start[0]
gc.callbacks.append(_gc)
t0 = time.perf_counter()
import graphc, graphc.tensor as T
from graphc.compile import mode as _mode
t1 = time.perf_counter()
sys.path.insert(0, {here!r})
import w3_mlp
params = w3_mlp.init_params()
import graphc.backend.llvm.executor as ex
times = {{}}
_rewrite, _program = _mode.Mode.rewrite, _mode.Mode.make_program
def rewrite(self, fg):
    t, c = time.perf_counter(), time.process_time(); r = _rewrite(self, fg)
    times["rewrite"], times["rewrite_cpu"] = time.perf_counter() - t, time.process_time() - c
    return r
def make_program(self, fg):
    t, c = time.perf_counter(), time.process_time(); r = _program(self, fg)
    times["native"], times["native_cpu"] = time.perf_counter() - t, time.process_time() - c
    return r
_mode.Mode.rewrite, _mode.Mode.make_program = rewrite, make_program
t2 = time.perf_counter()
gc_time[0] = 0.0
_rw = _mode.Mode.rewrite
def rewrite_gc(self, fg):
    g = gc_time[0]; r = _rw(self, fg); gc_time[1] += gc_time[0] - g; return r
_pg = _mode.Mode.make_program
def program_gc(self, fg):
    g = gc_time[0]; r = _pg(self, fg); gc_time[1] += gc_time[0] - g; return r
_mode.Mode.rewrite, _mode.Mode.make_program = rewrite_gc, program_gc
f = w3_mlp.graphc_step(params)  # builds the graph, grad, graphc.function
t3 = time.perf_counter()
x, y = w3_mlp.data(32)
f(x, y)
prog = f._program
print(json.dumps({{"import": t1 - t0, "step": t3 - t2, **times, "gc": gc_time[1],
                  "from_cache": [m.from_cache for m in prog.modules],
                  "restored": "rewrite cache" in f.rewrite_log[-1],
                  "kernels": len(prog.native_nodes)}}))
"""

_JAX = """
import json, sys, time
t0 = time.perf_counter()
import jax, jax.numpy as jnp
t1 = time.perf_counter()
sys.path.insert(0, {here!r})
import w3_mlp
step = w3_mlp.peers(w3_mlp.init_params())["JAX (jit)"]
x, y = w3_mlp.data(32)
t2 = time.perf_counter()
step(x, y)
t3 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "first_call": t3 - t2}}))
"""


def run(code: str, cache_dir: str, pycache: str | None = None) -> dict:
    env = dict(os.environ, GRAPHC_CACHE_DIR=cache_dir)
    env.pop("GRAPHC_FLAGS", None)
    if pycache:  # compiled bytecode kept (in a throw-away place), as an installed package has
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(HERE), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", code.format(here=HERE)], env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="new processes per measurement (median)")
    ap.add_argument("--no-bytecode", action="store_true",
                    help="as the environment says (PYTHONDONTWRITEBYTECODE=1 makes every new process "
                         "compile graphc's sources again, ~20 ms of the warm time); by default the "
                         "children keep bytecode in a throw-away PYTHONPYCACHEPREFIX, as an installed "
                         "package does")
    args = ap.parse_args()
    pycache = None if args.no_bytecode else tempfile.mkdtemp(prefix="graphc-w5-pyc-")
    cold, warm = [], []
    try:
        if pycache:  # fill the bytecode cache once (a whole compile imports every module used)
            d = tempfile.mkdtemp(prefix="graphc-w5-")
            run(_GRAPHC, d, pycache)
            shutil.rmtree(d, ignore_errors=True)
        for _ in range(args.runs):
            d = tempfile.mkdtemp(prefix="graphc-w5-")
            try:
                c = run(_GRAPHC, d, pycache)
                assert not any(c["from_cache"]), c
                cold.append(c)
                w = run(_GRAPHC, d, pycache)
                assert all(w["from_cache"]), w
                warm.append(w)
            finally:
                shutil.rmtree(d, ignore_errors=True)
    finally:
        if pycache:
            shutil.rmtree(pycache, ignore_errors=True)

    def med(rows: list[dict], key: str) -> float:
        return float(np.median([r[key] for r in rows]))

    print(f"W5: compile time of the W3 step (784-512-10 MLP + SGD), new process each, "
          f"median of {args.runs}   (ms; {'no bytecode cache' if args.no_bytecode else 'bytecode cached'})")
    print(f"  {'':<26}{'graphc.function':>16}{'(rewrite':>10}{'native)':>9}{'graph+grad':>12}{'import':>9}")
    for label, rows in (("cold (empty cache)", cold), ("warm (cache filled)", warm)):
        fn = med(rows, "rewrite") + med(rows, "native")
        print(f"  {label:<26}{fn * 1e3:>16.0f}{med(rows, 'rewrite') * 1e3:>10.0f}"
              f"{med(rows, 'native') * 1e3:>9.0f}{(med(rows, 'step') - fn) * 1e3:>12.0f}"
              f"{med(rows, 'import') * 1e3:>9.0f}")
    total_cold = med(cold, "rewrite") + med(cold, "native")
    total_warm = med(warm, "rewrite") + med(warm, "native")
    for label, rows in (("  cold, CPU time", cold), ("  warm, CPU time", warm)):
        cpu = med(rows, "rewrite_cpu") + med(rows, "native_cpu")
        print(f"{label:<28}{cpu * 1e3:>16.0f}{med(rows, 'rewrite_cpu') * 1e3:>10.0f}"
              f"{med(rows, 'native_cpu') * 1e3:>9.0f}   (this process's CPU: less sensitive to load)")
    print(f"  warm: rewrites restored from the rewrite cache in {sum(r['restored'] for r in warm)} "
          f"of {len(warm)} runs")
    print(f"  inside graphc.function, full GC passes took {med(cold, 'gc') * 1e3:.0f} ms cold, "
          f"{med(warm, 'gc') * 1e3:.0f} ms warm (a new process's first full collection falls there)")
    print(f"  cold / warm: {med(cold, 'native') / med(warm, 'native'):.0f}x for the native part, "
          f"{total_cold / total_warm:.1f}x for graphc.function ({cold[0]['kernels']} native kernels)")
    try:
        jx = [run(_JAX, tempfile.gettempdir()) for _ in range(args.runs)]
        print(f"  {'JAX: jit + first call':<26}{med(jx, 'first_call') * 1e3:>16.0f}"
              f"{'':>19}{'':>12}{med(jx, 'import') * 1e3:>9.0f}")
    except RuntimeError:
        pass  # JAX not installed


if __name__ == "__main__":
    main()

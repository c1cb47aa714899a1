"""W1: ``exp(x)*y + tanh(z)`` on float32 vectors of 1e6 and 1e7 elements.

graphc (one fused native kernel) against NumPy (plain, and with preallocated
``out=`` buffers) and, when installed, PyTensor, JAX (jit) and PyTorch. Times
are medians of repeated calls in this process; ratios are NumPy's time over
each contender's (above 1: faster than NumPy).

graphc also runs as compiled with one thread (GRAPHC_THREADS=1) and with its
threads started through a Python thread pool instead of the native one
(graphc.backend.llvm.parallel); these three are timed in alternating blocks,
so load from other processes hits them alike.

    python benchmarks/w1_elemwise.py [--sizes 1e6,1e7] [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from timing import in_blocks  # noqa: E402 -- benchmarks/timing.py, beside this script


def timeit(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up (and compile, for the JITs)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def numpy_plain(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> Callable[[], object]:
    return lambda: np.exp(x) * y + np.tanh(z)


def numpy_out(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> Callable[[], object]:
    a, b = np.empty_like(x), np.empty_like(x)

    def run() -> np.ndarray:
        np.exp(x, out=a)
        np.multiply(a, y, out=a)
        np.tanh(z, out=b)
        return np.add(a, b, out=a)

    return run


def graphc_fn(x: np.ndarray, y: np.ndarray, z: np.ndarray,
              threads: str | None = None) -> tuple[Callable[[], object], float]:
    """The graphc function (compiled with GRAPHC_THREADS=``threads`` when given) and its
    compile time."""
    import graphc
    import graphc.tensor as T

    vx, vy, vz = T.fvector("x"), T.fvector("y"), T.fvector("z")
    old = os.environ.get("GRAPHC_THREADS")
    if threads is not None:
        os.environ["GRAPHC_THREADS"] = threads
    try:
        t0 = time.perf_counter()
        f = graphc.function([vx, vy, vz], T.exp(vx) * vy + T.tanh(vz))
        compile_s = time.perf_counter() - t0
    finally:
        if old is None:
            os.environ.pop("GRAPHC_THREADS", None)
        else:
            os.environ["GRAPHC_THREADS"] = old
    np.testing.assert_allclose(f(x[:1000], y[:1000], z[:1000]),
                               np.exp(x[:1000]) * y[:1000] + np.tanh(z[:1000]), rtol=1e-5, atol=1e-6)
    return (lambda: f(x, y, z)), compile_s


def graphc_variants(x: np.ndarray, y: np.ndarray,
                    z: np.ndarray) -> tuple[dict[str, Callable[[], object]], float]:
    """graphc as by default, on one thread, and with the Python thread pool."""
    from graphc.backend.llvm import parallel

    g, compile_s = graphc_fn(x, y, z)
    f1, _ = graphc_fn(x, y, z, "1")
    gp, _ = graphc_fn(x, y, z)  # a function of its own: a plan records which pool it uses

    def g1() -> object:
        # GRAPHC_THREADS=1 during each call too: the call recording a plan makes its gates again.
        old = os.environ.get("GRAPHC_THREADS")
        os.environ["GRAPHC_THREADS"] = "1"
        try:
            return f1()
        finally:
            if old is None:
                os.environ.pop("GRAPHC_THREADS", None)
            else:
                os.environ["GRAPHC_THREADS"] = old

    def python_pool() -> object:
        parallel.ENABLED = False
        try:
            return gp()
        finally:
            parallel.ENABLED = True

    return {"graphc": g, "graphc (1 thread)": g1, "graphc (Py pool)": python_pool}, compile_s


def peers(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> dict[str, Callable[[], object]]:
    found: dict[str, Callable[[], object]] = {}
    try:
        import pytensor
        import pytensor.tensor as pt

        a, b, c = pt.fvector(), pt.fvector(), pt.fvector()
        f = pytensor.function([a, b, c], pt.exp(a) * b + pt.tanh(c))
        found["PyTensor"] = lambda: f(x, y, z)
    except Exception:  # not installed or not working here
        pass
    try:
        import jax
        import jax.numpy as jnp

        g = jax.jit(lambda a, b, c: jnp.exp(a) * b + jnp.tanh(c))
        jx, jy, jz = (jax.device_put(v) for v in (x, y, z))
        found["JAX (jit)"] = lambda: g(jx, jy, jz).block_until_ready()
    except Exception:
        pass
    try:
        import torch

        tx, ty, tz = (torch.from_numpy(v) for v in (x, y, z))
        found["PyTorch"] = lambda: torch.exp(tx) * ty + torch.tanh(tz)
    except Exception:
        pass
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e6,1e7")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print("W1: exp(x)*y + tanh(z), float32   (median ms; ratio = NumPy time / time)")
    print(f"{'size':>10}  {'contender':<18}{'ms':>8}{'vs NumPy':>10}")
    for size in (int(float(s)) for s in args.sizes.split(",")):
        x, y, z = (rng.standard_normal(size).astype("float32") for _ in range(3))
        variants, compile_s = graphc_variants(x, y, z)
        rows = {"NumPy": numpy_plain(x, y, z), "NumPy (out=)": numpy_out(x, y, z), **variants}
        rows.update(peers(x, y, z))
        base = timeit(rows["NumPy"], args.repeat)
        measured = in_blocks(variants, max(1, args.repeat // 3))
        for name, fn in rows.items():
            t = base if name == "NumPy" else measured[name] if name in measured else timeit(fn, args.repeat)
            print(f"{size:>10.0e}  {name:<18}{t * 1e3:>8.2f}{base / t:>9.2f}x")
        print(f"{'':>10}  (graphc compile: {compile_s * 1e3:.0f} ms)")


if __name__ == "__main__":
    main()

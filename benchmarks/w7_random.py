"""W7: random numbers, float32: uniform, normal and a Bernoulli(p) mask.

graphc (a compiled function drawing from a RandomStream: native Philox4x64-10
kernels, the stream state advanced per call) against NumPy's Generator (its
default PCG64, and Philox, graphc's bit generator) and, when installed, JAX
(jit, a fixed key) and PyTorch. Times are medians of repeated calls in this
process; ratios are NumPy's (PCG64) time over each contender's.

    python benchmarks/w7_random.py [--sizes 256,1e6,1e7] [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DISTS = ("uniform", "normal", "bernoulli(0.3)")


def timeit(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up (and compile, for the JITs)
    number = 1
    while True:  # small sizes: time batches of calls
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - t0 > 2e-3 or number >= 1 << 14:
            break
        number *= 4
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return float(np.median(times))


def numpy_fns(size: int, bitgen: str) -> dict[str, Callable[[], object]]:
    g = np.random.Generator(np.random.PCG64(0) if bitgen == "PCG64" else np.random.Philox(0))
    return {"uniform": lambda: g.random(size, dtype=np.float32),
            "normal": lambda: g.standard_normal(size, dtype=np.float32),
            "bernoulli(0.3)": lambda: (g.random(size, dtype=np.float32) < 0.3).astype(np.float32)}


def graphc_fns(size: int) -> tuple[dict[str, Callable[[], object]], float]:
    import graphc
    import graphc.tensor as T

    srng = T.random.RandomStream(0)
    outs = {"uniform": srng.uniform((size,)), "normal": srng.normal((size,)),
            "bernoulli(0.3)": srng.binomial((size,), p=0.3, dtype="float32")}
    t0 = time.perf_counter()
    fns = {k: graphc.function([], v) for k, v in outs.items()}
    compile_s = time.perf_counter() - t0
    for f in fns.values():
        native = [str(n.op) for n, _ in f.native_kernels()]
        assert any("RandomVariable" in s for s in native), f"not native: {native}"
    return fns, compile_s


def peers(size: int) -> dict[str, dict[str, Callable[[], object]]]:
    found: dict[str, dict[str, Callable[[], object]]] = {}
    try:
        import jax
        import jax.numpy as jnp

        key = jax.random.PRNGKey(0)
        u = jax.jit(lambda k: jax.random.uniform(k, (size,), jnp.float32))
        n = jax.jit(lambda k: jax.random.normal(k, (size,), jnp.float32))
        b = jax.jit(lambda k: jax.random.bernoulli(k, 0.3, (size,)).astype(jnp.float32))
        found["JAX (jit)"] = {"uniform": lambda: u(key).block_until_ready(),
                              "normal": lambda: n(key).block_until_ready(),
                              "bernoulli(0.3)": lambda: b(key).block_until_ready()}
    except Exception:  # not installed or not working here
        pass
    try:
        import torch

        gen = torch.Generator().manual_seed(0)
        found["PyTorch"] = {
            "uniform": lambda: torch.rand(size, generator=gen),
            "normal": lambda: torch.randn(size, generator=gen),
            "bernoulli(0.3)": lambda: torch.bernoulli(torch.full((size,), 0.3), generator=gen)}
    except Exception:
        pass
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="256,1e6,1e7")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    print("W7: random float32 samples   (median ms; ratio = NumPy (PCG64) time / time)")
    print(f"{'size':>10}  {'dist':<15}{'contender':<16}{'ms':>10}{'vs NumPy':>10}")
    for size in (int(float(s)) for s in args.sizes.split(",")):
        g, compile_s = graphc_fns(size)
        rows = {"NumPy (PCG64)": numpy_fns(size, "PCG64"), "NumPy (Philox)": numpy_fns(size, "Philox"),
                "graphc": g}
        rows.update(peers(size))
        for dist in DISTS:
            base = timeit(rows["NumPy (PCG64)"][dist], args.repeat)
            for name, fns in rows.items():
                t = base if name == "NumPy (PCG64)" else timeit(fns[dist], args.repeat)
                print(f"{size:>10g}  {dist:<15}{name:<16}{t * 1e3:>10.3f}{base / t:>9.2f}x")
        print(f"{'':>10}  (graphc compile of the three functions: {compile_s * 1e3:.0f} ms)")


if __name__ == "__main__":
    main()

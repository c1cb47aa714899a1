"""W2: float32 matrix product ``x @ y`` of square matrices, 256 to 2048.

graphc (``T.dot`` compiled: native code calling BLAS sgemm) against NumPy and, when
installed, PyTensor, JAX (jit) and PyTorch. Contenders are timed in blocks of
consecutive calls, alternating over rounds (see ``in_blocks``); the table shows medians,
GFLOP/s and the ratio NumPy time / time (above 1: faster than NumPy). Run it on a quiet
machine: BLAS uses every core, so any other load distorts all ratios.

    python benchmarks/w2_matmul.py [--sizes 256,512,1024,2048] [--repeat 15]
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


def graphc_fn(x: np.ndarray, y: np.ndarray) -> tuple[Callable[[], object], float]:
    import graphc
    import graphc.tensor as T

    a, b = T.fmatrix("a"), T.fmatrix("b")
    t0 = time.perf_counter()
    f = graphc.function([a, b], T.dot(a, b))
    compile_s = time.perf_counter() - t0
    native = {type(n.op).__name__ for n in f._program.native_nodes}
    if "Dot" not in native:
        print("  (warning: graphc's dot is not native here: SciPy's BLAS unavailable?)")
    np.testing.assert_allclose(f(x[:64], y), x[:64] @ y, rtol=1e-4, atol=1e-3)
    return (lambda: f(x, y)), compile_s


def peers(x: np.ndarray, y: np.ndarray) -> dict[str, Callable[[], object]]:
    found: dict[str, Callable[[], object]] = {}
    try:
        import pytensor
        import pytensor.tensor as pt

        a, b = pt.fmatrix(), pt.fmatrix()
        f = pytensor.function([a, b], pt.dot(a, b))
        found["PyTensor"] = lambda: f(x, y)
    except Exception:  # not installed or not working here
        pass
    try:
        import jax
        import jax.numpy as jnp

        g = jax.jit(jnp.matmul)
        jx, jy = jax.device_put(x), jax.device_put(y)
        found["JAX (jit)"] = lambda: g(jx, jy).block_until_ready()
    except Exception:
        pass
    try:
        import torch

        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        found["PyTorch"] = lambda: torch.matmul(tx, ty)
    except Exception:
        pass
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="256,512,1024,2048")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print("W2: float32 matmul n x n @ n x n   (median ms; ratio = NumPy time / time)")
    print(f"{'n':>6}  {'contender':<12}{'ms':>10}{'GFLOP/s':>10}{'vs NumPy':>10}")
    for n in (int(s) for s in args.sizes.split(",")):
        x, y = (rng.standard_normal((n, n)).astype("float32") for _ in range(2))
        g, compile_s = graphc_fn(x, y)
        rows = {"NumPy": lambda x=x, y=y: x @ y, "graphc": g}
        rows.update(peers(x, y))
        repeat = args.repeat if n <= 1024 else max(3, args.repeat // 4)
        t = in_blocks(rows, repeat)
        flop = 2.0 * n ** 3
        for name, s in t.items():
            print(f"{n:>6}  {name:<12}{s * 1e3:>10.2f}{flop / s / 1e9:>10.1f}{t['NumPy'] / s:>9.2f}x")
        print(f"{'':>6}  (graphc compile: {compile_s * 1e3:.0f} ms)")


if __name__ == "__main__":
    main()

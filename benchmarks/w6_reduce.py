"""W6: reductions (sum, max, argmax, mean) and vector math (sin, cos, pow), float32.

Reductions over 1e6 and 1e7 elements (full) and over axis 1 of a (1000, 10000)
matrix; sin/cos/pow over 1e6 and 1e7 elements. graphc (threaded as by default,
and on one thread) against NumPy and, when installed, JAX (jit). Times are medians
of repeated calls in this process, the contenders of a case timed in alternating
blocks; ratios are NumPy's time over each contender's (above 1: faster than NumPy).

    python benchmarks/w6_reduce.py [--sizes 1e6,1e7] [--repeat 15] [--only sum,sin] [--stat min]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from timing import in_blocks  # noqa: E402 -- benchmarks/timing.py, beside this script

Fn = Callable[[], object]


def graphc_pair(build: Callable[..., object], inputs: list[object],
                args: list[np.ndarray]) -> tuple[Fn, Fn]:
    """The graphc function as by default, and a second one compiled and always run with
    GRAPHC_THREADS=1 and reduce_threads.THREADS = 1 (one thread)."""
    import graphc
    from graphc.backend.llvm import reduce_threads

    out = build(*inputs)
    f = graphc.function(inputs, out)

    def single(call: Callable[[], object]) -> object:
        old_env, old_threads = os.environ.get("GRAPHC_THREADS"), reduce_threads.THREADS
        os.environ["GRAPHC_THREADS"] = "1"
        reduce_threads.THREADS = 1
        try:
            return call()
        finally:
            reduce_threads.THREADS = old_threads
            if old_env is None:
                os.environ.pop("GRAPHC_THREADS", None)
            else:
                os.environ["GRAPHC_THREADS"] = old_env

    f1 = single(lambda: graphc.function(inputs, out))
    return (lambda: f(*args)), (lambda: single(lambda: f1(*args)))


def jax_fn(fn: Callable[..., object] | None, args: list[np.ndarray]) -> Fn | None:
    if fn is None:
        return None
    try:
        import jax

        g = jax.jit(fn)
        dev = [jax.device_put(a) for a in args]
        return lambda: g(*dev).block_until_ready()
    except Exception:  # not installed or not working here
        return None


def cases(sizes: list[int], rng: np.random.Generator) -> list[tuple[str, list[np.ndarray], Callable, Callable,
                                                                     Callable | None]]:
    """(label, arrays, graphc builder on symbolic inputs, NumPy function, JAX function)."""
    import graphc.tensor as T

    try:
        import jax.numpy as jnp
    except Exception:
        jnp = None
    j = (lambda f: f) if jnp is not None else (lambda f: None)
    out = []
    reds = [("sum", T.sum, np.sum, "sum"), ("max", T.max, np.max, "max"),
            ("argmax", T.argmax, np.argmax, "argmax"), ("mean", T.mean, np.mean, "mean")]
    for name, gfn, nfn, jname in reds:
        for n in sizes:
            v = rng.standard_normal(n).astype("float32")
            out.append((f"{name} full {n:.0e}", [v], lambda x, g=gfn: g(x), nfn,
                        j(lambda x, jn=jname: getattr(jnp, jn)(x))))
        m = rng.standard_normal((1000, 10000)).astype("float32")
        out.append((f"{name} axis=1 1000x10000", [m], lambda x, g=gfn: g(x, axis=1),
                    lambda a, f=nfn: f(a, axis=1), j(lambda x, jn=jname: getattr(jnp, jn)(x, axis=1))))
    for name, gfn, nfn in (("sin", T.sin, np.sin), ("cos", T.cos, np.cos)):
        for n in sizes:
            v = (rng.standard_normal(n) * 10).astype("float32")
            out.append((f"{name} {n:.0e}", [v], gfn, nfn, j(lambda x, nm=name: getattr(jnp, nm)(x))))
    for n in sizes:
        x = rng.uniform(0.01, 10, n).astype("float32")
        y = rng.uniform(-3, 3, n).astype("float32")
        out.append((f"pow {n:.0e}", [x, y], T.pow, np.power, j(lambda a, b: jnp.power(a, b))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e6,1e7")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--only", default="", help="comma-separated case name prefixes (sum,max,...)")
    ap.add_argument("--stat", choices=["median", "min"], default="median",
                    help="min: best call of each contender (less sensitive to a busy machine)")
    args = ap.parse_args()
    import graphc.tensor as T

    sizes = [int(float(s)) for s in args.sizes.split(",")]
    only = [p for p in args.only.split(",") if p]
    rng = np.random.default_rng(0)
    print(f"W6: reductions and vector math, float32   ({args.stat} ms; ratio = NumPy time / time)")
    print(f"{'case':<26}{'NumPy':>9}{'graphc':>9}{'ratio':>8}{'1 thread':>10}{'ratio':>8}"
          f"{'JAX':>9}{'ratio':>8}")
    for label, arrays, build, nfn, jfn in cases(sizes, rng):
        if only and not any(label.startswith(p) for p in only):
            continue
        inputs = [T.tensor("float32", (None,) * a.ndim, name=f"x{i}") for i, a in enumerate(arrays)]
        g, g1 = graphc_pair(build, inputs, arrays)
        got, want = np.asarray(g()), np.asarray(nfn(*arrays))
        if got.dtype.kind == "f":
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        else:
            np.testing.assert_array_equal(got, want)
        fns: dict[str, Fn] = {"NumPy": lambda a=arrays, f=nfn: f(*a), "graphc": g, "graphc 1T": g1}
        jx = jax_fn(jfn, arrays)
        if jx is not None:
            fns["JAX"] = jx
        t = in_blocks(fns, max(1, args.repeat // 3), stat=args.stat)
        base = t["NumPy"]
        row = f"{label:<26}{base * 1e3:>9.3f}"
        for k in ("graphc", "graphc 1T", "JAX"):
            if k in t:
                row += f"{t[k] * 1e3:>{9 if k != 'graphc 1T' else 10}.3f}{base / t[k]:>7.2f}x"
        print(row, flush=True)


if __name__ == "__main__":
    main()

"""W3: one SGD training step of an MLP 784-512-10 (relu, softmax crossentropy), float32.

The step (forward, loss, gradients, parameter update) at batch 32 and 256: graphc (one
compiled function with ``updates``) against a hand-written NumPy step and, when
installed, JAX (``jax.jit`` with donated parameters), PyTorch (eager autograd) and
PyTensor (a function with updates). Every contender starts from the same parameters
and data and must compute the same first loss. Each contender runs in its own process
(BLAS thread pools of different frameworks fight otherwise: see w3_w4_harness.py);
the table shows the median ms per step, NumPy time / time, and time / graphc time.

    python benchmarks/w3_mlp.py [--batches 32,256] [--repeat 30] [--rounds 5] [--same-process]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import w3_w4_harness as harness  # noqa: E402

SIZES = (784, 512, 10)
LR = 0.01


def init_params(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    n_in, n_hid, n_out = SIZES
    return [(rng.standard_normal((n_in, n_hid)) * np.sqrt(2 / n_in)).astype("float32"),
            np.zeros(n_hid, "float32"),
            (rng.standard_normal((n_hid, n_out)) * np.sqrt(1 / n_hid)).astype("float32"),
            np.zeros(n_out, "float32")]


def data(batch: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((batch, SIZES[0]), dtype="float32"), rng.integers(0, SIZES[2], batch).astype("int32")


def graphc_step(params: list[np.ndarray]) -> Callable[[np.ndarray, np.ndarray], object]:
    """The W3 step as one graphc function (also what W5 compiles)."""
    import graphc
    import graphc.tensor as T

    shared = [graphc.shared(p.copy(), name=n) for p, n in zip(params, ["W1", "b1", "W2", "b2"])]
    w1, b1, w2, b2 = shared
    x, y = T.fmatrix("x"), T.ivector("y")
    h = T.nnet.relu(T.dot(x, w1) + b1)
    p = T.nnet.softmax(T.dot(h, w2) + b2)
    loss = T.nnet.categorical_crossentropy(p, y).mean()
    grads = graphc.grad(loss, shared)
    return graphc.function([x, y], loss, updates=[(s, s - LR * g) for s, g in zip(shared, grads)],
                           name="w3_step")


def numpy_step(params: list[np.ndarray]) -> Callable[[np.ndarray, np.ndarray], object]:
    """A careful hand-written NumPy step (in-place updates, fused where NumPy allows)."""
    ps = [p.copy() for p in params]

    def step(x: np.ndarray, y: np.ndarray) -> np.floating:
        w1, b1, w2, b2 = ps
        n = x.shape[0]
        pre = x @ w1
        pre += b1
        h = np.maximum(pre, 0)
        z = h @ w2
        z += b2
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        loss = np.mean(np.log(s[:, 0]) - z[rows, y])
        dz = e / s
        dz[rows, y] -= 1
        dz /= n
        gw2 = h.T @ dz
        gb2 = dz.sum(axis=0)
        dh = dz @ w2.T
        dh *= pre > 0
        gw1 = x.T @ dh
        gb1 = dh.sum(axis=0)
        for p, g in zip(ps, (gw1, gb1, gw2, gb2)):
            g *= LR
            p -= g
        return loss

    return step


def peers(params: list[np.ndarray]) -> dict[str, Callable[[np.ndarray, np.ndarray], object]]:
    found: dict[str, Callable[[np.ndarray, np.ndarray], object]] = {}
    try:
        import jax
        import jax.numpy as jnp

        def loss_fn(ps: list, x: jax.Array, y: jax.Array) -> jax.Array:
            w1, b1, w2, b2 = ps
            h = jax.nn.relu(x @ w1 + b1)
            logp = jax.nn.log_softmax(h @ w2 + b2)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

        def jstep(ps: list, x: jax.Array, y: jax.Array) -> tuple[list, jax.Array]:
            loss, gs = jax.value_and_grad(loss_fn)(ps, x, y)
            return [p - LR * g for p, g in zip(ps, gs)], loss

        jstep = jax.jit(jstep, donate_argnums=0)  # donated: parameters updated in place
        state = [jax.device_put(p) for p in params]

        def run_jax(x: np.ndarray, y: np.ndarray) -> object:
            new, loss = jstep(state, x, y)
            state[:] = new
            return loss.block_until_ready()

        found["JAX (jit)"] = run_jax
    except Exception:  # not installed or not working here
        pass
    try:
        import torch

        tp = [torch.from_numpy(p.copy()).requires_grad_() for p in params]

        def run_torch(x: np.ndarray, y: np.ndarray) -> object:
            w1, b1, w2, b2 = tp
            tx, ty = torch.from_numpy(x), torch.from_numpy(y).long()
            h = torch.relu(tx @ w1 + b1)
            loss = torch.nn.functional.cross_entropy(h @ w2 + b2, ty)
            for p in tp:
                p.grad = None
            loss.backward()
            with torch.no_grad():
                for p in tp:
                    p -= LR * p.grad
            return loss.item()

        found["PyTorch"] = run_torch
    except Exception:
        pass
    try:
        import pytensor
        import pytensor.tensor as pt

        sh = [pytensor.shared(p.copy()) for p in params]
        w1, b1, w2, b2 = sh
        x, y = pt.fmatrix(), pt.ivector()
        p = pt.special.softmax(pt.dot(pt.maximum(pt.dot(x, w1) + b1, 0), w2) + b2, axis=-1)
        loss = -pt.mean(pt.log(p[pt.arange(y.shape[0]), y]))
        gs = pytensor.grad(loss, sh)
        found["PyTensor"] = pytensor.function([x, y], loss, updates=[(s, s - LR * g) for s, g in zip(sh, gs)])
    except Exception:
        pass
    return found


CONTENDERS = ["NumPy", "graphc", "JAX (jit)", "PyTorch", "PyTensor"]


def make(name: str, config: dict) -> Callable[[], object] | None:
    """One contender's step on the batch ``config["batch"]`` (None if not installed)."""
    params = init_params()
    x, y = data(config["batch"])
    if name == "NumPy":
        step = numpy_step(params)
    elif name == "graphc":
        step = graphc_step(params)
    else:
        step = peers(params).get(name)
        if step is None:
            return None
    return lambda: step(x, y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="32,256")
    harness.add_arguments(ap, repeat=30, rounds=5)
    args = ap.parse_args()
    if args.worker:
        return harness.worker(make, args)
    print("W3: MLP 784-512-10 SGD train step, float32   (median ms per step)")
    print(f"{'batch':>6}  {'contender':<12}{'ms':>9}{'vs NumPy':>10}{'graphc faster by':>18}")
    for batch in (int(b) for b in args.batches.split(",")):
        res = harness.measure(os.path.abspath(__file__), make, CONTENDERS, {"batch": batch}, args)
        harness.check_losses(res)
        base, ours = res["NumPy"]["median"], res["graphc"]["median"]
        for name, r in res.items():
            t = r["median"]
            print(f"{batch:>6}  {name:<12}{t * 1e3:>9.3f}{base / t:>9.2f}x{t / ours:>17.2f}x")
    return None


if __name__ == "__main__":
    main()

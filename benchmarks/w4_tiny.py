"""W4: per-step time of a tiny network, where per-call overhead is everything.

An MLP 10-16-8-4-1 (relu, relu, relu, sigmoid), binary crossentropy, Adam, batch 16,
float32: graphc (one compiled function with ``updates``) against a hand-written NumPy
step and, when installed, JAX (``jax.jit``, donated state), PyTorch (eager autograd +
``torch.optim.Adam``) and PyTensor (a function with updates, its default mode). Every
contender starts from the same parameters and data and must compute the same first
loss. Each contender runs in its own process (see w3_w4_harness.py); the table shows
the median microseconds per step, NumPy time / time, and time / graphc time.

    python benchmarks/w4_tiny.py [--repeat 2000] [--rounds 5] [--same-process]
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

SIZES = (10, 16, 8, 4, 1)
BATCH = 16
LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-7


def init_params(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        params.append((rng.standard_normal((n_in, n_out)) * np.sqrt(2 / n_in)).astype("float32"))
        params.append(np.zeros(n_out, "float32"))
    return params


def data(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, SIZES[0])).astype("float32")
    return x, (rng.random((BATCH, 1)) > 0.5).astype("float32")


def graphc_step(params: list[np.ndarray]) -> Callable[[np.ndarray, np.ndarray], object]:
    import graphc
    import graphc.tensor as T

    shared = [graphc.shared(p.copy()) for p in params]
    x, y = T.fmatrix("x"), T.fmatrix("y")
    h = x
    for k in range(len(SIZES) - 1):
        h = T.dot(h, shared[2 * k]) + shared[2 * k + 1]
        h = T.nnet.relu(h) if k < len(SIZES) - 2 else T.nnet.sigmoid(h)
    loss = T.nnet.binary_crossentropy(h, y).mean()
    grads = graphc.grad(loss, shared)
    t = graphc.shared(np.float32(0), name="t")
    t1 = t + 1
    lr_t = LR * T.sqrt(1 - B2 ** t1) / (1 - B1 ** t1)
    updates = [(t, t1)]
    for p, g in zip(shared, grads):
        m = graphc.shared(np.zeros_like(p.get_value()))
        v = graphc.shared(np.zeros_like(p.get_value()))
        m1 = B1 * m + (1 - B1) * g
        v1 = B2 * v + (1 - B2) * T.sqr(g)
        updates += [(m, m1), (v, v1), (p, p - lr_t * m1 / (T.sqrt(v1) + EPS))]
    return graphc.function([x, y], loss, updates=updates, name="w4_step")


def numpy_step(params: list[np.ndarray]) -> Callable[[np.ndarray, np.ndarray], object]:
    ps = [p.copy() for p in params]
    ms = [np.zeros_like(p) for p in ps]
    vs = [np.zeros_like(p) for p in ps]
    t = [0]
    n_layers = len(SIZES) - 1

    def step(x: np.ndarray, y: np.ndarray) -> np.floating:
        acts, pres = [x], []
        for k in range(n_layers):
            z = acts[-1] @ ps[2 * k] + ps[2 * k + 1]
            pres.append(z)
            acts.append(np.maximum(z, 0) if k < n_layers - 1 else z)
        z = acts[-1]  # logits of the sigmoid output: the loss in its stable form
        loss = np.mean(np.logaddexp(0, z) - y * z)
        dz = (1 / (1 + np.exp(-z)) - y) / x.shape[0]
        grads = [None] * len(ps)
        for k in reversed(range(n_layers)):
            if k < n_layers - 1:
                dz = dz * (pres[k] > 0)
            grads[2 * k] = acts[k].T @ dz
            grads[2 * k + 1] = dz.sum(axis=0)
            if k:
                dz = dz @ ps[2 * k].T
        t[0] += 1
        lr_t = LR * np.sqrt(1 - B2 ** t[0]) / (1 - B1 ** t[0])
        for p, g, m, v in zip(ps, grads, ms, vs):
            m *= B1
            m += (1 - B1) * g
            v *= B2
            v += (1 - B2) * g * g
            p -= (lr_t * m / (np.sqrt(v) + EPS)).astype(p.dtype)
        return loss

    return step


def peer_step(name: str, params: list[np.ndarray]) -> Callable[[np.ndarray, np.ndarray], object] | None:
    try:
        if name == "JAX (jit)":
            import jax
            import jax.numpy as jnp

            def loss_fn(ps: list, x: jax.Array, y: jax.Array) -> jax.Array:
                h = x
                for k in range(len(SIZES) - 1):
                    h = h @ ps[2 * k] + ps[2 * k + 1]
                    if k < len(SIZES) - 2:
                        h = jax.nn.relu(h)
                return jnp.mean(jax.nn.softplus(h) - y * h)

            def jstep(state: tuple, x: jax.Array, y: jax.Array) -> tuple[tuple, jax.Array]:
                ps, ms, vs, t = state
                loss, gs = jax.value_and_grad(loss_fn)(ps, x, y)
                t = t + 1
                lr_t = LR * jnp.sqrt(1 - B2 ** t) / (1 - B1 ** t)
                ms = [B1 * m + (1 - B1) * g for m, g in zip(ms, gs)]
                vs = [B2 * v + (1 - B2) * g * g for v, g in zip(vs, gs)]
                ps = [p - lr_t * m / (jnp.sqrt(v) + EPS) for p, m, v in zip(ps, ms, vs)]
                return (ps, ms, vs, t), loss

            jstep = jax.jit(jstep, donate_argnums=0)
            box = [([jnp.asarray(p) for p in params], [jnp.zeros_like(p) for p in params],
                    [jnp.zeros_like(p) for p in params], jnp.float32(0))]

            def run_jax(x: np.ndarray, y: np.ndarray) -> object:
                box[0], loss = jstep(box[0], x, y)
                return loss.block_until_ready()

            return run_jax
        if name == "PyTorch":
            import torch

            torch.set_num_threads(1)  # tiny matrices: threads only add overhead
            tp = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
            opt = torch.optim.Adam(tp, lr=LR, betas=(B1, B2), eps=EPS)

            def run_torch(x: np.ndarray, y: np.ndarray) -> object:
                h = torch.from_numpy(x)
                for k in range(len(SIZES) - 1):
                    h = h @ tp[2 * k] + tp[2 * k + 1]
                    if k < len(SIZES) - 2:
                        h = torch.relu(h)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(h, torch.from_numpy(y))
                opt.zero_grad()
                loss.backward()
                opt.step()
                return loss.item()

            return run_torch
        if name == "PyTensor":
            import pytensor
            import pytensor.tensor as pt

            sh = [pytensor.shared(p.copy()) for p in params]
            x, y = pt.fmatrix(), pt.fmatrix()
            h = x
            for k in range(len(SIZES) - 1):
                h = pt.dot(h, sh[2 * k]) + sh[2 * k + 1]
                h = pt.maximum(h, 0) if k < len(SIZES) - 2 else pt.sigmoid(h)
            loss = pt.mean(-y * pt.log(h) - (1 - y) * pt.log(1 - h))
            gs = pytensor.grad(loss, sh)
            t = pytensor.shared(np.float32(0))
            t1 = t + 1
            lr_t = LR * pt.sqrt(1 - B2 ** t1) / (1 - B1 ** t1)
            updates = [(t, t1)]
            for p, g in zip(sh, gs):
                m = pytensor.shared(np.zeros_like(p.get_value()))
                v = pytensor.shared(np.zeros_like(p.get_value()))
                m1, v1 = B1 * m + (1 - B1) * g, B2 * v + (1 - B2) * g * g
                updates += [(m, m1), (v, v1), (p, (p - lr_t * m1 / (pt.sqrt(v1) + EPS)).astype(p.dtype))]
            return pytensor.function([x, y], loss, updates=updates)
    except ImportError:
        return None
    return None


CONTENDERS = ["NumPy", "graphc", "JAX (jit)", "PyTorch", "PyTensor"]


def make(name: str, config: dict) -> Callable[[], object] | None:
    params = init_params()
    x, y = data()
    if name == "NumPy":
        step = numpy_step(params)
    elif name == "graphc":
        step = graphc_step(params)
    else:
        step = peer_step(name, params)
        if step is None:
            return None
    return lambda: step(x, y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_arguments(ap, repeat=2000, rounds=5)
    args = ap.parse_args()
    if args.worker:
        return harness.worker(make, args)
    res = harness.measure(os.path.abspath(__file__), make, CONTENDERS, {}, args)
    harness.check_losses(res)
    print("W4: MLP 10-16-8-4-1, binary crossentropy, Adam, batch 16, float32   (median us per step)")
    print(f"  {'contender':<12}{'us':>9}{'vs NumPy':>10}{'graphc faster by':>18}")
    base, ours = res["NumPy"]["median"], res["graphc"]["median"]
    for name, r in res.items():
        t = r["median"]
        print(f"  {name:<12}{t * 1e6:>9.1f}{base / t:>9.2f}x{t / ours:>17.2f}x")
    return None


if __name__ == "__main__":
    main()

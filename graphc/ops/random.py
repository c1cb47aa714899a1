"""Random streams (``T.random.RandomStream``): uniform, normal and binomial samples.

Each random variable owns a shared variable holding its stream state, a uint64
array ``[key, counter]``. The random op maps ``(state, size, params)`` to
``(new_state, sample)`` where ``new_state`` is ``[key, counter + 1]`` (wrapping)
and the sample is a pure function of the state, defined here so that a native
backend can compute every element independently (graphc.backend.llvm.random_kernels):

- The raw bits are Philox4x64-10 words with the 128-bit key ``(key, counter)``:
  word ``i`` of *trial stream* ``t`` is word ``i % 4`` of the block with counter
  ``[i // 4 + 1, t, 0, 0]`` (NumPy's ``Philox(key=state, counter=[0, t, 0, 0])``
  ``.random_raw``). ``x_i = word_i >> 11`` is a 53-bit integer.
- uniform: ``low + (high - low) * u`` with ``u = x * 2**-53`` in [0, 1) (stream 0;
  the same numbers as ``Generator(Philox(key=state)).random``).
- normal: Box-Muller on pairs of words: elements ``2j, 2j+1`` use words ``2j, 2j+1``,
  ``u1 = (x_2j + 1) * 2**-53`` in (0, 1], ``u2 = x_2j+1 * 2**-53``; ``r =
  sqrt(-2 log u1)`` and the angle ``2 pi u2`` reduced exactly to a quadrant and
  ``|theta| <= pi/4`` (so sin/cos need no large-argument reduction); the samples are
  ``r cos(2 pi u2)``, ``r sin(2 pi u2)``, then ``avg + std * z``.
- binomial: ``sum over t < n`` of ``u_t < p`` where ``u_t`` is element ``i``'s uniform of
  trial stream ``t``: exact counts (``n = 1`` is one comparison per element, as
  ``uniform < p``); the cost grows with ``n``.

Everything is computed in float64 and then cast to the sample dtype. The state's
``default_update`` is the new state, so every compiled function that uses a sample
advances its stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.config import config
from graphc.graph.basic import Apply, Constant, Variable
from graphc.graph.op import Op, grad_undefined
from graphc.graph.type import TensorType, normalize_dtype
from graphc.ops.elemwise import broadcast_static_shapes
from graphc.ops.registry import register
from graphc.tensor.basic import as_tensor_variable, constant

__all__ = ["RandomStream", "RandomStreams", "RandomVariable", "generator_for_state"]

STATE_TYPE = TensorType("uint64", (2,))


def generator_for_state(state: np.ndarray) -> np.random.Generator:
    """The generator whose ``random()`` draws are the uniform sample for ``state = [key, counter]``."""
    key = np.asarray(state, dtype=np.uint64)
    return np.random.Generator(np.random.Philox(key=key, counter=0))


_U53 = 2.0 ** -53
TWO_PI = 2.0 * np.pi
_ELEVEN = np.uint64(11)


def philox_words(state: np.ndarray, count: int, trial: int = 0) -> np.ndarray:
    """Words ``0..count-1`` of trial stream ``trial`` for ``state`` (see the module doc)."""
    bitgen = np.random.Philox(key=np.asarray(state, dtype=np.uint64),
                              counter=np.array([0, trial, 0, 0], dtype=np.uint64))
    return bitgen.random_raw(count)


def _uniform01(state: np.ndarray, count: int, trial: int = 0) -> np.ndarray:
    return (philox_words(state, count, trial) >> _ELEVEN).astype(np.float64) * _U53


def standard_normal(state: np.ndarray, count: int) -> np.ndarray:
    """``count`` float64 standard normal samples for ``state`` (Box-Muller, module doc)."""
    pairs = (count + 1) // 2
    x = (philox_words(state, 2 * pairs) >> _ELEVEN).astype(np.float64).reshape(pairs, 2)
    u1 = (x[:, 0] + 1.0) * _U53
    u2 = x[:, 1] * _U53
    rad = np.sqrt(-2.0 * np.log(u1))
    quadrant = np.rint(4.0 * u2)
    theta = (u2 - 0.25 * quadrant) * TWO_PI  # exact reduction: |theta| <= pi/4
    s, c = np.sin(theta), np.cos(theta)
    k = quadrant.astype(np.int64) & 3
    z = np.empty((pairs, 2))
    z[:, 0] = rad * np.choose(k, [c, -s, -c, s])
    z[:, 1] = rad * np.choose(k, [s, c, -s, -c])
    return z.reshape(-1)[:count]


def _draw_uniform(state: np.ndarray, size: tuple, low: Any, high: Any) -> np.ndarray:
    return low + (high - low) * _uniform01(state, _count(size)).reshape(size)


def _draw_normal(state: np.ndarray, size: tuple, avg: Any, std: Any) -> np.ndarray:
    return avg + std * standard_normal(state, _count(size)).reshape(size)


def _draw_binomial(state: np.ndarray, size: tuple, n: Any, p: Any) -> np.ndarray:
    n = np.asarray(n)
    if n.dtype.kind == "f":
        if not np.all(np.isfinite(n)):
            raise ValueError("binomial: n must be finite")
        n = np.trunc(n)
    n = n.astype(np.int64)
    if np.any(n < 0):
        raise ValueError("binomial: n must be >= 0")
    count = _count(size)
    counts = np.zeros(size, dtype=np.int64)
    for t in range(int(n.max()) if n.size and count else 0):
        counts += (_uniform01(state, count, t).reshape(size) < p) & (t < n)
    return counts


def _count(size: tuple) -> int:
    return int(np.prod(size, dtype=np.int64))


_DRAWS = {"uniform": _draw_uniform, "normal": _draw_normal, "binomial": _draw_binomial}


class RandomVariable(Op):
    """``(state, size..., *params) -> (new_state, sample)`` for the distribution ``dist``.

    ``size_kind`` says how the sample shape is given: ``'vector'`` (one integer
    vector input, e.g. ``x.shape``), ``'scalars'`` (``ndim`` integer scalar
    inputs) or ``'none'`` (the broadcast shape of the parameters).
    """

    __props__ = ("dist", "dtype", "ndim", "size_kind")

    def __init__(self, dist: str, dtype: str, ndim: int, size_kind: str) -> None:
        if dist not in _DRAWS:
            raise ValueError(f"unknown distribution {dist!r}")
        self.dist, self.dtype, self.ndim, self.size_kind = dist, dtype, ndim, size_kind

    def __str__(self) -> str:
        return f"RandomVariable{{{self.dist}, {self.dtype}}}"

    def _n_size_inputs(self) -> int:
        return {"vector": 1, "scalars": self.ndim, "none": 0}[self.size_kind]

    def make_node(self, state: Any, *rest: Any) -> Apply:
        state = as_tensor_variable(state)
        if state.dtype != "uint64" or state.ndim != 1:
            raise TypeError(f"{self}: the state must be a uint64 vector [key, counter], got {state.type}")
        k = self._n_size_inputs()
        size = [as_tensor_variable(s) for s in rest[:k]]
        params = [as_tensor_variable(p) for p in rest[k:]]
        if len(params) != 2:
            raise TypeError(f"{self}: expected 2 parameters, got {len(params)}")
        for s in size:
            if s.dtype not in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"):
                raise TypeError(f"{self}: size entries must be integers, got {s.type}")
        if self.size_kind == "vector":
            (vec,) = size
            if vec.ndim != 1 or vec.type.shape[0] not in (None, self.ndim):
                raise TypeError(f"{self}: size must be an integer vector of length {self.ndim}")
            shape = _static_vector(vec, self.ndim)
        elif self.size_kind == "scalars":
            if any(s.ndim != 0 for s in size):
                raise TypeError(f"{self}: size entries must be scalars")
            shape = tuple(_static_int(s) for s in size)
        else:
            shape = broadcast_static_shapes(
                [(1,) * (self.ndim - p.ndim) + p.type.shape for p in params], str(self))
        return Apply(self, [state, *size, *params], [STATE_TYPE, TensorType(self.dtype, shape)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        state, *rest = inputs
        k = self._n_size_inputs()
        size_values, (a, b) = rest[:k], rest[k:]
        if self.size_kind == "vector":
            size = tuple(int(s) for s in size_values[0])
            if len(size) != self.ndim:
                raise ValueError(f"{self}: size has {len(size)} entries, expected {self.ndim}")
        elif self.size_kind == "scalars":
            size = tuple(int(s) for s in size_values)
        else:
            size = np.broadcast_shapes(np.shape(a), np.shape(b))
        if any(s < 0 for s in size):
            raise ValueError(f"{self}: negative size {size}")
        if np.broadcast_shapes(np.shape(a), np.shape(b), size) != size:
            raise ValueError(f"{self}: parameters of shapes {np.shape(a)}, {np.shape(b)} do not fit "
                             f"the sample shape {size}")
        if self.dist == "binomial" and not np.all((np.asarray(b) >= 0) & (np.asarray(b) <= 1)):
            raise ValueError(f"{self}: p must lie in [0, 1]")
        state = np.asarray(state, dtype=np.uint64)
        if state.shape != (2,):
            raise ValueError(f"{self}: the state must be [key, counter], got shape {state.shape}")
        sample = _DRAWS[self.dist](state, size, a, b)
        new_state = state + np.array([0, 1], dtype=np.uint64)  # wraps, as the native kernels
        return [new_state, np.asarray(sample).astype(self.dtype, copy=False)]

    def L_op(self, inputs: Sequence[Variable], outputs: Sequence[Variable],
             grads: Sequence[Variable]) -> list[Any]:
        k = 1 + self._n_size_inputs()
        return [None] * k + [
            grad_undefined(self, i, "random samples are not differentiable w.r.t. their parameters")
            for i in range(k, len(inputs))
        ]


def _static_int(v: Variable) -> int | None:
    if isinstance(v, Constant) and v.ndim == 0:
        return int(v.data)
    return None


def _static_vector(v: Variable, ndim: int) -> tuple:
    if isinstance(v, Constant):
        return tuple(int(s) for s in v.data)
    return (None,) * ndim


for _name in _DRAWS:
    register(_name, "random", differentiable=False)


# ---------------------------------------------------------------------------------------
def _size_inputs(size: Any, ndim: int | None) -> tuple[str, int, list[Variable]]:
    """Classify ``size`` as the random op wants it: (size_kind, ndim, inputs)."""
    if size is None:
        return "none", -1, []
    if isinstance(size, int | np.integer):
        size = (size,)
    if isinstance(size, Variable):
        if size.ndim == 0:
            return "scalars", 1, [size]
        if size.ndim != 1:
            raise TypeError(f"size must be a tuple or an integer vector, got a {size.ndim}-d tensor")
        n = size.type.shape[0] if size.type.shape[0] is not None else ndim
        if n is None:
            raise ValueError("size is a symbolic vector of unknown length; pass ndim=...")
        return "vector", n, [size]
    if isinstance(size, np.ndarray):
        size = tuple(size.tolist())
    if not isinstance(size, list | tuple):
        raise TypeError(f"size must be a tuple of ints or symbolic scalars, got {type(size).__name__}")
    entries = []
    for s in size:
        if isinstance(s, Variable):
            entries.append(s)
        elif isinstance(s, int | np.integer):
            entries.append(constant(int(s), dtype="int64"))
        else:
            raise TypeError(f"size entries must be ints or symbolic integer scalars, got {s!r}")
    return "scalars", len(entries), entries


def _param(value: Any, dtype: str) -> Variable:
    if isinstance(value, Variable):
        return value
    return constant(value, dtype=dtype)


class RandomStream:
    """A source of random variables with a seed, like Theano's ``RandomStreams``.

    Each method call makes one random variable with its own stream state (a
    shared variable); functions using it advance that stream on every call.
    Two streams with the same seed produce the same sequences.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.state_updates: list[tuple[Any, Variable]] = []
        self.seed(seed)

    def _key(self, index: int) -> int:
        return int(np.random.SeedSequence([self._seed, index]).generate_state(1, np.uint64)[0])

    def seed(self, seed: int | None = None) -> None:
        """Reseed: every random variable of this stream restarts from the new seed."""
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        self._seed = int(seed)
        for index, (state, _) in enumerate(self.state_updates):
            state.set_value(np.array([self._key(index), 0], dtype=np.uint64))

    def updates(self) -> list[tuple[Any, Variable]]:
        """``(state, new_state)`` pairs (already applied through ``default_update``)."""
        return list(self.state_updates)

    def _make(self, dist: str, size: Any, a: Any, b: Any, ndim: int | None, dtype: str) -> Variable:
        from graphc.compile.shared import shared

        kind, n, size_inputs = _size_inputs(size, ndim)
        param_dtype = "int64" if dist == "binomial" else (dtype if dtype[0] == "f" else "float64")
        a_var = _param(a, param_dtype)
        b_var = _param(b, "float64" if dist == "binomial" else param_dtype)
        if kind == "none":
            n = max(a_var.ndim, b_var.ndim)
        elif max(a_var.ndim, b_var.ndim) > n:
            raise ValueError(f"{dist}: parameters have more dimensions than the size ({n})")
        index = len(self.state_updates)
        state = shared(np.array([self._key(index), 0], dtype=np.uint64), name=f"rng_state_{dist}",
                       shape=(2,))
        new_state, sample = RandomVariable(dist, dtype, n, kind).make_node(
            state, *size_inputs, a_var, b_var).outputs
        state.default_update = new_state
        self.state_updates.append((state, new_state))
        return sample

    def uniform(self, size: Any = None, low: Any = 0.0, high: Any = 1.0, ndim: int | None = None,
                dtype: Any = None) -> Variable:
        """Samples uniform on ``[low, high)``; ``size`` is a tuple or a shape vector."""
        dtype = normalize_dtype(dtype or config.floatX)
        return self._make("uniform", size, low, high, ndim, dtype)

    def normal(self, size: Any = None, avg: Any = 0.0, std: Any = 1.0, ndim: int | None = None,
               dtype: Any = None, loc: Any = None, scale: Any = None) -> Variable:
        """Gaussian samples with mean ``avg`` (or ``loc``) and deviation ``std`` (or ``scale``)."""
        dtype = normalize_dtype(dtype or config.floatX)
        avg = avg if loc is None else loc
        std = std if scale is None else scale
        return self._make("normal", size, avg, std, ndim, dtype)

    def binomial(self, size: Any = None, n: Any = 1, p: Any = 0.5, ndim: int | None = None,
                 dtype: Any = "int64") -> Variable:
        """Number of successes in ``n`` trials of probability ``p`` (``n=1``: Bernoulli)."""
        return self._make("binomial", size, n, p, ndim, normalize_dtype(dtype))


RandomStreams = RandomStream

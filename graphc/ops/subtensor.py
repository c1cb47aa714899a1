"""Indexing: ``x[idx]`` (basic, integer-array and boolean), ``set_subtensor``, ``inc_subtensor``.

An index is stored in the op as a hashable ``idx_list``; the symbolic parts of it
(scalar bounds, index arrays, masks) are the node's inputs after ``x``. Entries:

- ``("n",)``: ``None`` / ``np.newaxis``;  ``("e",)``: ``Ellipsis``
- ``("i", c)``: an integer, ``c`` an int or ``SYM`` (taken from the next input)
- ``("s", start, stop, step)``: a slice, each part None, an int or ``SYM``
- ``("a",)``: an integer index array;  ``("m",)``: a boolean mask (next input)

Ellipsis is kept rather than expanded because, as in NumPy, it separates
integer-array indices (which decides where their broadcast dimensions go).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.graph.basic import Apply, Constant, Variable
from graphc.graph.op import Op
from graphc.graph.type import TensorType
from graphc.ops.elemwise import _harmonize_operands, broadcast_static_shapes, cast, sum_to_shape, zeros_like
from graphc.ops.registry import register
from graphc.tensor.basic import as_tensor_variable, constant

__all__ = ["subtensor", "set_subtensor", "inc_subtensor", "Subtensor", "IncSubtensor"]

SYM = "$"
Entry = tuple


# ---------------------------------------------------------------------------------------
# parsing a Python index into (idx_list, inputs)
def _int_kind(v: Variable) -> bool:
    return v.dtype[0] in "iu"


def _scalar_part(p: Any, inputs: list[Variable], what: str) -> int | str | None:
    if p is None:
        return None
    if isinstance(p, bool | np.bool_):
        raise TypeError(f"{what}: a boolean cannot be used as an integer index")
    if isinstance(p, int | np.integer):
        return int(p)
    v = as_tensor_variable(p)
    if v.ndim != 0 or not _int_kind(v):
        raise TypeError(f"{what}: expected an integer scalar, got {v.type}")
    if isinstance(v, Constant):
        return int(v.data)
    inputs.append(v)
    return SYM


def _array_index(item: Any) -> Variable:
    if isinstance(item, Variable):
        return item
    if isinstance(item, list | tuple) and any(isinstance(e, Variable) for e in item):
        return as_tensor_variable(item)
    arr = np.asarray(item)
    if arr.size == 0 and arr.dtype.kind == "f":
        arr = arr.astype("int64")  # [] means an empty integer index, as in NumPy
    return constant(arr)


def parse_index(idx: Any) -> tuple[tuple[Entry, ...], list[Variable]]:
    """Split a Python index into the op's hashable ``idx_list`` and its symbolic inputs."""
    items = idx if isinstance(idx, tuple) else (idx,)
    entries: list[Entry] = []
    inputs: list[Variable] = []
    for item in items:
        if item is None:
            entries.append(("n",))
        elif item is Ellipsis:
            if ("e",) in entries:
                raise IndexError("an index can only have a single ellipsis ('...')")
            entries.append(("e",))
        elif isinstance(item, slice):
            parts = tuple(_scalar_part(p, inputs, "slice bound")
                          for p in (item.start, item.stop, item.step))
            if parts[2] == 0:
                raise ValueError("slice step cannot be zero")
            entries.append(("s", *parts))
        elif isinstance(item, bool | np.bool_):
            raise TypeError("indexing with a Python bool is not supported; use a boolean tensor mask")
        elif isinstance(item, int | np.integer):
            entries.append(("i", int(item)))
        else:
            v = _array_index(item)
            if v.dtype == "bool":
                if v.ndim == 0:
                    raise TypeError("indexing with a 0-d boolean is not supported")
                entries.append(("m",))
                inputs.append(v)
            elif not _int_kind(v):
                raise TypeError(f"index arrays must be integers or booleans, got {v.type}")
            elif v.ndim == 0:
                entries.append(("i", _scalar_part(v, inputs, "index")))
            else:
                entries.append(("a",))
                inputs.append(v)
    return tuple(entries), inputs


def _n_sym(e: Entry) -> int:
    return sum(p == SYM for p in e[1:]) if e[0] in "is" else (1 if e[0] in "am" else 0)


def _pair_inputs(idx_list: Sequence[Entry], inputs: Sequence[Any]) -> list[tuple[Entry, list]]:
    out, k = [], 0
    for e in idx_list:
        n = _n_sym(e)
        out.append((e, list(inputs[k: k + n])))
        k += n
    return out


# ---------------------------------------------------------------------------------------
# static shape of the result, following NumPy's rules
def _slice_len(n: int | None, a: Any, b: Any, c: Any) -> int | None:
    c = 1 if c is None else c
    if SYM not in (a, b, c) and n is not None:
        return len(range(*slice(a, b, c).indices(n)))
    if a is None and b is None and c in (1, -1):
        return n
    return None


def index_static_shape(x: Variable, idx_list: Sequence[Entry], inputs: Sequence[Variable]) -> tuple:
    """The static shape of ``x[idx]``; raises IndexError for indices known to be invalid."""
    xshape = x.type.shape
    paired = _pair_inputs(idx_list, inputs)
    consumed = sum(1 if e[0] in "isa" else ins[0].ndim if e[0] == "m" else 0 for e, ins in paired)
    if consumed > len(xshape):
        raise IndexError(f"too many indices: {consumed} for a {len(xshape)}-d tensor {x.type}")
    fancy = any(e[0] in "am" for e in idx_list)
    out: list[int | None] = []
    adv_shapes: list[tuple] = []
    group_at, state = 0, "before"  # NumPy puts broadcast index dims at the group or in front
    axis = 0
    for e, ins in paired:
        kind = e[0]
        advanced = kind in "am" or (kind == "i" and fancy)
        if advanced and state == "before":
            group_at, state = len(out), "in"
        elif advanced and state == "after":
            state = "split"
        elif not advanced and state == "in":
            state = "after"
        if kind == "n":
            out.append(1)
        elif kind == "e":
            span = len(xshape) - consumed
            out.extend(xshape[axis: axis + span])
            axis += span
        elif kind == "i":
            n = xshape[axis]
            if isinstance(e[1], int) and n is not None and not -n <= e[1] < n:
                raise IndexError(f"index {e[1]} is out of bounds for axis {axis} with size {n}")
            if fancy:
                adv_shapes.append(())
            axis += 1
        elif kind == "s":
            out.append(_slice_len(xshape[axis], *e[1:]))
            axis += 1
        elif kind == "a":
            (v,) = ins
            n = xshape[axis]
            if isinstance(v, Constant) and n is not None and v.data.size:
                lo, hi = int(v.data.min()), int(v.data.max())
                if lo < -n or hi >= n:
                    bad = hi if hi >= n else lo
                    raise IndexError(f"index {bad} is out of bounds for axis {axis} with size {n}")
            adv_shapes.append(v.type.shape)
            axis += 1
        else:  # boolean mask over v.ndim axes
            (v,) = ins
            for j, (m, d) in enumerate(zip(v.type.shape, xshape[axis: axis + v.ndim])):
                if m is not None and d is not None and m != d:
                    raise IndexError(f"boolean index of shape {v.type.shape} does not match axis "
                                     f"{axis + j} of size {d}")
            adv_shapes.append((int(v.data.sum()),) if isinstance(v, Constant) else (None,))
            axis += v.ndim
    out.extend(xshape[axis:])
    if fancy:
        width = max(len(s) for s in adv_shapes)
        padded = [(1,) * (width - len(s)) + tuple(s) for s in adv_shapes]
        try:
            adv = broadcast_static_shapes(padded, "indexing")
        except ValueError:
            raise IndexError(f"shape mismatch: index arrays of shapes {adv_shapes} cannot be "
                             f"broadcast together") from None
        at = 0 if state == "split" else group_at
        out[at:at] = adv
    return tuple(out)


def numpy_index(idx_list: Sequence[Entry], values: Sequence[Any]) -> tuple:
    """The NumPy index for ``idx_list`` given the run-time values of its inputs."""
    it = iter(values)
    parts: list[Any] = []
    for e in idx_list:
        kind = e[0]
        if kind == "n":
            parts.append(None)
        elif kind == "e":
            parts.append(Ellipsis)
        elif kind == "i":
            parts.append(int(next(it)) if e[1] == SYM else e[1])
        elif kind == "s":
            parts.append(slice(*(int(next(it)) if p == SYM else p for p in e[1:])))
        else:
            parts.append(np.asarray(next(it)))
    return tuple(parts)


def describe_index(idx_list: Sequence[Entry]) -> str:
    def part(p: Any) -> str:
        return "" if p is None else "?" if p == SYM else str(p)

    words = []
    for e in idx_list:
        kind = e[0]
        if kind == "s":
            words.append(f"{part(e[1])}:{part(e[2])}" + (f":{part(e[3])}" if e[3] is not None else ""))
        else:
            words.append({"n": "None", "e": "...", "a": "[int]", "m": "[bool]"}.get(kind) or part(e[1]))
    return ", ".join(words)


def _check_inputs(what: str, idx_list: Sequence[Entry], inputs: Sequence[Any]) -> list[Variable]:
    inputs = [as_tensor_variable(v) for v in inputs]
    if len(inputs) != sum(_n_sym(e) for e in idx_list):
        raise TypeError(f"{what}: {len(inputs)} index inputs do not match the index {idx_list}")
    for e, ins in _pair_inputs(idx_list, inputs):
        for v in ins:
            if e[0] == "m" and v.dtype != "bool":
                raise TypeError(f"{what}: a mask must be boolean, got {v.type}")
            if e[0] != "m" and (not _int_kind(v) or (v.ndim == 0) != (e[0] in "is")):
                raise TypeError(f"{what}: invalid index input {v.type} for entry {e}")
    return inputs


# ---------------------------------------------------------------------------------------
class Subtensor(Op):
    """``x[idx]`` with NumPy semantics; out-of-range integers raise IndexError when run."""

    __props__ = ("idx_list",)

    def __init__(self, idx_list: Sequence[Entry]) -> None:
        self.idx_list = tuple(tuple(e) for e in idx_list)

    def __str__(self) -> str:
        return f"Subtensor{{{describe_index(self.idx_list)}}}"

    def make_node(self, x: Any, *inputs: Any) -> Apply:
        x = as_tensor_variable(x)
        inputs = _check_inputs("subtensor", self.idx_list, inputs)
        shape = index_static_shape(x, self.idx_list, inputs)
        return Apply(self, [x, *inputs], [TensorType(x.dtype, shape)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        x, *rest = inputs
        return [np.asarray(x[numpy_index(self.idx_list, rest)])]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        x, *rest = inputs
        gx = None
        if x.type.is_float:
            gx = IncSubtensor(self.idx_list, False)(zeros_like(x), grads[0], *rest)
        return [gx] + [None] * len(rest)


class IncSubtensor(Op):
    """A copy of ``x`` with ``x[idx]`` set to (or incremented by) ``y``.

    Increments accumulate over repeated integer-array indices, like ``np.add.at``.
    """

    __props__ = ("idx_list", "set_instead_of_inc")

    def __init__(self, idx_list: Sequence[Entry], set_instead_of_inc: bool) -> None:
        self.idx_list = tuple(tuple(e) for e in idx_list)
        self.set_instead_of_inc = bool(set_instead_of_inc)
        self.fancy = any(e[0] in "am" for e in self.idx_list)

    def __str__(self) -> str:
        name = "SetSubtensor" if self.set_instead_of_inc else "IncSubtensor"
        return f"{name}{{{describe_index(self.idx_list)}}}"

    def make_node(self, x: Any, y: Any, *inputs: Any) -> Apply:
        what = "set_subtensor" if self.set_instead_of_inc else "inc_subtensor"
        x = as_tensor_variable(x)
        y = _as_value_for(x, y, what)
        inputs = _check_inputs(what, self.idx_list, inputs)
        target = index_static_shape(x, self.idx_list, inputs)
        if y.ndim > len(target):
            raise ValueError(f"{what}: a {y.ndim}-d value does not fit x[idx] of shape {target}")
        for t, s in zip(target[len(target) - y.ndim:], y.type.shape):
            if s not in (None, 1) and t is not None and t != s:
                raise ValueError(f"{what}: a value of shape {y.type.shape} cannot be broadcast to "
                                 f"x[idx] of shape {target}")
        return Apply(self, [x, y, *inputs], [x.type])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        x, y, *rest = inputs
        out = x.copy()
        index = numpy_index(self.idx_list, rest)
        if self.set_instead_of_inc:
            out[index] = y
        elif self.fancy:
            np.add.at(out, index, y)
        else:
            out[index] += y
        return [out]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        x, y, *rest = inputs
        (gz,) = grads
        if self.set_instead_of_inc:
            zero = constant(np.zeros((), dtype=gz.dtype))
            gx = IncSubtensor(self.idx_list, True)(gz, zero, *rest)
        else:
            gx = gz
        gy = sum_to_shape(Subtensor(self.idx_list)(gz, *rest), y) if y.type.is_float else None
        return [gx if x.type.is_float else None, gy] + [None] * len(rest)


def _as_value_for(x: Variable, y: Any, what: str) -> Variable:
    """``y`` in ``x``'s dtype; Python scalars are weak and lossy casts of tensors are refused."""
    y = _harmonize_operands([x, y])[1]
    if y.dtype != x.dtype:
        if not np.can_cast(y.dtype, x.dtype, "same_kind"):
            raise TypeError(f"{what}: cannot store {y.dtype} values into a {x.dtype} tensor; "
                            f"cast the value first")
        y = cast(y, x.dtype)
    return y


# ---------------------------------------------------------------------------------------
def subtensor(x: Any, idx: Any) -> Variable:
    """``x[idx]``: ints, slices (symbolic bounds allowed), None, Ellipsis, int arrays, masks."""
    x = as_tensor_variable(x)
    idx_list, inputs = parse_index(idx)
    return Subtensor(idx_list)(x, *inputs)


def _update(x_sub: Any, y: Any, set_: bool) -> Variable:
    what = "set_subtensor" if set_ else "inc_subtensor"
    owner = getattr(x_sub, "owner", None)
    if owner is None or not isinstance(owner.op, Subtensor):
        raise TypeError(f"{what}: the first argument must be an indexing expression such as "
                        f"x[idx], got {x_sub!r}")
    x, *inputs = owner.inputs
    return IncSubtensor(owner.op.idx_list, set_)(x, y, *inputs)


def set_subtensor(x_sub: Variable, y: Any) -> Variable:
    """A copy of ``x`` with ``x[idx]`` replaced by ``y`` (called as ``set_subtensor(x[idx], y)``)."""
    return _update(x_sub, y, True)


def inc_subtensor(x_sub: Variable, y: Any) -> Variable:
    """A copy of ``x`` with ``y`` added at ``x[idx]``; repeated indices accumulate (np.add.at)."""
    return _update(x_sub, y, False)


register("subtensor", "subtensor")
register("set_subtensor", "subtensor")
register("inc_subtensor", "subtensor")

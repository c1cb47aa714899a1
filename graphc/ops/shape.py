"""Shape ops: shape, reshape, flatten, concatenate, stack, alloc, zeros/ones, arange, eye.

Static shapes are inferred from whatever the graph fixes at build time: constant
shape entries, and entries of the form ``x.shape[j]`` (so ``x.reshape((x.shape[0], -1))``
of a ``(None, 3, 4)`` tensor is known to be ``(None, 12)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.config import config
from graphc.graph.basic import Apply, Constant, Variable
from graphc.graph.op import Op
from graphc.graph.type import TensorType, normalize_dtype
from graphc.ops.elemwise import (
    Elemwise,
    _harmonize_operands,
    cast,
    sum_to_shape,
    upcast,
)
from graphc.ops.registry import register
from graphc.tensor.basic import as_tensor_variable, constant

__all__ = [
    "shape", "reshape", "flatten", "concatenate", "stack", "alloc", "zeros", "ones", "arange",
    "eye", "Shape", "Reshape", "Flatten", "Join", "Stack", "Alloc", "ARange", "Eye",
]

# A build-time description of one int64 shape entry: a known int, ``(x, j)`` meaning
# ``x.shape[j]`` of unknown length, or None.
Entry = int | tuple[Variable, int] | None


# ---------------------------------------------------------------------------------------
# what the graph fixes at build time
def shape_dim_of(v: Variable) -> tuple[Variable, int] | None:
    """``(x, j)`` when ``v`` is ``shape(x)[j]`` with a constant ``j``."""
    from graphc.ops.subtensor import Subtensor

    owner = v.owner
    if owner is None or not isinstance(owner.op, Subtensor) or len(owner.inputs) != 1:
        return None
    entries = owner.op.idx_list
    if len(entries) != 1 or entries[0][0] != "i" or not isinstance(entries[0][1], int):
        return None
    src = owner.inputs[0]
    if src.owner is None or not isinstance(src.owner.op, Shape):
        return None
    x = src.owner.inputs[0]
    return x, entries[0][1] % x.ndim


def _unwrap_int_cast(v: Variable) -> Variable:
    while (v.owner is not None and isinstance(v.owner.op, Elemwise)
           and v.owner.op.scalar_op.name == "cast" and v.owner.inputs[0].dtype[0] in "iu"):
        v = v.owner.inputs[0]
    return v


def static_value(v: Variable) -> int | float | None:
    """The value of a scalar when the graph fixes it at build time, else None."""
    v = _unwrap_int_cast(v)
    if isinstance(v, Constant):
        return v.data.item() if v.data.ndim == 0 else None
    dim = shape_dim_of(v)
    return dim[0].type.shape[dim[1]] if dim is not None else None


def _scalar_entry(v: Variable) -> Entry:
    v = _unwrap_int_cast(v)
    value = static_value(v)
    if isinstance(value, int):
        return value
    return shape_dim_of(v)


def _vector_entries(v: Variable, n: int) -> list[Entry]:
    if isinstance(v, Constant):
        return [int(e) for e in v.data]
    if v.owner is not None and isinstance(v.owner.op, Shape):
        x = v.owner.inputs[0]
        return [s if s is not None else (x, j) for j, s in enumerate(x.type.shape)]
    if v.owner is not None and isinstance(v.owner.op, Stack) and v.owner.op.axis == 0:
        return [_scalar_entry(s) if s.ndim == 0 else None for s in v.owner.inputs]
    return [None] * n


def _int_scalar(s: Any, what: str) -> Variable:
    """An int64 scalar variable for one shape entry."""
    if isinstance(s, bool | np.bool_):
        raise TypeError(f"{what}: a shape entry must be an integer, got {s!r}")
    if isinstance(s, int | np.integer):
        return constant(int(s), dtype="int64")
    s = as_tensor_variable(s)
    if s.ndim != 0 or s.dtype[0] not in "iu":
        raise TypeError(f"{what}: a shape entry must be an integer scalar, got {s.type}")
    if isinstance(s, Constant):
        return constant(int(s.data), dtype="int64")
    return cast(s, "int64")


def _shape_scalars(shp: Any, what: str) -> list[Variable]:
    """Shape entries given as an int, a sequence, or a symbolic vector of static length."""
    if isinstance(shp, Variable):
        if shp.ndim == 0:
            return [_int_scalar(shp, what)]
        if shp.ndim != 1 or shp.type.shape[0] is None:
            raise ValueError(f"{what}: a symbolic shape must be a vector of known length "
                             f"(got {shp.type}); pass a tuple of scalars instead")
        return [_int_scalar(shp[i], what) for i in range(shp.type.shape[0])]
    if isinstance(shp, np.ndarray):
        shp = shp.tolist()
    if not isinstance(shp, list | tuple):
        shp = [shp]
    return [_int_scalar(s, what) for s in shp]


def _dim(x: Variable, axis: int) -> int | Variable:
    n = x.type.shape[axis]
    return n if n is not None else shape(x)[axis]


def _merge_shapes(shapes: Sequence[tuple], what: str) -> list[int | None]:
    out: list[int | None] = []
    for dims in zip(*shapes):
        known = {d for d in dims if d is not None}
        if len(known) > 1:
            raise ValueError(f"{what}: input shapes {list(shapes)} do not match")
        out.append(known.pop() if known else None)
    return out


def _common_dtype(tensors: Sequence[Any], what: str) -> list[Variable]:
    if not tensors:
        raise ValueError(f"{what}: needs at least one tensor")
    ts = _harmonize_operands(list(tensors))
    dtype = upcast(*(t.dtype for t in ts))
    return [cast(t, dtype) for t in ts]


# ---------------------------------------------------------------------------------------
class Shape(Op):
    """The shape of ``x`` as an int64 vector."""

    def make_node(self, x: Any) -> Apply:
        x = as_tensor_variable(x)
        return Apply(self, [x], [TensorType("int64", (x.ndim,))])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(inputs[0].shape, dtype="int64")]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        return [None]


def shape(x: Any) -> Variable:
    """The symbolic shape of ``x`` (an int64 vector); ``x.shape[0]`` indexes it."""
    return Shape()(x)


# ---------------------------------------------------------------------------------------
def _reshape_static(x: Variable, entries: list[Entry]) -> tuple[int | None, ...]:
    ints = [e for e in entries if isinstance(e, int)]
    if any(e < -1 for e in ints):
        raise ValueError(f"reshape: invalid target shape entry {min(ints)}")
    if ints.count(-1) > 1:
        raise ValueError("reshape: only one target entry can be -1")
    out = [e if isinstance(e, int) and e >= 0 else
           e[0].type.shape[e[1]] if isinstance(e, tuple) else None for e in entries]
    # x.shape[j] reused in the target cancels against x's own (unknown) length j.
    x_dims = list(x.type.shape)
    cancelled, unknown = set(), []
    for i, e in enumerate(entries):
        if out[i] is not None:
            continue
        if isinstance(e, tuple) and e[0] is x and x_dims[e[1]] is None:
            x_dims[e[1]] = 1
            cancelled.add(i)
        else:
            unknown.append(i)
    if None in x_dims:
        return tuple(out)
    size = math.prod(x_dims)
    known = math.prod(s for i, s in enumerate(out) if i not in cancelled and i not in unknown)
    if len(unknown) == 1 and known != 0:
        if size % known:
            raise ValueError(f"reshape: cannot reshape {x.type.shape} into {entries_repr(entries)}")
        out[unknown[0]] = size // known
    elif not unknown and size != known:
        raise ValueError(f"reshape: cannot reshape {x.type.shape} (size {size}) into "
                         f"{entries_repr(entries)}")
    return tuple(out)


def entries_repr(entries: list[Entry]) -> str:
    return "(" + ", ".join(str(e) if isinstance(e, int) else "?" for e in entries) + ")"


class Reshape(Op):
    """``x`` reshaped to the int64 vector ``shp`` of length ``ndim`` (one entry may be -1)."""

    __props__ = ("ndim",)

    def __init__(self, ndim: int) -> None:
        self.ndim = int(ndim)

    def make_node(self, x: Any, shp: Any) -> Apply:
        x, shp = as_tensor_variable(x), as_tensor_variable(shp)
        if shp.ndim != 1 or shp.dtype[0] not in "iu":
            raise TypeError(f"reshape: the shape must be an integer vector, got {shp.type}")
        if shp.type.shape[0] not in (None, self.ndim):
            raise ValueError(f"reshape: the shape has {shp.type.shape[0]} entries, expected {self.ndim}")
        if shp.dtype != "int64":
            shp = cast(shp, "int64")
        static = _reshape_static(x, _vector_entries(shp, self.ndim))
        return Apply(self, [x, shp], [TensorType(x.dtype, static)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        x, shp = inputs
        if shp.shape != (self.ndim,):
            raise ValueError(f"reshape: got a shape of length {shp.shape[0]}, expected {self.ndim}")
        target = tuple(int(s) for s in shp)
        if any(s < -1 for s in target):
            raise ValueError(f"reshape: invalid target shape {target}")
        return [np.reshape(x, target)]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        x, _ = inputs
        return [Reshape(x.ndim)(grads[0], shape(x)), None]


def reshape(x: Any, newshape: Any, ndim: int | None = None) -> Variable:
    """``x`` with shape ``newshape`` (ints, -1 and/or symbolic scalars, or an int vector)."""
    x = as_tensor_variable(x)
    if isinstance(newshape, Variable) and newshape.ndim == 1:
        n = newshape.type.shape[0]
        if n is None and ndim is None:
            raise ValueError("reshape: pass ndim when the shape is a vector of unknown length")
        return Reshape(ndim if ndim is not None else n)(x, newshape)
    if isinstance(newshape, np.ndarray):
        newshape = newshape.tolist()
    if not isinstance(newshape, list | tuple):
        newshape = [newshape]
    if ndim is not None and ndim != len(newshape):
        raise ValueError(f"reshape: ndim={ndim} but the shape has {len(newshape)} entries")
    if all(isinstance(s, int | np.integer) and not isinstance(s, bool) for s in newshape):
        shp: Variable = constant(np.asarray(newshape, dtype="int64").reshape(len(newshape)))
    else:
        shp = Stack(0)(*_shape_scalars(newshape, "reshape"))
    return Reshape(len(newshape))(x, shp)


class Flatten(Op):
    """Keep the first ``ndim - 1`` axes of ``x`` and flatten the rest into one (Theano)."""

    __props__ = ("ndim",)

    def __init__(self, ndim: int) -> None:
        self.ndim = int(ndim)

    def make_node(self, x: Any) -> Apply:
        x = as_tensor_variable(x)
        if self.ndim < 1 or (x.ndim < self.ndim and not (x.ndim == 0 and self.ndim == 1)):
            raise ValueError(f"flatten: ndim={self.ndim} is invalid for a {x.ndim}-d input")
        keep, rest = x.type.shape[: self.ndim - 1], x.type.shape[self.ndim - 1:]
        last = None if None in rest else math.prod(rest)
        return Apply(self, [x], [TensorType(x.dtype, (*keep, last))])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        (x,) = inputs
        keep = x.shape[: self.ndim - 1]
        return [np.reshape(x, (*keep, math.prod(x.shape[self.ndim - 1:])))]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        (x,) = inputs
        return [Reshape(x.ndim)(grads[0], shape(x))]


def flatten(x: Any, ndim: int = 1) -> Variable:
    """Theano's flatten: the first ``ndim - 1`` axes are kept, the rest become one axis."""
    return Flatten(ndim)(x)


# ---------------------------------------------------------------------------------------
class Join(Op):
    """Concatenate tensors of one dtype and rank along ``axis``."""

    __props__ = ("axis",)

    def __init__(self, axis: int) -> None:
        self.axis = int(axis)

    def make_node(self, *tensors: Any) -> Apply:
        ts = [as_tensor_variable(t) for t in tensors]
        if not ts or len({t.dtype for t in ts}) != 1 or len({t.ndim for t in ts}) != 1:
            raise TypeError(f"concatenate: needs tensors of one dtype and rank, got {[t.type for t in ts]}")
        if not 0 <= self.axis < ts[0].ndim:
            raise ValueError(f"concatenate: axis {self.axis} is out of range for {ts[0].ndim}-d tensors")
        others = [tuple(s for i, s in enumerate(t.type.shape) if i != self.axis) for t in ts]
        merged = _merge_shapes(others, "concatenate")
        lengths = [t.type.shape[self.axis] for t in ts]
        merged.insert(self.axis, None if None in lengths else sum(lengths))
        return Apply(self, ts, [TensorType(ts[0].dtype, merged)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [np.concatenate(inputs, axis=self.axis)]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        from graphc.ops.subtensor import subtensor

        (gz,) = grads
        out: list[Any] = []
        start: int | Variable = 0
        for x in inputs:
            stop = start + _dim(x, self.axis)
            g = subtensor(gz, (slice(None),) * self.axis + (slice(start, stop),))
            out.append(g if x.type.is_float else None)
            start = stop
        return out


def _norm_axis(axis: int, ndim: int, what: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{what}: axis {axis} is out of range for {ndim} axes")
    return axis % ndim


def concatenate(tensor_list: Sequence[Any], axis: int = 0) -> Variable:
    """Join tensors along an existing axis (dtypes are upcast to a common one)."""
    ts = _common_dtype(tensor_list, "concatenate")
    if ts[0].ndim == 0:
        raise ValueError("concatenate: zero-dimensional tensors cannot be concatenated; use stack")
    axis = _norm_axis(axis, ts[0].ndim, "concatenate")
    return ts[0] if len(ts) == 1 else Join(axis)(*ts)


class Stack(Op):
    """Stack tensors of one dtype and shape along a new axis."""

    __props__ = ("axis",)

    def __init__(self, axis: int) -> None:
        self.axis = int(axis)

    def make_node(self, *tensors: Any) -> Apply:
        ts = [as_tensor_variable(t) for t in tensors]
        if not ts or len({t.dtype for t in ts}) != 1 or len({t.ndim for t in ts}) != 1:
            raise TypeError(f"stack: needs tensors of one dtype and rank, got {[t.type for t in ts]}")
        if not 0 <= self.axis <= ts[0].ndim:
            raise ValueError(f"stack: axis {self.axis} is out of range for {ts[0].ndim}-d tensors")
        merged = _merge_shapes([t.type.shape for t in ts], "stack")
        merged.insert(self.axis, len(ts))
        return Apply(self, ts, [TensorType(ts[0].dtype, merged)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [np.stack(inputs, axis=self.axis)]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        from graphc.ops.subtensor import subtensor

        (gz,) = grads
        lead = (slice(None),) * self.axis
        return [subtensor(gz, (*lead, k)) if x.type.is_float else None for k, x in enumerate(inputs)]


def stack(tensors: Sequence[Any], axis: int = 0) -> Variable:
    """Stack equally shaped tensors along a new axis (dtypes are upcast to a common one)."""
    ts = _common_dtype(tensors, "stack")
    axis = _norm_axis(axis, ts[0].ndim + 1, "stack")
    return Stack(axis)(*ts)


# ---------------------------------------------------------------------------------------
class Alloc(Op):
    """``value`` broadcast to the shape given by int64 scalar inputs."""

    def make_node(self, value: Any, *shp: Any) -> Apply:
        value = as_tensor_variable(value)
        shp_vars = [_int_scalar(s, "alloc") for s in shp]
        if value.ndim > len(shp_vars):
            raise ValueError(f"alloc: a {value.ndim}-d value cannot fill a {len(shp_vars)}-d shape")
        static = []
        for s in shp_vars:
            v = static_value(s)
            if isinstance(v, int) and v < 0:
                raise ValueError(f"alloc: negative dimension {v}")
            static.append(v if isinstance(v, int) else None)
        lead = len(static) - value.ndim
        for i, d in enumerate(value.type.shape):
            out = static[lead + i]
            if d not in (None, 1):
                if out is not None and out != d:
                    raise ValueError(f"alloc: a value of shape {value.type.shape} cannot be "
                                     f"broadcast to {tuple(static)}")
                static[lead + i] = d
        return Apply(self, [value, *shp_vars], [TensorType(value.dtype, static)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        value, *shp = inputs
        target = tuple(int(s) for s in shp)
        if any(s < 0 for s in target):
            raise ValueError(f"alloc: negative dimension in {target}")
        return [np.broadcast_to(value, target).copy()]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        value = inputs[0]
        g = sum_to_shape(grads[0], value) if value.type.is_float else None
        return [g] + [None] * (len(inputs) - 1)


def alloc(value: Any, *shape: Any) -> Variable:
    """``value`` broadcast to ``shape`` (ints or symbolic scalars; a single tuple works too)."""
    if len(shape) == 1 and (isinstance(shape[0], list | tuple | np.ndarray)
                            or (isinstance(shape[0], Variable) and shape[0].ndim == 1)):
        shape = tuple(_shape_scalars(shape[0], "alloc"))
    return Alloc()(value, *shape)


def _float_dtype(dtype: object) -> str:
    return normalize_dtype(config.floatX if dtype in (None, "floatX") else dtype)


def zeros(shape: Any, dtype: object = None) -> Variable:
    """A tensor of zeros; ``shape`` may hold ints or symbolic scalars. dtype defaults to floatX."""
    return Alloc()(constant(np.zeros((), _float_dtype(dtype))), *_shape_scalars(shape, "zeros"))


def ones(shape: Any, dtype: object = None) -> Variable:
    """A tensor of ones; ``shape`` may hold ints or symbolic scalars. dtype defaults to floatX."""
    return Alloc()(constant(np.ones((), _float_dtype(dtype))), *_shape_scalars(shape, "ones"))


# ---------------------------------------------------------------------------------------
def _arange_values(start: Any, stop: Any, step: Any, dtype: str) -> np.ndarray:
    if step == 0:
        raise ValueError("arange: step must not be zero")
    return np.arange(start, stop, step, dtype=dtype)


class ARange(Op):
    """``numpy.arange(start, stop, step)`` with scalar inputs."""

    __props__ = ("dtype",)

    def __init__(self, dtype: str) -> None:
        self.dtype = normalize_dtype(dtype)

    def make_node(self, start: Any, stop: Any, step: Any) -> Apply:
        ins = [as_tensor_variable(v) for v in (start, stop, step)]
        if any(v.ndim != 0 for v in ins):
            raise TypeError(f"arange: start, stop and step must be scalars, got {[v.type for v in ins]}")
        values = [static_value(v) for v in ins]
        length = None
        if None not in values:
            estimate = (values[1] - values[0]) / values[2] if values[2] else 0
            if estimate < 1e6:
                length = len(_arange_values(*values, self.dtype))
        return Apply(self, ins, [TensorType(self.dtype, (length,))])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [_arange_values(*(v.item() for v in inputs), self.dtype)]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        return [None, None, None]


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: object = None) -> Variable:
    """Evenly spaced values in ``[start, stop)``, like ``numpy.arange``; bounds may be symbolic."""
    if stop is None:
        start, stop = 0, start
    args = [start, stop, step]
    python_ints = all(isinstance(a, int | np.integer) and not isinstance(a, bool) for a in args)
    ins = _harmonize_operands(args)
    if dtype is None:
        dtype = "int64" if python_ints else upcast(*(v.dtype for v in ins))
        if dtype == "bool":
            dtype = "int64"
    return ARange(_float_dtype(dtype) if dtype == "floatX" else dtype)(*ins)


class Eye(Op):
    """An ``n x m`` matrix with ones on diagonal ``k``."""

    __props__ = ("dtype",)

    def __init__(self, dtype: str) -> None:
        self.dtype = normalize_dtype(dtype)

    def make_node(self, n: Any, m: Any, k: Any) -> Apply:
        ins = [_int_scalar(v, "eye") for v in (n, m, k)]
        static = [static_value(v) for v in ins[:2]]
        for s in static:
            if s is not None and s < 0:
                raise ValueError(f"eye: negative dimension {s}")
        return Apply(self, ins, [TensorType(self.dtype, static)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        n, m, k = (int(v) for v in inputs)
        if n < 0 or m < 0:
            raise ValueError(f"eye: negative dimension in ({n}, {m})")
        return [np.eye(n, m, k, dtype=self.dtype)]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        return [None, None, None]


def eye(n: Any, m: Any = None, k: Any = 0, dtype: object = None) -> Variable:
    """The identity-like matrix of ``numpy.eye``; sizes may be symbolic. dtype defaults to floatX."""
    n = _int_scalar(n, "eye")
    return Eye(_float_dtype(dtype))(n, n if m is None else m, k)


register("shape", "shape", differentiable=False)
register("reshape", "shape")
register("flatten", "shape")
register("concatenate", "shape")
register("stack", "shape")
register("alloc", "shape")
for _name in ("zeros", "ones", "arange", "eye"):
    register(_name, "shape", differentiable=False)

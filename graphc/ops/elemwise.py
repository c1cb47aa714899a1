"""Elementwise operations with NumPy broadcasting.

One Op class, :class:`Elemwise`, maps a :class:`ScalarOp` over broadcast inputs.
A ScalarOp is the unit later passes work with: fusion composes scalar ops into
one kernel, and the LLVM backend lowers each scalar op once. Each scalar op
names its NumPy reference, its output dtype rule and its gradient, here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import reduce
from typing import Any

import numpy as np

from graphc.config import config
from graphc.graph.basic import Apply, Constant, Variable
from graphc.graph.op import Op
from graphc.graph.type import TensorType, normalize_dtype
from graphc.ops.dimshuffle import DimShuffle
from graphc.ops.registry import register
from graphc.tensor.basic import as_tensor_variable, constant, cscalar_dtype_for

GradFn = Callable[[Sequence[Variable], Variable, Variable], Sequence[Variable | None]]


# ---------------------------------------------------------------------------------------
# dtype rules
def upcast(*dtypes: str) -> str:
    return np.result_type(*dtypes).name


def upgrade_to_float(*dtypes: str) -> str:
    """Theano's rule: small ints become float32, wide ints float64, floats stay."""
    d = upcast(*dtypes)
    if np.dtype(d).kind == "f":
        return d
    return "float32" if np.dtype(d).itemsize <= 2 else "float64"


def _rule_same(*d: str) -> str:
    return upcast(*d)


def _rule_bool(*d: str) -> str:
    return "bool"


def _rule_int_only(*d: str) -> str:
    out = upcast(*d)
    if np.dtype(out).kind not in "biu":
        raise TypeError(f"this operation needs integer or bool inputs, got {d}")
    return out


def _rule_no_bool(*d: str) -> str:
    out = upcast(*d)
    return "int8" if out == "bool" else out


# ---------------------------------------------------------------------------------------
class ScalarOp:
    """A scalar function applied elementwise: reference, dtype rule and gradient."""

    def __init__(
        self,
        name: str,
        impl: Callable[..., Any],
        nin: int,
        dtype_rule: Callable[..., str] = _rule_same,
        grad: GradFn | None = None,
        differentiable: bool = True,
        params: tuple = (),
    ) -> None:
        self.name, self.impl, self.nin = name, impl, nin
        self.dtype_rule, self.grad_fn = dtype_rule, grad
        self.differentiable = differentiable
        self.params = params

    def output_dtype(self, dtypes: Sequence[str]) -> str:
        return self.dtype_rule(*dtypes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ScalarOp) and (self.name, self.params) == (other.name, other.params)

    def __hash__(self) -> int:
        return hash((self.name, self.params))

    def __repr__(self) -> str:
        return self.name if not self.params else f"{self.name}{{{','.join(map(str, self.params))}}}"


def broadcast_static_shapes(shapes: Sequence[tuple[int | None, ...]], what: str) -> tuple:
    """The static shape of a broadcast, or a ValueError when known lengths disagree."""
    out = []
    for dims in zip(*shapes):
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ValueError(f"{what}: shapes {list(shapes)} cannot be broadcast together")
        if known:
            out.append(known.pop())
        elif all(d == 1 for d in dims):
            out.append(1)
        else:
            out.append(None)
    return tuple(out)


class Elemwise(Op):
    """Apply ``scalar_op`` elementwise, broadcasting inputs as NumPy does."""

    __props__ = ("scalar_op",)

    def __init__(self, scalar_op: ScalarOp) -> None:
        self.scalar_op = scalar_op

    def __str__(self) -> str:
        return f"Elemwise{{{self.scalar_op!r}}}"

    def make_node(self, *inputs: Any) -> Apply:
        sop = self.scalar_op
        if sop.nin != -1 and len(inputs) != sop.nin:
            raise TypeError(f"{sop.name} takes {sop.nin} inputs, got {len(inputs)}")
        inputs = _harmonize_operands(inputs)
        ndim = max(i.ndim for i in inputs)
        # Align ranks on the right, as NumPy does, by adding leading broadcastable axes.
        inputs = [_expand_rank(i, ndim) for i in inputs]
        shape = broadcast_static_shapes([i.type.shape for i in inputs], sop.name)
        dtype = sop.output_dtype([i.dtype for i in inputs])
        return Apply(self, inputs, [TensorType(dtype, shape)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        out = node.outputs[0]
        with np.errstate(all="ignore"):
            result = self.scalar_op.impl(*inputs)
        result = np.asarray(result, dtype=out.dtype)
        if result.shape != np.broadcast_shapes(*(i.shape for i in inputs)):
            result = np.broadcast_to(result, np.broadcast_shapes(*(i.shape for i in inputs))).copy()
        return [result]

    def L_op(
        self, inputs: Sequence[Variable], outputs: Sequence[Variable], grads: Sequence[Variable]
    ) -> list[Any]:
        sop = self.scalar_op
        (out,), (gz,) = outputs, grads
        if sop.grad_fn is None:
            if sop.differentiable:
                raise NotImplementedError(f"{sop.name} lacks a gradient")
            # Piecewise-constant or boolean results: inputs get zero gradient (as in Theano).
            return [zeros_like(i, dtype=_grad_dtype(i)) if i.type.is_float else None for i in inputs]
        raw = sop.grad_fn(inputs, out, gz)
        result: list[Any] = []
        for inp, g in zip(inputs, raw):
            if g is None or not inp.type.is_float:
                result.append(None)
                continue
            result.append(sum_to_shape(cast(g, inp.dtype), inp))
        return result


def _expand_rank(var: Variable, ndim: int) -> Variable:
    """``var`` with leading length-1 axes added up to ``ndim`` (constants stay constants)."""
    if var.ndim == ndim:
        return var
    if isinstance(var, Constant):
        data = var.data.reshape((1,) * (ndim - var.ndim) + var.data.shape)
        return Constant(TensorType(var.dtype, data.shape), data)
    return DimShuffle(var.ndim, ["x"] * (ndim - var.ndim) + list(range(var.ndim)))(var)


def _grad_dtype(var: Variable) -> str:
    return var.dtype if var.type.is_float else config.floatX


def _harmonize_operands(args: Sequence[Any]) -> list[Variable]:
    """Turn Python scalars into constants of the dtype of their tensor partners."""
    partners = [a.dtype for a in args if isinstance(a, Variable)]
    partners += [np.asarray(a).dtype.name for a in args if isinstance(a, np.ndarray | np.generic)]
    out = []
    for a in args:
        if isinstance(a, bool | int | float) and not isinstance(a, np.generic):
            out.append(constant(a, dtype=cscalar_dtype_for(a, partners)))
        else:
            out.append(as_tensor_variable(a))
    return out


# ---------------------------------------------------------------------------------------
class SumToShape(Op):
    """Sum ``g`` over the axes along which ``like`` was broadcast to reach ``g``'s shape.

    Gradients of broadcast inputs go through it. Whether an axis of unknown
    static length was broadcast is only known when the function runs, so the
    op decides then.
    """

    def make_node(self, g: Variable, like: Variable) -> Apply:
        return Apply(self, [g, like], [TensorType(g.dtype, like.type.shape)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        g, like = inputs
        lead = g.ndim - like.ndim
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(like.shape) if n == 1 and g.shape[lead + i] != 1
        )
        if axes:
            g = g.sum(axis=axes, keepdims=True, dtype=g.dtype)
        return [g.reshape(like.shape)]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        g, like = inputs
        return [add(grads[0], zeros_like(g)), None]


def sum_to_shape(g: Variable, like: Variable) -> Variable:
    """``g`` reduced to the shape of ``like`` (see :class:`SumToShape`)."""
    if g.type.shape == like.type.shape and None not in like.type.shape:
        return g
    return SumToShape()(g, like)


# ---------------------------------------------------------------------------------------
# The scalar ops, their user-facing functions, and the registry.
_FUNCS: dict[str, Callable[..., Variable]] = {}
__all__ = ["Elemwise", "ScalarOp", "SumToShape", "sum_to_shape", "cast", "zeros_like", "ones_like"]


def elemwise_function(sop: ScalarOp, doc: str) -> Callable[..., Variable]:
    op = Elemwise(sop)

    def fn(*args: Any) -> Variable:
        return op(*args)

    fn.__name__ = fn.__qualname__ = sop.name
    fn.__doc__ = doc
    return fn


def define(
    name: str,
    impl: Callable[..., Any],
    nin: int,
    doc: str,
    rule: Callable[..., str] = _rule_same,
    grad: GradFn | None = None,
    differentiable: bool = True,
) -> Callable[..., Variable]:
    if rule is _rule_no_bool:
        impl = _bools_as_int8(impl)
    sop = ScalarOp(name, impl, nin, rule, grad, differentiable)
    fn = elemwise_function(sop, doc)
    _FUNCS[name] = fn
    register(name, "elemwise", differentiable and grad is not None)
    __all__.append(name)
    return fn


def _bools_as_int8(impl: Callable[..., Any]) -> Callable[..., Any]:
    """``impl`` on bools promoted to int8: the dtype rule promises int8, and NumPy has no
    bool loop for some of these ufuncs (negative, subtract, sign)."""

    def run(*xs: np.ndarray) -> Any:
        return impl(*(x.astype("int8") if x.dtype == np.bool_ else x for x in xs))

    return run


def _zero_grads(inputs: Sequence[Variable], out: Variable, gz: Variable) -> list[Variable]:
    return [zeros_like(i, dtype=_grad_dtype(i)) for i in inputs]


def _erf_impl(x: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erf
    except ImportError:  # scipy is optional; math.erf is exact but slow
        return np.asarray(np.frompyfunc(math.erf, 1, 1)(x), dtype="float64")
    return erf(x)


_LN2, _LN10 = math.log(2.0), math.log(10.0)

add = define("add", lambda *xs: reduce(np.add, xs), -1, "Elementwise sum of any number of tensors.",
             grad=lambda xs, z, gz: [gz] * len(xs))
mul = define("mul", lambda *xs: reduce(np.multiply, xs), -1, "Elementwise product.",
             grad=lambda xs, z, gz: [
                 mul(gz, *[x for j, x in enumerate(xs) if j != i]) if len(xs) > 1 else gz
                 for i in range(len(xs))])
sub = define("sub", np.subtract, 2, "x - y.", grad=lambda xs, z, gz: [gz, neg(gz)], rule=_rule_no_bool)
true_div = define("true_div", np.true_divide, 2, "x / y (always a float result).",
                  rule=upgrade_to_float,
                  grad=lambda xs, z, gz: [true_div(gz, xs[1]), neg(mul(gz, true_div(z, xs[1])))])
int_div = define("int_div", np.floor_divide, 2, "x // y (floor division).", rule=_rule_no_bool,
                 grad=_zero_grads)
mod = define("mod", np.mod, 2, "x % y with the sign of y, as Python and NumPy.", rule=_rule_no_bool,
             grad=lambda xs, z, gz: [gz, neg(mul(gz, int_div(xs[0], xs[1])))])
pow = define("pow", np.power, 2, "x ** y.", rule=_rule_no_bool,
             grad=lambda xs, z, gz: [
                 mul(gz, xs[1], pow(xs[0], sub(xs[1], 1))),
                 mul(gz, z, log(xs[0]))])
neg = define("neg", np.negative, 1, "-x.", rule=_rule_no_bool, grad=lambda xs, z, gz: [neg(gz)])
sgn = define("sgn", np.sign, 1, "Sign of x (-1, 0 or 1).", rule=_rule_no_bool, grad=_zero_grads)
abs = define("abs", np.abs, 1, "|x|.", rule=_rule_no_bool,
             grad=lambda xs, z, gz: [mul(gz, sgn(xs[0]))])
exp = define("exp", np.exp, 1, "e ** x.", rule=upgrade_to_float, grad=lambda xs, z, gz: [mul(gz, z)])
exp2 = define("exp2", np.exp2, 1, "2 ** x.", rule=upgrade_to_float,
              grad=lambda xs, z, gz: [mul(gz, z, _LN2)])
expm1 = define("expm1", np.expm1, 1, "exp(x) - 1, accurate near 0.", rule=upgrade_to_float,
               grad=lambda xs, z, gz: [mul(gz, add(z, 1.0))])
log = define("log", np.log, 1, "Natural logarithm.", rule=upgrade_to_float,
             grad=lambda xs, z, gz: [true_div(gz, xs[0])])
log2 = define("log2", np.log2, 1, "Base-2 logarithm.", rule=upgrade_to_float,
              grad=lambda xs, z, gz: [true_div(gz, mul(xs[0], _LN2))])
log10 = define("log10", np.log10, 1, "Base-10 logarithm.", rule=upgrade_to_float,
               grad=lambda xs, z, gz: [true_div(gz, mul(xs[0], _LN10))])
log1p = define("log1p", np.log1p, 1, "log(1 + x), accurate near 0.", rule=upgrade_to_float,
               grad=lambda xs, z, gz: [true_div(gz, add(xs[0], 1.0))])
sqrt = define("sqrt", np.sqrt, 1, "Square root.", rule=upgrade_to_float,
              grad=lambda xs, z, gz: [true_div(mul(gz, 0.5), z)])
sqr = define("sqr", np.square, 1, "x * x.", rule=_rule_no_bool,
             grad=lambda xs, z, gz: [mul(gz, xs[0], 2.0)])
sin = define("sin", np.sin, 1, "Sine.", rule=upgrade_to_float,
             grad=lambda xs, z, gz: [mul(gz, cos(xs[0]))])
cos = define("cos", np.cos, 1, "Cosine.", rule=upgrade_to_float,
             grad=lambda xs, z, gz: [neg(mul(gz, sin(xs[0])))])
tan = define("tan", np.tan, 1, "Tangent.", rule=upgrade_to_float,
             grad=lambda xs, z, gz: [mul(gz, add(sqr(z), 1.0))])
arcsin = define("arcsin", np.arcsin, 1, "Inverse sine.", rule=upgrade_to_float,
                grad=lambda xs, z, gz: [true_div(gz, sqrt(sub(1.0, sqr(xs[0]))))])
arccos = define("arccos", np.arccos, 1, "Inverse cosine.", rule=upgrade_to_float,
                grad=lambda xs, z, gz: [neg(true_div(gz, sqrt(sub(1.0, sqr(xs[0])))))])
arctan = define("arctan", np.arctan, 1, "Inverse tangent.", rule=upgrade_to_float,
                grad=lambda xs, z, gz: [true_div(gz, add(sqr(xs[0]), 1.0))])
sinh = define("sinh", np.sinh, 1, "Hyperbolic sine.", rule=upgrade_to_float,
              grad=lambda xs, z, gz: [mul(gz, cosh(xs[0]))])
cosh = define("cosh", np.cosh, 1, "Hyperbolic cosine.", rule=upgrade_to_float,
              grad=lambda xs, z, gz: [mul(gz, sinh(xs[0]))])
tanh = define("tanh", np.tanh, 1, "Hyperbolic tangent.", rule=upgrade_to_float,
              grad=lambda xs, z, gz: [mul(gz, sub(1.0, sqr(z)))])
arctanh = define("arctanh", np.arctanh, 1, "Inverse hyperbolic tangent.", rule=upgrade_to_float,
                 grad=lambda xs, z, gz: [true_div(gz, sub(1.0, sqr(xs[0])))])
erf = define("erf", _erf_impl, 1, "The error function.", rule=upgrade_to_float,
             grad=lambda xs, z, gz: [mul(gz, exp(neg(sqr(xs[0]))), 2.0 / math.sqrt(math.pi))])
floor = define("floor", np.floor, 1, "Round down.", rule=_rule_no_bool, grad=_zero_grads)
ceil = define("ceil", np.ceil, 1, "Round up.", rule=_rule_no_bool, grad=_zero_grads)
round = define("round", np.round, 1, "Round half to even, as NumPy.", rule=_rule_no_bool,
               grad=_zero_grads)
maximum = define("maximum", np.maximum, 2, "Elementwise maximum (ties send the gradient to both).",
                 grad=lambda xs, z, gz: [mul(gz, eq(z, xs[0])), mul(gz, eq(z, xs[1]))])
minimum = define("minimum", np.minimum, 2, "Elementwise minimum (ties send the gradient to both).",
                 grad=lambda xs, z, gz: [mul(gz, eq(z, xs[0])), mul(gz, eq(z, xs[1]))])
_clip = define("clip", np.clip, 3, "Clip x into [lo, hi].",
               grad=lambda xs, z, gz: [
                   mul(gz, and_(ge(xs[0], xs[1]), le(xs[0], xs[2]))),
                   mul(gz, lt(xs[0], xs[1])),
                   mul(gz, gt(xs[0], xs[2]))])
switch = define("switch", lambda c, a, b: np.where(c, a, b), 3,
                "Elementwise choice: a where cond is true, else b (both are computed).",
                rule=lambda c, a, b: upcast(a, b),
                grad=lambda xs, z, gz: [None, switch(xs[0], gz, zeros_like(gz)),
                                        switch(xs[0], zeros_like(gz), gz)])
where = switch
__all__.append("where")

eq = define("eq", np.equal, 2, "x == y (bool result).", rule=_rule_bool, differentiable=False)
neq = define("neq", np.not_equal, 2, "x != y (bool result).", rule=_rule_bool, differentiable=False)
lt = define("lt", np.less, 2, "x < y (bool result).", rule=_rule_bool, differentiable=False)
le = define("le", np.less_equal, 2, "x <= y (bool result).", rule=_rule_bool, differentiable=False)
gt = define("gt", np.greater, 2, "x > y (bool result).", rule=_rule_bool, differentiable=False)
ge = define("ge", np.greater_equal, 2, "x >= y (bool result).", rule=_rule_bool,
            differentiable=False)
isnan = define("isnan", np.isnan, 1, "NaN test (bool result).", rule=_rule_bool,
               differentiable=False)
isinf = define("isinf", np.isinf, 1, "Infinity test (bool result).", rule=_rule_bool,
               differentiable=False)
and_ = define("and_", np.bitwise_and, 2, "Logical (bool) or bitwise (int) and.", rule=_rule_int_only,
              differentiable=False)
or_ = define("or_", np.bitwise_or, 2, "Logical or bitwise or.", rule=_rule_int_only,
             differentiable=False)
xor = define("xor", np.bitwise_xor, 2, "Logical or bitwise xor.", rule=_rule_int_only,
             differentiable=False)
invert = define("invert", np.invert, 1, "Logical not (bool) or bitwise not (int).",
                rule=_rule_int_only, differentiable=False)
bitwise_and, bitwise_or, bitwise_xor, bitwise_not = and_, or_, xor, invert
__all__ += ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "where"]


def clip(x: Any, lo: Any, hi: Any) -> Variable:
    """Clip ``x`` into ``[lo, hi]``; the bounds may be tensors or Python numbers."""
    return _clip(x, lo, hi)


def _cast_op(dtype: str) -> Elemwise:
    sop = ScalarOp("cast", lambda x: x.astype(dtype), 1, lambda *_: dtype,
                   grad=lambda xs, z, gz: [gz] if xs[0].type.is_float else [None], params=(dtype,))
    return Elemwise(sop)


register("cast", "elemwise")


def cast(x: Any, dtype: object) -> Variable:
    """``x`` converted to ``dtype`` (a no-op when it already has it)."""
    x = as_tensor_variable(x)
    dtype = normalize_dtype(dtype if dtype != "floatX" else config.floatX)
    if x.dtype == dtype:
        return x
    return _cast_op(dtype)(x)


def zeros_like(x: Any, dtype: object = None) -> Variable:
    """A tensor of zeros with the shape (and dtype, unless given) of ``x``."""
    x = as_tensor_variable(x)
    return _fill(x, 0, dtype or x.dtype)


def ones_like(x: Any, dtype: object = None) -> Variable:
    """A tensor of ones with the shape (and dtype, unless given) of ``x``."""
    x = as_tensor_variable(x)
    return _fill(x, 1, dtype or x.dtype)


_second = ScalarOp(
    "second",
    lambda x, v: np.broadcast_to(v, np.broadcast_shapes(x.shape, v.shape)),
    2,
    lambda a, b: b,
    grad=lambda xs, z, gz: [None, gz],
)


def second(x: Any, value: Any) -> Variable:
    """``value`` broadcast to the shape of ``x`` (Theano's ``fill``/``second``)."""
    return Elemwise(_second)(x, value)


fill = second
__all__ += ["clip", "second", "fill"]


def _fill(x: Variable, value: float, dtype: object) -> Variable:
    return second(x, constant(np.asarray(value, dtype=normalize_dtype(dtype))))

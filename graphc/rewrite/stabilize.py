"""Stabilization: rewrite expressions that overflow, underflow or lose precision into
equivalent stable ones.

- ``log(1 + x) -> log1p(x)``, ``log(1 - x) -> log1p(-x)``, ``exp(x) - 1 -> expm1(x)``;
- ``log(sigmoid(x)) -> -softplus(-x)``, ``log(1 - sigmoid(x)) -> -softplus(x)``;
- ``log(softmax(x)) -> log_softmax(x)`` (also through the label pick of
  ``categorical_crossentropy``); graphc.rewrite.stabilize_xent then makes cross-entropies
  of softmax and sigmoid one stable op each, and ``exp(x) / sum(exp(x))`` a softmax;
- ``log(sum(exp(x))) -> m + log(sum(exp(x - m)))`` with ``m = max(x)``;
- in products, a division by a factor cancels against that factor
  (``(g / s) * s -> g``, also through label scatters and over sums of terms).
  Gradients of the expressions above divide by the probabilities and multiply
  them back; cancelling keeps those gradients finite when a probability
  underflows to 0 (Theano assumes ``x / x == 1`` the same way).
"""

from __future__ import annotations

from typing import Any

from graphc.graph.basic import Apply, Constant, Variable
from graphc.graph.fgraph import FunctionGraph
from graphc.ops import elemwise as E
from graphc.ops.dimshuffle import DimShuffle
from graphc.ops.elemwise import Elemwise, SumToShape
from graphc.rewrite.framework import register_local
from graphc.rewrite.shapes import shape_info
from graphc.rewrite.utils import FAST, fit, is_constant_value, owner_sop, scalar_constant, sop_name


def _nnet() -> Any:
    try:
        from graphc.ops import nnet
    except ImportError:  # nnet may be mid-edit
        return None
    return nnet


def _nnet_cls(name: str) -> type | None:
    mod = _nnet()
    return getattr(mod, name, None) if mod is not None else None


def _is(var: Variable, cls_name: str) -> bool:
    cls = _nnet_cls(cls_name)
    return cls is not None and var.owner is not None and isinstance(var.owner.op, cls)


def _one(node: Apply, new: Variable | None) -> list[Variable] | None:
    new = fit(new, node.outputs[0]) if new is not None else None
    return [new] if new is not None else None


# ---------------------------------------------------------------------------------------
def _without_one(var: Variable) -> Variable | None:
    """For ``var = add(1, a, b...)``: ``add(a, b...)``; None if there is no constant 1."""
    if owner_sop(var) != "add":
        return None
    ins = var.owner.inputs
    for k, inp in enumerate(ins):
        if isinstance(inp, Constant) and is_constant_value(inp, 1) and all(s == 1 for s in inp.type.shape):
            rest = ins[:k] + ins[k + 1:]
            return rest[0] if len(rest) == 1 else E.add(*rest)
    return None


@register_local("stabilize", tracks=[Elemwise], tags=FAST)
def local_log1p(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``log(1 + x) -> log1p(x)``, ``log(1 - x) -> log1p(-x)`` for float x."""
    if sop_name(node) != "log":
        return None
    (arg,) = node.inputs
    if not arg.type.is_float:
        return None
    rest = _without_one(arg)
    if rest is None and owner_sop(arg) == "sub":
        one, x = arg.owner.inputs
        if isinstance(one, Constant) and is_constant_value(one, 1) and all(s == 1 for s in one.type.shape):
            rest = E.neg(x)
    if rest is None or rest.dtype != arg.dtype or rest.type.shape != arg.type.shape:
        return None
    if _is_sigmoid_complement(rest):
        return None  # local_log_sigmoid turns log(1 - sigmoid(x)) into a softplus instead
    return _one(node, E.log1p(rest))


def _is_sigmoid_complement(var: Variable) -> bool:
    return owner_sop(var) == "neg" and owner_sop(var.owner.inputs[0]) == "sigmoid"


@register_local("stabilize", tracks=[Elemwise], tags=FAST)
def local_expm1(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``exp(x) - 1 -> expm1(x)`` (also ``exp(x) + (-1)``)."""
    name = sop_name(node)
    ins = node.inputs
    if name == "sub" and owner_sop(ins[0]) == "exp" and is_constant_value(ins[1], 1):
        e, c = ins
    elif name == "add" and len(ins) == 2 and owner_sop(ins[0]) == "exp" and is_constant_value(ins[1], -1):
        e, c = ins
    else:
        return None
    if not isinstance(c, Constant) or not all(s == 1 for s in c.type.shape):
        return None
    x = e.owner.inputs[0]
    if e.dtype != node.outputs[0].dtype:
        return None
    return _one(node, E.expm1(x))


@register_local("stabilize", tracks=[Elemwise], tags=FAST)
def local_log_sigmoid(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``log(sigmoid(x)) -> -softplus(-x)``; ``log(1 - sigmoid(x))`` and
    ``log1p(-sigmoid(x))`` -> ``-softplus(x)``."""
    nnet = _nnet()
    if nnet is None or not hasattr(nnet, "softplus"):
        return None
    name = sop_name(node)
    (arg,) = node.inputs if len(node.inputs) == 1 else (None,)
    if arg is None:
        return None
    if name == "log" and owner_sop(arg) == "sigmoid":
        x = arg.owner.inputs[0]
        return _one(node, E.neg(nnet.softplus(E.neg(x))))
    sig = None
    if name == "log1p" and _is_sigmoid_complement(arg):
        sig = arg.owner.inputs[0]
    elif name == "log" and owner_sop(arg) == "sub":
        one, s = arg.owner.inputs
        if owner_sop(s) == "sigmoid" and isinstance(one, Constant) and is_constant_value(one, 1) \
                and all(d == 1 for d in one.type.shape):
            sig = s
    if sig is None or sig.type.shape != node.outputs[0].type.shape:
        return None
    return _one(node, E.neg(nnet.softplus(sig.owner.inputs[0])))


@register_local("stabilize", tracks=[Elemwise], tags=FAST)
def local_log_softmax(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``log(softmax(x)) -> log_softmax(x)``, and ``log(pick(softmax(x), y)) ->
    pick(log_softmax(x), y)`` (categorical cross-entropy with integer labels)."""
    if sop_name(node) != "log":
        return None
    (arg,) = node.inputs
    LogSoftmax = _nnet_cls("LogSoftmax")
    if LogSoftmax is None:
        return None
    if _is(arg, "Softmax"):
        return _one(node, LogSoftmax(arg.owner.op.axis)(arg.owner.inputs[0]))
    if _is(arg, "LabelPick") and _is(arg.owner.inputs[0], "Softmax"):
        sm, labels = arg.owner.inputs
        if sm.owner.op.axis != sm.ndim - 1:
            return None
        lsm = LogSoftmax(sm.owner.op.axis)(sm.owner.inputs[0])
        return _one(node, _nnet_cls("LabelPick")()(lsm, labels))
    return None


def _keepdims_source(var: Variable) -> tuple[Variable, DimShuffle | None]:
    """``var`` without a DimShuffle that only inserts broadcast axes (keepdims)."""
    if var.owner is not None and isinstance(var.owner.op, DimShuffle):
        op = var.owner.op
        if not op.dropped and [o for o in op.new_order if o != "x"] == list(range(op.input_ndim)):
            return var.owner.inputs[0], op
    return var, None


@register_local("stabilize", tracks=[Elemwise], tags=FAST)
def local_log_sum_exp(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``log(sum(exp(x))) -> m + log(sum(exp(x - m)))`` with ``m = max(x)`` (finite ``m``)."""
    from graphc.ops.reduce import Reduce

    if sop_name(node) != "log":
        return None
    red, keep = _keepdims_source(node.inputs[0])
    if red.owner is None or not isinstance(red.owner.op, Reduce) or red.owner.op.kind != "add":
        return None
    e = red.owner.inputs[0]
    if owner_sop(e) != "exp" or red.dtype != e.dtype:
        return None
    x = e.owner.inputs[0]
    if x.dtype != e.dtype or _already_shifted(x):
        return None
    axis = red.owner.op.axis
    m = Reduce("max", axis, x.dtype)(x)
    # An infinite max (all -inf, or a +inf) would make x - m nan; use 0 there instead.
    m = E.switch(E.isinf(m), E.zeros_like(m), m)
    order: list[Any] = []
    k = 0
    for i in range(x.ndim):
        if i in axis:
            order.append("x")
        else:
            order.append(k)
            k += 1
    m_b = DimShuffle(m.ndim, order)(m) if axis else m
    stable = E.add(m, E.log(Reduce("add", axis, red.dtype)(E.exp(E.sub(x, m_b)))))
    if keep is not None:
        stable = DimShuffle(stable.ndim, keep.new_order)(stable)
    return _one(node, stable)


def _already_shifted(x: Variable) -> bool:
    """``x`` is ``y - max(y)`` as built by :func:`local_log_sum_exp` (or by a user)."""
    from graphc.ops.reduce import Reduce

    if owner_sop(x) != "sub":
        return False
    y, m = x.owner.inputs
    m, _ = _keepdims_source(m)
    if owner_sop(m) == "switch":
        m = m.owner.inputs[2]
    return m.owner is not None and isinstance(m.owner.op, Reduce) and m.owner.op.kind == "max" \
        and m.owner.inputs[0] is y


# ---------------------------------------------------------------------------------------
# Cancelling divisions against factors of a product
def _linear_terms(var: Variable, sign: int, out: list, depth: int) -> None:
    name = owner_sop(var)
    if depth < 4 and name == "add":
        for i in var.owner.inputs:
            _linear_terms(i, sign, out, depth + 1)
    elif depth < 4 and name == "sub":
        a, b = var.owner.inputs
        _linear_terms(a, sign, out, depth + 1)
        _linear_terms(b, -sign, out, depth + 1)
    elif depth < 4 and name == "neg":
        _linear_terms(var.owner.inputs[0], -sign, out, depth + 1)
    else:
        value = scalar_constant(var) if isinstance(var, Constant) else None
        key = ("const", value) if value is not None else ("var", _structural_key(var))
        out.append((sign, key))


def _structural_key(var: Variable) -> Any:
    if var.owner is None:
        return id(var)
    return (var.owner.op, tuple(id(i) for i in var.owner.inputs), var.index)


def same_value(a: Variable, b: Variable) -> bool:
    """``a`` and ``b`` provably hold the same value (identity, equal application, or equal
    sums of the same terms such as ``1 - s`` and ``-s + 1``)."""
    if a is b:
        return True
    if a.type != b.type:
        return False
    try:
        if _structural_key(a) == _structural_key(b):
            return True
    except TypeError:
        return False
    ta: list = []
    tb: list = []
    _linear_terms(a, 1, ta, 0)
    _linear_terms(b, 1, tb, 0)
    try:
        return len(ta) > 1 and sorted(ta, key=repr) == sorted(tb, key=repr)
    except TypeError:
        return False


def cancel(fgraph: FunctionGraph, term: Variable, factor: Variable, depth: int = 0) -> Variable | None:
    """``term * factor`` without a division by ``factor`` inside ``term``, or None.

    The result has the shape ``term * factor`` would have, and its dtype.
    """
    if depth > 6 or term.dtype != factor.dtype:
        return None
    node = term.owner
    if node is None:
        return None
    name = sop_name(node)
    info = shape_info(fgraph)
    if name == "true_div":
        num, den = node.inputs
        if num.dtype == term.dtype and same_value(den, factor):
            if info.broadcasts_into(factor, num):
                return num
            return E.second(factor, num) if num.ndim == factor.ndim else None
        return None
    if name == "neg":
        inner = cancel(fgraph, node.inputs[0], factor, depth + 1)
        return E.neg(inner) if inner is not None else None
    if name == "second":  # fill(like, v) * f == fill(like, v * f): the same broadcast
        like, v = node.inputs
        inner = cancel(fgraph, v, factor, depth + 1) if v.dtype == term.dtype else None
        return E.second(like, inner) if inner is not None else None
    if name == "mul":
        for k, t in enumerate(node.inputs):
            if t.dtype != term.dtype:
                continue
            inner = cancel(fgraph, t, factor, depth + 1)
            if inner is not None:
                return E.mul(*node.inputs[:k], inner, *node.inputs[k + 1:])
        return None
    if isinstance(node.op, SumToShape):
        g, like = node.inputs
        if g.dtype == term.dtype and _same_shape(info, g, like):
            return cancel(fgraph, g, factor, depth + 1)
        return None
    if _is(term, "LabelScatter"):
        g, labels, like = node.inputs
        if not info.same_shape(like, factor):
            return None
        inner = cancel(fgraph, g, _nnet_cls("LabelPick")()(factor, labels), depth + 1)
        return _nnet_cls("LabelScatter")()(inner, labels, like) if inner is not None else None
    return None


def _same_shape(info: Any, a: Variable, b: Variable) -> bool:
    """``a`` provably has ``b``'s shape; an elementwise ``a`` also when its inputs prove it
    (shapes of variables a rewrite re-wired, e.g. an index scatter that became a
    LabelScatter, may be cached from before and say less)."""
    if info.same_shape(a, b):
        return True
    if a.owner is None or not isinstance(a.owner.op, Elemwise) or a.ndim != b.ndim:
        return False
    ins = a.owner.inputs
    return all(i.ndim == b.ndim and info.broadcasts_into(i, b) for i in ins) \
        and any(info.same_shape(i, b) for i in ins)


@register_local("stabilize", tracks=[Elemwise], tags=FAST)
def local_mul_cancel(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``mul(g / s, s, ...) -> mul(g, ...)``."""
    if sop_name(node) != "mul":
        return None
    ins = node.inputs
    out = node.outputs[0]
    for i, t in enumerate(ins):
        for j, f in enumerate(ins):
            if i == j or t.owner is None:
                continue
            c = cancel(fgraph, t, f)
            if c is None:
                continue
            rest = [v for k, v in enumerate(ins) if k not in (i, j)]
            new = E.mul(*rest, c) if rest else c
            if new.type == out.type or fit(new, out) is not None:
                return _one(node, new)
    return None


@register_local("stabilize", tracks=[Elemwise], tags=FAST)
def local_mul_distribute_cancel(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``(a / s - b) * s -> a - b * s``: distribute a product over a sum when a term of
    the sum then cancels a division."""
    if sop_name(node) != "mul":
        return None
    ins = node.inputs
    out = node.outputs[0]
    for k, x in enumerate(ins):
        kind = owner_sop(x)
        if kind not in ("add", "sub") or x.dtype != out.dtype:
            continue
        factors = ins[:k] + ins[k + 1:]
        if any(f.dtype != out.dtype for f in factors):
            continue
        new_terms = []
        cancelled = False
        for t in x.owner.inputs:
            done = None
            if t.dtype == out.dtype:
                for j, f in enumerate(factors):
                    c = cancel(fgraph, t, f)
                    if c is not None:
                        rest = factors[:j] + factors[j + 1:]
                        done = E.mul(c, *rest) if rest else c
                        break
            if done is None:
                done = E.mul(t, *factors)
            else:
                cancelled = True
            new_terms.append(done)
        if not cancelled:
            continue
        new = E.add(*new_terms) if kind == "add" else E.sub(*new_terms)
        return _one(node, new)
    return None


# The rewrites into the cross-entropy ops register after these (same phase).
from graphc.rewrite import stabilize_xent  # noqa: E402,F401

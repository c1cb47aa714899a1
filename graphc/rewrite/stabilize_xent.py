"""Stabilize rewrites into the cross-entropy ops, and softmax recognized from its formula.

- ``-pick(log_softmax(x), y)`` (what ``categorical_crossentropy(softmax(x), y)`` becomes
  after ``local_log_softmax``) and ``-sum(t * log_softmax(x), axis=1)`` (the one-hot or
  weighted form, also keras_like's) -> ``CrossentropySoftmax(x, y/t)``;
- ``-(t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x)))`` in any of the forms the
  stabilize phase leaves it (``-softplus(-x)``, ``log1p(-sigmoid(x))``...) and keras_like's
  from-logits form ``softplus(-|x|) + max(x, 0) - x * t`` -> ``sigmoid_binary_crossentropy(x, t)``;
- ``exp(x) / sum(exp(x), axis)`` -> ``softmax(x, axis)``, also as the gradient of
  ``log(sum(exp(x)))`` writes it, ``exp(x) * bcast(g / sum(exp(x)))`` ->
  ``softmax(x) * bcast(g)``: there ``exp`` overflows for large ``x`` where softmax does not.

Every rewrite here is exact (the same function of the inputs); Keras' habit of reading a
softmax/sigmoid output's logits past a clip is the frontend's business (keras_like.losses).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.graph.basic import Apply, Constant, Variable
from graphc.graph.fgraph import FunctionGraph
from graphc.ops import elemwise as E
from graphc.ops.dimshuffle import DimShuffle
from graphc.ops.elemwise import Elemwise
from graphc.rewrite.framework import register_local
from graphc.rewrite.utils import FAST, fit, is_constant_value, owner_sop, sop_name


def _nnet() -> Any:
    try:
        from graphc.ops import nnet
    except ImportError:  # nnet may be mid-edit
        return None
    return nnet if hasattr(nnet, "CrossentropySoftmax") else None


def _one(node: Apply, new: Variable | None) -> list[Variable] | None:
    new = fit(new, node.outputs[0]) if new is not None else None
    return [new] if new is not None else None


def _is_one(var: Variable) -> bool:
    return isinstance(var, Constant) and is_constant_value(var, 1) and all(s == 1 for s in var.type.shape)


def _log_softmax_rows(var: Variable) -> Variable | None:
    """``x`` when ``var`` is ``log_softmax(x)`` (or ``log(softmax(x))``) over the rows of a matrix."""
    nnet = _nnet()
    if nnet is None or var.owner is None:
        return None
    if owner_sop(var) == "log":
        var = var.owner.inputs[0]
        cls = nnet.Softmax
    else:
        cls = nnet.LogSoftmax
    if var.owner is None or not isinstance(var.owner.op, cls) or var.ndim != 2 or var.owner.op.axis != 1:
        return None
    return var.owner.inputs[0]


def _xent(x: Variable, t: Variable) -> Variable:
    return _nnet().CrossentropySoftmax()(x, t)[0]


# ---------------------------------------------------------------------------------------
def _reduce_cls() -> list[type]:
    from graphc.ops.reduce import Reduce

    return [Reduce]


def _pick_cls() -> list[type]:
    nnet = _nnet()
    return [nnet.LabelPick] if nnet is not None else []


@register_local("stabilize", tracks=[Elemwise, *_reduce_cls(), *_pick_cls()], tags=FAST)
def local_crossentropy_softmax(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``pick(log_softmax(x), y) -> -xent(x, y)``; ``sum(t * log_softmax(x), axis=1) ->
    -xent(x, t)`` (``t`` the product of the other factors); ``--xent -> xent``."""
    from graphc.ops.reduce import Reduce

    nnet = _nnet()
    if nnet is None:
        return None
    if isinstance(node.op, Reduce):
        # sum(t * lsm, axis=1) -> -xent(x, t): the negation may have moved out (of a mean).
        new = _onehot_xent(node.outputs[0])
        return _one(node, E.neg(new)) if new is not None else None
    if isinstance(node.op, nnet.LabelPick):
        # pick(lsm, y) -> -xent(x, y), for the same reason (-mean(pick) is -(sum / n)).
        lsm, labels = node.inputs
        x = _log_softmax_rows(lsm)
        if x is None or labels.ndim != 1 or lsm.dtype != node.outputs[0].dtype:
            return None
        return _one(node, E.neg(_xent(x, labels)))
    if sop_name(node) != "neg":
        return None
    (v,) = node.inputs
    if v.owner is None:
        return None
    if owner_sop(v) == "neg" and v.owner.inputs[0].owner is not None \
            and isinstance(v.owner.inputs[0].owner.op, nnet.CrossentropySoftmax):
        return _one(node, v.owner.inputs[0])  # --xent from the rewrite of the sum below
    if isinstance(v.owner.op, nnet.LabelPick):
        lsm, labels = v.owner.inputs
        x = _log_softmax_rows(lsm)
        if x is None or labels.ndim != 1:
            return None
        return _one(node, _xent(x, labels))
    return None


def _onehot_xent(total: Variable) -> Variable | None:
    """``xent(x, t)`` when ``total`` is ``sum(t * log_softmax(x), axis=1)`` (so ``-xent``)."""
    from graphc.ops.reduce import Reduce

    op = total.owner.op
    if not isinstance(op, Reduce) or op.kind != "add" or op.axis != (1,):
        return None
    prod = total.owner.inputs[0]
    if owner_sop(prod) != "mul" or prod.ndim != 2:
        return None
    factors = prod.owner.inputs
    for k, f in enumerate(factors):
        x = _log_softmax_rows(f)
        if x is None:
            continue
        rest = factors[:k] + factors[k + 1:]
        t = rest[0] if len(rest) == 1 else E.mul(*rest)
        # Same dtypes throughout, so the op computes in the precision the graph did.
        if not (x.dtype == t.dtype == prod.dtype == op.dtype == total.dtype):
            return None
        return _xent(x, t)
    return None


@register_local("stabilize", tracks=[Elemwise], tags=FAST)
def local_fill_past_log_softmax(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``second(t * log_softmax(x), w) -> second(t, second(x, w))``: the same broadcast of
    ``w``, read from shapes that do not need the log-softmax computed (gradients of
    ``-sum(t * log_softmax(x))`` fill with it after the loss became one op)."""
    if sop_name(node) != "second":
        return None
    like, w = node.inputs
    if owner_sop(like) == "mul":
        factors = like.owner.inputs
    else:
        factors = [like]
    nnet = _nnet()
    if nnet is None:
        return None
    hit = [k for k, f in enumerate(factors)
           if f.owner is not None and isinstance(f.owner.op, (nnet.LogSoftmax, nnet.Softmax))]
    if not hit:
        return None
    new = w
    for k, f in enumerate(factors):
        new = E.second(f.owner.inputs[0] if k in hit else f, new)
    return _one(node, new)


# ---------------------------------------------------------------------------------------
# Binary cross-entropy of a sigmoid
def _terms(var: Variable, sign: int, out: list[tuple[int, Variable]], depth: int = 0) -> None:
    """``var`` as a signed sum of terms (through add, sub, neg)."""
    name = owner_sop(var)
    if depth < 6 and name == "add":
        for i in var.owner.inputs:
            _terms(i, sign, out, depth + 1)
    elif depth < 6 and name == "sub":
        a, b = var.owner.inputs
        _terms(a, sign, out, depth + 1)
        _terms(b, -sign, out, depth + 1)
    elif depth < 6 and name == "neg":
        _terms(var.owner.inputs[0], -sign, out, depth + 1)
    else:
        out.append((sign, var))


def _factors(var: Variable) -> tuple[int, list[Variable]]:
    """``var`` as ``sign * prod(factors)`` (negations pulled out of a product)."""
    sign = 1
    factors = list(var.owner.inputs) if owner_sop(var) == "mul" else [var]
    out = []
    for f in factors:
        while owner_sop(f) == "neg":
            sign, f = -sign, f.owner.inputs[0]
        out.append(f)
    return sign, out


def _log_sigmoid(f: Variable) -> tuple[Variable, int, bool] | None:
    """``(x, sign, flipped)`` with ``f == sign * log(sigmoid(-x if flipped else x))``."""
    name = owner_sop(f)
    if name is None:
        return None
    a = f.owner.inputs[0] if len(f.owner.inputs) == 1 else None
    if name == "log" and owner_sop(a) == "sigmoid":
        return a.owner.inputs[0], 1, False
    if name == "softplus":  # softplus(z) = -log(sigmoid(-z))
        if owner_sop(a) == "neg":
            return a.owner.inputs[0], -1, False
        return a, -1, True
    if name == "log1p" and owner_sop(a) == "neg" and owner_sop(a.owner.inputs[0]) == "sigmoid":
        return a.owner.inputs[0].owner.inputs[0], 1, True  # log(1 - sigmoid(x)) = log(sigmoid(-x))
    if name == "log" and owner_sop(a) == "sub":
        one, s = a.owner.inputs
        if _is_one(one) and owner_sop(s) == "sigmoid":
            return s.owner.inputs[0], 1, True
    return None


def _one_minus(var: Variable) -> Variable | None:
    if owner_sop(var) == "sub" and _is_one(var.owner.inputs[0]):
        return var.owner.inputs[1]
    return None


def _bce_of_sigmoid(root: Variable) -> tuple[Variable, Variable] | None:
    """``(x, t)`` when ``root == -(t * log(sigmoid(x)) + (1 - t) * log(sigmoid(-x)))``."""
    terms: list[tuple[int, Variable]] = []
    _terms(root, 1, terms)
    if len(terms) != 2:
        return None
    found: dict[bool, tuple[Variable, Variable]] = {}
    for sign, term in terms:
        if term.owner is None:
            return None
        fsign, factors = _factors(term)
        if len(factors) != 2:
            return None
        for k in (0, 1):
            ls = _log_sigmoid(factors[k])
            if ls is None:
                continue
            x, lsign, flipped = ls
            if sign * fsign * lsign != -1 or flipped in found:
                return None
            found[flipped] = (x, factors[1 - k])
            break
        else:
            return None
    if set(found) != {False, True}:
        return None
    (x, t), (x2, c) = found[False], found[True]
    if x2 is not x or _one_minus(c) is not t:
        return None
    return x, t


def _logits_bce(root: Variable) -> tuple[Variable, Variable] | None:
    """``(x, t)`` when ``root == softplus(-|x|) + max(x, 0) - x * t`` (keras_like's from-logits form)."""
    terms: list[tuple[int, Variable]] = []
    _terms(root, 1, terms)
    if len(terms) != 3:
        return None
    x: Variable | None = None
    prod: Variable | None = None
    seen = set()
    for sign, term in terms:
        name = owner_sop(term)
        cand = None
        if name == "softplus" and sign == 1:
            a = term.owner.inputs[0]
            if owner_sop(a) == "neg" and owner_sop(a.owner.inputs[0]) == "abs":
                seen.add("sp")
                cand = a.owner.inputs[0].owner.inputs[0]
        elif name == "maximum" and sign == 1:
            p, q = term.owner.inputs
            if isinstance(q, Constant) and is_constant_value(q, 0) and all(s == 1 for s in q.type.shape):
                seen.add("max")
                cand = p
        elif name == "mul" and sign == -1 and len(term.owner.inputs) == 2:
            seen.add("mul")
            prod = term
            continue
        if cand is None or (x is not None and cand is not x):
            return None
        x = cand
    if seen != {"sp", "max", "mul"} or x is None or prod is None:
        return None
    p, q = prod.owner.inputs
    if p is x:
        return x, q
    if q is x:
        return x, p
    return None


@register_local("stabilize", tracks=[Elemwise], tags=FAST)
def local_sigmoid_binary_crossentropy(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """Binary cross-entropy of ``sigmoid(x)`` (in the forms above) -> one elementwise op."""
    name = sop_name(node)
    if name not in ("neg", "add", "sub") or _nnet() is None:
        return None
    out = node.outputs[0]
    if not out.type.is_float:
        return None
    found = _bce_of_sigmoid(out) or (_logits_bce(out) if name in ("add", "sub") else None)
    if found is None:
        return None
    x, t = found
    if not x.type.is_float:
        return None
    return _one(node, _nnet().sigmoid_binary_crossentropy(x, t))


# ---------------------------------------------------------------------------------------
# exp(x) / sum(exp(x)) is softmax(x)
_X = "x"  # a broadcast axis in the dimension maps below


def _sum_of(var: Variable, e: Variable) -> tuple[int, list[Any]] | None:
    """``(axis, dims)`` when ``var`` is ``sum(e, axis)`` over one axis, possibly with axes
    inserted (keepdims, rank alignment); ``dims[i]`` is the axis of ``e`` that axis ``i``
    of ``var`` runs along, or ``"x"``."""
    from graphc.ops.reduce import Reduce

    order = None
    if var.owner is not None and isinstance(var.owner.op, DimShuffle):
        op = var.owner.op
        if op.dropped or [o for o in op.new_order if o != _X] != list(range(op.input_ndim)):
            return None
        order = op.new_order
        var = var.owner.inputs[0]
    if var.owner is None or not isinstance(var.owner.op, Reduce):
        return None
    op = var.owner.op
    src = var.owner.inputs[0]
    if op.kind != "add" or len(op.axis) != 1 or op.dtype != e.dtype or src.ndim != e.ndim:
        return None
    if src is not e and not (owner_sop(src) == "exp" and src.owner.inputs[0] is e.owner.inputs[0]):
        return None
    axis = op.axis[0]
    kept = [d for d in range(e.ndim) if d != axis]
    dims: list[Any] = kept if order is None else [_X if o == _X else kept[o] for o in order]
    return axis, dims


def _broadcast_chain(var: Variable, seconds: bool) -> tuple[list[tuple[Any, int, list[Variable]]], Variable]:
    """Peel DimShuffles (and ``second(like, .)`` if ``seconds``) off ``var``: (steps, core).
    Whether the axes still line up is :func:`_ratio_axis`'s question."""
    steps: list[tuple[Any, int, list[Variable]]] = []
    while var.owner is not None:
        op = var.owner.op
        if seconds and sop_name(var.owner) == "second":
            steps.append((op, 1, list(var.owner.inputs)))
            var = var.owner.inputs[1]
        elif isinstance(op, DimShuffle):  # (dropped axes have length 1: checked when built)
            steps.append((op, 0, list(var.owner.inputs)))
            var = var.owner.inputs[0]
        else:
            break
    return steps, var


def _chain_dims(steps: list[tuple[Any, int, list[Variable]]], ndim: int) -> list[Any]:
    """For each axis of the chain's result, the axis of its core it runs along (or "x")."""
    dims: list[Any] = list(range(ndim))
    for op, _, _ in steps:
        if isinstance(op, DimShuffle):
            dims = [_X if d == _X else op.new_order[d] for d in dims]
    return dims


def _ratio_axis(steps: list, core_dims: list[Any], axis: int, ndim: int) -> bool:
    """The chain puts the sum's axes over the same axes of ``exp(x)`` (and a broadcast
    axis at the summed one), so the quotient divides each entry by its own row's sum."""
    outer = _chain_dims(steps, ndim)
    got = [_X if d == _X else core_dims[d] for d in outer]
    return got == [_X if p == axis else p for p in range(ndim)]


def _rebuild(steps: list[tuple[Any, int, list[Variable]]], core: Variable) -> Variable:
    for op, pos, ins in reversed(steps):
        ins = list(ins)
        ins[pos] = core
        core = op(*ins)
    return core


def _softmax(x: Variable, axis: int) -> Variable | None:
    nnet = _nnet()
    if nnet is None or not x.type.is_float or not 0 <= axis < x.ndim:
        return None
    return nnet.Softmax(axis)(x)


@register_local("stabilize", tracks=[Elemwise], tags=FAST)
def local_softmax_from_exp(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``exp(x) / sum(exp(x), axis) -> softmax(x, axis)``; ``exp(x) * bcast(g / sum(exp(x)))
    -> softmax(x) * bcast(g)`` (the gradient of ``log(sum(exp(x)))``)."""
    name = sop_name(node)
    if name == "true_div":
        e, d = node.inputs
        if owner_sop(e) != "exp" or e.ndim != d.ndim:
            return None
        steps, core = _broadcast_chain(d, seconds=False)
        found = _sum_of(core, e)
        if found is None or not _ratio_axis(steps, found[1], found[0], e.ndim):
            return None
        return _one(node, _softmax(e.owner.inputs[0], found[0]))
    if name != "mul":
        return None
    ins = node.inputs
    for i, e in enumerate(ins):
        if owner_sop(e) != "exp":
            continue
        for j, q in enumerate(ins):
            if j == i or q.ndim != e.ndim:
                continue
            steps, core = _broadcast_chain(q, seconds=True)
            if owner_sop(core) != "true_div":
                continue
            g, s = core.owner.inputs
            found = _sum_of(s, e)
            if found is None or g.dtype != core.dtype or g.ndim != s.ndim \
                    or not _ratio_axis(steps, found[1], found[0], e.ndim):
                continue
            sm = _softmax(e.owner.inputs[0], found[0])
            if sm is None:
                return None
            # g = fill(sum, c) only broadcasts c to the sum's shape, which the product
            # with softmax(x) does anyway: dropping it frees the sum of exp.
            if sop_name(g.owner) == "second" and _sum_of(g.owner.inputs[0], e) is not None \
                    and g.owner.inputs[1].ndim == g.ndim:
                g = g.owner.inputs[1]
            try:
                scaled = _rebuild(steps, g)
            except (TypeError, ValueError):
                return None
            rest = [v for k, v in enumerate(ins) if k not in (i, j)]
            return _one(node, E.mul(*rest, sm, scaled))
    return None


# ---------------------------------------------------------------------------------------
# p[arange(n), y]: Theano's tutorial way to pick each row's label
def _subtensor_classes() -> list[type]:
    try:
        from graphc.ops.subtensor import IncSubtensor, Subtensor
    except ImportError:  # subtensor may be mid-edit
        return []
    return [Subtensor, IncSubtensor]


_ROW_AND_LABEL = (("a",), ("a",))


def _counts_rows(fgraph: FunctionGraph, r: Variable, m: Variable, labels: Variable) -> bool:
    """``r`` is ``arange(n)`` with ``n`` the length of ``labels`` or of ``m``'s rows."""
    from graphc.ops.shape import ARange, Shape
    from graphc.ops.subtensor import Subtensor
    from graphc.rewrite.shapes import shape_info
    from graphc.rewrite.utils import scalar_constant

    if r.owner is None or not isinstance(r.owner.op, ARange):
        return False
    start, stop, step = r.owner.inputs
    if scalar_constant(start) != 0 or scalar_constant(step) != 1:
        return False
    node = stop.owner
    if node is None or not isinstance(node.op, Subtensor) or node.op.idx_list != (("i", 0),):
        return False
    shp = node.inputs[0]
    if shp.owner is None or not isinstance(shp.owner.op, Shape):
        return False
    v = shp.owner.inputs[0]
    # The labels' count: a count differing from the rows then raises (NumPy would pick the
    # first rows), as in Theano's rewrite of this form.
    return v is labels or (v.ndim > 0 and shape_info(fgraph).same_dim(v, 0, m, 0))


def _softmaxish(var: Variable) -> bool:
    nnet = _nnet()
    if nnet is None:
        return False
    if owner_sop(var) == "log":
        var = var.owner.inputs[0]
    return var.owner is not None and isinstance(var.owner.op, (nnet.Softmax, nnet.LogSoftmax))


def _scatter_for(fgraph: FunctionGraph, node: Apply) -> Variable | None:
    """``scatter(g, y, z)`` for ``node = inc_subtensor(z[arange(n), y], g)`` with zeros ``z``."""
    from graphc.rewrite.utils import constant_data

    nnet = _nnet()
    if getattr(node.op, "set_instead_of_inc", True) or node.op.idx_list != _ROW_AND_LABEL:
        return None
    z, g, r, labels = node.inputs
    if z.ndim != 2 or labels.ndim != 1 or g.ndim > 1 or g.dtype != z.dtype:
        return None
    zero = constant_data(z, through_fill=True)
    if zero is None or np.any(zero) or not _counts_rows(fgraph, r, z, labels):
        return None
    from graphc.rewrite.shapes import shape_info

    if not shape_info(fgraph).same_shape(g, labels):
        g = E.second(labels, g)  # LabelScatter takes one value per label
    return fit(nnet.LabelScatter()(g, labels, z), node.outputs[0])


def _picks_softmax(fgraph: FunctionGraph, labels: Variable) -> bool:
    """The graph picks from a (log-)softmax by ``labels`` (``sm[arange(n), labels]``, or
    what the rewrites made of it): a scatter by them is that pick's gradient."""
    nnet = _nnet()
    for c, _ in fgraph.clients.get(labels, []):
        if not isinstance(c, Apply):
            continue
        if isinstance(c.op, nnet.CrossentropySoftmax):
            return True
        if isinstance(c.op, nnet.LabelPick) or (len(c.inputs) == 3 and getattr(c.op, "idx_list", None)
                                                == _ROW_AND_LABEL):
            if _softmaxish(c.inputs[0]):
                return True
    return False


@register_local("stabilize", tracks=_subtensor_classes(), tags=FAST)
def local_pick_from_arange_index(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``sm[arange(n), y] -> pick(sm, y)`` for a (log-)softmax ``sm`` and, in its gradient,
    ``inc_subtensor(zeros[arange(n), y], g) -> scatter(g, y)``: the forms the cross-entropy
    rewrites and the division cancelling understand. Labels must then lie in
    ``[0, classes)`` (negative ones, which NumPy would wrap around, raise), as for
    ``categorical_crossentropy`` with labels."""
    nnet = _nnet()
    if nnet is None or node.op.idx_list != _ROW_AND_LABEL:
        return None
    if len(node.inputs) == 4:  # the gradient's scatter, next to the forward pick
        if not _picks_softmax(fgraph, node.inputs[3]):
            return None
        new = _scatter_for(fgraph, node)
        return [new] if new is not None else None
    m, r, labels = node.inputs
    if m.ndim != 2 or labels.ndim != 1 or not _softmaxish(m) or not _counts_rows(fgraph, r, m, labels):
        return None
    return _one(node, nnet.LabelPick()(m, labels))

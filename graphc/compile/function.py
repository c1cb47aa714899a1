"""``graphc.function``: compile inputs, outputs and updates into a callable.

Building a function: normalize the arguments, add default updates (random
streams), substitute ``givens``, collect the shared variables the graph reads,
build a FunctionGraph (a copy, so rewrites never touch the user's graph),
rewrite it, and hand it to a backend.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from graphc.compile.compiled_function import NO_VALUE, Function
from graphc.compile.compiled_function import NoNativeCodeError as NoNativeCodeError  # (re-exported)
from graphc.compile.mode import Mode, get_mode
from graphc.compile.shared import SharedVariable
from graphc.graph.basic import Constant, Variable, ancestors, clone_graph
from graphc.graph.fgraph import FunctionGraph
from graphc.tensor.basic import as_tensor_variable


class In:
    """An explicit input with options: ``In(x, value=0.5)`` gives a default value."""

    _NO_VALUE = NO_VALUE

    def __init__(
        self, variable: Variable, name: str | None = None, value: Any = _NO_VALUE,
        borrow: bool = False,
    ) -> None:
        if not isinstance(variable, Variable):
            raise TypeError(f"In() wraps a symbolic variable, got {type(variable).__name__}")
        self.variable = variable
        self.name = name or variable.name
        self.value = value
        self.borrow = borrow

    @property
    def has_default(self) -> bool:
        return self.value is not In._NO_VALUE


class Out:
    """An output with options: ``Out(y, borrow=True)`` may return internal storage.

    By default outputs are copied when they would alias a shared variable or an
    input, so callers can modify what they get back.
    """

    def __init__(self, variable: Variable, borrow: bool = False) -> None:
        self.variable = variable
        self.borrow = borrow


class UnusedInputError(ValueError):
    """An explicit input is not needed to compute any output or update."""


class MissingInputError(ValueError):
    """The outputs depend on a symbolic variable that is not an input."""


def function(
    inputs: Sequence[Variable | In] | None = None,
    outputs: Variable | Sequence[Variable] | None = None,
    updates: Mapping[Variable, Any] | Iterable[tuple[Variable, Any]] | None = None,
    givens: Mapping[Variable, Any] | Iterable[tuple[Variable, Any]] | None = None,
    mode: str | Mode | None = None,
    on_unused_input: str = "raise",
    allow_input_downcast: bool | None = None,
    name: str | None = None,
    no_default_updates: bool = False,
) -> Function:
    """Compile a callable computing ``outputs`` from ``inputs`` and applying ``updates``."""
    ins = [i if isinstance(i, In) else In(_check_input(i)) for i in (inputs or [])]
    seen: set[Variable] = set()
    for i in ins:
        if isinstance(i.variable, SharedVariable):
            raise TypeError(
                f"{i.variable!r} is a shared variable; it cannot be an explicit input (its value "
                f"is supplied automatically; use givens to replace it)"
            )
        if isinstance(i.variable, Constant):
            raise TypeError(f"{i.variable!r} is a constant; it cannot be an explicit input")
        if i.variable in seen:
            raise ValueError(f"input {i.variable!r} is given twice")
        seen.add(i.variable)

    single = outputs is not None and not isinstance(outputs, list | tuple)
    out_list = [] if outputs is None else [outputs] if single else list(outputs)
    borrow_outputs = [isinstance(o, Out) and o.borrow for o in out_list]
    out_list = [as_tensor_variable(o.variable if isinstance(o, Out) else o) for o in out_list]

    update_pairs = _normalize_updates(updates)
    if not no_default_updates:
        update_pairs = _add_default_updates(out_list, update_pairs)

    if givens:
        pairs = list(givens.items()) if isinstance(givens, Mapping) else list(givens)
        replace = {}
        for old, new in pairs:
            new = as_tensor_variable(new, dtype=old.dtype if not isinstance(new, Variable) else None)
            if new.dtype != old.dtype or new.ndim != old.ndim:
                raise TypeError(f"givens: {old!r} ({old.type}) cannot be replaced by {new!r} ({new.type})")
            replace[old] = new
        targets = out_list + [u for _, u in update_pairs]
        new_targets, _ = clone_graph(targets, replace)
        out_list = new_targets[: len(out_list)]
        update_pairs = [(s, u) for (s, _), u in zip(update_pairs, new_targets[len(out_list):])]

    targets = out_list + [u for _, u in update_pairs]
    needed = ancestors(targets)
    needed_set = set(needed)
    shared_inputs = [v for v in needed if isinstance(v, SharedVariable)]
    for s, _ in update_pairs:  # an updated variable is an input even if nothing reads it
        if s not in needed_set:
            shared_inputs.append(s)
            needed_set.add(s)
    shared_inputs = sorted(set(shared_inputs), key=lambda v: v.id)
    explicit = [i.variable for i in ins]
    explicit_set = set(explicit)
    for var in needed:
        if (var.owner is None and var not in explicit_set
                and not isinstance(var, Constant | SharedVariable)):
            raise MissingInputError(
                f"the outputs depend on {var!r} ({var.type}), which is not among the inputs "
                f"{explicit}; add it to the inputs or replace it with givens"
            )
    for var in explicit:
        if var not in needed_set:
            message = (
                f"input {var!r} is not used to compute any output or update; pass "
                f"on_unused_input='warn' or 'ignore' to allow it"
            )
            if on_unused_input == "raise":
                raise UnusedInputError(message)
            if on_unused_input == "warn":
                warnings.warn(message, stacklevel=2)

    fgraph = FunctionGraph(explicit + shared_inputs, targets, clone=True)
    chosen = get_mode(mode)
    # Rewriting and compiling make many objects that live as long as the function: the
    # collector's passes over them (and a new process's first full collection, ~15 ms over
    # everything imported so far) are deferred until after the compile.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        rewrite_log = chosen.rewrite(fgraph)
        fn = Function(ins, shared_inputs, update_pairs, fgraph, len(out_list), single, chosen,
                      allow_input_downcast, name, rewrite_log)
    finally:
        if gc_was_enabled:
            gc.enable()
    fn.borrow_outputs = borrow_outputs
    return fn


def _check_input(var: Any) -> Variable:
    if not isinstance(var, Variable):
        raise TypeError(
            f"function inputs must be symbolic variables, got {type(var).__name__}: {var!r}"
        )
    return var


def _normalize_updates(updates: Any) -> list[tuple[SharedVariable, Variable]]:
    if updates is None:
        return []
    pairs = list(updates.items()) if isinstance(updates, Mapping) else list(updates)
    result, targets = [], set()
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise TypeError(f"updates must be (shared_variable, new_value) pairs, got {pair!r}")
        target, expr = pair
        if not isinstance(target, SharedVariable):
            raise TypeError(f"update target {target!r} is not a shared variable")
        if target in targets:
            raise ValueError(f"shared variable {target!r} is updated twice")
        targets.add(target)
        expr = as_tensor_variable(expr, dtype=target.dtype if not isinstance(expr, Variable) else None)
        if expr.dtype != target.dtype:
            raise TypeError(
                f"the update of {target!r} has dtype {expr.dtype} but the variable is "
                f"{target.dtype}; cast the expression (expr.astype({target.dtype!r}))"
            )
        if expr.ndim != target.ndim or any(
            a is not None and b is not None and a != b
            for a, b in zip(expr.type.shape, target.type.shape)
        ):
            raise TypeError(
                f"the update of {target!r} has type {expr.type}, incompatible with {target.type}"
            )
        result.append((target, expr))
    return result


def _add_default_updates(outputs: list[Variable], pairs: list) -> list:
    pairs = list(pairs)
    done = {s for s, _ in pairs}
    frontier = outputs + [u for _, u in pairs]
    while frontier:
        new = []
        for var in ancestors(frontier):
            if isinstance(var, SharedVariable) and var.default_update is not None and var not in done:
                done.add(var)
                pairs.append((var, var.default_update))
                new.append(var.default_update)
        frontier = new
    return pairs

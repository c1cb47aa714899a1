"""Every differentiable op in the registry has a verify_grad case in some tests/ops module.

Each ``tests/ops/test_<family>.py`` defines ``GRAD_CASES = {op_name: (fn, [float64 arrays])}``
and runs ``verify_grad`` on each entry; this test only checks coverage and the shape of the
entries, so an op registered without a gradient test fails the suite.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

import numpy as np

import graphc.ops
import graphc.tensor  # noqa: F401  (registers the ops every user-facing module defines)
from graphc.ops.registry import OPS

OPS_TESTS = Path(__file__).resolve().parent


def _import_all_op_modules() -> None:
    # Some op modules are only imported lazily by others; load them all so each registers.
    for info in pkgutil.walk_packages(graphc.ops.__path__, "graphc.ops."):
        importlib.import_module(info.name)


def _test_modules() -> dict[str, ModuleType]:
    modules = {}
    for path in sorted(OPS_TESTS.glob("test_*.py")):
        if path.stem == Path(__file__).stem:
            continue
        name = f"tests.ops.{path.stem}"
        try:
            modules[name] = importlib.import_module(name)
        except Exception as exc:  # a broken module must not hide behind missing coverage
            raise AssertionError(f"cannot import {name} to collect its GRAD_CASES: {exc!r}") from exc
    return modules


def _collect() -> dict[str, list[tuple[str, object]]]:
    cases: dict[str, list[tuple[str, object]]] = {}
    for module_name, module in _test_modules().items():
        for op_name, case in getattr(module, "GRAD_CASES", {}).items():
            cases.setdefault(op_name, []).append((module_name, case))
    return cases


def test_every_differentiable_op_has_a_gradient_case() -> None:
    _import_all_op_modules()
    covered = _collect()
    differentiable = sorted(name for name, info in OPS.items() if info.differentiable)
    assert differentiable, "the op registry is empty"
    missing = [name for name in differentiable if name not in covered]
    assert not missing, (
        f"{len(missing)} differentiable op(s) have no GRAD_CASES entry in any tests/ops/test_*.py: "
        + ", ".join(f"{name} ({OPS[name].family})" for name in missing)
    )


def test_grad_cases_are_well_formed() -> None:
    problems = []
    for op_name, entries in _collect().items():
        for module_name, case in entries:
            where = f"{module_name}.GRAD_CASES[{op_name!r}]"
            if not (isinstance(case, tuple) and len(case) == 2):
                problems.append(f"{where} is not a (fn, inputs) pair")
                continue
            fn, inputs = case
            if not callable(fn):
                problems.append(f"{where}: the first item is not callable")
            if not isinstance(inputs, list | tuple) or not inputs:
                problems.append(f"{where}: the inputs are not a non-empty list")
                continue
            for k, value in enumerate(inputs):
                arr = np.asarray(value)
                if arr.dtype.kind != "f":
                    problems.append(f"{where}: input {k} has dtype {arr.dtype}, not float")
    assert not problems, "\n".join(problems)


def test_registry_lists_the_documented_elementwise_ops() -> None:
    # A guard against the registry silently losing names (the coverage test would then pass).
    expected = """add sub mul true_div int_div mod pow neg abs sgn exp exp2 expm1 log log2 log10 log1p
        sqrt sqr sin cos tan arcsin arccos arctan sinh cosh tanh arctanh floor ceil round maximum
        minimum clip switch cast erf eq neq lt le gt ge and_ or_ xor invert isnan isinf""".split()
    assert not [n for n in expected if n not in OPS]
    assert "ifelse" in OPS and OPS["ifelse"].differentiable
    assert OPS["dimshuffle"].differentiable and OPS["transpose"].differentiable
    assert not any(OPS[n].differentiable for n in ("eq", "neq", "lt", "le", "gt", "ge", "isnan",
                                                   "isinf", "and_", "or_", "xor", "invert"))

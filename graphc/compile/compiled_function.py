"""The callable ``graphc.function`` returns: argument binding, the per-node path of its
program, shape-specialized native plans (graphc.backend.llvm.plan) and how their
outputs and updates are handed back, and introspection (``llvm_ir``, ``asm``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from graphc.compile.mode import Mode
from graphc.compile.shared import SharedVariable
from graphc.config import config as _cfg
from graphc.graph.fgraph import FunctionGraph

if TYPE_CHECKING:
    from graphc.compile.function import In

# An argument not given (In's default value marker).
NO_VALUE = object()
# Plan or per-node path (``_new_plan``): bytes of output copied per us, us a plan saves per call.
_PLAN_COPY_BYTES_PER_US = 32 * 1024
_PLAN_SAVED_US = 4
# A function rebuilds its plan for new argument shapes at most this many times.
_MAX_PLAN_BUILDS = 8
# A plan whose kernels refused this many calls that the per-node path then ran without error
# is dropped: its kernels check a value that changes between calls (an Alloc's size given
# as an argument, say), so every call would pay for the plan and the per-node path both.
_MAX_PLAN_REFUSALS = 3


class NoNativeCodeError(TypeError):
    """Native-code introspection asked of a function compiled for the reference evaluator."""


class Function:
    """A compiled function. Call it with inputs by position or by name.

    Native functions (not lazy, not DEBUG) record their second call and, from then on,
    run calls with arguments of the recorded shapes as one native plan
    (graphc.backend.llvm.plan): arguments are checked natively, shared variables are
    updated in place or double-buffered, kernels write outputs into new arrays. Any other
    call, and every call with the NaN guard on, takes the per-node path, which converts or
    raises exactly as before; a new argument shape seen twice in a row gets its own plan.
    """

    def __init__(
        self, ins: list[In], shared_inputs: list[SharedVariable], update_pairs: list,
        fgraph: FunctionGraph, n_outputs: int, single: bool, mode: Mode,
        allow_input_downcast: bool | None, name: str | None, rewrite_log: list[str],
    ) -> None:
        self.ins = ins
        self.input_names = [i.name for i in ins]
        self.shared_inputs = shared_inputs
        self.updated = [s for s, _ in update_pairs]
        self.fgraph = fgraph
        self.maker = SimpleNamespace(fgraph=fgraph)  # Theano's f.maker.fgraph
        self.n_outputs, self.single = n_outputs, single
        self.mode = mode
        self.allow_input_downcast = allow_input_downcast
        self.name = name
        self.rewrite_log = rewrite_log
        self._program = mode.make_program(fgraph)
        self._position = {n: k for k, n in enumerate(self.input_names) if n}
        self._defaults = [
            i.variable.type.filter(i.value, i.name or f"#{k}", True) if i.has_default else None
            for k, i in enumerate(ins)
        ]
        self._prepare_calls()
        self.borrow_outputs = [False] * n_outputs
        self._plan: Any = None
        self._plan_builds = 0 if self._plans_possible() else _MAX_PLAN_BUILDS
        self._plan_why: str | None = None
        self._plan_refusals = 0
        self._last_miss: Any = None
        self._declined: set = set()  # argument shapes whose plan would cost more than it saves
        # Slow calls before one is recorded (a function called once never pays for a plan).
        self._record_in = 1 if self._plan_builds < _MAX_PLAN_BUILDS else -1

    # -- calling ----------------------------------------------------------------------------
    def _prepare_calls(self) -> None:
        """Precompute what each call checks, so a call with arrays of the exact dtypes does
        little Python work (the checks themselves are the same as ``filter``'s)."""
        self._n_in = len(self.ins)
        # Per input: (dtype, ndim, ((axis, static size), ...)).
        self._fast_checks = tuple(
            (np.dtype(i.variable.dtype), i.variable.ndim,
             tuple((ax, d) for ax, d in enumerate(i.variable.type.shape) if d is not None))
            for i in self.ins
        )
        self._containers = [s.container for s in self.shared_inputs]
        self._updated_containers = [s.container for s in self.updated]
        # Outputs the program allocated itself cannot alias inputs or shared values.
        fresh = getattr(self._program, "fresh_outputs", None)
        self._fresh = list(fresh) if fresh is not None else [False] * len(self.fgraph.outputs)

    @property
    def borrow_outputs(self) -> list[bool]:
        return self._borrow_outputs

    @borrow_outputs.setter
    def borrow_outputs(self, value: Sequence[bool]) -> None:
        self._borrow_outputs = list(value)
        # Per output: 0 return as is, 1 copy (it is also an update's value, so the shared
        # variable will hold it), 2 full alias check. A fresh output is allocated by the
        # program for its variable alone: it can only be an update's value if it is the
        # same variable.
        updated_vars = set(self.fgraph.outputs[self.n_outputs:])
        self._out_modes = [
            0 if borrow else (1 if self.fgraph.outputs[k] in updated_vars else 0) if self._fresh[k] else 2
            for k, borrow in enumerate(self._borrow_outputs)]
        self._upd_checks = [not f for f in self._fresh[self.n_outputs:]]
        self._store_updates = _update_storer(self._updated_containers, self._upd_checks)

    def _plans_possible(self) -> bool:
        program = self._program
        if not hasattr(program, "record") or getattr(program, "debug", True) or program.lazy:
            return False
        if os.environ.get("GRAPHC_PLANS", "1") == "0":  # the per-node path only (comparisons)
            return False
        # Each update's value is the output at n_outputs + k (see ``function``).
        self._plan_updates = [(s.container, self.n_outputs + k) for k, s in enumerate(self.updated)]
        return True

    def _bind(self, args: tuple, kwargs: dict) -> list[np.ndarray]:
        n = len(self.ins)
        if len(args) > n:
            raise TypeError(f"{self._label()} takes {n} inputs, got {len(args)}")
        values: list[Any] = list(args) + [NO_VALUE] * (n - len(args))
        for key, value in kwargs.items():
            if key not in self._position:
                raise TypeError(f"{self._label()} has no input named {key!r}; inputs: {self.input_names}")
            k = self._position[key]
            if values[k] is not NO_VALUE:
                raise TypeError(f"{self._label()}: input {key!r} given twice")
            values[k] = value
        result = []
        for k, (inp, value) in enumerate(zip(self.ins, values)):
            label = inp.name or f"#{k}"
            if value is NO_VALUE:
                if not inp.has_default:
                    raise TypeError(f"{self._label()}: missing input {label!r} (position {k})")
                result.append(self._defaults[k])
                continue
            result.append(inp.variable.type.filter(value, label, self.allow_input_downcast))
        return result

    def _label(self) -> str:
        return f"function {self.name!r}" if self.name else "the function"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        plan = self._plan
        if plan is not None and not kwargs and not _cfg.nan_guard:
            result = plan.call(args)
            if type(result) is not int:
                return result
            return self._plan_missed(plan, result, args)
        if self._record_in >= 0 and not _cfg.nan_guard:
            if self._record_in:
                self._record_in -= 1
                return self._call(args, kwargs, False)
            result = self._call(args, kwargs, True)  # a call that raises: the next one records
            self._record_in = -1
            return result
        return self._call(args, kwargs, False)

    def _call(self, args: tuple, kwargs: dict, record: bool) -> Any:
        """The per-node path (and, with ``record``, the call a new plan is built from)."""
        if kwargs or len(args) != self._n_in:
            inputs = self._bind(args, kwargs)
        else:
            inputs = list(args)
            ndarray = np.ndarray
            for k, (a, (dt, nd, fixed)) in enumerate(zip(args, self._fast_checks)):
                if type(a) is ndarray and a.dtype is dt and a.ndim == nd:
                    if not fixed:
                        continue
                    shape = a.shape
                    for ax, d in fixed:
                        if shape[ax] != d:
                            break
                    else:
                        continue
                inputs[k] = self._filter_one(k, a)  # converts, or raises the usual error
        shared_values = [c.value for c in self._containers]
        if record and not _cfg.nan_guard:
            results, vals, calls = self._program.record(inputs + shared_values)
        else:
            record = False
            results = self._program(inputs + shared_values)
        n_out = self.n_outputs
        new_values = results[n_out:]
        if new_values:
            self._store_updates(new_values, inputs)
        outputs = results[:n_out]
        for k, mode in enumerate(self._out_modes):
            o = outputs[k]
            if type(o) is not np.ndarray:
                o = outputs[k] = np.asarray(o)
            if mode == 1 or record:  # a plan reuses (and rebinds) the recorded arrays
                outputs[k] = o.copy()
            elif mode == 2:
                outputs[k] = _unaliased(o, inputs + shared_values + new_values)
        if record:
            self._new_plan(inputs, vals, calls, outputs)
        if self.single:
            return outputs[0]
        return outputs

    # -- shape-specialized plans (graphc.backend.llvm.plan) ---------------------------------
    def _plan_missed(self, plan: Any, rc: int, args: tuple) -> Any:
        from graphc.backend.llvm.plan import BUSY, FAILED, MISS, REPAIR

        if rc >= FAILED:  # a kernel refused: the per-node path raises the error, or computes
            result = self._call(args, {}, False)
            self._plan_refusals += 1
            if self._plan_refusals >= _MAX_PLAN_REFUSALS and self._plan is plan:
                self._plan = None
                self._plan_why = (f"its kernels refused {self._plan_refusals} calls the per-node "
                                  "path then computed (a value they check changes between calls)")
            return result

        if rc == BUSY and plan.owned:
            # Another thread runs this plan, writing shared values in place: wait for it (a
            # per-node call now could read a value half written).
            rc = plan.wait_and_run(args)
            if type(rc) is not int:
                return rc
        record = False
        if rc == REPAIR:
            if plan.repair():
                rc = plan.call(args)
                if type(rc) is not int:
                    return rc
            else:  # a shared value of another shape or layout: plan for it
                record = self._plan_builds < _MAX_PLAN_BUILDS
        if rc == MISS and self._plan_builds < _MAX_PLAN_BUILDS and self._plannable(args):
            # A new shape key: plan for it when it comes twice in a row (an epoch's last,
            # smaller batch does not make the next epoch rebuild).
            key = tuple(getattr(a, "shape", None) for a in args)
            record = key == self._last_miss and key not in self._declined
            self._last_miss = key
        return self._call(args, {}, record and not _cfg.nan_guard)

    def _plannable(self, args: tuple) -> bool:
        """Whether ``args`` are what a plan takes: arrays of the declared dtypes, C-contiguous."""
        if len(args) != self._n_in:
            return False
        floats = self.allow_input_downcast is not False
        for a, (dt, nd, _) in zip(args, self._fast_checks):
            if type(a) is float and nd == 0 and dt.kind == "f" and floats:
                continue  # the plan stores it into a 0-d array natively
            if type(a) is not np.ndarray or a.dtype is not dt or not a.flags.c_contiguous:
                return False
        return True

    def _new_plan(self, inputs: list[Any], vals: list[Any], calls: list[tuple],
                  outputs: list[np.ndarray]) -> None:
        from graphc.backend.llvm.plan import NoPlan, build_plan

        self._plan_builds += 1
        try:
            plan = build_plan(self._program, self._n_in, self._containers, self._plan_updates,
                              self.n_outputs, self.single, vals, calls,
                              floats_ok=self.allow_input_downcast is not False)
        except NoPlan as exc:  # a plan for other shapes stays
            self._plan_why = str(exc)
            if exc.shapes:  # e.g. kernels split across threads: the same shapes would again
                self._declined.add(tuple(getattr(a, "shape", None) for a in inputs[:self._n_in]))
            return
        # Kernels write a plan's outputs straight into new arrays; the copies it still makes
        # where the per-node path makes none (views of returned intermediates, an output
        # returned twice) cost ~1 us per ~32 KB against ~1 us saved per kernel call (+4 per
        # call): above that the per-node path is faster.
        if plan.copied > _PLAN_COPY_BYTES_PER_US * (_PLAN_SAVED_US + len(calls)):
            self._plan_why = f"outputs of {plan.copied} bytes copied: it costs more than a plan saves"
            self._declined.add(tuple(getattr(a, "shape", None) for a in inputs[:self._n_in]))
            return
        plan.repair()  # the updates just stored become the shared slots' values
        self._plan = plan
        self._plan_why = None
        self._plan_refusals = 0

    def _filter_one(self, k: int, value: Any) -> np.ndarray:
        inp = self.ins[k]
        return inp.variable.type.filter(value, inp.name or f"#{k}", self.allow_input_downcast)

    def __repr__(self) -> str:
        return f"<graphc.Function {self.name or ''} inputs={self.input_names}>"

    # -- introspection of the native code ----------------------------------------------------
    def _native(self, what: str) -> Any:
        program = self._program
        if not hasattr(program, "llvm_ir"):
            raise NoNativeCodeError(
                f"{what}: {self._label()} was compiled with backend {self.mode.backend!r} "
                f"(mode 'PY' runs the NumPy reference evaluator and generates no LLVM code); "
                f"compile it with mode='FAST_RUN', 'FAST_COMPILE' or 'DEBUG' to inspect native code"
            )
        return program

    def llvm_ir(self, kernel: Any = None, optimized: bool = True) -> str:
        """The LLVM IR of this function's kernels.

        ``kernel=None`` gives the text of every module the function runs; a node of
        ``fn.fgraph.toposort()``, a kernel name, or an index into the native nodes
        gives that kernel's definition. ``optimized=False`` shows the IR as generated,
        before LLVM's O3 pipeline. Nodes without a kernel run their reference
        ``perform``; ``fn.native_kernels()`` lists the ones that have one.
        """
        return self._native("llvm_ir()").llvm_ir(kernel, optimized)

    def asm(self, kernel: Any = None) -> str:
        """The host CPU's assembly for this function's kernels (all, or one: see ``llvm_ir``)."""
        return self._native("asm()").asm(kernel)

    def native_kernels(self) -> list[tuple[Any, str]]:
        """``(node, kernel name)`` for each node of the optimized graph that runs natively."""
        program = self._native("native_kernels()")
        return [(node, program.kernel_of[node]) for node in program.native_nodes]


def _update_storer(containers: list[Any], checks: list[bool]) -> Any:
    """``store(new_values, inputs)`` putting each update's value in its shared variable's
    container: generated straight-line code (a training step may update dozens). A value
    the program did not allocate itself (``checks``) is copied if it aliases an input."""
    names: dict[str, Any] = {"ndarray": np.ndarray, "asarray": np.asarray, "unaliased": _input_unaliased}
    lines = ["def store(new, inputs):"]
    for k, (c, check) in enumerate(zip(containers, checks)):
        names[f"c{k}"] = c
        lines.append(f"    v = new[{k}]")
        lines.append("    if type(v) is not ndarray:")
        lines.append("        v = asarray(v)")
        if check:
            lines.append("    v = unaliased(v, inputs)")
        lines.append(f"    c{k}.value = v")
    if not containers:
        lines.append("    pass")
    exec(compile("\n".join(lines), "<graphc update storer>", "exec"), names)  # noqa: S102 -- our own text
    return names["store"]


def _input_unaliased(value: np.ndarray, inputs: list[Any]) -> np.ndarray:
    if any(value is p or np.may_share_memory(value, p) for p in inputs):
        return value.copy()
    return value


def _unaliased(value: np.ndarray, protected: list[np.ndarray]) -> np.ndarray:
    if any(np.may_share_memory(value, p) for p in protected):
        return value.copy()
    return value

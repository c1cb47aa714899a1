"""LLVMProgram: runs a FunctionGraph with native elementwise kernels.

Compile time does everything it can: each node gets a *runner* (a closure over
its kernel, dtypes, rank and slots), all new kernels go into one LLVM module
compiled once, and kernels already compiled in this process are reused. A call
then only checks each native node's inputs (dtype, rank, broadcast shapes: the
guard that keeps bad input out of native code), allocates outputs with NumPy and
calls the kernel through ctypes. Nodes without a kernel run their reference
``perform`` through ``run_node``. ``debug=True`` runs the reference beside every
native node and raises on the first disagreement.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from llvmlite import ir

from graphc.backend.llvm import gates, jit, kernel_parts, parallel
from graphc.backend.llvm.entry import ENTRIES
from graphc.backend.llvm.expr import ScalarDAG, dag_for_node
from graphc.backend.llvm.kernel import build_kernel, check_dag, kernel_name, pyarray_layout_ok
from graphc.backend.llvm.lowering import NativeNode, make_runner, native_lowering
from graphc.backend.reference import NodeRuntimeError
from graphc.graph.basic import Apply, Variable
from graphc.graph.fgraph import FunctionGraph

Runner = Callable[[list[Any]], list[Any]]


class DebugModeError(NodeRuntimeError):
    """In DEBUG mode, a native kernel disagreed with the reference evaluator."""


# -- process-wide kernel cache ---------------------------------------------------------
_cache_lock = threading.Lock()
_kernels: dict[str, tuple[int, jit.CompiledModule]] = {}
_unsupported: dict[str, str] = {}  # kernels that cannot be built, and why
_LAYOUT_OK: bool | None = None


def native_available() -> bool:
    """Whether kernels can run here (the ndarray struct layout they read is as expected)."""
    global _LAYOUT_OK
    if _LAYOUT_OK is None:
        _LAYOUT_OK = pyarray_layout_ok()
    return _LAYOUT_OK


def _cfunc(addr: int, nargs: int) -> Callable[..., int]:
    """``f(start, stop, *arrays) -> status`` for the kernel at ``addr``: its fast entry
    (graphc.backend.llvm.entry, ~10x cheaper per call) when it has one, else ctypes."""
    fast = ENTRIES.get(addr)
    if fast is not None:
        return fast  # type: ignore[return-value]
    # CFUNCTYPE releases the GIL during the call, so threads can share a kernel.
    proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                             *([ctypes.py_object] * nargs))
    return proto(addr)


WHOLE = 1 << 62  # "stop" meaning the whole array
# Below this many elements splitting is not worth it for kernels doing transcendental math
# (exp, tanh, ...). The native pool's round trip is ~0.5-2 us with its workers spinning,
# ~2-4 us to wake them (the Python pool's was 50-80 us, hence 2**19 before). Measured on 2
# cores, back-to-back calls of exp(x)*y+tanh(z) (median, load ~1.4): 2**13 floats 5.7 us
# alone, 4.1 split; 2**15: 21.6 vs 12.2; 2**17: 84 vs 43; 2**19: 351 vs 180. A late worker
# costs little: the caller claims the slices nobody has taken (under full load the splits'
# medians ran 0.96-1.0x one thread at 2**12-2**20); a worker sharing a busy core does (W6
# sin on 1e6 under load: 0.75 ms split, 0.59 alone; hence two slices per thread and the
# pool's back-off, see graphc.backend.llvm.parallel). 2**15 would pay too; 2**16 keeps
# the sizes the plan tests (test_plan_outputs) build below and above it.
PARALLEL_MIN_ELEMENTS = 1 << 16
# Kernels of cheap arithmetic only (add, relu, compare...) are memory-bound: they split only
# from this many times PARALLEL_MIN_ELEMENTS, 2**19. x*y+z, back-to-back (load ~1.5): 2**17
# 37.6 us alone, 37.5 split (the data sits in the caller's L2; slices go to whichever
# thread claims them); 2**18 104 vs 39; 2**19 241 vs 125; 2**20 564 vs 290 (with the other
# core busy, as good as one thread: 2**20 596 vs 597).
CHEAP_KERNEL_FACTOR = 8
_CHEAP_OPS = frozenset({
    "add", "sub", "mul", "neg", "abs", "sgn", "sqr", "maximum", "minimum", "clip", "switch",
    "eq", "neq", "lt", "le", "gt", "ge", "and_", "or_", "xor", "invert", "floor", "ceil", "round",
    "second", "identity", "cast", "relu", "isnan", "isinf",
})


def _split_factor(dag: ScalarDAG) -> int:
    """CHEAP_KERNEL_FACTOR when every op of ``dag`` is cheap arithmetic, else 1."""
    from graphc.backend.llvm.expr import topo_order

    ops = {n.op for n in topo_order(dag.outputs) if n.kind == "apply"}
    return CHEAP_KERNEL_FACTOR if ops <= _CHEAP_OPS else 1


_CPUS = max(1, min(os.cpu_count() or 1, 4))


def kernel_threads() -> int:
    """Threads for large contiguous kernels: GRAPHC_THREADS, else the CPU count (at most 4)."""
    env = os.environ.get("GRAPHC_THREADS")
    if env:
        return max(1, int(env))
    return _CPUS


_pool: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    # A forked child has none of the parent's threads: waiting on that pool would hang.
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def _run_split(cfunc: Callable[..., int], size: int, args: list[Any], threads: int) -> int:
    """Run the contiguous kernel on ``threads`` slices of [0, size); nonzero if any refused.

    Through the native pool (graphc.backend.llvm.parallel: a round trip of a few us) when
    it runs here and the kernel is a native one; else through a Python thread pool."""
    par = parallel.splitter(cfunc, threads)
    if par is not None:
        return par(size, threads, *args)
    global _pool
    if _pool is None:
        with _cache_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="graphc-kernel")
    chunk = -(-size // threads)
    chunk += -chunk % 64  # whole cache lines and vectors per slice
    futures = [_pool.submit(cfunc, lo, lo + chunk, *args) for lo in range(chunk, size, chunk)]
    rc = cfunc(0, chunk, *args)
    for f in futures:
        rc |= f.result()
    return rc


def _broadcast_shape(shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    first = shapes[0]
    for s in shapes:
        if s != first:
            break
    else:
        return first
    out = []
    for dims in zip(*shapes):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise ValueError(f"shapes {list(shapes)} cannot be broadcast together")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


class _Plan:
    """A native node waiting for its kernel address."""

    def __init__(self, node: Apply, dag: ScalarDAG, taken: list[int], name: str, ndim: int) -> None:
        self.node, self.dag, self.taken, self.name, self.ndim = node, dag, taken, name, ndim
        self.native: NativeNode | None = None


def _native_runner(plan: _Plan, cfunc: Callable[..., int], debug: bool) -> Runner:
    """The gate in front of an elementwise kernel (graphc.backend.llvm.gates)."""
    return gates.elemwise_runner(plan, cfunc, debug)


def _compare(node: Apply, k: int, got: np.ndarray, want: np.ndarray) -> None:
    problem = None
    if got.dtype != want.dtype:
        problem = f"dtype {got.dtype} vs reference {want.dtype}"
    elif got.shape != want.shape:
        problem = f"shape {got.shape} vs reference {want.shape}"
    elif got.dtype.kind == "f":
        rtol, atol = (1e-4, 1e-6) if got.dtype.itemsize <= 4 else (1e-9, 1e-12)
        ok = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
        if not ok.all():
            idx = np.argwhere(~ok)[0]
            problem = (f"value {got[tuple(idx)]!r} vs reference {want[tuple(idx)]!r} at index "
                       f"{tuple(int(i) for i in idx)} ({int((~ok).sum())} elements differ)")
    elif not np.array_equal(got, want):
        problem = "values differ from the reference"
    if problem:
        raise DebugModeError(
            f"DEBUG mode: native {node.op} disagrees with the reference on output {k}: "
            f"{problem}\n  the op was built at {node.trace}"
        )


def _canonical(value: Any) -> Any:
    """``value`` with NumPy's own dtype object for its dtype (a constant unpickled from the
    rewrite cache has an equal but distinct one, and the gates check dtypes by identity:
    each call would convert it)."""
    if type(value) is np.ndarray:
        canon = np.dtype(value.dtype.str)
        if value.dtype is not canon and value.dtype == canon:
            return value.view(canon)
    return value


def _remaker(plan: _Plan, cf: Callable[..., int]) -> Callable[[Callable[..., int]], Runner]:
    """``remake(f)``: the node's runner again (no debug checks), calling ``f(cf, *args)``
    instead of its kernel ``cf`` (``record`` logs the calls a plan replays)."""

    def remake(f: Callable[..., int]) -> Runner:
        def call(*args: Any) -> int:
            return f(cf, *args)

        if plan.native is not None:
            return make_runner(plan.node, plan.native, call, False)
        return _native_runner(plan, call, False)

    return remake


def _fallback_runner(node: Apply) -> Runner:
    """The reference ``perform`` with its checks (graphc.backend.llvm.gates)."""
    return gates.fallback_runner(node)


class LLVMProgram:
    """Evaluates a FunctionGraph with native kernels where possible (see module doc)."""

    def __init__(self, fgraph: FunctionGraph, debug: bool = False, opt: int = 3) -> None:
        self.fgraph = fgraph
        self.debug = debug
        self.opt = opt
        self.order = fgraph.toposort()
        self.lazy = any(node.op.lazy for node in self.order)
        self.native_nodes: list[Apply] = []
        self.fallback_nodes: list[tuple[Apply, str]] = []
        self.modules: list[jit.CompiledModule] = []
        self.kernel_of: dict[Apply, str] = {}  # native node -> its kernel's name
        self.kernel_addr: dict[Apply, int] = {}  # native node -> its kernel's address
        # native node -> makes its runner around another kernel caller (recording, plans)
        self._remake: dict[Apply, Callable[[Callable[..., int]], Runner]] = {}
        self.runners: dict[Apply, Runner] = self._compile()
        self._plan_slots()

    # -- compile time --------------------------------------------------------------------
    def _compile(self) -> dict[Apply, Runner]:
        """Plan every node, compile the kernels not yet in this process (one module, through
        the on-disk cache: IR is only built on a miss), then make each node's runner."""
        plans: list[_Plan] = []
        runners: dict[Apply, Runner] = {}
        builders: dict[str, Callable[[ir.Module], object]] = {}
        for node in self.order:
            plan = self._plan(node, builders) if native_available() else None
            if plan is None:
                runners[node] = _fallback_runner(node)
            else:
                plans.append(plan)
        if builders:
            compiled, failures = kernel_parts.compile_kernels(builders, self.opt)
            with _cache_lock:
                if compiled is not None:
                    self.modules.append(compiled)
                    for n, addr in compiled.addresses.items():
                        _kernels[self._key(n)] = (addr, compiled)
                for n, reason in failures.items():
                    _unsupported[self._key(n)] = reason
        for plan in plans:
            with _cache_lock:
                found = _kernels.get(self._key(plan.name))
                reason = _unsupported.get(self._key(plan.name), "no kernel for this computation")
            if found is None:
                runners[plan.node] = _fallback_runner(plan.node)
                self.fallback_nodes.append((plan.node, reason))
                continue
            addr, compiled = found
            if compiled not in self.modules:
                self.modules.append(compiled)
            if plan.native is not None:  # a whole-node lowering (graphc.backend.llvm.lowering)
                cf = _cfunc(addr, plan.native.nargs)
                runners[plan.node] = make_runner(plan.node, plan.native, cf, self.debug)
            else:
                cf = _cfunc(addr, len(plan.dag.inputs) + len(plan.dag.outputs))
                runners[plan.node] = _native_runner(plan, cf, self.debug)
            self._remake[plan.node] = _remaker(plan, cf)
            self.kernel_addr[plan.node] = addr
            self.native_nodes.append(plan.node)
            self.kernel_of[plan.node] = plan.name
        return runners

    def _key(self, name: str) -> str:
        return f"{name}@O{self.opt}"

    def _plan(self, node: Apply, builders: dict[str, Callable[[ir.Module], object]]) -> _Plan | None:
        native = native_lowering(node)
        if native is not None:
            with _cache_lock:
                cached = self._key(native.name) in _kernels
                reason = _unsupported.get(self._key(native.name))
            if reason is not None:
                self.fallback_nodes.append((node, reason))
                return None
            if not cached:
                builders.setdefault(native.name, native.build)
            plan = _Plan(node, None, [], native.name, 0)
            plan.native = native
            return plan
        found = dag_for_node(node)
        if found is None:
            self.fallback_nodes.append((node, "no kernel for this op"))
            return None
        dag, taken = found
        ndim = node.inputs[taken[0]].ndim
        if any(node.inputs[i].ndim != ndim for i in taken):
            self.fallback_nodes.append((node, "inputs of different ranks"))
            return None
        name = kernel_name(dag, ndim)
        key = self._key(name)
        with _cache_lock:
            cached = key in _kernels
            reason = _unsupported.get(key)
        if reason is not None:
            self.fallback_nodes.append((node, reason))
            return None
        if not cached and name not in builders:
            out_dtypes = [o.dtype for o in dag.outputs]

            def build(module: ir.Module, dag: Any = dag, ndim: int = ndim) -> object:
                # Checked only when the kernel is built: a cache hit skips it (and its imports,
                # e.g. SciPy for erf); Unsupported leaves the kernel out (compile_kernels).
                check_dag(dag)
                return build_kernel(module, dag, ndim, out_dtypes)

            builders[name] = build
        return _Plan(node, dag, taken, name, ndim)

    def _plan_slots(self) -> None:
        slot: dict[Variable, int] = {}
        template: list[Any] = []

        def get(var: Variable) -> int:
            if var not in slot:
                slot[var] = len(template)
                template.append(_canonical(var.data) if var.owner is None and hasattr(var, "data")
                                else None)
            return slot[var]

        self.input_slots = [get(v) for v in self.fgraph.inputs]
        steps = []
        for node in self.order:
            ins = [get(v) for v in node.inputs]
            outs = [get(v) for v in node.outputs]
            steps.append((self.runners[node], ins, outs))
        self.output_slots = [get(v) for v in self.fgraph.outputs]
        # Release intermediates after their last use, so peak memory stays that of the reference.
        keep = set(self.output_slots) | set(self.input_slots)
        keep |= {s for v, s in slot.items() if v.owner is None}
        last: dict[int, int] = {}
        for k, (_, ins, outs) in enumerate(steps):
            for s in ins + outs:
                last[s] = k
        frees: list[list[int]] = [[] for _ in steps]
        for s, k in last.items():
            if s not in keep:
                frees[k].append(s)
        self.steps = [(r, ins, outs, tuple(frees[k])) for k, (r, ins, outs) in enumerate(steps)]
        self.template = template
        self.slot = slot
        produced = {s: getattr(r, "fresh", False) for r, _, outs, _ in self.steps for s in outs}
        inputs = set(self.input_slots)
        # Outputs this program allocated itself (so they cannot alias inputs or shared values).
        self.fresh_outputs = [s not in inputs and produced.get(s, False) for s in self.output_slots]
        if not self.lazy:
            self._run = self._straight_line()

    def _straight_line(self) -> Callable[[Sequence[Any]], list[Any]]:
        """The whole graph as one generated Python function: runners called in order on local
        variables (no per-node loop, list indexing or slot bookkeeping at run time);
        intermediates are deleted after their last use."""
        names: dict[str, Any] = {}
        lines = ["def run(inputs):"]
        if self.input_slots:
            lines.append(f"    {''.join(f'v{s}, ' for s in self.input_slots)}= inputs")
        inputs = set(self.input_slots)
        for s, value in enumerate(self.template):
            if value is not None and s not in inputs:
                names[f"k{s}"] = value
                lines.append(f"    v{s} = k{s}")
        for k, (runner, ins, outs, free) in enumerate(self.steps):
            names[f"r{k}"] = runner
            lines.append(f"    {''.join(f'v{o}, ' for o in outs)}= r{k}([{', '.join(f'v{i}' for i in ins)}])")
            if free:
                lines.append(f"    del {', '.join(f'v{f}' for f in free)}")
        lines.append(f"    return [{', '.join(f'v{o}' for o in self.output_slots)}]")
        code = compile("\n".join(lines), f"<graphc program {id(self):x}>", "exec")
        exec(code, names)  # noqa: S102 -- our own generated text, names only
        return names["run"]

    # -- run time ------------------------------------------------------------------------
    def __call__(self, input_values: Sequence[Any]) -> list[Any]:
        if self.lazy:
            return self._run_on_demand(input_values)
        if len(input_values) != len(self.input_slots):
            raise TypeError(f"the program takes {len(self.input_slots)} values, got {len(input_values)}")
        return self._run(input_values)

    def record(self, input_values: Sequence[Any]) -> tuple[list[Any], list[Any], list[tuple]]:
        """Run the graph once as ``__call__`` does, keeping every slot's value and every kernel
        call ``(node, arguments, status)`` (graphc.backend.llvm.plan replays them)."""
        if self.lazy:
            raise TypeError("lazy graphs are evaluated on demand, not recorded")
        if len(input_values) != len(self.input_slots):
            raise TypeError(f"the program takes {len(self.input_slots)} values, got {len(input_values)}")
        calls: list[tuple] = []
        vals = list(self.template)
        for s, v in zip(self.input_slots, input_values):
            vals[s] = v
        for node, (runner, ins, outs, _) in zip(self.order, self.steps):
            remake = self._remake.get(node)
            if remake is not None:
                def rec(cf: Callable[..., int], *a: Any, node: Apply = node) -> int:
                    rc = cf(*a)
                    calls.append((node, a, rc))
                    return rc

                runner = remake(rec)
            for o, v in zip(outs, runner([vals[i] for i in ins])):
                vals[o] = v
        return [vals[s] for s in self.output_slots], vals, calls

    def _run_on_demand(self, input_values: Sequence[Any]) -> list[Any]:
        """As the reference evaluator: compute only what outputs need; lazy ops choose."""
        values: dict[Variable, Any] = {
            v: self.template[s] for v, s in self.slot.items() if self.template[s] is not None
        }
        values.update(zip(self.fgraph.inputs, input_values))
        stack = list(self.fgraph.outputs)
        while stack:
            var = stack[-1]
            if var in values:
                stack.pop()
                continue
            node = var.owner
            missing = [i for i in node.op.needed_inputs(node, values) if i not in values]
            if missing:
                stack.extend(missing)
                continue
            outs = self.runners[node]([values.get(i) for i in node.inputs])
            values.update(zip(node.outputs, outs))
            stack.pop()
        return [values[o] for o in self.fgraph.outputs]

    # -- introspection -------------------------------------------------------------------
    def kernel_name(self, kernel: Apply | str | int) -> str:
        """The kernel running ``kernel``: a node of the graph, a kernel name, or an index
        into ``native_nodes``."""
        if isinstance(kernel, str):
            if not any(kernel in m.addresses for m in self.modules):
                raise KeyError(f"no kernel named {kernel!r}; this function's kernels: "
                               f"{sorted(set(self.kernel_of.values()))}")
            return kernel
        if isinstance(kernel, int):
            return self.kernel_of[self.native_nodes[kernel]]
        if kernel in self.kernel_of:
            return self.kernel_of[kernel]
        why = dict(self.fallback_nodes).get(kernel)
        if why is not None:
            raise ValueError(f"{kernel.op} runs its reference perform, not a kernel ({why})")
        raise ValueError(f"{kernel} is not a node of this function's graph")

    def _module_of(self, name: str) -> jit.CompiledModule:
        return next(m for m in self.modules if name in m.addresses)

    def llvm_ir(self, kernel: Apply | str | int | None = None, optimized: bool = True) -> str:
        """LLVM IR: of one kernel (see ``kernel_name``), or of every module this program uses."""
        if kernel is not None:
            name = self.kernel_name(kernel)
            m = self._module_of(name)
            return jit.function_ir(m.opt_ir_text if optimized else m.ir_text, name)
        return "\n".join(m.opt_ir_text if optimized else m.ir_text for m in self.modules)

    def asm(self, kernel: Apply | str | int | None = None) -> str:
        """Host assembly: of one kernel, or of every module this program uses."""
        if kernel is not None:
            name = self.kernel_name(kernel)
            return jit.function_asm(self._module_of(name).asm(), name)
        return "\n".join(m.asm() for m in self.modules)

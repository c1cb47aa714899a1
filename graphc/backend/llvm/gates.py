"""Runners: what the executor calls for each node, with the per-call work precomputed.

A runner takes the node's input values and returns its outputs. For a native node it
is the gate in front of native code: every input is made an ndarray of the kernel's
dtype and rank, the output shape is the inputs' broadcast (or the call fails with the
reference's error), and the outputs are allocated with that shape before the kernel
runs. Nodes without a kernel run their reference ``perform`` with the reference's
checks, DimShuffle as a precomputed view.

The elementwise gate is generated Python source, specialized for its node (input
count, positions, dtypes, rank, output count): no loops over inputs, no lookups of
per-node data at call time. The broadcast shape of the last input shapes is
remembered, so a training loop calling with the same shapes does no broadcasting work.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.backend.llvm.expr import input_dependencies
from graphc.backend.reference import NodeRuntimeError, describe_failure, run_node
from graphc.config import config
from graphc.graph.basic import Apply
from graphc.ops.elemwise import Elemwise

Runner = Callable[[list[Any]], list[Any]]

_GATE = '''
def run(values):
{convert}
    key = {key}
    last = memo[0]
    if key == last[0]:
        shape = last[1]
    else:
        shape = resolve(values, key)
    if shape is None:
        return reference(values)
{alloc}
    if threads > 1 and o0.size >= ex.PARALLEL_MIN_ELEMENTS * split_factor and contiguous(({arrays},), shape):
        rc = ex._run_split(cfunc, o0.size, [{arrays}, {outs}], threads)
        if rc:
            rc = cfunc(0, WHOLE, {arrays}, {outs})
    else:
        rc = cfunc(0, WHOLE, {arrays}, {outs})
    if rc:
        return reference(values)  # raises the reference's error, or computes it
    outs = [{outs}]
    if post is not None:
        outs = finish(values, outs)
    if cfg.nan_guard:  # read per call: it may be switched on after compiling
        nan_check(outs)
    return outs
'''

_CONVERT = '''    a{k} = values[{pos}]
    if type(a{k}) is not ndarray or a{k}.dtype is not dt{k} or a{k}.ndim != {ndim}:
        a{k} = convert(values, {k}, a{k})'''

_ALLOC = '''    for o{j} in pool{j}:
        if getrefcount(o{j}) == 3 and o{j}.shape == shape:  # the pool, o{j}, the argument
            break
    else:
        o{j} = alloc({j}, shape)'''


_GATE_CODE: dict[str, Any] = {}


def _split_factor(plan: Any) -> int:
    """The node's split factor, computed once (its gate is made again to record a call)."""
    factor = getattr(plan, "split_factor", None)
    if factor is None:
        from graphc.backend.llvm import executor as ex

        factor = plan.split_factor = ex._split_factor(plan.dag)
    return factor


def elemwise_runner(plan: Any, cfunc: Callable[..., int], debug: bool) -> Runner:
    """The gate of an elementwise (or fused) kernel: see the module docstring."""
    from graphc.backend.llvm import executor as ex

    node = plan.node
    taken = tuple(plan.taken)
    ndim = plan.ndim
    nin = len(taken)
    in_dt = tuple(np.dtype(node.inputs[i].dtype) for i in taken)
    out_dt = tuple(np.dtype(o.dtype) for o in plan.dag.outputs)
    nout = len(out_dt)
    # Inputs statically of one element are loaded once by the kernel; the others ("full")
    # set the iteration space and must have it as their shape to split across threads.
    full_inputs = tuple(k for k, (_, scalar) in enumerate(plan.dag.inputs) if not scalar)
    # A fused node's extra outputs may read fewer inputs, hence broadcast to a smaller shape:
    # then its kernel (one iteration space) does not apply and the reference runs.
    partial = [sorted(d) for d in input_dependencies(plan.dag) if len(d) != nin]
    post = getattr(node.op, "reduce", None) if not isinstance(node.op, Elemwise) else None
    # The last input shapes and their broadcast (None: the reference runs), as one tuple
    # replaced whole, so threads sharing this gate never see a shape paired with other inputs.
    memo: list[Any] = [(None, None)]

    def fail(values: list[Any], exc: Exception) -> None:
        raise NodeRuntimeError(describe_failure(node, values, exc)) from exc

    def convert(values: list[Any], k: int, a: Any) -> np.ndarray:
        a = np.asarray(a, dtype=in_dt[k])
        if a.ndim != ndim:
            fail(values, ValueError(f"input {taken[k]} has {a.ndim} dimensions, expected {ndim}"))
        return a

    def resolve(values: list[Any], key: Any) -> tuple[int, ...] | None:
        shapes = [key] if nin == 1 else list(key)
        try:
            shape = ex._broadcast_shape(shapes)
        except ValueError as exc:
            fail(values, exc)
        if any(ex._broadcast_shape([shapes[k] for k in deps] or [()]) != shape for deps in partial):
            shape = None
        memo[0] = (key, shape)
        return shape

    def reference(values: list[Any]) -> list[Any]:
        # The reference may return views of its inputs: copy those, so outputs stay fresh.
        outs = run_node(node, values)
        return [o.copy() if isinstance(o, np.ndarray) and any(
            isinstance(v, np.ndarray) and np.may_share_memory(o, v) for v in values) else o for o in outs]

    # Output buffers are reused once nothing else refers to them (the caller dropped the
    # result, or the intermediate was released): fresh pages cost a page fault each.
    pools: tuple[list[np.ndarray], ...] = tuple([] for _ in out_dt)

    def alloc(j: int, shape: tuple[int, ...]) -> np.ndarray:
        buf = np.empty(shape, out_dt[j])
        pool = pools[j]
        if len(pool) >= 2:
            pool.pop(0)
        pool.append(buf)
        return buf

    def contiguous(arrays: tuple[np.ndarray, ...], shape: tuple[int, ...]) -> bool:
        return all(arrays[k].flags.c_contiguous and arrays[k].shape == shape for k in full_inputs)

    def finish(values: list[Any], outs: list[np.ndarray]) -> list[Any]:
        try:
            return list(post.perform(node, outs))
        except (ValueError, IndexError, TypeError) as exc:
            fail(values, exc)
            raise  # unreachable: fail raises

    def nan_check(outs: list[np.ndarray]) -> None:
        for o in outs:
            if o.dtype.kind == "f" and np.isnan(o).any():
                raise NodeRuntimeError(f"NaN guard: {node.op} produced NaN (built at {node.trace})")

    names: dict[str, Any] = {
        "ndarray": np.ndarray, "getrefcount": sys.getrefcount, "memo": memo, "resolve": resolve,
        "reference": reference, "convert": convert, "alloc": alloc, "contiguous": contiguous,
        "finish": finish, "nan_check": nan_check, "post": post, "cfg": config, "cfunc": cfunc,
        "ex": ex, "WHOLE": ex.WHOLE, "threads": ex.kernel_threads(),
        "split_factor": _split_factor(plan),
    }
    for k, dt in enumerate(in_dt):
        names[f"dt{k}"] = dt
    for j, pool in enumerate(pools):
        names[f"pool{j}"] = pool
    source = _GATE.format(
        convert="\n".join(_CONVERT.format(k=k, pos=pos, ndim=ndim) for k, pos in enumerate(taken)),
        key="a0.shape" if nin == 1 else "(" + "".join(f"a{k}.shape, " for k in range(nin)) + ")",
        alloc="\n".join(_ALLOC.format(j=j) for j in range(nout)),
        arrays=", ".join(f"a{k}" for k in range(nin)),
        outs=", ".join(f"o{j}" for j in range(nout)),
    )
    code = _GATE_CODE.get(source)
    if code is None:  # gates of the same shape of node share their (specialized) code
        code = _GATE_CODE[source] = compile(source, "<graphc elementwise gate>", "exec")
    exec(code, names)  # noqa: S102 -- our own text
    run = names["run"]
    run.fresh = True  # outputs are never views of inputs
    if not debug:
        return run

    def run_checked(values: list[Any]) -> list[Any]:
        outs = run(values)
        ref = run_node(node, list(values))
        for k, (got, want) in enumerate(zip(outs, ref)):
            ex._compare(node, k, np.asarray(got), np.asarray(want))
        return outs

    run_checked.fresh = True  # type: ignore[attr-defined]
    return run_checked


def dimshuffle_runner(node: Apply, general: Runner) -> Runner:
    """DimShuffle as one precomputed view (a transpose, then an index adding and dropping
    length-1 axes): what ``perform`` computes, without its per-call work. Anything unusual
    (another dtype or rank, a dropped axis not of length 1) goes to ``general``."""
    op = node.op
    perm = op.kept + op.dropped
    transpose = perm != tuple(range(op.input_ndim))
    index = tuple(None if o == "x" else slice(None) for o in op.new_order) + (0,) * len(op.dropped)
    if not op.new_order:
        index = ()
    dropped = op.dropped
    dt = np.dtype(node.inputs[0].dtype)
    nd = op.input_ndim
    ndarray = np.ndarray
    cfg = config

    def run(values: list[Any]) -> list[Any]:
        x = values[0]
        if type(x) is not ndarray or x.dtype is not dt or x.ndim != nd or cfg.nan_guard:
            return general(values)
        shape = x.shape
        for d in dropped:
            if shape[d] != 1:
                return general(values)  # raises the reference's error
        if not index:  # a 0-d result: indexing would give a NumPy scalar
            return [x.reshape(())]
        return [(x.transpose(perm) if transpose else x)[index]]

    return run


def fallback_runner(node: Apply) -> Runner:
    """``run_node`` (the reference ``perform`` with its error messages and output checks),
    with the checks of the common case (arrays of the declared dtype, rank and static
    sizes) precomputed; anything else goes through ``run_node``'s own checks."""
    from graphc.ops.dimshuffle import DimShuffle

    general = reference_runner(node)
    if type(node.op) is DimShuffle:
        return dimshuffle_runner(node, general)
    return general


def reference_runner(node: Apply) -> Runner:
    perform = node.op.perform
    n_out = len(node.outputs)
    expect = [(np.dtype(v.dtype), v.ndim,
               tuple((ax, d) for ax, d in enumerate(v.type.shape) if d is not None))
              for v in node.outputs]
    ndarray = np.ndarray
    errors = (ValueError, IndexError, TypeError, ZeroDivisionError, np.linalg.LinAlgError)

    def run(values: list[Any]) -> list[Any]:
        try:
            outs = perform(node, values)
        except NodeRuntimeError:
            raise
        except errors as exc:
            raise NodeRuntimeError(describe_failure(node, values, exc)) from exc
        if len(outs) == n_out and not config.nan_guard:
            for value, (dt, nd, fixed) in zip(outs, expect):
                if type(value) is not ndarray or value.dtype != dt or value.ndim != nd:
                    break
                if fixed:
                    shape = value.shape
                    if any(shape[ax] != d for ax, d in fixed):
                        break
            else:
                return outs
        return check_outputs(node, outs)

    return run


def check_outputs(node: Apply, outs: Sequence[Any]) -> list[Any]:
    """The output checks of ``run_node`` (kept identical: the reference is the oracle)."""
    if len(outs) != len(node.outputs):
        raise RuntimeError(f"{node.op}.perform returned {len(outs)} outputs, not {len(node.outputs)}")
    checked = []
    for var, value in zip(node.outputs, outs):
        if isinstance(value, np.ndarray | np.generic) or np.isscalar(value):
            value = np.asarray(value)
            if value.dtype.name != var.dtype:
                raise RuntimeError(f"{node.op} produced {value.dtype}, its type says {var.dtype}")
            if not var.type.is_shape_compatible(value.shape):
                raise RuntimeError(f"{node.op} produced shape {value.shape}, its type says {var.type.shape}")
            if config.nan_guard and value.dtype.kind == "f" and np.isnan(value).any():
                raise NodeRuntimeError(f"NaN guard: {node.op} produced NaN (built at {node.trace})")
        checked.append(value)
    return checked

"""What a plan returns, and the kernels it splits across threads (graphc.backend.llvm.plan).

Per call a plan's kernels write each output straight into a new array (``_caller``
allocates it, or reuses one the caller dropped, and passes it to the interpreter after
the arguments); ``_output_sources`` decides, per returned output, whether it is such an
array, a view of one, or a copy made after the run. A kernel the per-node path split
across threads at the recorded shapes becomes a step run through the native
parallel-for (``_split``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from graphc.backend.llvm.plan_interp import MAX_ARRAYS
from graphc.graph.basic import Apply

if TYPE_CHECKING:
    from graphc.backend.llvm.plan import Plan


class NoPlan(Exception):
    """This graph or this call cannot run as a plan (the per-node path stays)."""

    shapes = False  # true: no call with these argument shapes can (it need not be recorded again)


def _output_sources(program: Any, n_outputs: int, steps: list[tuple], views: list[tuple[int, int, int]],
                    upd_slot: dict[int, Any], res: Any, vals: list[Any]) -> tuple[list[int], list[tuple]]:
    """The slots written straight into new arrays each call, and per returned output where it
    comes from: ``("fresh", j)`` the j-th new array; ``("view", (j, shape, dtype, offset,
    strides))`` a view of it (a view of an intermediate nothing else returned views);
    ``("again", j)`` a copy of it (the same value returned twice); ``("container", c)`` a
    copy of an update's new value; ``("slot", s)`` a copy of a plan slot after the run (a
    small view; ``build_plan`` makes inputs ``("arg", j)``, a copy of argument j, shared
    values ``("container", c)`` and updated ones ``("old", s)``, their old value after the
    swap)."""
    written = {program.slot[o] for st in steps for o in st[0].outputs}
    held = {d for d, _, _ in views} | set(upd_slot) | set(program.input_slots)
    root: dict[int, int] = {}  # a view -> the slot whose data it follows, and at which offset
    offset: dict[int, int] = {}
    for d, src, off in views:
        root[d] = root.get(res(src), res(src))
        offset[d] = offset.get(res(src), 0) + off

    def own(r: int) -> bool:
        # A kernel's own buffer (sharing memory with no value but its views, rebound each
        # call) of a dtype np.empty gives back (checked by identity).
        v = vals[r]
        return r in written and r not in held and np.empty(0, v.dtype).dtype is v.dtype and not any(
            type(w) is np.ndarray and res(k) != r and root.get(k) != r and np.may_share_memory(w, v)
            for k, w in enumerate(vals))

    returned = {res(s) for s in program.output_slots[:n_outputs]}
    fresh: list[int] = []
    outputs: list[tuple] = []
    for s in program.output_slots[:n_outputs]:
        r = res(s)
        q = root.get(r)
        if s in upd_slot:
            outputs.append(("container", upd_slot[s][0]))
        elif r in fresh:
            outputs.append(("again", fresh.index(r)))
        elif own(r):
            fresh.append(r)
            outputs.append(("fresh", len(fresh) - 1))
        elif q is not None and q not in returned and q not in fresh and vals[r].nbytes >= 4096 and own(q):
            # (a small view is copied: cheaper than making one)
            v = vals[r]
            fresh.append(q)
            outputs.append(("view", (len(fresh) - 1, v.shape, v.dtype, offset[r], v.strides)))
        else:
            outputs.append(("slot", s))
    return fresh, outputs


def _parallel_for() -> int:
    """The native parallel-for's address, its pool started (see ``_split``)."""
    from graphc.backend.llvm import executor, parallel

    found = parallel.symbols() if parallel.ENABLED else None
    if found is None or not parallel.ensure(executor.kernel_threads()):
        exc = NoPlan("a kernel split across threads, and no native parallel-for here")
        exc.shapes = True
        raise exc
    return found[parallel.PARALLEL_FOR]


def _split(node: Apply, rec: list[tuple], outs: list[Any]) -> tuple[int, int]:
    """``(-threads, size)``: the step word pair of a kernel the per-node path ran on slices of
    its outputs' elements, one per thread (the same arrays, ranges tiling ``[0, size)``);
    the interpreter runs it through the native parallel-for (graphc.backend.llvm.parallel)
    with that thread count, as the per-node path's ``_run_split`` does."""
    first = rec[0][0]
    ranges = sorted((int(a[0]), int(a[1])) for a, _ in rec)
    size = max(o.size for o in outs)
    if (any(rc or len(a) != len(first) or any(x is not y for x, y in zip(a[2:], first[2:]))
            for a, rc in rec) or ranges[0][0] != 0 or ranges[-1][0] >= size or ranges[-1][1] < size
            or any(lo != hi for (_, hi), (lo, _) in zip(ranges, ranges[1:]))
            or len(rec) > 255 or len(first) - 2 > MAX_ARRAYS):
        raise NoPlan(f"{node.op}: {len(rec)} kernel calls")
    _parallel_for()
    return -len(rec), size


def _caller(plan: Plan, single: bool) -> Any:
    """``call(args)``: the outputs of a successful run, else the interpreter's status (an int).

    New arrays for the fresh outputs are passed after the arguments (see ``_output_sources``);
    as the per-node path does, an array the caller dropped is reused (two per output, so
    ``y = f(x)`` in a loop reuses the one before last): fresh pages cost a page fault each.
    Other outputs are copied before the busy flag is cleared (until then no other thread's
    call can overwrite the buffers being copied)."""
    names: dict[str, Any] = {"flag": plan.flag, "run": plan.run, "empty": np.empty,
                             "getrefcount": sys.getrefcount, "ndarray": np.ndarray}
    lines = ["def call(args):"]
    for j, (shape, dtype) in enumerate(plan.fresh):
        names[f"p{j}"], names[f"s{j}"], names[f"d{j}"] = [], shape, dtype
        lines += [f"    for f{j} in p{j}:",
                  f"        if getrefcount(f{j}) == 3:  # the pool, f{j}, the argument",
                  "            break",
                  "    else:",
                  f"        f{j} = empty(s{j}, d{j})",
                  f"        p{j}.append(f{j})",
                  f"        if len(p{j}) > 2:",
                  f"            del p{j}[0]"]
    lines.append(f"    rc = run(*args{''.join(f', f{j}' for j in range(len(plan.fresh)))})")
    lines.append("    if rc:")
    lines.append("        return rc")
    exprs = []
    for k, (kind, where) in enumerate(plan.outputs):
        if kind == "fresh":
            exprs.append(f"f{where}")
        elif kind == "view":  # its base is the new array: never reused while the caller holds it
            j, *layout = where
            names[f"v{k}"] = layout
            exprs.append(f"ndarray(v{k}[0], v{k}[1], f{j}, v{k}[2], v{k}[3])")
        elif kind == "again":
            exprs.append(f"f{where}.copy()")
        elif kind == "slot":
            names[f"o{k}"] = plan.keep[where]  # the same object every call (views are rebound)
            exprs.append(f"o{k}.copy()")
        elif kind == "old":  # an updated variable's old value: after the swap, in ``where``
            names["old"] = plan.old_value
            exprs.append(f"old({where}).copy()")
        elif kind == "arg":  # an argument (a Python float: where the plan stored it)
            j, buf = where
            names[f"b{k}"] = buf
            exprs.append(f"args[{j}].copy()" if buf is None else
                         f"(b{k} if type(args[{j}]) is float else args[{j}]).copy()")
        else:
            names[f"c{k}"] = where
            exprs.append(f"c{k}.value.copy()")
    result = exprs[0] if single else "[" + ", ".join(exprs) + "]"
    if all(kind in ("fresh", "view") for kind, _ in plan.outputs):
        lines += ["    flag[0] = 0", f"    return {result}"]
    else:
        lines += ["    try:", f"        return {result}", "    finally:", "        flag[0] = 0"]
    exec(compile("\n".join(lines) + "\n", "<graphc plan call>", "exec"), names)  # noqa: S102 -- our own text
    return names["call"]

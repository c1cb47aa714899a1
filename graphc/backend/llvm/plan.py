"""Shape-specialized plans: a whole training step as one native call.

After a call through the per-node path (graphc.backend.llvm.executor) has been
*recorded* (every value, and every kernel call with its exact arguments), a plan
replays the same kernel calls on the same buffers: all intermediate shapes are
fixed by the shapes of the inputs (the plan's key), so intermediates are allocated
once and reused. The plan is a table (an int64 NumPy array) read by one generic
native interpreter written in LLVM IR (compiled once per process, cached on disk
like the kernels; no address is baked into its code). The interpreter is a
``METH_FASTCALL`` builtin bound to the table as ``self``; per call it

1. checks every argument against the key (exact ``ndarray`` type, dtype object,
   rank, dims, C-contiguous and aligned) and writes it into its slot; anything
   else returns ``MISS`` and the caller takes the per-node path, which converts or
   raises exactly as before. After the arguments come the new arrays the outputs
   are written into (checked the same way, and writeable), one per output a kernel
   writes: they take the slot of that output for this call;
2. checks each shared variable's container still holds the value in its slot, and
   that every buffer it will overwrite is referenced by the plan alone (``REPAIR``
   otherwise: the Python side adopts the new values / allocates new buffers);
3. points views (DimShuffles of per-call values) at their bases' current data;
4. runs the kernels in order (GIL released; a kernel the per-node path split across
   threads at these shapes through the native parallel-for); a nonzero status returns
   ``FAILED + step`` and the caller reruns the call through the per-node path,
   which raises the reference's error (nothing was committed yet);
5. commits updates: each updated shared variable's new value was written into a
   second buffer (double buffering, so a failure leaves every value intact and an
   update may read old values anywhere); the two buffers swap and the container
   takes the new one.

Returned outputs never alias plan buffers, inputs or shared storage, nor each other:
the kernels write them straight into the new arrays (``call`` allocates them, or
reuses the ones the caller dropped; graphc.backend.llvm.plan_outputs), the one view of
an intermediate nothing else returns is a view of such an array; other views, an
output returned twice, arguments, shared and update values are copies. The table's
word 0 is a busy flag: a concurrent call (another thread) takes the per-node path; the
caller clears it after copying the outputs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.backend.llvm.plan_interp import (  # noqa: F401 -- re-exported
    BUSY,
    FAILED,
    H_ARGS,
    H_BUSY,
    H_FLOAT,
    H_GUARD,
    H_LATE,
    H_NARGS,
    H_NGUARD,
    H_NREBIND,
    H_NSHARED,
    H_NSTEPS,
    H_NSWAP,
    H_PARFOR,
    H_REBIND,
    H_SHARED,
    H_STEPS,
    H_SWAP,
    HEADER,
    INTERP,
    MAX_ARRAYS,
    MISS,
    NPY_ALIGNED,
    NPY_C_CONTIGUOUS,
    NPY_WRITEABLE,
    OK,
    REPAIR,
    interpreter,
)
from graphc.backend.llvm.plan_outputs import NoPlan, _caller, _output_sources, _parallel_for, _split
from graphc.graph.basic import Apply

SHAPE_ONLY_OPS = frozenset({"ReducedSize", "Shape"})  # outputs depend on input shapes alone


# -- building a plan from a recorded call ------------------------------------------------------
def _data(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


class Plan:
    """One shape key's table, its buffers, and the builtin running it (see module doc)."""

    def __init__(self, table: np.ndarray, keep: dict[int, Any], runner: Any, outputs: list[Any],
                 shared: list[tuple[Any, int]], guards: list[int], swaps: list[tuple[Any, int, int]],
                 key: tuple) -> None:
        self.table, self.keep, self.run, self.outputs = table, keep, runner, outputs
        self.shared, self.guards, self.swaps, self.key = shared, guards, swaps, key
        self.flag = memoryview(table)
        self.call: Any = None  # call(args): outputs, or a status (see ``_caller``)
        self.fresh: list[tuple] = []  # (shape, dtype) of each output written into a new array
        self.copied = 0  # bytes of outputs copied after each run
        self.owned: dict[int, Any] = {}  # slot updated in place -> its container
        self.aliases = 0
        self.index()

    def index(self) -> None:
        """Where each held object was at the last resync (no reference: guards count them)."""
        self.slot_of = {id(o): s for s, o in self.keep.items()}

    def old_value(self, slot: int) -> np.ndarray:
        """The object now in table word ``slot`` (swaps move objects between slots)."""
        return self.keep[self.slot_of[int(self.table[slot])]]

    def wait_and_run(self, args: tuple, timeout: float = 5.0) -> Any:
        """``call(args)`` once the thread running this plan is done (BUSY if it takes too
        long): the outputs, or the status of a run that did not succeed."""
        import time

        end = time.monotonic() + timeout
        rc: Any = BUSY
        while type(rc) is int and rc == BUSY and time.monotonic() < end:
            time.sleep(0)  # lets the other thread (which needs the GIL to finish) run
            rc = self.call(args)
        if type(rc) is int and rc == REPAIR and self.repair():
            rc = self.call(args)
        return rc

    def repair(self) -> bool:
        """Adopt shared values set since the plan last ran; give guarded slots buffers only
        the plan holds. False if a value does not fit the key (the per-node path runs)."""
        t = self.table
        if t[H_BUSY]:
            return False  # another thread runs this plan: not now
        t[H_BUSY] = 1
        try:
            return self._repair(t)
        finally:
            self.index()
            t[H_BUSY] = 0

    def _repair(self, t: np.ndarray) -> bool:
        by_id = {id(o): o for o in self.keep.values()}
        # Swaps move objects between slots natively: first resync `keep` with the table.
        self.keep = keep = {s: by_id[int(t[s])] for s in self.keep}
        del by_id
        for container, slot in self.shared:
            v = container.value
            if id(v) == t[slot]:
                continue
            old = keep[slot]
            if (type(v) is not np.ndarray or v.dtype != old.dtype or v.shape != old.shape
                    or not v.flags.c_contiguous or not v.flags.aligned):
                return False
            keep[slot] = v
            t[slot] = id(v)
        for slot, expected in self.guards:
            # The plan (and, updated in place, the container) and the argument: any other
            # reference (the user's, a second slot) means the buffer cannot be overwritten.
            refs = sys.getrefcount(keep[slot])
            o = keep[slot]
            if refs > expected + 1 or not o.flags.owndata or not o.flags.writeable:
                container = self.owned.get(slot)
                if container is not None:  # updated in place: the variable gets its own copy
                    fresh = np.array(o, order="C")
                    container.value = fresh
                else:
                    fresh = np.empty(o.shape, o.dtype)
                keep[slot] = fresh
                t[slot] = id(fresh)
            del o
        return True


def build_plan(program: Any, n_args: int, containers: Sequence[Any], updates: Sequence[tuple[Any, int]],
               n_outputs: int, single: bool, vals: list[Any], calls: list[tuple],
               floats_ok: bool = False) -> Plan:
    """A plan replaying the recorded call (see module doc); raises NoPlan when it cannot.

    ``containers``: of the shared inputs (``fgraph.inputs[n_args:]``, in order);
    ``updates``: (container, index into ``fgraph.outputs``) per updated variable; ``vals``:
    the recorded value of every program slot; ``calls``: ``(node, args, status)`` per kernel call;
    ``floats_ok``: 0-d float arguments may be Python floats (the function's ``filter`` takes them).
    """
    found = interpreter()
    if found is None:
        raise NoPlan("no plan interpreter here")
    addr, _ = found
    nslots = len(program.template)
    by_node: dict[Apply, list[tuple]] = {}
    for node, a, rc in calls:
        by_node.setdefault(node, []).append((a, rc))
    for s in range(nslots):
        if type(vals[s]) is not np.ndarray:
            raise NoPlan(f"slot {s} holds a {type(vals[s]).__name__}")
    input_slots = program.input_slots
    arg_slots = input_slots[:n_args]
    if len({id(vals[s]) for s in set(input_slots)}) != len(set(input_slots)):
        # Kernel arguments are matched to slots by identity: one array passed for two
        # inputs would make the plan read one slot for both on every later call.
        raise NoPlan("the same array is the value of two inputs")
    for s in input_slots:  # arguments and shared values (views of them assume the layout)
        a = vals[s]
        if not (a.flags.c_contiguous and a.flags.aligned):
            raise NoPlan("an input value is not C-contiguous and aligned")
    # Update values get a second buffer (their slot); the shared variable's slot holds the
    # current value. Build-time recorded value of the update = the container's value now.
    upd_slot: dict[int, tuple[Any, int]] = {}
    for container, k in updates:
        s = program.output_slots[k]
        shared_slot = input_slots[n_args + [id(c) for c in containers].index(id(container))]
        if s in upd_slot or s in input_slots or s == shared_slot:
            raise NoPlan("an update value that is not computed by a kernel of its own")
        old, new = vals[shared_slot], vals[s]
        if type(new) is not np.ndarray or new.shape != old.shape or new.dtype != old.dtype:
            # The next call would see another shape than the plan's buffers and views assume.
            raise NoPlan("an update changing its variable's shape")
        upd_slot[s] = (container, shared_slot)
    views: list[tuple[int, int, int]] = []
    steps: list[tuple[Apply, int, int, int, list[int]]] = []
    constants = {s for s, v in enumerate(program.template) if v is not None}
    extra: list[np.ndarray] = []  # constants a runner converted (new slots after the graph's)
    alias: dict[int, int] = {}  # a slot whose value is another slot's buffer

    def res(s: int) -> int:
        while s in alias:
            s = alias[s]
        return s

    for node, (_, ins, outs, _) in zip(program.order, program.steps):
        name = type(node.op).__name__
        native = node in program.kernel_of
        if (not native and name in SHAPE_ONLY_OPS) or (ins and all(i in constants for i in ins) and not (
                native and any(o in upd_slot for o in outs))):
            # Computed once: from shapes the key fixes, or from constants (``x.shape[0]``,
            # ``x.shape[0] * x.shape[1]`` by a kernel: every op is a pure function of its
            # inputs). A kernel writing an update's new value keeps its step (its buffer swaps).
            constants.update(outs)
        elif not native:
            # A view of its one non-constant input (DimShuffle, a slice with constant bounds):
            # the same layout every call at the key's shapes, the data pointer follows the base.
            varying = [i for i in ins if i not in constants]
            v = vals[outs[0]]
            if len(outs) != 1 or len(varying) != 1 or (name != "DimShuffle" and not v.size) or (
                    v.size and not np.shares_memory(v, vals[varying[0]])):
                raise NoPlan(f"{node.op} runs in Python")
            same = [k for k, x in enumerate(vals) if x is v and k != outs[0]]
            if same:  # the very object of another slot (an op returning its input)
                alias[outs[0]] = same[0]
                continue
            views.append((outs[0], varying[0], _data(v) - _data(vals[varying[0]])))
        else:
            rec = by_node.get(node, [])
            if len(rec) > 1:
                # The per-node path split this kernel across threads at these shapes: so does
                # the plan, through the native parallel-for.
                start, stop = _split(node, rec, [vals[o] for o in outs])
                rec = [((start, stop, *rec[0][0][2:]), 0)]
            if len(rec) != 1 or rec[0][1] != 0:
                raise NoPlan(f"{node.op}: {len(rec)} kernel calls")
            a, _ = rec[0]
            known = {id(vals[s]): s for s in list(ins) + list(outs)}
            arrays = []
            for x in a[2:]:
                if id(x) not in known:
                    known[id(x)] = _converted_constant(x, [vals[s] for s in ins if s in constants],
                                                       vals, extra)
                arrays.append(known[id(x)])
            if len(arrays) > MAX_ARRAYS or any(o not in arrays for o in outs):
                raise NoPlan(f"{node.op}: outputs not written by its kernel")
            if (name == "SumToShape" and vals[ins[0]].shape == vals[outs[0]].shape
                    and outs[0] not in upd_slot):
                alias[outs[0]] = ins[0]  # nothing to sum at these shapes: the same buffer
                continue
            steps.append((node, program.kernel_addr[node], int(a[0]), int(a[1]), arrays))
    # An updated variable's value returned: its old value (never updated in place then).
    old_values = {shared_slot: s_u for s_u, (_, shared_slot) in upd_slot.items()}
    written = {program.slot[o] for st in steps for o in st[0].outputs}
    if any(s not in written for s in upd_slot):
        raise NoPlan("an update value that no kernel writes")
    inplace, steps, n_early = _in_place_updates(steps, views, upd_slot, res, vals,
                                                [res(s) for s in program.output_slots[:n_outputs]],
                                                program.slot)
    for s_u in inplace:
        alias[s_u] = upd_slot[s_u][1]  # the kernel writes into the shared variable's buffer
    fresh_slots, outputs = _output_sources(program, n_outputs, steps, views, upd_slot, res, vals)
    for k, (kind, where) in enumerate(outputs):
        if kind == "slot" and res(where) in old_values:
            outputs[k] = ("old", old_values[res(where)])  # after the swap, in the update's slot
        elif kind == "slot" and res(where) in input_slots:  # an argument or a shared value
            j = input_slots.index(res(where))
            outputs[k] = ("arg", j) if j < n_args else ("container", containers[j - n_args])
    # -- the table --------------------------------------------------------------------------
    keep: dict[int, Any] = {}
    words: list[int] = [0] * HEADER
    base_slot = HEADER

    def P(s: int) -> int:
        return base_slot + res(s)

    words.extend([0] * (nslots + len(extra)))
    vals = list(vals) + extra
    for s in range(nslots + len(extra)):
        # Arguments and fresh outputs: written per call, never held.
        if s not in arg_slots and s not in alias and s not in fresh_slots:
            keep[P(s)] = vals[s]
    for d, _, _ in views:
        # Rebinding changes an array's data pointer: only ever that of the plan's own object.
        keep[P(d)] = vals[d].view()
    guards: list[tuple[int, int]] = []
    swaps = []
    owned: dict[int, Any] = {}
    for s, (container, shared_slot) in upd_slot.items():
        if s in inplace:
            guards.append((P(shared_slot), 2))  # the plan and the container hold it
            owned[P(shared_slot)] = container
            continue
        fresh = np.empty_like(vals[s], order="C")
        keep[P(s)] = fresh
        guards.append((P(s), 1))  # the plan alone holds it
        swaps.append((container, P(shared_slot), P(s)))
    for s, o in keep.items():
        words[s] = id(o)
    words[H_FLOAT] = id(float)
    words[H_PARFOR] = _parallel_for() if any(st[2] < 0 for st in steps) else 0
    scalar_words = {}
    for s in arg_slots:
        a = vals[s]
        if a.ndim == 0 and a.dtype.name in ("float32", "float64") and floats_ok:
            buf = np.empty((), a.dtype)  # where a Python float argument is stored
            scalar_words[s] = len(words)
            keep[len(words)] = buf
            words.append(id(buf))
    # The caller passes one new array per fresh output after the arguments: checked as they
    # are (and writeable), then the kernels writing that output write into it.
    words[H_NARGS] = n_args + len(fresh_slots)
    words[H_ARGS] = len(words)
    for s in arg_slots:
        a = vals[s]
        words += [P(s), id(np.ndarray), id(a.dtype), a.ndim, NPY_C_CONTIGUOUS | NPY_ALIGNED,
                  scalar_words.get(s, -1), a.dtype.itemsize, *a.shape]
    for s in fresh_slots:
        a = vals[s]
        words += [P(s), id(np.ndarray), id(a.dtype), a.ndim,
                  NPY_C_CONTIGUOUS | NPY_ALIGNED | NPY_WRITEABLE, -1, a.dtype.itemsize, *a.shape]
    shared = [(c, P(s)) for c, s in zip(containers, input_slots[n_args:])]
    words[H_NSHARED], words[H_SHARED] = len(shared), len(words)
    for c, s in shared:
        words += [id(c), s]
    words[H_NGUARD], words[H_GUARD] = len(guards), len(words)
    for g in guards:
        words += g
    words[H_NREBIND], words[H_REBIND] = len(views), len(words)
    for d, s, off in views:
        words += [P(d), P(s), off]
    words[H_NSTEPS], words[H_STEPS], words[H_LATE] = len(steps), len(words), n_early
    for _, f, start, stop, arrays in steps:
        words += [f, start, stop, len(arrays), *(P(s) for s in arrays)]
    words[H_NSWAP], words[H_SWAP] = len(swaps), len(words)
    for c, i, o in swaps:
        words += [id(c), i, o]
    table = np.array(words, dtype=np.int64)
    from graphc.backend.llvm.entry import make_builtin_on

    runner = make_builtin_on(addr, INTERP, table)
    if any(kind == "old" and where in inplace for kind, where in outputs):
        raise NoPlan("an updated variable's old value returned, updated in place")
    resolved = [("slot", P(where)) if kind == "slot" else ("old", P(where)) if kind == "old" else
                ("arg", (where, keep.get(scalar_words.get(arg_slots[where], -1)))) if kind == "arg" else
                (kind, where) for kind, where in outputs]
    key = tuple((vals[s].shape, vals[s].dtype) for s in arg_slots)
    plan = Plan(table, keep, runner, resolved, shared, guards, swaps, key)
    plan.owned = owned
    plan.aliases = len(alias)
    plan.fresh = [(vals[s].shape, vals[s].dtype) for s in fresh_slots]
    # Bytes copied that the per-node path returns without a copy (it copies views of inputs).
    plan.copied = sum(vals[s].nbytes for s, (kind, _) in zip(program.output_slots, outputs)
                      if kind == "again" or kind == "slot" and not any(
                          np.may_share_memory(vals[s], vals[i]) for i in input_slots))
    plan.call = _caller(plan, single)
    return plan


def _converted_constant(x: Any, constants: list[Any], vals: list[Any], extra: list[Any]) -> int:
    """The slot of kernel argument ``x``, which is no value of the graph: a conversion of one
    of the node's constant inputs (the same every call), kept as a constant of the plan."""
    if type(x) is np.ndarray and any(
            type(c) is np.ndarray and c.shape == x.shape and c.dtype == x.dtype and np.array_equal(c, x)
            for c in constants):
        extra.append(x)
        return len(vals) + len(extra) - 1
    raise NoPlan("a kernel argument that is no value of the graph")


_INFALLIBLE = frozenset({"Elemwise", "Fused", "Dot", "Gemm", "MatMul", "Reduce", "SumToShape", "Softmax",
                         "LogSoftmax", "Argmax", "Argmin"})


def _infallible(node: Apply) -> bool:
    """Whether ``node``'s kernel, at the shapes and layouts of a plan, never refuses (unlike
    label, index and random kernels, whose statuses depend on values; integer pow fails on
    negative exponents)."""
    name = type(node.op).__name__
    if name not in _INFALLIBLE:
        return False
    if name in ("Elemwise", "Fused"):
        ops = [node.op.scalar_op] if name == "Elemwise" else [sop for sop, _, _ in node.op.steps]
        if any(getattr(sop, "name", "") == "pow" for sop in ops):
            return False
    return True


def _in_place_updates(steps: list[tuple], views: list[tuple[int, int, int]],
                      upd_slot: dict[int, tuple[Any, int]], res: Any, vals: list[Any],
                      output_slots: list[int], slot_of: dict) -> tuple[set[int], list[tuple], int]:
    """Update values written straight into their shared variable's buffer, and the step order.

    A candidate is a Gemm whose C is the old value (BLAS then accumulates onto it: no copy of
    C) or an elementwise kernel reading the old value at the same indices, of the value's
    shape. Every other reader of the old value (directly or through a view) must run before
    it: such readers may not depend on any in-place step, and no output may be the old value.
    In-place steps and all that depends on them run last, in order; they must all be kernels
    that never refuse at the plan's shapes, so a call that fails has written no shared value.
    """
    root: dict[int, int] = {}
    for d, src, _ in views:
        root[d] = root.get(res(src), res(src))

    def base(s: int) -> int:
        s = res(s)
        return root.get(s, s)

    outs_of = [{slot_of[o] for o in st[0].outputs} for st in steps]
    ins_of = [[s for s in st[4] if s not in outs_of[k]] for k, st in enumerate(steps)]
    producer = {res(s): k for k, outs in enumerate(outs_of) for s in outs}
    readers: dict[int, set[int]] = {}
    for k, ins in enumerate(ins_of):
        for s in ins:
            readers.setdefault(base(s), set()).add(k)
    old_outputs = {base(s) for s in output_slots}
    candidates: dict[int, list[int]] = {}  # step -> its in-place update values
    for k, (node, _, _, _, arrays) in enumerate(steps):
        name = type(node.op).__name__
        if not _infallible(node) or (name == "Fused" and node.op.reduce is not None):
            continue
        for s_u in sorted(outs_of[k] & set(upd_slot)):
            s_in = upd_slot[s_u][1]
            c, u = vals[s_in], vals[s_u]
            if c.shape != u.shape or c.dtype != u.dtype or s_in in old_outputs:
                continue
            reads = [s for s in ins_of[k] if base(s) == s_in]
            if name == "Gemm":
                ok = len(arrays) == 6 and res(arrays[0]) == s_in and reads == [arrays[0]]
            else:
                ok = name in ("Elemwise", "Fused") and bool(reads) and all(res(s) == s_in for s in reads)
            if ok:
                candidates.setdefault(k, []).append(s_u)
    chosen = set(candidates)
    while True:
        dep: list[set[int]] = []
        for ins in ins_of:
            d: set[int] = set()
            for s in ins:
                p = producer.get(base(s))
                if p is not None:
                    d |= dep[p] | ({p} if p in chosen else set())
            dep.append(d)
        late = {k for k in range(len(steps)) if k in chosen or dep[k]}
        bad = set()
        for k in chosen:
            for s_u in candidates[k]:
                if any(r != k and (r in late) for r in readers.get(upd_slot[s_u][1], ())):
                    bad.add(k)  # a reader of the old value would run after the write
            if any(not _infallible(steps[j][0]) for j in late if k in dep[j]):
                bad.add(k)  # a step after the write could fail
        if not bad:
            break
        chosen -= bad
    done = {s_u for k in chosen for s_u in candidates[k]}
    order = [st for k, st in enumerate(steps) if k not in late]
    return done, order + [st for k, st in enumerate(steps) if k in late], len(order)

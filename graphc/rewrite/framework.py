"""The rewrite framework: named local rewrites, global passes and the phases that run them.

A *local rewrite* looks at one Apply node and either declines (returns ``None``)
or proposes replacement variables for the node's outputs. A *phase* of local
rewrites runs them over a worklist until nothing changes (a fixed point): every
node created by a rewrite, and every client of a replaced variable, is looked
at again. A *global pass* (merge, fusion) sees the whole graph at once.

Every rewrite has a name and tags; a :class:`~graphc.compile.mode.Mode` picks
the rewrites to run by its ``rewrites`` level (a tag: ``'fast_run'`` or
``'fast_compile'``) and its ``including``/``excluding`` lists, which may name
rewrites, phases or tags. Replacements are validated: a replacement must keep
the dtype and static shape of what it replaces, or :class:`RewriteTypeError`
names the faulty rewrite.
"""

from __future__ import annotations

import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphc.graph.basic import Apply, Constant, Variable
from graphc.graph.fgraph import OUTPUT, FunctionGraph, InconsistencyError

LocalFn = Callable[[FunctionGraph, Apply], Any]

#: A local rewrite that raises is skipped with a warning (the graph stays correct, only less
#: optimized); the rewrite tests set this to surface such bugs as errors.
RAISE_REWRITE_ERRORS = False
GlobalFn = Callable[[FunctionGraph, "RewriteLog"], None]


class RewriteTypeError(InconsistencyError):
    """A rewrite proposed a replacement of a different dtype or static shape."""


class Rewrite:
    """Base of local rewrites and global passes: a name and tags."""

    def __init__(self, name: str, tags: Iterable[str] = ()) -> None:
        self.name = name
        self.tags = frozenset(tags)

    def selected_by(self, names: Iterable[str]) -> bool:
        names = set(names)
        return self.name in names or bool(self.tags & names)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class LocalRewrite(Rewrite):
    """``fn(fgraph, node)`` returns ``None`` (no change), a list with one replacement per
    output of ``node`` (``None`` entries keep that output), or a dict ``{old: new}``.

    ``tracks`` lists the Op classes the rewrite looks at (``None``: every node).
    """

    def __init__(
        self, name: str, fn: LocalFn, tracks: Sequence[type] | None = None, tags: Iterable[str] = ()
    ) -> None:
        super().__init__(name, tags)
        self.fn = fn
        self.tracks = tuple(tracks) if tracks is not None else None

    def applies_to(self, op: Any) -> bool:
        return self.tracks is None or isinstance(op, self.tracks)

    def transform(self, fgraph: FunctionGraph, node: Apply) -> Any:
        return self.fn(fgraph, node)


class GlobalRewrite(Rewrite):
    """A pass over the whole graph: ``fn(fgraph, log)`` edits ``fgraph`` in place."""

    def __init__(self, name: str, fn: GlobalFn, tags: Iterable[str] = ()) -> None:
        super().__init__(name, tags)
        self.fn = fn


@dataclass
class Phase:
    """An ordered step of the pipeline: local rewrites to a fixed point, or global passes."""

    name: str
    kind: str  # "local" or "global"
    rewrites: list[Rewrite] = field(default_factory=list)
    tags: frozenset[str] = frozenset()


# ---------------------------------------------------------------------------------------
class RewriteLog:
    """What fired: a list of human-readable lines, plus counts per rewrite name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.counts: dict[str, int] = {}
        self.phase = ""
        self.warned = False  # a rewrite failed (warned): the result is not cached

    def record(self, name: str, message: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1
        self.lines.append(f"{self.phase}: {name}: {message}" if self.phase else f"{name}: {message}")

    def note(self, message: str) -> None:
        self.lines.append(message)


def describe(var: Variable) -> str:
    """A short infix-ish description of a variable, one level deep."""
    node = var.owner
    if node is None:
        return repr(var)
    args = ", ".join(_short(i) for i in node.inputs)
    return f"{node.op}({args})"


def _short(var: Variable) -> str:
    if var.owner is None:
        return repr(var)
    return var.name or f"{var.owner.op}(...)"


def _new_nodes(fgraph: FunctionGraph, outputs: Iterable[Variable]) -> list[Apply]:
    """Apply nodes that ``outputs`` depend on and that are not in ``fgraph`` yet."""
    found: list[Apply] = []
    seen: set[Apply] = set()
    stack = [v.owner for v in outputs if v.owner is not None]
    while stack:
        node = stack.pop()
        if node in seen or node in fgraph.nx:
            continue
        seen.add(node)
        found.append(node)
        stack.extend(i.owner for i in node.inputs if i.owner is not None)
    return found


def _creates_cycle(fgraph: FunctionGraph, pairs: Sequence[tuple[Variable, Variable]],
                   created: list[Apply]) -> bool:
    """A replacement computed from what it replaces (directly or downstream) would loop."""
    created_set = set(created)
    frontier = {i.owner for n in created for i in n.inputs
                if i.owner is not None and i.owner not in created_set}
    frontier |= {new.owner for _, new in pairs if new.owner is not None and new.owner in fgraph.nx}
    for old, _ in pairs:
        src = old.owner
        if src is None or src not in fgraph.nx:
            continue
        if src in frontier or fgraph.reaches_any(src, frontier):
            return True
    return False


def check_replacement(rewrite_name: str, old: Variable, new: Variable) -> None:
    if not isinstance(new, Variable):
        raise TypeError(f"rewrite {rewrite_name!r} returned {new!r}, not a graph variable")
    if old.type != new.type:
        raise RewriteTypeError(
            f"rewrite {rewrite_name!r} tried to replace {describe(old)} of type {old.type} by "
            f"{describe(new)} of type {new.type}; rewrites must keep dtype and static shape"
        )


def apply_replacements(
    fgraph: FunctionGraph, rewrite: Rewrite, pairs: Sequence[tuple[Variable, Variable]],
    log: RewriteLog, message: str | None = None,
) -> list[Apply] | None:
    """Validate and perform ``pairs``; returns the nodes to revisit, or None if refused.

    A graph output is never replaced by a bare constant: the caller would get a
    read-only array aliasing the constant.
    """
    pairs = [(old, new) for old, new in pairs if old is not new]
    if not pairs:
        return None
    for old, new in pairs:
        check_replacement(rewrite.name, old, new)
    for old, new in pairs:
        if isinstance(new, Constant) and any(c == OUTPUT for c, _ in fgraph.clients.get(old, [])):
            return None
    created = _new_nodes(fgraph, [new for _, new in pairs])
    if _creates_cycle(fgraph, pairs, created):
        return None
    origin = next((old.owner for old, _ in pairs if old.owner is not None), None)
    if origin is not None:  # errors in new nodes point at the user code that built the old one
        for node in created:
            node.trace = origin.trace
    text = message or "; ".join(f"{describe(o)} -> {describe(n)}" for o, n in pairs)
    try:
        for old, new in pairs:
            fgraph.replace(old, new, reason=rewrite.name)
    except RewriteTypeError:
        raise
    except InconsistencyError as exc:
        raise InconsistencyError(f"rewrite {rewrite.name!r}: {exc}") from exc
    log.record(rewrite.name, text)
    revisit = list(created)
    for _, new in pairs:
        revisit.extend(c for c, _ in fgraph.clients.get(new, []) if c != OUTPUT)
    return revisit


def _normalize_result(node: Apply, result: Any) -> list[tuple[Variable, Variable]]:
    if isinstance(result, dict):
        return [(o, n) for o, n in result.items() if n is not None]
    if isinstance(result, Variable):
        result = [result]
    if len(result) != len(node.outputs):
        raise ValueError(
            f"a local rewrite returned {len(result)} replacements for {len(node.outputs)} outputs"
        )
    return [(o, n) for o, n in zip(node.outputs, result) if n is not None]


# ---------------------------------------------------------------------------------------
def run_local_phase(
    fgraph: FunctionGraph, rewrites: Sequence[LocalRewrite], log: RewriteLog,
    max_steps: int | None = None,
) -> int:
    """Apply ``rewrites`` to a fixed point with a worklist; returns how many fired."""
    dispatch: dict[type, list[LocalRewrite]] = {}

    def for_op(op: Any) -> list[LocalRewrite]:
        key = type(op)
        if key not in dispatch:
            dispatch[key] = [r for r in rewrites if r.applies_to(op)]
        return dispatch[key]

    order = fgraph.toposort()
    worklist: deque[Apply] = deque(order)
    queued: set[Apply] = set(order)
    limit = max_steps if max_steps is not None else 50 * len(order) + 1000
    fired = 0
    while worklist:
        node = worklist.popleft()
        queued.discard(node)
        if node not in fgraph.nx:
            continue
        for rw in for_op(node.op):
            try:
                result = rw.transform(fgraph, node)
            except Exception as exc:  # noqa: BLE001 - a buggy rewrite must not break compilation
                if RAISE_REWRITE_ERRORS:
                    raise
                log.warned = True
                warnings.warn(f"rewrite {rw.name!r} failed on {node.op} and was skipped: "
                              f"{type(exc).__name__}: {exc}", stacklevel=2)
                continue
            if result is None or result is False:
                continue
            revisit = apply_replacements(fgraph, rw, _normalize_result(node, result), log)
            if revisit is None:
                continue
            fired += 1
            for n in revisit:
                if n not in queued:
                    queued.add(n)
                    worklist.append(n)
            break
        if fired > limit:
            log.warned = True
            warnings.warn(
                f"rewrite phase {log.phase!r} stopped after {fired} rewrites without reaching "
                f"a fixed point (two rewrites may undo each other)", stacklevel=2,
            )
            break
    return fired


# ---------------------------------------------------------------------------------------
class RewriteDB:
    """The phases, in the order they run."""

    def __init__(self) -> None:
        self.phases: list[Phase] = []
        self.by_name: dict[str, Rewrite] = {}

    def phase(self, name: str, kind: str, tags: Iterable[str] = ()) -> Phase:
        for p in self.phases:
            if p.name == name:
                return p
        p = Phase(name, kind, [], frozenset(tags))
        self.phases.append(p)
        return p

    def add(self, phase: str, rewrite: Rewrite) -> Rewrite:
        p = self.phase(phase, "global" if isinstance(rewrite, GlobalRewrite) else "local")
        if isinstance(rewrite, GlobalRewrite) != (p.kind == "global"):
            raise TypeError(f"phase {phase!r} holds {p.kind} rewrites, not {rewrite!r}")
        known = self.by_name.get(rewrite.name)
        if known is not None and known is not rewrite:
            raise ValueError(f"two different rewrites are named {rewrite.name!r}")
        self.by_name[rewrite.name] = rewrite
        if rewrite not in p.rewrites:
            p.rewrites.append(rewrite)
        return rewrite

    def names(self) -> list[str]:
        return sorted(self.by_name)

    def select(self, level: str, including: Sequence[str], excluding: Sequence[str]) -> list[Phase]:
        """The phases and rewrites a mode runs (empty phases are dropped)."""
        known = set(self.by_name) | {p.name for p in self.phases}
        known |= {t for r in self.by_name.values() for t in r.tags}
        for name in (*including, *excluding):
            if name not in known:
                raise ValueError(
                    f"unknown rewrite, phase or tag {name!r}; known names: {sorted(known)}"
                )
        if level == "none":
            base: set[str] = set()
        else:
            base = {level}
        inc, exc = set(including), set(excluding)
        chosen = []
        for p in self.phases:
            if p.name in exc:
                continue
            whole_phase = p.name in inc
            rws = [
                r for r in p.rewrites
                if (whole_phase or r.selected_by(base) or r.selected_by(inc))
                and not r.selected_by(exc)
            ]
            if rws:
                chosen.append(Phase(p.name, p.kind, rws, p.tags))
        return chosen


DB = RewriteDB()


def register_local(
    *phases: str, tracks: Sequence[type] | None = None, tags: Iterable[str] = ("fast_run",),
    name: str | None = None,
) -> Callable[[LocalFn], LocalRewrite]:
    """Decorator: make ``fn(fgraph, node)`` a named local rewrite in ``phases``."""

    def wrap(fn: LocalFn) -> LocalRewrite:
        rw = LocalRewrite(name or fn.__name__, fn, tracks, tags)
        for p in phases:
            DB.add(p, rw)
        return rw

    return wrap


def register_global(
    *phases: str, tags: Iterable[str] = ("fast_run",), name: str | None = None,
) -> Callable[[GlobalFn], GlobalRewrite]:
    """Decorator: make ``fn(fgraph, log)`` a named global pass in ``phases``."""

    def wrap(fn: GlobalFn) -> GlobalRewrite:
        rw = GlobalRewrite(name or fn.__name__, fn, tags)
        for p in phases:
            DB.add(p, rw)
        return rw

    return wrap


def run_phases(fgraph: FunctionGraph, phases: Sequence[Phase], log: RewriteLog) -> None:
    for p in phases:
        log.phase = p.name
        if p.kind == "local":
            run_local_phase(fgraph, [r for r in p.rewrites if isinstance(r, LocalRewrite)], log)
        else:
            for r in p.rewrites:
                if not isinstance(r, GlobalRewrite):
                    continue
                try:
                    r.fn(fgraph, log)
                except RewriteTypeError:
                    raise
                except Exception as exc:  # noqa: BLE001 - each replacement it made is valid
                    if RAISE_REWRITE_ERRORS:
                        raise
                    log.warned = True
                    warnings.warn(f"rewrite pass {r.name!r} failed and was stopped: "
                                  f"{type(exc).__name__}: {exc}", stacklevel=2)
        log.phase = ""


def rewrite_graph(fgraph: FunctionGraph, mode: Any) -> list[str]:
    """Rewrite ``fgraph`` in place as ``mode`` says; returns the log of what fired.

    For native modes, through the rewrite cache (graphc.rewrite.graph_cache): a graph
    rewritten before, in this process or another, is restored instead of rewritten."""
    level = getattr(mode, "rewrites", "fast_run")
    phases = DB.select(level, getattr(mode, "including", ()), getattr(mode, "excluding", ()))
    log = RewriteLog()
    before = len(fgraph.nx)
    start = time.perf_counter()
    ctx = None
    if phases and getattr(mode, "backend", "py") != "py":
        from graphc.rewrite import graph_cache

        ctx = graph_cache.graph_context(fgraph, mode, phases)
        lines = graph_cache.lookup(ctx, fgraph) if ctx is not None else None
        if lines is not None:
            elapsed = time.perf_counter() - start
            if lines and lines[-1].startswith("rewrote"):
                lines[-1] += f"; restored from the rewrite cache in {elapsed * 1000:.1f} ms"
            return lines
    run_phases(fgraph, phases, log)
    elapsed = time.perf_counter() - start
    if phases:
        log.note(
            f"rewrote {before} -> {len(fgraph.nx)} nodes in {elapsed * 1000:.1f} ms "
            f"({', '.join(p.name for p in phases)})"
        )
    if ctx is not None and not log.warned:
        from graphc.rewrite import graph_cache

        graph_cache.store(ctx, fgraph, log.lines)
    return log.lines

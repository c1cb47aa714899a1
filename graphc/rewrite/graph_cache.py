"""The whole-function rewrite cache: a rewritten graph reused across processes.

Rewriting the W3 training step takes ~25 ms, more than loading its kernels' object code
from the compile cache, so a warm ``graphc.function`` of a graph seen before skips the
rewrites entirely. The key is a canonical structural hash of the *un-rewritten* graph
(every node's op and its ``__props__``, the wiring, the types and names of variables,
the user lines that built the nodes, the constants' bytes), the mode's rewrite
selection (and the functions implementing each selected rewrite), the settings that
rewrites read, and a fingerprint of graphc's own source. The entry is the rewritten
graph, pickled, with the log of what fired (``fn.rewrite_log`` on a hit).

What is pickled references the function's inputs (explicit and shared variables) by
position, so a hit is wired to this process's variables. Scalar ops carry NumPy
implementations (often lambdas, which do not pickle): they are stored by name and
parameters and resolved, on a hit, among the scalar ops this process already has (those
of the user's graph and those graphc's modules define). A graph whose rewritten form
holds anything else that cannot be stored (an op whose properties are Python functions
or graphs, a variable that is not an input) is rewritten every time, as before.

Entries live next to the kernel object code (``<cache_dir>/graphs``), are written
atomically (temporary file, ``os.replace``) with a SHA-256 of their content, and a
corrupted or unloadable entry is removed and rebuilt. Only native modes use the cache
(the reference mode compiles no kernels, so it has nothing to gain).
"""

from __future__ import annotations

import hashlib
import io
import logging
import marshal
import os
import pickle
import sys
import threading
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphc.config import config
from graphc.graph.basic import Apply, Constant, Variable, _ids, io_toposort
from graphc.graph.fgraph import FunctionGraph
from graphc.graph.op import Op
from graphc.graph.type import TensorType
from graphc.ops.elemwise import Elemwise, ScalarOp

log = logging.getLogger("graphc.cache")

MAGIC = b"GRAPHC-REWRITTEN-1\n"
SUFFIX = ".gcg"
_HEADER = len(MAGIC) + 32


class Uncacheable(Exception):
    """Something in the graph has no canonical, storable form."""


# -- the key ------------------------------------------------------------------------------
class _Canon:
    """Canonical text of op properties; collects the scalar ops it meets."""

    def __init__(self) -> None:
        self.memo: dict[int, str] = {}
        self.sops: dict[tuple, ScalarOp] = {}

    def __call__(self, x: Any) -> str:
        key = id(x)
        text = self.memo.get(key)
        if text is None:
            text = self._text(x)
            if isinstance(x, Op | ScalarOp | np.ndarray):  # long-lived: memo by identity
                self.memo[key] = text
        return text

    def _text(self, x: Any) -> str:
        if x is None or isinstance(x, bool | int | float | complex | str | bytes):
            return f"{type(x).__name__}:{x!r}"
        if isinstance(x, ScalarOp):
            self.sops.setdefault((x.name, x.params), x)
            return f"sop:{x.name}{self(x.params)}"
        if isinstance(x, Op):
            props = ",".join(self(getattr(x, p)) for p in x.__props__)
            return f"{type(x).__module__}.{type(x).__qualname__}{{{props}}}"
        if isinstance(x, tuple | list):
            return f"{type(x).__name__}({','.join(map(self, x))})"
        if isinstance(x, frozenset | set):
            return f"set({','.join(sorted(map(self, x)))})"
        if isinstance(x, dict):
            return f"dict({','.join(sorted(f'{self(k)}:{self(v)}' for k, v in x.items()))})"
        if isinstance(x, np.ndarray):
            digest = hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest()
            return f"array:{x.dtype.str}:{x.shape}:{digest}"
        if isinstance(x, np.generic | np.dtype):
            return f"{type(x).__name__}:{x!r}"
        if isinstance(x, TensorType):
            return f"T:{x.dtype}{x.shape}"
        raise Uncacheable(f"no canonical form for {type(x).__name__}")


class Context:
    """A graph's cache key, and the scalar ops its (un-rewritten) graph holds."""

    def __init__(self, key: str, sops: dict[tuple, ScalarOp]) -> None:
        self.key = key
        self.sops = sops


def _rewrite_identity(phases: Sequence[Any]) -> str:
    parts = []
    for p in phases:
        parts.append(f"[{p.name}:{p.kind}]")
        for r in p.rewrites:
            fn = getattr(r, "fn", None)
            qual = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"
            if "<" in qual:  # a rewrite defined inside a function (a test's): no stable name
                raise Uncacheable(f"rewrite {r.name!r} has no stable identity")
            if not qual.startswith("graphc."):  # a user's rewrite: its code (graphc's: the fingerprint)
                code = getattr(fn, "__code__", None)
                if code is None:
                    raise Uncacheable(f"rewrite {r.name!r} has no code to fingerprint")
                qual += ":" + hashlib.sha1(marshal.dumps(code)).hexdigest()
            parts.append(f"{r.name}={qual}")
    return "\n".join(parts)


def _tunables() -> list[tuple[str, str, Any]]:
    """The rewrite modules' settings (upper-case module constants such as
    ``constant_folding.MAX_FOLD_SIZE``): changing one at run time changes the key."""
    import graphc.rewrite as package

    found = []
    for name, mod in list(vars(package).items()):  # its imported submodules
        if isinstance(mod, types.ModuleType) and mod.__name__.startswith("graphc.rewrite."):
            for k, v in list(vars(mod).items()):
                if k.isupper() and isinstance(v, bool | int | float | str):
                    found.append((name, k, v))
    return sorted(found)


def graph_context(fgraph: FunctionGraph, mode: Any, phases: Sequence[Any]) -> Context | None:
    """The cache key of rewriting ``fgraph`` (as it is now) with ``phases``, or None when
    the graph or the rewrites have no canonical form."""
    from graphc.backend.llvm.cache import code_fingerprint
    from graphc.rewrite import framework

    canon = _Canon()
    h = hashlib.sha256()
    try:
        names: dict[int, str] = {}
        for k, var in enumerate(fgraph.inputs):
            names[id(var)] = f"i{k}"
            h.update(f"in {k} {canon(var.type)} {var.name!r} {type(var).__name__}\n".encode())
        for j, node in enumerate(io_toposort(fgraph.outputs, blockers=fgraph.inputs)):
            refs = []
            for v in node.inputs:
                ref = names.get(id(v))
                if ref is None:
                    if not isinstance(v, Constant):
                        raise Uncacheable(f"{v!r} is neither an input nor a constant")
                    ref = f"c[{canon(v.type)}|{canon(v.data)}|{v.name!r}]"
                    names[id(v)] = ref
                refs.append(ref)
            outs = []
            for k, o in enumerate(node.outputs):
                names[id(o)] = f"n{j}.{k}"
                outs.append(f"{canon(o.type)} {o.name!r}")
            h.update(f"{canon(node.op)}({','.join(refs)}) -> {';'.join(outs)} @ {node.trace}\n".encode())
        for k, out in enumerate(fgraph.outputs):
            ref = names.get(id(out))
            if ref is None:
                if not isinstance(out, Constant):
                    raise Uncacheable(f"output {out!r} is neither computed nor a constant")
                ref = f"c[{canon(out.type)}|{canon(out.data)}]"
            h.update(f"out {k} {ref}\n".encode())
        h.update(_rewrite_identity(phases).encode())
    except Uncacheable:
        return None
    settings = (
        getattr(mode, "rewrites", None), tuple(getattr(mode, "including", ())),
        tuple(getattr(mode, "excluding", ())), config.floatX, bool(config.nan_guard),
        framework.RAISE_REWRITE_ERRORS, sys.version_info[:2], np.__version__, _tunables(),
    )
    h.update(f"\n{settings!r}\n{code_fingerprint()}".encode())
    return Context(h.hexdigest(), canon.sops)


# -- storing and loading ------------------------------------------------------------------
_module_sops: dict[tuple, ScalarOp] | None = None
_module_count = -1
_local = threading.local()  # .resolving: the scalar ops a load in this thread may use


def _scan_modules() -> dict[tuple, ScalarOp]:
    """Scalar ops that graphc's loaded modules define: module-level ScalarOps, Elemwise
    ops, and those held by module-level functions' closures (``add``, ``exp``...)."""
    global _module_sops, _module_count
    mods = [m for n, m in list(sys.modules.items()) if n.startswith("graphc.") and m is not None]
    if _module_sops is not None and len(mods) == _module_count:
        return _module_sops
    found: dict[tuple, ScalarOp] = {}

    def add(obj: Any) -> None:
        if isinstance(obj, ScalarOp):
            found.setdefault((obj.name, obj.params), obj)
        elif isinstance(obj, Elemwise):
            add(obj.scalar_op)

    for mod in mods:
        for value in list(vars(mod).values()):
            add(value)
            for cell in getattr(value, "__closure__", None) or ():
                try:
                    add(cell.cell_contents)
                except ValueError:  # an empty cell
                    pass
            if isinstance(value, dict):
                for v in list(value.values())[:1000]:
                    add(v)
                    for cell in getattr(v, "__closure__", None) or ():
                        try:
                            add(cell.cell_contents)
                        except ValueError:
                            pass
    _module_sops, _module_count = found, len(mods)
    return found


def _scalar_op(name: str, params: tuple) -> ScalarOp:
    resolving: dict[tuple, ScalarOp] = getattr(_local, "resolving", {})
    sop = resolving.get((name, params))
    if sop is None:  # not in the user's graph: made by a rewrite (scanning costs ~10 ms)
        for k, v in _scan_modules().items():
            resolving.setdefault(k, v)
        sop = resolving.get((name, params))
        if sop is None:
            raise Uncacheable(f"scalar op {name}{params} is not known in this process")
    return sop


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, inputs: Sequence[Variable], known: dict[tuple, ScalarOp]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.inputs = {id(v): k for k, v in enumerate(inputs)}
        self.known = known

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, Variable) and obj.owner is None and not isinstance(obj, Constant):
            k = self.inputs.get(id(obj))
            if k is None:
                raise Uncacheable(f"{obj!r} is not an input of the function")
            return ("in", k)
        return None

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, ScalarOp):
            key = (obj.name, obj.params)
            if key not in self.known:  # made by a rewrite: is it one graphc's modules define?
                for k, v in _scan_modules().items():
                    self.known.setdefault(k, v)
                if key not in self.known:
                    raise Uncacheable(f"scalar op {obj!r} would not be found in a new process")
            return _scalar_op, key
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, inputs: Sequence[Variable]) -> None:
        super().__init__(file)
        self.inputs = inputs

    def persistent_load(self, pid: Any) -> Any:
        kind, k = pid
        if kind != "in":
            raise pickle.UnpicklingError(f"unknown reference {pid!r}")
        return self.inputs[k]


def directory() -> Path | None:
    from graphc.backend.llvm.cache import cache_directory

    d = cache_directory()
    return None if d is None else d.parent / "graphs"


def dumps(fgraph: FunctionGraph, lines: list[str], sops: dict[tuple, ScalarOp]) -> bytes:
    """The rewritten ``fgraph`` and its log as an entry (raises Uncacheable)."""
    known = dict(sops)
    buf = io.BytesIO()
    try:
        _Pickler(buf, fgraph.inputs, known).dump(
            (len(fgraph.inputs), list(fgraph.outputs), fgraph.toposort(), list(lines)))
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
        raise Uncacheable(f"cannot pickle the rewritten graph: {exc}") from exc
    body = buf.getvalue()
    return MAGIC + hashlib.sha256(body).digest() + body


def loads(
    data: bytes, fgraph: FunctionGraph, sops: dict[tuple, ScalarOp],
) -> tuple[list[Variable], list[Apply], list[str]]:
    """The outputs (wired to ``fgraph.inputs``), the execution order of their nodes and the
    log stored in entry ``data``."""
    if len(data) < _HEADER or not data.startswith(MAGIC):
        raise ValueError("bad header")
    body = data[_HEADER:]
    if hashlib.sha256(body).digest() != data[len(MAGIC):_HEADER]:
        raise ValueError("checksum mismatch")
    _local.resolving = dict(sops)
    try:
        n_inputs, outputs, order, lines = _Unpickler(io.BytesIO(body), fgraph.inputs).load()
    finally:
        _local.resolving = {}
    if n_inputs != len(fgraph.inputs) or len(outputs) != len(fgraph.outputs):
        raise ValueError("entry is for another signature")
    for old, new in zip(fgraph.outputs, outputs):
        if not isinstance(new, Variable) or new.type != old.type:
            raise ValueError("entry's outputs have other types")
    _renumber(order, outputs, fgraph.inputs)
    return outputs, order, lines


def _renumber(order: list[Apply], outputs: list[Variable], inputs: Sequence[Variable]) -> None:
    """Fresh ids for the loaded variables (ids order shared variables and constants), and
    constants read-only again (pickling drops the flag)."""
    done: set[int] = {id(v) for v in inputs}
    nodes = set(map(id, order))
    if any(id(n) not in nodes for n in io_toposort(outputs, blockers=inputs)):
        raise ValueError("entry's node order misses nodes")
    for node in order:
        _fix_node(node, done)
    for v in outputs:
        if isinstance(v, Constant) and id(v) not in done:
            done.add(id(v))
            v.id = next(_ids)
            _fix_constant(v)


def _fix_constant(c: Constant) -> None:
    """Read-only again, and with NumPy's own dtype object: an unpickled array has an equal
    but distinct one, which identity checks (``dtype is``) would take for another dtype."""
    data = c.data
    dt = data.dtype
    canonical = np.dtype(dt.str) if dt.names is None and dt.subdtype is None else dt
    if dt is not canonical and dt == canonical:
        data = data.view(canonical)
    data.setflags(write=False)
    c.data = data


def _fix_node(node: Apply, done: set[int]) -> None:
    for v in node.inputs:
        if id(v) not in done and v.owner is None:
            done.add(id(v))
            v.id = next(_ids)
            if isinstance(v, Constant):
                _fix_constant(v)
    for v in node.outputs:
        done.add(id(v))
        v.id = next(_ids)


def lookup(ctx: Context, fgraph: FunctionGraph) -> list[str] | None:
    """On a hit, make ``fgraph`` the stored rewritten graph and return the stored log."""
    d = directory()
    if d is None:
        return None
    path = d / f"{ctx.key}{SUFFIX}"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        outputs, order, lines = loads(data, fgraph, ctx.sops)
    except Uncacheable as exc:  # a scalar op this process lacks: rewrite as usual
        log.info("graphc rewrite cache: entry %s not usable here (%s)", path, exc)
        return None
    except Exception as exc:  # noqa: BLE001 - corrupted or stale: rebuilt by the caller
        log.warning("graphc rewrite cache: discarding entry %s (%s: %s)", path, type(exc).__name__, exc)
        try:
            path.unlink()
        except OSError:
            pass
        return None
    fgraph.rebuild(outputs, order)
    try:
        os.utime(path)  # recently used (pruning removes the least recently used first)
    except OSError:
        pass
    return lines


def store(ctx: Context, fgraph: FunctionGraph, lines: list[str]) -> Path | None:
    """Write the rewritten ``fgraph`` under ``ctx.key`` (atomically); None if not stored."""
    d = directory()
    if d is None:
        return None
    try:
        data = dumps(fgraph, lines, ctx.sops)
    except Uncacheable as exc:
        log.info("graphc rewrite cache: not storing (%s)", exc)
        return None
    from graphc.backend.llvm.cache import prune, write_atomically

    path = d / f"{ctx.key}{SUFFIX}"
    if not write_atomically(path, data, "rewrite cache"):
        return None
    prune(d, suffix=SUFFIX)
    return path

"""A function's kernels compiled through the on-disk cache (graphc.backend.llvm.cache),
in parts: modules compiled in parallel threads, each with its own LLVM context.

A function's kernels are compiled in parts (modules compiled in parallel); besides
the function's entry (all its parts' object code), each part is stored as an entry
of its own under ``parts/``, with a small index file per kernel naming its part:
a function whose entry misses loads the kernels other functions compiled before
(kernel names are hashes of what they compute) and compiles only the others.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from graphc.backend.llvm.cache import (
    PARTS,
    Entry,
    cache_directory,
    load,
    module_key,
    pack_ir,
    store,
    write_atomically,
)

if TYPE_CHECKING:
    from llvmlite import ir

    from graphc.backend.llvm.jit import CompiledModule

log = logging.getLogger("graphc.cache")


def compile_kernels(
    builders: Mapping[str, Callable[[ir.Module], object]], opt: int = 3,
) -> tuple[CompiledModule | None, dict[str, str]]:
    """One module with the kernels ``builders`` define (name -> adds it to a module).

    Returns the compiled module (None if no kernel could be built) and, for each
    kernel that could not be, why. Goes through the on-disk cache: on a hit no
    builder runs. A builder raising ``Unsupported`` leaves its kernel out.

    On a miss, kernels that other functions compiled before (kernels are named by what
    they compute, so functions share many) are loaded from the part of those functions'
    entries that holds them (``<kernel key>.idx`` names it); only the others are built,
    in parts compiled in parallel, each part stored as an entry of its own too.
    """
    from graphc.backend.llvm import entry as fast
    from graphc.backend.llvm import jit

    key = module_key(list(builders), opt)
    entry = load(key)
    if (entry is not None and set(entry.names) | set(entry.failures) == set(builders)
            and (not entry.entries or fast.available())):
        if not entry.names:
            return None, entry.failures
        try:
            engine, addresses = jit.load_object(entry.obj, entry.names)
        except RuntimeError as exc:  # e.g. a kernel missing from the object: compile afresh
            log.warning("graphc compile cache: cannot load entry %s (%s); recompiling", key, exc)
        else:
            compiled = jit.CompiledModule(engine, addresses, ir_source=entry.ir_texts, obj=entry.obj,
                                          key=key, from_cache=True)
            _register_entries(compiled, entry.entries)
            return compiled, entry.failures

    failures: dict[str, str] = {}
    reused = _reuse_parts(builders, opt, failures)
    have = {n for part, _ in reused for n in part.names} | set(failures)
    new = _build_parts({n: b for n, b in builders.items() if n not in have}, opt, failures)
    parts = reused + new
    names = [n for part, _ in parts for n in part.names if n in builders]
    entries = [e for part, _ in parts for e in part.entries if e.rpartition(":")[0] in builders]
    if not names:
        store(Entry(key, [], failures))
        return None, failures
    addresses: dict[str, int] = {}
    engines: list = []
    for _, compiled in parts:
        addresses.update(compiled.addresses)
        engines += compiled.engine if isinstance(compiled.engine, list) else [compiled.engine]
    texts = [part.ir_texts() for part, _ in parts]
    ir_text = jit.PART_MARK.join(t or "" for t, _ in texts)
    opt_text = jit.PART_MARK.join(t or "" for _, t in texts)
    obj = jit.pack_objects([part.obj for part, _ in parts])
    result = jit.CompiledModule(engines, addresses, obj=obj, key=key, from_cache=not new,
                                _texts=(ir_text, opt_text))
    _register_entries(result, entries)
    store(Entry(key, names, {n: why for n, why in failures.items() if n in builders}, obj,
                pack_ir(ir_text, opt_text), entries))
    return result, failures


def _index_path(name: str, opt: int) -> Path | None:
    d = cache_directory()
    return None if d is None else d / PARTS / f"{module_key([name], opt)}.idx"


def _reuse_parts(builders: Mapping[str, object], opt: int,
                 failures: dict[str, str]) -> list[tuple[Entry, CompiledModule]]:
    """Load the stored parts holding some of ``builders``' kernels (recording the kernels
    they could not build in ``failures``); each part once."""
    from graphc.backend.llvm import entry as fast
    from graphc.backend.llvm import jit

    found: list[tuple[Entry, CompiledModule]] = []
    done: set[str] = set()
    for name in builders:
        if name in done:
            continue
        path = _index_path(name, opt)
        try:
            part_key = path.read_text().strip() if path is not None else ""
        except OSError:
            continue
        if len(part_key) != 64 or not all(c in "0123456789abcdef" for c in part_key):
            continue
        part = load(part_key, PARTS)
        if part is None or name not in set(part.names) | set(part.failures):
            continue
        if part.entries and not fast.available():
            continue
        wanted = [n for n in part.names if n in builders and n not in done]
        if wanted:
            want_entries = [e for e in part.entries if e.rpartition(":")[0] in wanted]
            try:
                engine, addresses = jit.load_object(part.obj, wanted)
            except RuntimeError as exc:
                log.warning("graphc compile cache: cannot load part %s (%s)", part_key, exc)
                continue
            compiled = jit.CompiledModule(engine, addresses, obj=part.obj, key=part_key, from_cache=True)
            found.append((Entry(part_key, wanted, {}, part.obj, part.ir_blob, want_entries), compiled))
            done.update(wanted)
        for n, why in part.failures.items():
            if n in builders:
                failures[n] = why
                done.add(n)
    return found


def _build_parts(builders: Mapping[str, Callable[[ir.Module], object]], opt: int,
                 failures: dict[str, str]) -> list[tuple[Entry, CompiledModule]]:
    """Build ``builders``' kernels in parts compiled in parallel; store each part as an entry
    (and index its kernels). Kernels that cannot be built go to ``failures``."""
    from llvmlite import ir

    from graphc.backend.llvm import entry as fast
    from graphc.backend.llvm import jit
    from graphc.backend.llvm.scalar import Unsupported

    builds, texts, groups = jit.Builds(), [], []
    arities: set[int] = set()  # of the fast entries the kernels need
    for part, part_opt in _parts_and_pipelines(list(builders), opt):
        module = ir.Module(name="graphc")
        here, failed = [], {}
        for name in part:
            try:
                builders[name](module)
            except Unsupported as exc:
                fn = module.globals.get(name)
                if isinstance(fn, ir.Function):  # half built: leave a bodiless declaration (valid IR)
                    fn.blocks.clear()
                failed[name] = str(exc)
            else:
                here.append(name)
        failures.update(failed)
        # Kernels a shared fast entry can call (graphc.backend.llvm.entry), with their arity.
        arity = {n: fast.kernel_arrays(module, n) for n in here} if fast.available() else {}
        part_entries = [f"{n}:{k}" for n, k in arity.items() if k is not None]
        arities.update(k for k in arity.values() if k is not None)
        if here:  # compiles in a thread while the next part's IR is generated
            texts.append(jit.module_text(module))
            builds.start(texts[-1], part_opt)
        groups.append((here, failed, part_entries, part_opt))
    # All at once, beside the parts' compiles: one module of entries (one engine to load
    # when warm, ~1.5 ms each), not one per part.
    fast.prepare_soon(arities)
    compiled = None
    if texts:
        symbols = [n for here, _, _, _ in groups for n in here]
        compiled = jit.load_built(texts, builds.results(), symbols)
        objs = jit.unpack_objects(compiled.obj)
        texts = compiled.ir_text.split(jit.PART_MARK)
        opt_texts = compiled.opt_ir_text.split(jit.PART_MARK)
        engines = compiled.engine if isinstance(compiled.engine, list) else [compiled.engine]
    parts: list[tuple[Entry, CompiledModule]] = []
    k = 0
    for here, failed, part_entries, part_opt in groups:
        part_key = module_key(here + list(failed), part_opt)
        if here:
            assert compiled is not None
            part = Entry(part_key, here, failed, objs[k], pack_ir(texts[k], opt_texts[k]), part_entries)
            mine = set(here)
            parts.append((part, jit.CompiledModule(
                engines[k], {n: a for n, a in compiled.addresses.items() if n in mine}, obj=objs[k],
                key=part_key)))
            k += 1
        else:
            part = Entry(part_key, [], failed)
        if store(part, PARTS) is not None:
            for name in here + list(failed):
                _write_index(name, opt, part_key)
    return parts


def _write_index(name: str, opt: int, part_key: str) -> None:
    path = _index_path(name, opt)
    if path is None:
        return
    write_atomically(path, part_key.encode(), "compile cache index")


def compile_threads() -> int:
    """How many modules (compiled in parallel threads) a function's kernels are split into:
    GRAPHC_COMPILE_THREADS, else the CPUs this process may run on (at most 4)."""
    env = os.environ.get("GRAPHC_COMPILE_THREADS")
    if env:
        return max(1, int(env))
    try:
        cpus = len(os.sched_getaffinity(0))  # the CPUs this process may use
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


# Rough relative compile cost of a kernel, by its name's family, in units of ~10 ms through
# passes and code generation (measured one by one on the W3 step's kernels).
_WEIGHTS = (("gcblas_gemm", 4.0), ("gcxent", 3.8), ("gcred", 2.8), ("gcsoftmax", 2.8),
            ("gcblas", 2.2), ("gck_", 1.7))
MIN_PART_WEIGHT = 3.5  # a part costs ~3 ms of fixed overhead: not worth it for one small kernel


#: Kernels whose work happens elsewhere (BLAS wrappers: argument checks and layout choices
#: around one call) or in loops too short to vectorize: the light pipeline (jit.LIGHT)
#: compiles them in about half the time (gemm 38 -> 19 ms) into code as fast for them.
LIGHT_PREFIXES = ("gcblas_", "gcscatter_")


def _parts_and_pipelines(names: list[str], opt: int) -> list[tuple[list[str], int]]:
    """The modules ``names`` are built in, each with its optimization level: the light
    kernels (at opt 2 and up) in one module of their own, the others in balanced parts."""
    from graphc.backend.llvm import jit

    light = [n for n in names if opt >= 2 and n.startswith(LIGHT_PREFIXES)]
    heavy = [n for n in names if n not in set(light)]
    groups = [(g, opt) for g in partition(heavy, compile_threads())] if heavy else []
    return groups + ([(light, jit.LIGHT)] if light else [])


def partition(names: list[str], parts: int) -> list[list[str]]:
    """``names`` in at most ``parts`` groups of similar estimated compile cost (a function of
    the names only: the same kernels always give the same groups)."""
    def weight(n: str) -> float:
        return next((w for prefix, w in _WEIGHTS if n.startswith(prefix)), 1.0)

    total = sum(map(weight, names))
    parts = max(1, min(parts, len(names), int(total // MIN_PART_WEIGHT) or 1))
    groups: list[list[str]] = [[] for _ in range(parts)]
    loads = [0.0] * parts
    for n in sorted(names, key=lambda n: (-weight(n), n)):
        k = loads.index(min(loads))
        groups[k].append(n)
        loads[k] += weight(n)
    return [g for g in groups if g]


def _register_entries(compiled: CompiledModule, entries: list[str]) -> None:
    """Bind the kernels ``entries`` names ("kernel:arrays") to the shared fast entries of
    their arities (compiled once per process, all at once), found by the kernel's address."""
    from graphc.backend.llvm import entry as fast

    pairs = []
    for e in entries:
        name, _, n = e.rpartition(":")
        if name in compiled.addresses and n.isdigit():
            pairs.append((name, int(n)))
    if not pairs:
        return
    fast.prepare({n for _, n in pairs})
    for name, n in pairs:
        fast.bind(compiled.addresses[name], n, name)

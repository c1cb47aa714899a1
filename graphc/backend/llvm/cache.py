"""The on-disk compile cache: object code of kernel modules, reused across processes.

An entry holds the object file the target machine emitted for one module of
kernels, the names of the kernels it defines (and why the others could not be
built), and the module's LLVM IR (compressed, for ``fn.llvm_ir()`` on a hit).
On a hit the object file is added to a fresh execution engine (1-3 ms); no IR
is built, optimized or code-generated.

The key is computed *before* any IR exists, so a hit costs no IR construction:
each kernel's name is already a hash of its computation (the scalar DAG and the
rank, see ``kernel_name``), and the key adds everything else the machine code
depends on: a fingerprint of graphc's own source (the code generators), the
llvmlite and LLVM versions, the triple, the CPU name and feature string, and the
optimization level.

A function's kernels are compiled in parts (modules compiled in parallel); besides
the function's entry (all its parts' object code), each part is stored as an entry
of its own under ``parts/``, with a small index file per kernel naming its part:
a function whose entry misses loads the kernels other functions compiled before
(kernel names are hashes of what they compute) and compiles only the others.

Entries are written to a temporary file in the cache directory and moved into
place with ``os.replace``, so a reader sees a whole entry or none, and processes
compiling the same module at once each write a complete file (the last one
wins). Each file carries a SHA-256 of its content; a truncated or corrupted
entry is discarded and rebuilt. ``graphc.config.cache_dir`` names the directory
(``GRAPHC_FLAGS=cache_dir=/path``); an empty value switches the cache off.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from graphc.config import config

if TYPE_CHECKING:
    from llvmlite import ir

    from graphc.backend.llvm.jit import CompiledModule

log = logging.getLogger("graphc.cache")

MAGIC = b"GRAPHC-KERNELS-1\n"
FORMAT = 2
SUFFIX = ".gco"
_HEADER = len(MAGIC) + 32 + 4  # magic, sha256 of the rest, length of the JSON metadata
MAX_BYTES = 1 << 30  # beyond this, least recently used entries are removed (after each write)


@dataclass
class Entry:
    """What a cache file holds."""

    key: str
    names: list[str]  # kernels the object file defines
    failures: dict[str, str] = field(default_factory=dict)  # kernel -> why it was not built
    obj: bytes = b""
    ir_blob: bytes = b""  # zlib-compressed JSON [ir, optimized ir]; read only when asked for
    entries: list[str] = field(default_factory=list)  # "kernel:arrays" of kernels with a fast entry

    def ir_texts(self) -> tuple[str | None, str | None]:
        """(unoptimized, optimized) LLVM IR of the module, or (None, None) if not stored."""
        return unpack_ir(self.ir_blob)


def pack_ir(ir_text: str | None, opt_ir_text: str | None) -> bytes:
    if ir_text is None and opt_ir_text is None:
        return b""
    return zlib.compress(json.dumps([ir_text, opt_ir_text]).encode(), 1)


def unpack_ir(blob: bytes) -> tuple[str | None, str | None]:
    if not blob:
        return None, None
    ir_text, opt_text = json.loads(zlib.decompress(blob))
    return ir_text, opt_text


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of graphc's Python sources: any change to a code generator changes the key."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # graphc/
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
        rel = os.path.relpath(folder, root).replace(os.sep, "/")
        files += [(f"{rel}/{n}", os.path.join(folder, n)) for n in names if n.endswith(".py")]
    h = hashlib.sha256()
    for rel, path in sorted(files):
        h.update(rel.encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def environment() -> str:
    """Everything besides the kernels themselves that the machine code depends on."""
    import llvmlite
    import llvmlite.binding as llvm

    from graphc.backend.llvm import jit

    jit.init()
    parts = {
        "format": FORMAT,
        "llvmlite": llvmlite.__version__,
        "llvm": ".".join(map(str, llvm.llvm_version_info)),
        "triple": llvm.get_process_triple(),
        "cpu": jit.host_cpu()[0],
        "features": jit.host_cpu()[1],
        "vector_width": jit.vector_width_attribute(),
        "code": code_fingerprint(),
    }
    return json.dumps(parts, sort_keys=True)


def module_key(names: Sequence[str], opt: int) -> str:
    """The cache key of a module defining the kernels ``names`` at optimization level ``opt``."""
    h = hashlib.sha256(environment().encode())
    h.update(f"\nO{opt}\n".encode())
    h.update("\n".join(sorted(names)).encode())
    return h.hexdigest()


def cache_directory() -> Path | None:
    """``config.cache_dir``/llvm, or None when caching is off (an empty cache_dir)."""
    base = str(config.cache_dir or "").strip()
    if not base or base.lower() in ("none", "off"):
        return None
    return Path(os.path.expanduser(base)) / "llvm"


def entry_path(key: str, sub: str = "") -> Path | None:
    d = cache_directory()
    if d is not None and sub:
        d = d / sub
    return None if d is None else d / f"{key}{SUFFIX}"


def encode(entry: Entry) -> bytes:
    ir_blob = entry.ir_blob
    meta = json.dumps({
        "format": FORMAT, "key": entry.key, "names": entry.names, "failures": entry.failures,
        "obj": len(entry.obj), "ir": len(ir_blob), "entries": entry.entries,
    }).encode()
    body = struct.pack("<I", len(meta)) + meta + entry.obj + ir_blob
    return MAGIC + hashlib.sha256(body).digest() + body


class CorruptEntry(ValueError):
    """A cache file that is truncated, altered or not ours."""


def decode(data: bytes, key: str) -> Entry:
    """Parse and verify a cache file's bytes (raises CorruptEntry)."""
    if len(data) < _HEADER or not data.startswith(MAGIC):
        raise CorruptEntry("bad header")
    digest = data[len(MAGIC):len(MAGIC) + 32]
    body = data[len(MAGIC) + 32:]
    if hashlib.sha256(body).digest() != digest:
        raise CorruptEntry("checksum mismatch")
    (n,) = struct.unpack_from("<I", body)
    try:
        meta = json.loads(body[4:4 + n])
    except ValueError as exc:
        raise CorruptEntry(f"bad metadata: {exc}") from exc
    if meta.get("format") != FORMAT or meta.get("key") != key:
        raise CorruptEntry("entry is for another key or format")
    start = 4 + n
    obj = body[start:start + meta["obj"]]
    ir_blob = body[start + meta["obj"]:]
    if len(obj) != meta["obj"] or len(ir_blob) != meta["ir"]:
        raise CorruptEntry("lengths do not match")
    return Entry(key, list(meta["names"]), dict(meta["failures"]), bytes(obj), bytes(ir_blob),
                 list(meta["entries"]))


def load(key: str, sub: str = "") -> Entry | None:
    """The verified entry for ``key`` (in subdirectory ``sub``), or None (missing,
    unreadable or corrupted: removed)."""
    path = entry_path(key, sub)
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        entry = decode(data, key)
        try:
            os.utime(path)  # recently used: pruning removes the least recently used first
        except OSError:
            pass
        return entry
    except (CorruptEntry, KeyError, TypeError, ValueError, struct.error, zlib.error) as exc:
        log.warning("graphc compile cache: discarding corrupted entry %s (%s)", path, exc)
        try:
            path.unlink()
        except OSError:
            pass
        return None


def store(entry: Entry, sub: str = "") -> Path | None:
    """Write ``entry`` atomically (temporary file, then ``os.replace``) in subdirectory
    ``sub``; None if not possible."""
    path = entry_path(entry.key, sub)
    if path is None:
        return None
    if not write_atomically(path, encode(entry), "compile cache"):
        return None
    prune(path.parent)
    return path


def write_atomically(path: Path, data: bytes, what: str) -> bool:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``, so a reader in
    another process sees the old file or the new one, never half of one. A read-only or
    full disk is logged (compiling still works, uncached): False then."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return True
    except OSError as exc:
        log.warning("graphc %s: cannot write %s (%s)", what, path, exc)
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return False


def prune(directory: Path, max_bytes: int | None = None, suffix: str = SUFFIX) -> int:
    """Remove the least recently used entries (files ending in ``suffix``) while the
    directory holds more than ``max_bytes`` (``MAX_BYTES``); returns how many were removed.
    Other processes may remove the same files at the same time: that is fine."""
    limit = MAX_BYTES if max_bytes is None else max_bytes
    files = []
    total = 0
    try:
        with os.scandir(directory) as it:
            for e in it:
                if e.name.endswith(suffix) and not e.name.startswith(".tmp-"):
                    st = e.stat()
                    files.append((st.st_mtime, st.st_size, e.path))
                    total += st.st_size
    except OSError:
        return 0
    removed = 0
    for _, size, path in sorted(files):
        if total <= limit:
            break
        try:
            os.unlink(path)
            removed += 1
        except OSError:
            pass
        total -= size
    return removed


def clear() -> int:
    """Remove every entry of the current cache directory; returns how many."""
    d = cache_directory()
    if d is None or not d.is_dir():
        return 0
    count = 0
    parts = d / PARTS
    for p in [*d.iterdir(), *(parts.iterdir() if parts.is_dir() else ())]:
        if p.suffix in (SUFFIX, ".idx"):
            try:
                p.unlink()
                count += p.suffix == SUFFIX
            except OSError:
                pass
    return count


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


PARTS = "parts"  # subdirectory of the parts' entries and the kernels' index files


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
        fast.prepare_soon({k for k in arity.values() if k is not None})
        if here:  # compiles in a thread while the next part's IR is generated
            texts.append(jit.module_text(module))
            builds.start(texts[-1], part_opt)
        groups.append((here, failed, part_entries, part_opt))
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

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

Compiling a function's kernels through this cache, in parts: graphc.backend.llvm.kernel_parts.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graphc.config import config

log = logging.getLogger("graphc.cache")

MAGIC = b"GRAPHC-KERNELS-1\n"
FORMAT = 2
SUFFIX = ".gco"
FINGERPRINT_SUFFIX = ".fp"  # code_fingerprint's memo files
_HEADER = len(MAGIC) + 32 + 4  # magic, sha256 of the rest, length of the JSON metadata
PARTS = "parts"  # subdirectory of the parts' entries and the kernels' index files
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
    """SHA-256 of graphc's Python sources: any change to a code generator changes the key.

    Reading every source costs 1-2 ms per process; the hash is kept in the cache
    directory under the sources' sizes and modification times (what Python's own
    bytecode cache trusts), so a process finding them unchanged only stats the files.
    """
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # graphc/
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
        rel = os.path.relpath(folder, root).replace(os.sep, "/")
        files += [(f"{rel}/{n}", os.path.join(folder, n)) for n in names if n.endswith(".py")]
    files.sort()
    stamp = hashlib.sha256()
    for rel, path in files:
        st = os.stat(path)
        stamp.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    d = cache_directory()
    memo = None if d is None else d / f"code-{stamp.hexdigest()[:32]}{FINGERPRINT_SUFFIX}"
    if memo is not None:
        try:
            known = memo.read_text()
        except OSError:
            known = ""
        if len(known) == 64:
            return known
    h = hashlib.sha256()
    for rel, path in files:
        h.update(rel.encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read())
    digest = h.hexdigest()
    if memo is not None:
        write_atomically(memo, digest.encode(), "code fingerprint")
    return digest


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
        if p.suffix in (SUFFIX, ".idx", FINGERPRINT_SUFFIX):
            try:
                p.unlink()
                count += p.suffix == SUFFIX
            except OSError:
                pass
    return count

"""The on-disk compile cache: hits in new processes, corrupted entries, concurrent writers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.llvm import cache, entry, executor, jit, kernel_parts
from graphc.compile.mode import Mode

ROOT = Path(__file__).resolve().parents[2]
NATIVE = Mode("llvm", "fast_run")

# Several distinct kernels, so a miss costs far more than loading an object file.
_PROGRAM = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    t0 = time.perf_counter()
    import graphc, graphc.tensor as T
    from graphc.backend.llvm import cache, executor, lowering, strided_driver  # noqa: F401
    lowering._load_lowerings()  # imported before timing: with no bytecode cache (as in CI)
    # importing compiles sources, which is the same cold or warm
    x, y, z = T.fmatrix("x"), T.fmatrix("y"), T.dvector("z")
    outs = [T.exp(x) * y + T.tanh(x), T.nnet.sigmoid(x - y) * T.log1p(abs(y)),
            T.sqrt(abs(z)) + T.expm1(z) / (1 + z * z), T.nnet.softplus(x) - T.tanh(y) * y]
    t1 = time.perf_counter()
    f = graphc.function([x, y, z], outs, mode=graphc.Mode("llvm", "fast_run"))
    t2 = time.perf_counter()
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((7, 9)).astype("float32") for _ in range(2))
    c = rng.standard_normal(11)
    res = f(a, b, c)
    mods = f._program.modules
    print(json.dumps({"compile": t2 - t1, "from_cache": [m.from_cache for m in mods],
                      "keys": [m.key for m in mods], "native": len(f._program.native_nodes),
                      "dir": str(cache.cache_directory()),
                      "results": [r.tolist() for r in res]}))
""")


def _run(cache_dir: Path, *, via_flags: bool = False, wait: bool = True) -> subprocess.Popen | dict:
    env = {k: v for k, v in os.environ.items() if k not in ("GRAPHC_CACHE_DIR", "GRAPHC_FLAGS")}
    if via_flags:
        env["GRAPHC_FLAGS"] = f"cache_dir={cache_dir}"
    else:
        env["GRAPHC_CACHE_DIR"] = str(cache_dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.Popen([sys.executable, "-c", _PROGRAM], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return _result(proc) if wait else proc


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _entries(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "llvm").glob("*" + cache.SUFFIX))


def test_hit_in_a_new_process_is_faster_and_agrees(tmp_path: Path) -> None:
    first = _run(tmp_path, via_flags=True)  # GRAPHC_FLAGS=cache_dir=... names the directory
    assert first["dir"] == str(tmp_path / "llvm")
    assert first["native"] >= 3 and first["from_cache"] == [False]
    # The function's kernels, the fast entries shared per arity (graphc.backend.llvm.entry)
    # and the strided driver its elementwise kernels call (graphc.backend.llvm.strided_driver).
    assert len(_entries(tmp_path)) == 2 + entry.available()
    second = _run(tmp_path, via_flags=True)
    assert second["from_cache"] == [True] and second["keys"] == first["keys"]
    assert second["results"] == first["results"]  # the same machine code: bit-identical
    assert second["compile"] < first["compile"] / 2, (first["compile"], second["compile"])


def test_concurrent_processes_do_not_corrupt_each_other(tmp_path: Path) -> None:
    procs = [_run(tmp_path, wait=False) for _ in range(3)]
    results = [_result(p) for p in procs]
    assert all(r["results"] == results[0]["results"] for r in results)
    entries = _entries(tmp_path)
    assert entries  # one, unless graphc's sources changed meanwhile (another key)
    parts = tmp_path / "llvm" / cache.PARTS
    files = [*(tmp_path / "llvm").iterdir(), *(parts.iterdir() if parts.is_dir() else ())]
    assert not [p for p in files if p.suffix not in (cache.SUFFIX, ".idx", cache.FINGERPRINT_SUFFIX)
                and p != parts]  # no temp left
    for path in entries:
        cache.decode(path.read_bytes(), path.name[: -len(cache.SUFFIX)])  # whole, valid entries
    again = _run(tmp_path)
    assert again["from_cache"] == [True] and again["results"] == results[0]["results"]


def test_concurrent_writers_of_one_key_leave_a_valid_entry(tmp_path: Path) -> None:
    # Two processes rewriting the same (large) entry while a third keeps reading it.
    code = textwrap.dedent(f"""
        import os, sys
        from graphc.backend.llvm import cache
        from graphc.config import config
        config.cache_dir = {str(tmp_path)!r}
        role = sys.argv[1]
        for i in range(60):
            if role == "read":
                e = cache.load("k" * 64)
                assert e is None or (e.obj[:1] * len(e.obj) == e.obj and len(e.obj) == 1 << 20), "torn"
            else:
                cache.store(cache.Entry("k" * 64, ["f"], {{}}, role.encode() * (1 << 20)))
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", code, role], env=env, stderr=subprocess.PIPE,
                              text=True) for role in ("a", "b", "read")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    entry = cache.decode(_entries(tmp_path)[0].read_bytes(), "k" * 64)
    assert entry.obj in (b"a" * (1 << 20), b"b" * (1 << 20))


def _graph() -> tuple[list, list]:
    x, y = T.dmatrix("x"), T.dmatrix("y")
    return [x, y], [T.exp(x) * T.cos(y) + 3.25, T.tanh(x * y) - T.log1p(abs(x))]


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache directory and an empty in-process kernel table (so the disk is used)."""
    monkeypatch.setattr(graphc.config, "cache_dir", str(tmp_path))
    monkeypatch.setattr(executor, "_kernels", {})
    monkeypatch.setattr(executor, "_unsupported", {})
    return tmp_path


def _compile_and_check(rng: np.random.Generator) -> graphc.compile.function.Function:
    ins, outs = _graph()
    fn = graphc.function(ins, outs, mode=NATIVE)
    ref = graphc.function(ins, outs, mode="PY")
    a, b = rng.standard_normal((5, 6)), rng.standard_normal((5, 6))
    for got, want in zip(fn(a, b), ref(a, b)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    return fn


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_corrupted_entry_is_rebuilt(fresh: Path, damage: str, rng: np.random.Generator,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fn = _compile_and_check(rng)
    assert [m.from_cache for m in fn._program.modules] == [False]
    # (the process's first compile also stores the shared fast entries: not this function's)
    (path,) = [p for p in _entries(fresh) if p.name == fn._program.modules[0].key + cache.SUFFIX]
    data = path.read_bytes()
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        pos = len(data) - 100  # inside the object code or IR, past the header
        data = data[:pos] + bytes([data[pos] ^ 0x40]) + data[pos + 1:]
    elif damage == "empty":
        data = b""
    else:
        data = os.urandom(len(data))
    path.write_bytes(data)
    shutil.rmtree(fresh / "llvm" / cache.PARTS)  # else rebuilt from the parts (see below)
    monkeypatch.setattr(executor, "_kernels", {})
    fn2 = _compile_and_check(rng)
    assert [m.from_cache for m in fn2._program.modules] == [False]  # rebuilt, not loaded
    cache.decode(path.read_bytes(), path.name[: -len(cache.SUFFIX)])  # and rewritten whole
    monkeypatch.setattr(executor, "_kernels", {})
    fn3 = _compile_and_check(rng)
    assert [m.from_cache for m in fn3._program.modules] == [True]


def test_hit_keeps_introspection_and_fallbacks(fresh: Path, rng: np.random.Generator,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    fn = _compile_and_check(rng)
    ir_text = fn.llvm_ir()
    monkeypatch.setattr(executor, "_kernels", {})
    fn2 = _compile_and_check(rng)
    assert fn2._program.modules[0].from_cache
    assert fn2.llvm_ir() == ir_text
    assert "ret" in fn2.asm()


def test_key_depends_on_kernels_and_level() -> None:
    k = cache.module_key(["gck_a", "gck_b"], 3)
    assert k == cache.module_key(["gck_b", "gck_a"], 3)
    assert k != cache.module_key(["gck_a"], 3)
    assert k != cache.module_key(["gck_a", "gck_b"], 1)
    env = json.loads(cache.environment())
    assert {"llvmlite", "llvm", "cpu", "features", "code", "triple"} <= set(env)


@pytest.mark.parametrize("cut", [0, 10, 40, -1])
def test_decode_rejects_damaged_bytes(cut: int) -> None:
    entry = cache.Entry("0" * 64, ["f"], {"g": "why"}, b"\x7fELF" + bytes(100), cache.pack_ir("a", "b"))
    data = cache.encode(entry)
    back = cache.decode(data, "0" * 64)
    assert (back.names, back.failures, back.obj, back.ir_texts()) == (["f"], {"g": "why"}, entry.obj,
                                                                     ("a", "b"))
    with pytest.raises(cache.CorruptEntry):
        cache.decode(data[:cut] if cut else b"", "0" * 64)
    with pytest.raises(cache.CorruptEntry):
        cache.decode(data, "1" * 64)  # another key's file


def test_cache_off(monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator) -> None:
    monkeypatch.setattr(graphc.config, "cache_dir", "")
    monkeypatch.setattr(executor, "_kernels", {})
    assert cache.cache_directory() is None
    fn = _compile_and_check(rng)
    assert fn._program.native_nodes


def test_unwritable_cache_dir_still_compiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             rng: np.random.Generator) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setattr(graphc.config, "cache_dir", str(blocker))
    monkeypatch.setattr(executor, "_kernels", {})
    fn = _compile_and_check(rng)
    assert fn._program.native_nodes


def test_prune_removes_least_recently_used(tmp_path: Path) -> None:
    d = tmp_path / "llvm"
    d.mkdir()
    for k in range(5):
        p = d / f"{k:064d}{cache.SUFFIX}"
        p.write_bytes(b"x" * 1000)
        os.utime(p, (1000 + k, 1000 + k))
    (d / f".tmp-partial{cache.SUFFIX}").write_bytes(b"x" * 5000)  # a writer's file: left alone
    assert cache.prune(d, max_bytes=2500) == 3
    left = sorted(p.name for p in d.iterdir())
    assert left == [f".tmp-partial{cache.SUFFIX}", f"{3:064d}{cache.SUFFIX}", f"{4:064d}{cache.SUFFIX}"]


def test_partition_is_deterministic_and_balanced() -> None:
    names = ["gck_a", "gck_b", "gck_c", "gcred_d", "gcblas_e", "gcpick_f"]
    parts = kernel_parts.partition(names, 2)
    assert parts == kernel_parts.partition(list(reversed(names)), 2)  # the names decide, not their order
    assert sorted(sum(parts, [])) == sorted(names) and len(parts) == 2
    assert kernel_parts.partition(["gck_a"], 4) == [["gck_a"]]  # one small kernel: one module
    assert len(kernel_parts.partition(names, 1)) == 1


def test_pack_objects_round_trip() -> None:
    objs = [b"\x7fELF" + bytes(10), b"\x7fELF" + b"x" * 33, b"\x7fELF"]
    assert jit.unpack_objects(jit.pack_objects(objs)) == objs
    assert jit.pack_objects(objs[:1]) == objs[0] and jit.unpack_objects(objs[0]) == objs[:1]
    with pytest.raises(RuntimeError):
        jit.unpack_objects(jit.pack_objects(objs)[:-1])


def test_kernels_in_parallel_parts_agree_and_load_from_the_cache(
        fresh: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHC_COMPILE_THREADS", "3")
    x, y = T.dmatrix("x"), T.dvector("y")
    outs = [T.exp(x) * y, T.tanh(x) - y, T.log1p(abs(x)) + 1.5, T.nnet.sigmoid(x * y),
            T.sqrt(abs(x)).sum(axis=0)]

    def check() -> graphc.compile.function.Function:
        fn = graphc.function([x, y], outs, mode=NATIVE)
        ref = graphc.function([x, y], outs, mode="PY")
        a, b = rng.standard_normal((5, 6)), rng.standard_normal(6)
        for got, want in zip(fn(a, b), ref(a, b)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        return fn

    fn = check()
    (module,) = fn._program.modules
    assert module.ir_text.count(jit.PART_MARK) >= 1 and not module.from_cache
    assert isinstance(module.engine, list) and len(module.engine) == module.ir_text.count(jit.PART_MARK) + 1
    assert "ret" in fn.asm() and fn.llvm_ir(0).startswith("define")
    monkeypatch.setattr(executor, "_kernels", {})
    fn2 = check()
    assert [m.from_cache for m in fn2._program.modules] == [True]
    assert fn2.llvm_ir() == fn.llvm_ir()


def test_a_new_function_reuses_the_kernels_other_functions_compiled(
        fresh: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHC_COMPILE_THREADS", "2")
    x, y = T.dmatrix("x"), T.dvector("y")
    shared = [T.exp(x) * y, T.tanh(x) - y, T.log1p(abs(x)) + 1.5]
    a, b = rng.standard_normal((5, 6)), rng.standard_normal(6)
    first = graphc.function([x, y], shared, mode=NATIVE)
    monkeypatch.setattr(executor, "_kernels", {})  # as in a new process
    outs = shared + [T.nnet.sigmoid(x * y)]
    second = graphc.function([x, y], outs, mode=NATIVE)
    (module,) = second._program.modules
    assert not module.from_cache  # the sigmoid kernel was compiled...
    reused = set(first._program.kernel_of.values())
    assert reused < set(second._program.kernel_of.values())
    assert all(name in module.ir_text for name in reused)  # ...the others loaded from the parts
    assert isinstance(module.engine, list) and len(module.engine) >= 2
    for got, want in zip(second(a, b), graphc.function([x, y], outs, mode="PY")(a, b)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert "ret" in second.asm()
    monkeypatch.setattr(executor, "_kernels", {})
    third = graphc.function([x, y], outs, mode=NATIVE)
    assert [m.from_cache for m in third._program.modules] == [True]
    np.testing.assert_array_equal(third(a, b)[3], second(a, b)[3])
    assert cache.clear() >= 3  # whole entries and parts
    assert not list((fresh / "llvm" / cache.PARTS).iterdir())


def _content_fingerprint() -> str:
    import hashlib
    import os

    root = Path(cache.__file__).resolve().parents[2]  # graphc/
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
        rel = Path(folder).relative_to(root).as_posix() if Path(folder) != root else "."
        files += [(f"{rel}/{n}", Path(folder) / n) for n in names if n.endswith(".py")]
    h = hashlib.sha256()
    for rel, path in sorted(files):
        h.update(rel.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def test_code_fingerprint_is_the_sources_hash_with_or_without_its_memo(fresh: Path) -> None:
    want = _content_fingerprint()
    cache.code_fingerprint.cache_clear()
    try:
        assert cache.code_fingerprint() == want  # computed, and its memo written
        memos = list((fresh / "llvm").glob("*" + cache.FINGERPRINT_SUFFIX))
        assert len(memos) == 1 and memos[0].read_text() == want
        cache.code_fingerprint.cache_clear()
        memos[0].write_text("f" * 64)  # a memo is trusted while the sources' stamps match
        assert cache.code_fingerprint() == "f" * 64
        memos[0].write_text("truncated")  # not a digest: computed again
        cache.code_fingerprint.cache_clear()
        assert cache.code_fingerprint() == want
        cache.clear()
        assert not list((fresh / "llvm").glob("*" + cache.FINGERPRINT_SUFFIX))
    finally:
        cache.code_fingerprint.cache_clear()

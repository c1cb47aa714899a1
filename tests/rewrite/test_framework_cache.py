"""The whole-function rewrite cache (graphc.rewrite.graph_cache): a graph rewritten once is
restored, in this process or a new one, instead of rewritten again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.config import config
from graphc.graph.fgraph import FunctionGraph
from graphc.rewrite import graph_cache
from graphc.rewrite.framework import DB, rewrite_graph

ROOT = Path(__file__).resolve().parents[2]
NATIVE = graphc.Mode("llvm", "fast_run")
RESTORED = "restored from the rewrite cache"


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(config, "cache_dir", str(tmp_path))
    return tmp_path


def _entries(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "graphs").glob("*" + graph_cache.SUFFIX))


def _step(scale: float = 0.1, name: str = "w") -> tuple:
    """A small training step: a shared weight, a softmax loss, an SGD update."""
    w = graphc.shared(np.linspace(-1, 1, 12).reshape(4, 3).astype("float32"), name=name)
    x, y = T.fmatrix("x"), T.ivector("y")
    p = T.nnet.softmax(T.dot(x, w))
    loss = T.nnet.categorical_crossentropy(p, y).mean()
    return [x, y], loss, w, [(w, w - scale * graphc.grad(loss, w))]


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((5, 4)).astype("float32"), np.array([0, 2, 1, 1, 0], "int32")


def test_hit_restores_the_graph_and_its_log(cache_dir: Path) -> None:
    ins, loss, w, updates = _step()
    first = graphc.function(ins, loss, updates=updates, mode=NATIVE)
    assert RESTORED not in first.rewrite_log[-1]
    assert len(_entries(cache_dir)) == 1
    ins2, loss2, w2, updates2 = _step()  # the same graph, built again (new variables)
    second = graphc.function(ins2, loss2, updates=updates2, mode=NATIVE)
    assert second.rewrite_log[-1].startswith("rewrote") and RESTORED in second.rewrite_log[-1]
    assert second.rewrite_log[:-1] == first.rewrite_log[:-1]  # what fired, as stored
    assert [str(n.op) for n in second.fgraph.toposort()] == [str(n.op) for n in first.fgraph.toposort()]
    # The restored graph reads this function's own inputs and shared variable.
    assert second.fgraph.inputs[:2] == ins2 and w2 in second.fgraph.inputs
    assert len(second.fgraph.variables & first.fgraph.variables) == 0
    x, y = _data()
    assert first(x, y) == second(x, y)
    np.testing.assert_array_equal(w.get_value(), w2.get_value())
    assert not np.array_equal(w2.get_value(), np.linspace(-1, 1, 12).reshape(4, 3))  # updated


def test_a_changed_graph_misses(cache_dir: Path) -> None:
    ins, loss, _, updates = _step(0.1)
    graphc.function(ins, loss, updates=updates, mode=NATIVE)
    for changed in (_step(0.2), _step(0.1, name="v")):  # another constant; another name
        ins, loss, _, updates = changed
        f = graphc.function(ins, loss, updates=updates, mode=NATIVE)
        assert RESTORED not in f.rewrite_log[-1]
    x = T.fmatrix("x")
    f = graphc.function([x], T.exp(x) * 2, mode=NATIVE)
    g = graphc.function([x], T.exp(x) * 3, mode=NATIVE)
    h = graphc.function([x], T.exp(x) * 3, mode=graphc.Mode("llvm", "fast_run", excluding=["fusion"]))
    assert not any(RESTORED in fn.rewrite_log[-1] for fn in (f, g, h))
    assert len(_entries(cache_dir)) == 6


def test_key_is_canonical_and_sees_structure() -> None:
    x, y = T.fmatrix("x"), T.fmatrix("y")
    phases = DB.select("fast_run", (), ())

    def key(inputs: list, outputs: list) -> str:
        ctx = graph_cache.graph_context(FunctionGraph(inputs, outputs), NATIVE, phases)
        assert ctx is not None
        return ctx.key

    def build(a, b, f=T.exp) -> list:  # one line builds every node: the same user trace
        return [f(a) + b]

    same = key([x, y], build(x, y))
    assert key([x, y], build(x, y)) == same
    assert key([y, x], build(x, y)) != same  # input order
    assert key([x, y], build(y, x)) != same  # wiring
    assert key([x, y], build(x, y, T.log)) != same  # op
    assert key([x, y], build(x, y) + [x * 1]) != same  # outputs
    assert key([x, y], [T.exp(x) + y]) != same  # built on another line: error messages differ


def test_corrupted_entry_is_rebuilt(cache_dir: Path) -> None:
    x = T.fmatrix("x")
    out = T.tanh(x) * 2 + 1
    graphc.function([x], out, mode=NATIVE)
    (path,) = _entries(cache_dir)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    f = graphc.function([x], out, mode=NATIVE)  # checksum mismatch: rewritten, stored again
    assert RESTORED not in f.rewrite_log[-1]
    graph_cache.loads(path.read_bytes(), f.fgraph, {})  # a whole, valid entry again
    path.write_bytes(b"not an entry")
    assert RESTORED not in graphc.function([x], out, mode=NATIVE).rewrite_log[-1]
    g = graphc.function([x], out, mode=NATIVE)
    assert RESTORED in g.rewrite_log[-1]
    v = np.linspace(-2, 2, 6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(g(v), np.tanh(v) * 2 + 1, rtol=1e-6)


def test_reference_mode_and_warned_rewrites_are_not_cached(cache_dir: Path, monkeypatch) -> None:
    from graphc.rewrite import framework

    x = T.fmatrix("x")
    graphc.function([x], T.exp(x) + 1, mode=graphc.Mode("py", "fast_run"))
    assert _entries(cache_dir) == []
    monkeypatch.setattr(framework, "RAISE_REWRITE_ERRORS", False)
    monkeypatch.setattr(graph_cache, "_rewrite_identity", lambda phases: "")  # allow the test rewrite
    broken = framework.LocalRewrite("broken_for_cache_test", lambda fg, node: 1 / 0, tags=["fast_run"])
    phase = next(p for p in DB.phases if p.name == "canonicalize")
    monkeypatch.setattr(phase, "rewrites", [*phase.rewrites, broken])
    monkeypatch.setitem(DB.by_name, broken.name, broken)
    fg = FunctionGraph([x], [T.exp(x) + 2])
    with pytest.warns(UserWarning, match="'broken_for_cache_test' failed"):
        rewrite_graph(fg, NATIVE)
    assert _entries(cache_dir) == []


def test_cache_off_with_an_empty_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "cache_dir", "")
    x = T.fmatrix("x")
    f = graphc.function([x], T.exp(x) + 5, mode=NATIVE)
    g = graphc.function([x], T.exp(x) + 5, mode=NATIVE)
    assert RESTORED not in f.rewrite_log[-1] and RESTORED not in g.rewrite_log[-1]


_PROGRAM = textwrap.dedent("""
    import json, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    import graphc
    from test_framework_cache import NATIVE, _data, _step
    ins, loss, w, updates = _step()
    f = graphc.function(ins, loss, updates=updates, mode=NATIVE)
    x, y = _data()
    print(json.dumps({{"log": f.rewrite_log, "loss": float(f(x, y)), "w": w.get_value().tolist()}}))
""")


def test_hit_in_a_new_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("GRAPHC_CACHE_DIR", "GRAPHC_FLAGS")}
    env["GRAPHC_CACHE_DIR"] = str(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    code = _PROGRAM.format(tests=str(Path(__file__).parent))
    runs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=240)
        assert proc.returncode == 0, proc.stderr
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    first, second = runs
    assert RESTORED not in first["log"][-1] and RESTORED in second["log"][-1]
    assert second["log"][:-1] == first["log"][:-1]
    assert second["loss"] == first["loss"] and second["w"] == first["w"]


def test_restored_constants_are_read_only_with_numpy_dtype_objects(cache_dir: Path) -> None:
    x = T.fmatrix("x")

    def build() -> list:
        return [x * np.float32(2.5) + T.constant(np.arange(3, dtype="float32"))]

    graphc.function([x], build(), mode=NATIVE)
    f = graphc.function([x], build(), mode=NATIVE)
    assert RESTORED in f.rewrite_log[-1]
    consts = [v for v in f.fgraph.variables if isinstance(v, graphc.graph.basic.Constant)]
    assert consts
    for c in consts:
        assert c.data.dtype is np.dtype(c.data.dtype.str) and not c.data.flags.writeable
    np.testing.assert_allclose(f(np.ones((2, 3), "float32"))[0], np.ones((2, 3)) * 2.5 + np.arange(3))


def test_a_users_rewrite_is_keyed_by_its_code() -> None:
    from graphc.rewrite.framework import LocalRewrite, Phase

    def make(body: str):  # two versions of one user function, as after an edit
        scope: dict = {"__name__": "user_rewrites"}
        exec(f"def my_rewrite(fgraph, node):\n    return {body}\n", scope)  # noqa: S102
        return scope["my_rewrite"]

    def identity(fn) -> str:
        return graph_cache._rewrite_identity([Phase("canonicalize", "local", [LocalRewrite("mine", fn)])])

    a, b = make("None"), make("[node.inputs[0]]")
    assert a.__qualname__ == b.__qualname__ and a.__module__ == b.__module__
    assert identity(a) == identity(make("None")) != identity(b)
    with pytest.raises(graph_cache.Uncacheable):
        identity(lambda fgraph, node: None)

"""graphc.printing: debugprint, pp, to_dot and pydotprint."""

import os
import re
import stat

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc import printing
from graphc.printing import debugprint, pp, pydotprint, to_dot

REF = graphc.Mode(backend="py")


@pytest.fixture
def train():
    x, y = T.matrix("x"), T.ivector("y")
    w = graphc.shared(np.zeros((4, 3), "float32"), name="W")
    b = graphc.shared(np.zeros(3, "float32"), name="b")
    p = T.nnet.softmax(T.dot(x, w) + b)
    loss = T.nnet.categorical_crossentropy(p, y).mean()
    gw, gb = graphc.grad(loss, [w, b])
    return graphc.function([x, y], loss, updates=[(w, w - 0.1 * gw), (b, b - 0.1 * gb)], mode=REF)


def test_debugprint_shows_ids_types_shared_and_updates(train, capsys) -> None:
    text = debugprint(train)
    assert capsys.readouterr().out.strip() == text.strip()
    assert text.splitlines()[0] == "# output 0"
    assert "# update of W" in text and "# update of b" in text
    assert "W [shared] float32(?,?)" in text
    assert re.search(r" id [A-Z]\d* ", text)
    assert "(see above)" in text
    assert "x float32(?,?)" in text and "y int32(?)" in text


def test_debugprint_of_variables_depth_and_str(capsys) -> None:
    x = T.vector("x")
    e = T.exp(x)
    text = debugprint([e * 2, e], file="str")
    assert capsys.readouterr().out == ""
    lines = text.splitlines()
    assert lines[0].startswith("Elemwise{mul} id A float32(?)")
    assert lines[1] == " |Elemwise{exp} id B float32(?)"
    assert lines[-1] == "Elemwise{exp} id B float32(?) (see above)"
    shallow = debugprint(T.tanh(T.exp(T.sin(x))), file="str", depth=1)
    assert "sin" not in shallow and "exp" in shallow
    assert "float32" not in debugprint(e, file="str", print_type=False)


def test_debugprint_of_a_deep_graph_does_not_recurse() -> None:
    x = T.vector("x")
    y = x
    for _ in range(3000):
        y = T.sin(y)
    assert debugprint(y, file="str").count("\n") == 3000


def test_fused_nodes_show_their_scalar_formula() -> None:
    x, y, z = T.matrix("x"), T.matrix("y"), T.matrix("z")
    f = graphc.function([x, y, z], T.exp(x) * y + T.tanh(z), mode=REF)
    text = debugprint(f, file="str")
    assert text.splitlines()[1].startswith("Fused{add(tanh(i")
    assert "exp(i" in text


def test_pp_infix_and_precedence() -> None:
    x, y, z = T.matrix("x"), T.matrix("y"), T.matrix("z")
    assert pp(T.exp(x) * y + T.tanh(z)) == "exp(x) * y + tanh(z)"
    assert pp(x - (y - z)) == "x - (y - z)"
    assert pp((x - y) - z) == "x - y - z"
    assert pp((x + y) * z) == "(x + y) * z"
    assert pp(-(x ** 2)) == "-x ** 2.0"
    assert pp((-x) ** 2) == "(-x) ** 2.0"
    assert pp(x / 2) == "x / 2.0"
    assert pp(x.T) == "x.T"
    assert pp(T.sum(x * y, axis=1)) == "sum(x * y, axis=(1,))"
    assert pp(T.cast(x, "int32")) == "cast(x, int32)"
    assert pp(T.dot(x, y)) == "Dot(x, y)"


def test_pp_of_a_compiled_function_expands_fused_nodes(train) -> None:
    x, y, z = T.matrix("x"), T.matrix("y"), T.matrix("z")
    f = graphc.function([x, y, z], T.exp(x) * y + T.tanh(z), mode=REF)
    assert pp(f) == "output 0: tanh(z) + y * exp(x)"
    text = pp(train)
    assert "update of W: Gemm(W, -0.1" in text


def _parse_dot(text: str) -> dict:
    """A small DOT reader: node ids with attributes, edges and clusters (enough to check
    the structure without Graphviz)."""
    assert text.startswith('digraph "graphc" {') and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    nodes, edges, clusters = {}, [], []
    for line in text.splitlines()[1:-1]:
        line = line.strip()
        if line.startswith("subgraph "):
            clusters.append(line.split()[1])
        elif "->" in line:
            m = re.match(r"(\w+) -> (\w+)", line)
            assert m, line
            edges.append((m.group(1), m.group(2)))
        elif re.match(r"\w+ \[", line) and not line.startswith(("node ", "edge ")):
            ident = line.split()[0]
            label = re.search(r'label="((?:[^"\\]|\\.)*)"', line)
            nodes[ident] = (label.group(1) if label else "", line)
    for a, b in edges:
        assert a in nodes and b in nodes, (a, b)
    return {"nodes": nodes, "edges": edges, "clusters": clusters}


def test_to_dot_structure(train) -> None:
    g = _parse_dot(to_dot(train))
    labels = {label for label, _ in g["nodes"].values()}
    assert "x\\nfloat32(?,?)" in labels
    assert any(label.startswith("W\\n[shared]") for label in labels)
    assert {"output 0\\nfloat32()", "update of W\\nfloat32(?,?)"} <= labels
    dashed = [line for _, line in g["nodes"].values() if "dashed" in line]
    assert dashed == []  # updates are edges, not nodes
    assert "style=dashed" in to_dot(train)
    assert any(c.startswith("cluster_") for c in g["clusters"])


def test_to_dot_fused_cluster_holds_the_scalar_graph() -> None:
    x, y, z = T.matrix("x"), T.matrix("y"), T.matrix("z")
    f = graphc.function([x, y, z], T.exp(x) * y + T.tanh(z), mode=REF)
    text = to_dot(f)
    g = _parse_dot(text)
    assert len(g["clusters"]) == 1
    cluster = g["clusters"][0]
    inside = {i: lab for i, (lab, _) in g["nodes"].items() if i.startswith(cluster + "_")}
    assert sorted(lab.split("\\n")[0] for lab in inside.values() if not lab.startswith("i")) == \
        ["add", "exp", "mul", "tanh"]
    assert (cluster + "_t0", "out0") not in g["edges"]
    assert any(b == "out0" and a.startswith(cluster) for a, b in g["edges"])


def test_to_dot_of_plain_variables_escapes_labels() -> None:
    x = T.vector('we"ird')
    g = _parse_dot(to_dot(T.exp(x), print_types=False))
    assert any('we\\"ird' in label for label, _ in g["nodes"].values())


def test_pydotprint_without_graphviz_writes_dot(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(printing.shutil, "which", lambda name: None)
    x = T.vector("x")
    out = pydotprint(T.exp(x) * 2, outfile=str(tmp_path / "g.svg"))
    assert out == str(tmp_path / "g.dot")
    assert open(out).read().startswith("digraph")
    assert "Graphviz 'dot' is not installed" in capsys.readouterr().err


def test_pydotprint_renders_through_dot_when_present(tmp_path, monkeypatch) -> None:
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\n# fake graphviz: copy stdin to the -o file\n"
                    "while [ $# -gt 0 ]; do if [ \"$1\" = -o ]; then out=$2; fi; shift; done\n"
                    "cat > \"$out\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(printing.shutil, "which", lambda name: str(fake))
    x = T.vector("x")
    target = pydotprint(graphc.function([x], T.exp(x) * 2, mode=REF), outfile=str(tmp_path / "g.png"))
    assert target == str(tmp_path / "g.png")
    assert os.path.exists(target) and open(target).read().startswith("digraph")


def test_printing_rejects_non_graphs() -> None:
    with pytest.raises(TypeError, match="cannot print"):
        debugprint(42, file="str")

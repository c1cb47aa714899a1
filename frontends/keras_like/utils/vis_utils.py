"""``plot_model``/``model_to_dot``: the layer graph of a model as Graphviz DOT."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _shape(shape: Any) -> str:
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + (
        ",)" if len(shape) == 1 else ")")


def model_to_dot(model: Any, show_shapes: bool = False, show_layer_names: bool = True,
                 rankdir: str = "TB", dpi: int = 96, **kwargs: Any) -> str:
    """DOT source for the chain of layers of a Sequential model (input node first)."""
    lines = ["digraph model {", f'  graph [rankdir={rankdir}, dpi={dpi}];',
             '  node [shape=record, fontname="Helvetica"];']
    nodes = []
    if model._batch_input_shape is not None:
        label = "input (InputLayer)" if show_layer_names else "InputLayer"
        if show_shapes:
            label += f"|{_shape(model.input_shape)}"
        nodes.append(("input", label))
    for layer in model.layers:
        label = f"{layer.name} ({type(layer).__name__})" if show_layer_names else type(layer).__name__
        if show_shapes and layer.built:
            label += f"|{{input: {_shape(layer.input_shape)}|output: {_shape(layer.output_shape)}}}"
        nodes.append((f"layer_{len(nodes)}", label))
    for node_id, label in nodes:
        lines.append(f'  {node_id} [label="{_escape(label)}"];')
    for (a, _), (b, _) in zip(nodes, nodes[1:]):
        lines.append(f"  {a} -> {b};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def plot_model(model: Any, to_file: str = "model.png", show_shapes: bool = False,
               show_layer_names: bool = True, rankdir: str = "TB", dpi: int = 96,
               **kwargs: Any) -> str:
    """Write the layer graph: DOT text for ``.dot``/``.gv`` files, rendered by Graphviz's ``dot``
    for other extensions when it is installed (otherwise the DOT text goes next to ``to_file``
    with a ``.dot`` suffix). Returns the path written."""
    dot_text = model_to_dot(model, show_shapes, show_layer_names, rankdir, dpi)
    to_file = os.fspath(to_file)
    ext = os.path.splitext(to_file)[1].lstrip(".").lower()
    if ext in ("dot", "gv", ""):
        with open(to_file, "w") as f:
            f.write(dot_text)
        return to_file
    dot = shutil.which("dot")
    if dot is None:
        fallback = os.path.splitext(to_file)[0] + ".dot"
        with open(fallback, "w") as f:
            f.write(dot_text)
        import warnings

        warnings.warn(f"Graphviz 'dot' is not installed; wrote the DOT source to {fallback}",
                      stacklevel=2)
        return fallback
    subprocess.run([dot, f"-T{ext}", "-o", to_file], input=dot_text.encode(), check=True)
    return to_file

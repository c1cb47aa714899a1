"""Looking at graphs: ``debugprint`` (an indented tree, as in Theano), ``pp`` (infix
text), ``to_dot`` (Graphviz DOT source) and ``pydotprint`` (a rendered picture).

Each accepts a variable, a list of variables, or a compiled function (whose
optimized graph, with its updates, is shown).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import IO, Any

from graphc.graph.basic import Apply, Constant, Variable, io_toposort

__all__ = ["debugprint", "pp", "to_dot", "pydotprint"]


def _type_str(var: Variable) -> str:
    dims = ",".join("?" if s is None else str(s) for s in var.type.shape)
    return f"{var.type.dtype}({dims})"


def _is_shared(var: Variable) -> bool:
    from graphc.compile.shared import SharedVariable

    return isinstance(var, SharedVariable)


def _label(var: Variable) -> str:
    if _is_shared(var):
        return f"{var.name or 'shared'} [shared]"
    if isinstance(var, Constant):
        return f"{var!r} [constant]"
    return var.name or "<input>"


def _roots(obj: Any) -> tuple[list[Variable], list[str], list[Variable]]:
    """(variables to show, a title for each, the function's explicit inputs)."""
    if hasattr(obj, "fgraph") and hasattr(obj, "n_outputs"):
        fg = obj.fgraph
        n = obj.n_outputs
        titles = [f"output {k}" for k in range(n)]
        titles += [f"update of {s.name or 'shared'}" for s in obj.updated]
        explicit = [i.variable for i in getattr(obj, "ins", [])]
        return list(fg.outputs), titles, explicit
    if hasattr(obj, "outputs") and hasattr(obj, "inputs") and hasattr(obj, "nx"):  # FunctionGraph
        return list(obj.outputs), [f"output {k}" for k in range(len(obj.outputs))], list(obj.inputs)
    roots = list(obj) if isinstance(obj, list | tuple) else [obj]
    for r in roots:
        if not isinstance(r, Variable):
            raise TypeError(f"cannot print a {type(r).__name__}; pass variables or a compiled function")
    return roots, [""] * len(roots), []


class _Ids:
    """Short ids (A, B, ... Z, A1, ...) given to Apply nodes in order of appearance."""

    def __init__(self) -> None:
        self.ids: dict[Apply, str] = {}

    def get(self, node: Apply) -> tuple[str, bool]:
        if node in self.ids:
            return self.ids[node], False
        n = len(self.ids)
        self.ids[node] = chr(ord("A") + n % 26) + (str(n // 26) if n >= 26 else "")
        return self.ids[node], True


# ---------------------------------------------------------------------------------------
def debugprint(
    obj: Any, file: IO[str] | str | None = None, print_type: bool = True, depth: int = -1,
) -> str:
    """Print (and return) the graph of a variable, a list of them, or a compiled function.

    Each Apply node gets an id the first time it appears; later uses print only
    the id. Shared variables are marked ``[shared]``, constants ``[constant]``; a
    compiled function's updates are listed after its outputs. ``depth`` limits how
    many levels are shown (-1: all). ``file='str'`` returns the text without printing.
    """
    roots, titles, _ = _roots(obj)
    lines: list[str] = []
    ids = _Ids()

    def line(var: Variable, level: int) -> list[tuple[Variable, int]]:
        pad = " |" * level
        type_str = f" {_type_str(var)}" if print_type else ""
        node = var.owner
        if node is None:
            lines.append(f"{pad}{_label(var)}{type_str}")
            return []
        tag = f".{var.index}" if len(node.outputs) > 1 else ""
        ident, first = ids.get(node)
        if not first:
            lines.append(f"{pad}{node.op}{tag} id {ident}{type_str} (see above)")
            return []
        name = f" '{var.name}'" if var.name else ""
        lines.append(f"{pad}{node.op}{tag} id {ident}{name}{type_str}")
        if depth >= 0 and level + 1 > depth:
            return []
        return [(inp, level + 1) for inp in node.inputs]

    for title, root in zip(titles, roots):
        if title:
            lines.append(f"# {title}")
        stack = [(root, 0)]
        while stack:  # iterative, for deep graphs, keeping child order
            var, level = stack.pop()
            stack.extend(reversed(line(var, level)))
    text = "\n".join(lines)
    if file != "str":
        print(text, file=file if file is not None and not isinstance(file, str) else sys.stdout)
    return text


# ---------------------------------------------------------------------------------------
# pp: infix text
_INFIX = {"add": ("+", 1), "sub": ("-", 1), "mul": ("*", 2), "true_div": ("/", 2),
          "int_div": ("//", 2), "mod": ("%", 2), "pow": ("**", 4), "eq": ("==", 0),
          "neq": ("!=", 0), "lt": ("<", 0), "le": ("<=", 0), "gt": (">", 0), "ge": (">=", 0),
          "and_": ("&", 0), "or_": ("|", 0), "xor": ("^", 0)}
_ATOM = 9


def _scalar_text(name: str, params: tuple, args: list[tuple[str, int]]) -> tuple[str, int]:
    """Text and precedence of a scalar op applied to argument texts."""
    def wrap(text: str, prec: int, need: int) -> str:
        return f"({text})" if prec < need else text

    if name in _INFIX and len(args) >= 2:
        sym, prec = _INFIX[name]
        right_need = prec + 1 if name in ("sub", "true_div", "int_div", "mod") else prec
        if name == "pow":
            parts = [wrap(args[0][0], args[0][1], prec + 1), wrap(args[1][0], args[1][1], prec)]
        else:
            parts = [wrap(args[0][0], args[0][1], prec)]
            parts += [wrap(t, p, right_need) for t, p in args[1:]]
        return f" {sym} ".join(parts), prec
    if name == "neg" and len(args) == 1:
        return f"-{wrap(args[0][0], args[0][1], 3)}", 3
    if name == "cast" and params:
        return f"cast({args[0][0]}, {params[0]})", _ATOM
    suffix = f"{{{','.join(map(str, params))}}}" if params else ""
    return f"{name}{suffix}({', '.join(t for t, _ in args)})", _ATOM


def _node_text(node: Apply, args: list[tuple[str, int]], index: int) -> tuple[str, int]:
    from graphc.ops.dimshuffle import DimShuffle
    from graphc.ops.elemwise import Elemwise

    op = node.op
    if isinstance(op, Elemwise):
        return _scalar_text(op.scalar_op.name, op.scalar_op.params, args)
    if isinstance(op, DimShuffle):
        if op.input_ndim == 2 and op.new_order == (1, 0):
            text = args[0][0] if args[0][1] == _ATOM else f"({args[0][0]})"
            return f"{text}.T", _ATOM
        return f"dimshuffle({args[0][0]}, {list(op.new_order)})", _ATOM
    if type(op).__name__ == "Fused":
        slots = list(args)
        for sop, arg_slots, _ in op.steps:
            slots.append(_scalar_text(sop.name, sop.params, [slots[a] for a in arg_slots]))
        text, prec = slots[op.outputs[index]]
        if op.reduce is not None:
            return _node_reduce_text(op.reduce, text), _ATOM
        return text, prec
    if type(op).__name__ == "Reduce":
        return _node_reduce_text(op, args[0][0]), _ATOM
    name = type(op).__name__
    props = ", ".join(f"{p}={getattr(op, p)!r}" for p in op.__props__
                      if isinstance(getattr(op, p), int | str | tuple))
    inner = ", ".join([t for t, _ in args] + ([props] if props else []))
    tag = f"[{index}]" if len(node.outputs) > 1 else ""
    return f"{name}({inner}){tag}", _ATOM


def _node_reduce_text(op: Any, arg: str) -> str:
    kind = {"add": "sum", "mul": "prod", "and": "all", "or": "any"}.get(op.kind, op.kind)
    return f"{kind}({arg}, axis={op.axis})"


def pp(obj: Any) -> str:
    """An infix rendering of a variable (or each output of a compiled function), e.g.
    ``exp(x) * y + tanh(z)``. Shared subexpressions are written out where used."""
    roots, titles, _ = _roots(obj)
    texts: dict[Variable, tuple[str, int]] = {}

    def leaf(var: Variable) -> tuple[str, int]:
        if isinstance(var, Constant):
            if var.data.size == 1:  # rank-aligned scalars print as scalars
                value = var.data.reshape(()).item()
                return repr(value), 3 if value < 0 else _ATOM
            return repr(var), _ATOM
        return var.name or f"<{_type_str(var)}>", _ATOM

    for var in [v for v in roots if v.owner is None]:
        texts[var] = leaf(var)
    for node in io_toposort(roots):
        args = []
        for inp in node.inputs:
            if inp not in texts:
                texts[inp] = leaf(inp)
            args.append(texts[inp])
        for k, out in enumerate(node.outputs):
            texts[out] = _node_text(node, args, k)
    lines = [texts[r][0] for r in roots]
    if len(roots) == 1 and not titles[0]:
        return lines[0]
    return "\n".join(f"{t}: {line}" if t else line for t, line in zip(titles, lines))


# ---------------------------------------------------------------------------------------
# DOT
def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(obj: Any, print_types: bool = True, name: str = "graphc") -> str:
    """Graphviz DOT source for a graph (no Graphviz needed to produce it).

    Explicit inputs are green boxes, shared variables orange, constants grey,
    outputs blue; an update is a dashed edge back to its shared variable. A
    :class:`~graphc.rewrite.fused.Fused` node is drawn as a cluster holding its
    scalar sub-graph.
    """
    roots, titles, _ = _roots(obj)
    ids: dict[Any, str] = {}

    def nid(key: Any, prefix: str) -> str:
        if key not in ids:
            ids[key] = f"{prefix}{len(ids)}"
        return ids[key]

    out: list[str] = [f"digraph {_q(name)} {{", "  rankdir=TB;",
                      '  node [fontname="Helvetica", fontsize=10];',
                      '  edge [fontname="Helvetica", fontsize=8];']

    def var_node(var: Variable) -> str:
        key = ("var", var)
        if key in ids:
            return ids[key]
        n = nid(key, "v")
        if _is_shared(var):
            style = 'shape=box, style=filled, fillcolor="#f9c784"'
            label = f"{var.name or 'shared'}\n[shared] {_type_str(var)}"
        elif isinstance(var, Constant):
            style = 'shape=box, style=filled, fillcolor="#dddddd"'
            label = f"{var!r}"
        else:
            style = 'shape=box, style=filled, fillcolor="#b8e0b8"'
            label = f"{var.name or '<input>'}\n{_type_str(var)}"
        out.append(f"  {n} [label={_q(label)}, {style}];")
        return n

    producer: dict[Variable, str] = {}  # variable -> DOT node giving it (apply or cluster slot)
    for node in io_toposort(roots):
        op = node.op
        if type(op).__name__ == "Fused":
            cluster = nid(("apply", node), "cluster_")
            out.append(f"  subgraph {cluster} {{")
            out.append(f"    label={_q(str(op) if len(str(op)) < 60 else 'Fused')};")
            out.append('    style="rounded,filled"; fillcolor="#eef3fb"; color="#5b7db8";')
            slots: list[str] = []
            for k in range(op.n_inputs):
                s = f"{cluster}_i{k}"
                out.append(f"    {s} [label=\"i{k}\", shape=circle, fontsize=8];")
                slots.append(s)
            for k, (sop, args, dtype) in enumerate(op.steps):
                s = f"{cluster}_t{k}"
                step_label = _q(f"{sop!r}\n{dtype}")
                out.append(f"    {s} [label={step_label}, shape=ellipse];")
                for a in args:
                    out.append(f"    {slots[a]} -> {s};")
                slots.append(s)
            if op.reduce is not None:
                s = f"{cluster}_reduce"
                out.append(f"    {s} [label={_q(str(op.reduce))}, shape=ellipse];")
                out.append(f"    {slots[op.outputs[0]]} -> {s};")
                outs = [s]
            else:
                outs = [slots[o] for o in op.outputs]
            out.append("  }")
            for k, inp in enumerate(node.inputs):
                src = producer.get(inp) or var_node(inp)
                out.append(f"  {src} -> {cluster}_i{k}{_edge_label(inp, print_types)};")
            for var, s in zip(node.outputs, outs):
                producer[var] = s
            continue
        a = nid(("apply", node), "n")
        out.append(f"  {a} [label={_q(str(op))}, shape=ellipse];")
        for inp in node.inputs:
            src = producer.get(inp) or var_node(inp)
            out.append(f"  {src} -> {a}{_edge_label(inp, print_types)};")
        for var in node.outputs:
            producer[var] = a
    for k, (title, root) in enumerate(zip(titles, roots)):
        o = f"out{k}"
        label = title or f"output {k}"
        out.append(f"  {o} [label={_q(label + chr(10) + _type_str(root))}, shape=box, style=filled, "
                   f'fillcolor="#a9c9f5"];')
        src = producer.get(root) or var_node(root)
        out.append(f"  {src} -> {o};")
        if title.startswith("update of ") and hasattr(obj, "updated"):
            shared = obj.updated[k - obj.n_outputs]
            out.append(f"  {o} -> {var_node(shared)} [style=dashed, label=\"update\", constraint=false];")
    out.append("}")
    return "\n".join(out) + "\n"


def _edge_label(var: Variable, print_types: bool) -> str:
    return f" [label={_q(_type_str(var))}]" if print_types else ""


def pydotprint(
    obj: Any, outfile: str | None = None, format: str | None = None, print_types: bool = True,
) -> str:
    """Render the graph with Graphviz ``dot`` when it is installed; otherwise write the DOT
    source next to ``outfile`` (with a ``.dot`` extension) and say so. Returns the path written."""
    outfile = outfile or f"graphc_graph.{format or 'png'}"
    root, ext = os.path.splitext(outfile)
    fmt = format or (ext[1:] if ext else "png")
    source = to_dot(obj, print_types=print_types)
    dot = shutil.which("dot")
    if dot is not None and fmt != "dot":
        target = outfile if ext else f"{outfile}.{fmt}"
        result = subprocess.run([dot, f"-T{fmt}", "-o", target], input=source, text=True,
                                capture_output=True, check=False)
        if result.returncode == 0:
            return target
        print(f"graphc.printing.pydotprint: Graphviz failed ({result.stderr.strip()}); "
              f"writing the DOT source instead", file=sys.stderr)
    dot_path = root + ".dot" if ext else outfile + ".dot"
    with open(dot_path, "w", encoding="utf-8") as fh:
        fh.write(source)
    if fmt != "dot":
        print(f"graphc.printing.pydotprint: Graphviz 'dot' is not installed; wrote the DOT "
              f"source to {dot_path} (render it with: dot -T{fmt} {dot_path} -o {outfile})",
              file=sys.stderr)
    return dot_path


"""Looking at graphs: ``debugprint`` (an indented tree, as in Theano)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO, Any

from graphc.graph.basic import Constant, Variable


def _type_str(var: Variable) -> str:
    dims = ",".join("?" if s is None else str(s) for s in var.type.shape)
    return f"{var.type.dtype}({dims})"


def _label(var: Variable) -> str:
    from graphc.compile.shared import SharedVariable

    if isinstance(var, SharedVariable):
        return f"{var.name or 'shared'} [shared]"
    if isinstance(var, Constant):
        return f"{var!r} [constant]"
    return var.name or "<input>"


def debugprint(obj: Any, file: IO[str] | None = None, print_type: bool = True) -> str:
    """Print (and return) the graph of a variable, a list of them, or a compiled function.

    Each Apply node gets an id the first time it appears; later uses print only the id.
    Updates of a compiled function are listed after its outputs.
    """
    lines: list[str] = []
    ids: dict[Any, str] = {}
    roots: Sequence[Variable]
    titles: list[str]
    if hasattr(obj, "fgraph"):
        fg = obj.fgraph
        n = obj.n_outputs
        roots = fg.outputs
        titles = [f"output {k}" for k in range(n)] + [
            f"update of {s.name or 'shared'}" for s in obj.updated
        ]
    else:
        roots = obj if isinstance(obj, list | tuple) else [obj]
        titles = [""] * len(roots)

    def visit(var: Variable, depth: int) -> None:
        pad = " |" * depth
        type_str = f" {_type_str(var)}" if print_type else ""
        node = var.owner
        if node is None:
            lines.append(f"{pad}{_label(var)}{type_str}")
            return
        out_tag = f".{var.index}" if len(node.outputs) > 1 else ""
        if node in ids:
            lines.append(f"{pad}{node.op}{out_tag} id {ids[node]}{type_str} (see above)")
            return
        ids[node] = chr(ord("A") + len(ids) % 26) + (str(len(ids) // 26) if len(ids) >= 26 else "")
        name = f" '{var.name}'" if var.name else ""
        lines.append(f"{pad}{node.op}{out_tag} id {ids[node]}{name}{type_str}")
        stack = [(inp, depth + 1) for inp in reversed(node.inputs)]
        while stack:  # iterative for deep graphs, keeping child order
            child, d = stack.pop()
            child_node = child.owner
            pad_c = " |" * d
            t = f" {_type_str(child)}" if print_type else ""
            if child_node is None:
                lines.append(f"{pad_c}{_label(child)}{t}")
                continue
            tag = f".{child.index}" if len(child_node.outputs) > 1 else ""
            if child_node in ids:
                lines.append(f"{pad_c}{child_node.op}{tag} id {ids[child_node]}{t} (see above)")
                continue
            ids[child_node] = (chr(ord("A") + len(ids) % 26)
                               + (str(len(ids) // 26) if len(ids) >= 26 else ""))
            nm = f" '{child.name}'" if child.name else ""
            lines.append(f"{pad_c}{child_node.op}{tag} id {ids[child_node]}{nm}{t}")
            stack.extend((inp, d + 1) for inp in reversed(child_node.inputs))

    for title, root in zip(titles, roots):
        if title:
            lines.append(f"# {title}")
        visit(root, 0)
    text = "\n".join(lines)
    print(text, file=file or sys.stdout)
    return text

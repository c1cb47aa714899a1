"""Build the notebooks (``notebooks/NN_name.ipynb``) from their sources in ``notebooks/src/``.

The sources are plain Python in the "percent" format: ``# %%`` starts a code cell and
``# %% [markdown]`` a prose cell whose lines are comments. Editing the source and running this
script keeps the notebooks reviewable as text diffs.

    python notebooks/make_notebooks.py              # write the notebooks without outputs
    python notebooks/make_notebooks.py --execute    # ... executed at full size, with outputs
    python notebooks/make_notebooks.py --check      # exit 1 if a notebook differs from its source

``--execute`` runs each notebook top to bottom in a fresh kernel (the current Python), so the
outputs stored are those of a real run; set GRAPHC_NOTEBOOK_QUICK=1 for the shrunken CI sizes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
KERNEL = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def parse(text: str) -> list[tuple[str, str]]:
    """``[(kind, source)]`` from percent-format text; kind is 'code' or 'markdown'."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif cells:
            cells[-1][1].append(line)
        elif line.strip() and not line.startswith("#"):
            raise ValueError(f"text before the first cell marker: {line!r}")
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        source = "\n".join(lines).strip("\n")
        if source:
            out.append((kind, source))
    return out


def build(source: Path) -> nbformat.NotebookNode:
    nb = new_notebook(metadata={"kernelspec": KERNEL,
                                "language_info": {"name": "python"}})
    for kind, text in parse(source.read_text(encoding="utf-8")):
        nb.cells.append(new_markdown_cell(text) if kind == "markdown" else new_code_cell(text))
    for k, cell in enumerate(nb.cells):  # stable ids: regenerating gives identical files
        cell["id"] = f"{source.stem[:2]}-{k:02d}"
    return nb


def target(source: Path) -> Path:
    return HERE / f"{source.stem}.ipynb"


def execute(nb: nbformat.NotebookNode, timeout: int = 3600) -> None:
    from nbclient import NotebookClient

    NotebookClient(nb, kernel_name="python3", timeout=timeout,
                   resources={"metadata": {"path": str(HERE)}}).execute()


def same_cells(a: nbformat.NotebookNode, b: nbformat.NotebookNode) -> bool:
    return [(c.cell_type, c.source) for c in a.cells] == [(c.cell_type, c.source) for c in b.cells]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="only these notebooks (e.g. 04_fashion_mnist)")
    ap.add_argument("--execute", action="store_true", help="run them and keep the outputs")
    ap.add_argument("--check", action="store_true", help="compare with the committed notebooks")
    args = ap.parse_args()
    sources = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if args.names:
        sources = [s for s in sources if s.stem in args.names]
    stale = []
    for source in sources:
        nb = build(source)
        path = target(source)
        if args.check:
            if not path.exists() or not same_cells(nb, nbformat.read(path, as_version=4)):
                stale.append(path.name)
            continue
        if args.execute:
            print(f"executing {path.name} ...", flush=True)
            execute(nb)
        nbformat.validate(nb)
        nbformat.write(nb, path)
        print(f"wrote {path.relative_to(HERE.parent)}")
    if stale:
        print(f"out of date with notebooks/src: {', '.join(stale)} (run {sys.argv[0]})")
        return 1
    return 0


if __name__ == "__main__":
    os.chdir(HERE)
    # kernels inherit this: the project imports even when it is not pip-installed
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent),
                                                             os.environ.get("PYTHONPATH")]))
    sys.exit(main())

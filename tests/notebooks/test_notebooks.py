"""Every notebook in notebooks/ runs top to bottom (CI sizes: GRAPHC_NOTEBOOK_QUICK=1), in a
kernel running this very Python, and the committed notebooks match their sources."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbformat")
nbclient = pytest.importorskip("nbclient", reason="the test extra installs nbclient")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
TIMEOUT = 600  # per cell; the whole set takes a few minutes at CI sizes


@pytest.fixture(scope="module")
def kernel_env():
    """What the kernels inherit: quick sizes, the project importable, no GUI backend."""
    saved = dict(os.environ)
    os.environ["GRAPHC_NOTEBOOK_QUICK"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved.get("PYTHONPATH")]))
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend draws the figures
    yield
    os.environ.clear()
    os.environ.update(saved)


def _run(nb, cwd: Path):
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=TIMEOUT,
                                     resources={"metadata": {"path": str(cwd)}})
    return client.execute()


def test_all_seven_notebooks_are_there():
    assert [n[:2] for n in NAMES] == ["01", "02", "03", "04", "05", "06", "07"], NAMES


def test_kernel_is_this_python(kernel_env, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import sys, graphc; print(sys.executable)"))
    _run(nb, tmp_path)
    printed = nb.cells[0].outputs[0]["text"].strip()
    assert os.path.realpath(printed) == os.path.realpath(sys.executable)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, kernel_env):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:  # run from scratch even if the file holds outputs of a real run
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    try:
        _run(nb, NOTEBOOKS)
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{name}.ipynb failed:\n{exc}", pytrace=False)
    images = sum("image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {})
                 for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    if name != "01_graphc_basics" or images:  # 01 draws SVG only where Graphviz is installed
        assert images, f"{name}.ipynb shows no plot"


def test_notebooks_match_their_sources():
    result = subprocess.run([sys.executable, str(NOTEBOOKS / "make_notebooks.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

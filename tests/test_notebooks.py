"""The teaching notebooks run top to bottom, and are committed without outputs.

Each notebook of ``notebooks/`` is executed with nbclient in a fresh kernel at the test size
(``BACKDOOR_CURVES_NOTEBOOK_SIZE=test``: small data, the four together in well under a minute);
any error in any cell fails the test. Their numerical checks are assertions inside the cells
(re-training scikit-learn, finite differences), so an executed notebook is a passed check.
The committed .ipynb files must hold no outputs and no execution counts (edit them in Jupyter,
then "Clear All Outputs" before committing).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: Per-notebook limit at the test size (seconds), far above the measured times.
TIMEOUT = 300


def _needs_torch(path: Path) -> bool:
    return "import torch" in path.read_text(encoding="utf-8")


def test_the_four_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    assert len(names) == 4, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_outputs_are_committed(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a code cell has outputs"
            assert cell.execution_count is None, f"{path.name}: a cell has an execution count"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, monkeypatch, tmp_path):
    if _needs_torch(path):
        pytest.importorskip("torch")
    monkeypatch.setenv("BACKDOOR_CURVES_NOTEBOOK_SIZE", "test")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # files a notebook writes go there
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    seconds = time.perf_counter() - start
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.get("output_type") == "error"
    ]
    assert not errors
    print(f"{path.name}: {seconds:.1f} s")

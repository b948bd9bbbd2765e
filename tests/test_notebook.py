"""examples/quickstart.ipynb runs top to bottom in a real Jupyter kernel."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_the_quickstart_notebook_runs_in_a_kernel(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    notebook = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) == 2  # the run's curves and the sweep's comparison
    assert any("final_test_acc" in out.get("data", {}).get("text/html", "") for out in outputs)
    pages = [
        out["data"]["text/html"]
        for out in outputs
        if "<iframe" in out.get("data", {}).get("text/html", "")
    ]
    assert len(pages) == 1 and "Comparison over seeds" in pages[0]  # report.html, inline
    assert len(list((tmp_path / "outputs").glob("*/*"))) >= 1

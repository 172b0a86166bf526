"""``examples/quickstart.ipynb`` runs top to bottom in a fresh kernel (so it cannot rot): the
tiny demo trains and is probed, ``curriculens.open`` reads it, and the figure is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "quickstart.ipynb"


@pytest.mark.slow  # ~1 min: trains and probes the tiny demo in the kernel
def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored without outputs
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    assert (tmp_path / "quickstart_out" / "results.sqlite").is_file()
    page = (tmp_path / "quickstart_figures" / "students_accuracy.html").read_text()
    assert "progressive" in page and "one-shot" in page
    outputs = {i: c.outputs for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    html = [o["data"].get("text/html", "") for outs in outputs.values() for o in outs if "data" in o]
    assert any("curriculens experiment" in h for h in html)  # the experiment's _repr_html_
    assert not [o for outs in outputs.values() for o in outs if o.get("output_type") == "error"]

"""The dashboard reads results without torch or transformer_lens (the metric specs come from the
database), and its export and selection helpers without Dash."""

from __future__ import annotations

import subprocess
import sys


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return set(out)


def test_dashboard_and_summary_import_neither_torch_nor_transformer_lens(tmp_path):
    db = tmp_path / "results.sqlite"
    code = f"""
import dashboard.app, dashboard.export, dashboard.selection, dashboard.data, probes.summary
from probes.store import MetricSpec, ResultRow, ResultsStore, UnitKey
from probes.summary import summarize_frame
with ResultsStore({str(db)!r}) as s:
    s.write_metric_specs({{("model", "accuracy"): MetricSpec()}})
    # 10 checkpoints: the summary's null reads the noise from the series' own scatter
    for step, v in enumerate((0.5, 0.51, 0.49, 0.5, 0.5, 0.9, 0.91, 0.9, 0.89, 0.9)):
        s.write_unit(UnitKey("teacher", "teacher", "teacher", 0, 10 * step, "model"),
                     [ResultRow("model", "task", "output", "accuracy", v)])
from dashboard.data import ResultsReader, emergence_table
r = ResultsReader({str(db)!r})
assert emergence_table(r.table(), r.metric_specs())["appear_step"].tolist() == [50]
"""
    loaded = _loaded_after(code)
    assert "torch" not in loaded and "transformer_lens" not in loaded


def test_export_and_selection_need_no_dash():
    loaded = _loaded_after("import dashboard.export, dashboard.selection")
    assert "dash" not in loaded

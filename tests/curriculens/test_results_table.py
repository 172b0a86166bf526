"""scripts/results_table.py on planted benchmark output: corrected intervals, post-hoc labels."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("results_table", ROOT / "scripts" / "results_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_pcfg_rows_state_corrected_intervals_and_label_the_post_hoc_variant(tmp_path):
    seeds = []
    for s, noise in enumerate((0.01, -0.01, 0.005, -0.004)):
        students = {
            "ce": {"final_acc": 0.55 + noise},
            "two-shot": {"final_acc": 0.65 + noise + 0.002 * s},  # +0.10, planted: held
            "one-shot": {"final_acc": 0.55 + noise + (0.03 if s % 2 else -0.03)},  # 0 on average: not established
            "progressive-c1": {"final_acc": 0.60 + noise},
        }
        seeds.append({"seed": s, "objective": "mlm", "students": students})
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"seeds": seeds}))
    rows = {r.split("|")[1].strip(): r for r in _load().pcfg_rows([str(path)])}
    assert (
        "| yes |" in rows["PCFG: two-shot beats ce"] and "Bonferroni over 3 methods" in rows["PCFG: two-shot beats ce"]
    )
    assert "| not established |" in rows["PCFG: one-shot beats ce"]
    c1 = next(v for k, v in rows.items() if k.startswith("PCFG: progressive-c1"))
    assert "post hoc" in c1 and "yes, but post hoc: exploratory" in c1

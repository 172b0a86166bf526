"""The two-shot sweep figure: speeds measured from planted student curves, drawn against the
teacher checkpoint, exported beside the other panels."""

import math

import pandas as pd

from dashboard.data import DataSource
from dashboard.export import experiment_figures
from dashboard.sweep import has_sweep, sweep_table, teacher_feature_curves, two_shot_sweep


def planted_metrics():
    rows = [
        {
            "run": "teacher",
            "role": "teacher",
            "method": "teacher",
            "seed": 0,
            "two_shot_step": -1,
            "step": s,
            "eval_acc": a,
            "eval_loss": 1 - a,
        }
        for s, a in [(0, 0.5), (100, 0.6), (200, 0.9), (300, 1.0)]
    ]
    for ck, hits in {100: (300, 500), 200: (200, None)}.items():
        for seed, hit in enumerate(hits):
            for s in range(0, 601, 100):
                rows.append(
                    {
                        "run": f"two-shot-T{ck}-s{seed}",
                        "role": "student",
                        "method": "two-shot",
                        "seed": seed,
                        "two_shot_step": ck,
                        "step": s,
                        "eval_acc": 0.97 if hit is not None and s >= hit else 0.5,
                        "eval_loss": 0.1 if hit is not None and s >= hit else 0.7,
                    }
                )
    return pd.DataFrame(rows)


def test_sweep_table_measures_steps_to_target():
    t = sweep_table(planted_metrics(), 0.95)
    got = {(r.two_shot_step, r.seed): r.steps_to_target for r in t.itertuples()}
    assert got[(100, 0)] == 300 and got[(100, 1)] == 500 and got[(200, 0)] == 200 and math.isnan(got[(200, 1)])
    assert set(t["budget"]) == {600}


def test_sweep_figure_draws_students_teacher_and_features():
    feats = teacher_feature_curves(
        pd.DataFrame(
            {
                "step": [0, 100, 0, 100],
                "degree": [1, 1, 1, 1],
                "in_support": [1, 1, 0, 0],
                "value": [0.1, 0.3, 5.0, 5.0],
            }
        )
    )
    assert list(feats["value"]) == [0.1, 0.3]  # off-support rows are left out
    fig = two_shot_sweep(planted_metrics(), feats, recommended=200)
    names = [t.name for t in fig.data]
    assert (
        "teacher accuracy" in names and "not reached in 600" in names and "teacher deg 1 in-support (/ peak)" in names
    )
    mean = next(t for t in fig.data if t.name.startswith("mean over seeds"))
    assert list(mean.x) == [100, 200] and list(mean.y) == [400, 400]  # (300+500)/2; (200+600)/2 with the miss at budget
    assert has_sweep(planted_metrics()) and not has_sweep(planted_metrics().query("two_shot_step != 200"))


def test_sweep_is_exported_when_the_experiment_has_one(tmp_path):
    from tests.training.test_recommend import build_planted

    exp = build_planted(tmp_path)
    stems = [s for s, _ in experiment_figures(DataSource(exp), ".")]
    assert "two_shot_sweep" in stems and "two_shot_accuracy" in stems


def test_students_view_shows_the_sweep_when_there_is_one(tmp_path):
    from dashboard import callbacks as cb
    from dashboard import layout as L
    from tests.training.test_recommend import build_planted

    exp = build_planted(tmp_path)
    _, _, two, _ = cb.students_view(DataSource(exp), ".", None, None, None, "linear", [], L.TAB_STUDENTS)
    assert two.layout.title.text.startswith("Two-shot sweep")

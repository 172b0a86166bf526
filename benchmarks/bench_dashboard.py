"""Dashboard first-render server time on a large synthetic experiment, against baselines.

::

    python -m benchmarks.bench_dashboard [--checkpoints 200] [--features 300] [--students 4] [--repeats 5]

Builds (in a temp directory) an experiment with one teacher and ``--students`` students, each
with ``--checkpoints`` checkpoints; ``results.sqlite`` holds, per run and checkpoint, a Fourier
family of ``--features`` features (degree, in_support) plus a linear-probe family at two
sites (60 features) and the model's accuracy: 200 x 300 x 5 = 300k Fourier rows by default.

Measured with a cold cache (a fresh app per repeat), through the app's HTTP endpoint exactly
as the browser calls it (so JSON encoding is included), median over repeats:

- **first render**: what a page load runs: experiment list, overview, probe controls and the
  default (teacher) tab;
- every other tab on first open (features, students, emergence table), with the app's
  background prefetch of the emergence table turned off so each number is its own cost.

Baselines in the same run: the same requests against copies of the database (1) with only its
primary keys (the secondary indexes dropped) and (2) with no index on ``probe_results`` at
all; (3) a naive loader that reads the whole ``probe_results`` table with
``ResultsStore.query()`` and filters in pandas before drawing the teacher's figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from curriculens import constants as C
from curriculens.io import write_json
from probes.registry import metric_specs
from probes.store import ResultRow, ResultsStore, UnitKey
from training.config import CheckpointConfig, DistillConfig, RunConfig

REPO = Path(__file__).resolve().parents[1]


def build(root: Path, n_ckpt: int, n_feat: int, n_students: int) -> Path:
    exp = root / "big"
    write_json(exp / C.EXPERIMENT_FILE, {"task": {"name": "parity", "n": 100, "k": 6}})
    teacher = RunConfig(
        name="teacher",
        role="teacher",
        task={"name": "parity", "n": 100, "k": 6},
        model={"kind": "mlp", "d_in": 100, "width": 1000},
        steps=n_ckpt * 100,
        checkpoints=CheckpointConfig(save_every=100),
    )
    methods = [C.METHOD_PROGRESSIVE, C.METHOD_ONE_SHOT, C.METHOD_CE, C.METHOD_TWO_SHOT]
    runs = [teacher] + [
        teacher.replace(
            name=f"{methods[i % 4]}-s{i // 4}",
            role="student",
            seed=i // 4,
            distill=DistillConfig(
                method=methods[i % 4],
                teacher_dir="../teacher",
                two_shot_step=5000 if methods[i % 4] == C.METHOD_TWO_SHOT else -1,
                two_shot_T=2000 if methods[i % 4] == C.METHOD_TWO_SHOT else 0,
            ),
        )
        for i in range(n_students)
    ]
    rng = np.random.default_rng(0)
    steps = [i * 100 for i in range(n_ckpt)]
    feats = [(f"{i}", 1, i < 6) for i in range(n_feat // 3)] + [
        (f"{i}_{i + 1}", 2, i < 5) for i in range(n_feat - n_feat // 3)
    ]
    with ResultsStore(exp / C.RESULTS_DB) as store:
        store.write_metric_specs(metric_specs("parity"))  # as the sweep does
        store.conn.execute("PRAGMA synchronous=OFF")  # building only
        for cfg in runs:
            run_dir = exp / C.RUNS_DIR / cfg.name
            (run_dir / C.CHECKPOINTS_DIR).mkdir(parents=True)
            write_json(run_dir / C.RUN_CONFIG_FILE, cfg.to_dict())
            acc = 0.5 + 0.5 / (1 + np.exp(-(np.arange(n_ckpt) - n_ckpt / 2) / 5))
            with open(run_dir / C.METRICS_FILE, "w") as fh:
                for s, a in zip(steps, acc, strict=True):
                    fh.write(
                        json.dumps(
                            {
                                "step": s,
                                "samples": s * 32,
                                "eval_acc": float(a),
                                "eval_loss": float(1 - a),
                                "train_loss": float(1 - a),
                                "lr": 0.05,
                                "teacher_step": None,
                                "checkpoint": True,
                            }
                        )
                        + "\n"
                    )
            (run_dir / C.DONE_FILE).write_text("{}")
            for s in steps:
                base = dict(run=cfg.name, role=cfg.role, method=cfg.method, seed=cfg.seed, step=s)
                vals = rng.uniform(0, 0.01, len(feats))
                store.write_unit(
                    UnitKey(probe="fourier", **base),
                    [
                        ResultRow("fourier", f, "output", "corr", float(v), degree=d, in_support=ins)
                        for (f, d, ins), v in zip(feats, vals, strict=True)
                    ],
                )
                store.write_unit(
                    UnitKey(probe="linear", **base),
                    [
                        ResultRow(
                            "linear", f"{i}", site, "test_acc", float(rng.uniform(0.5, 1)), degree=1, in_support=i < 6
                        )
                        for site in ("blocks.0.hook_pre", "blocks.0.hook_post")
                        for i in range(60)
                    ],
                )
                store.write_unit(
                    UnitKey(probe="model", **base),
                    [ResultRow("model", "label", "output", "accuracy", float(rng.uniform(0.5, 1)))],
                )
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return exp


def _post(client, output: str, outputs, inputs, state=()) -> dict:
    payload = {
        "output": output,
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": [f"{inputs[0][0]}.{inputs[0][1]}"],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
    }
    r = client.post("/_dash-update-component", json=payload)
    if r.status_code == 204:
        return {}
    assert r.status_code == 200, r.status_code
    return r.get_json()["response"]


def page_requests(client, key: str) -> dict[str, float]:
    """The requests a browser makes: page load (default tab), then each tab; seconds each."""
    t = {}
    t0 = time.perf_counter()
    _post(
        client,
        "..experiment.options...experiment.value...page-note.children..",
        [("experiment", "options"), ("experiment", "value"), ("page-note", "children")],
        [("reload", "n_clicks", 0)],
        [("experiment", "value", None)],
    )
    ov = _post(
        client,
        "..experiment-summary.children...family.options...family.value...run.options...run.value...experiment-note.children..",
        [
            ("experiment-summary", "children"),
            ("family", "options"),
            ("family", "value"),
            ("run", "options"),
            ("run", "value"),
            ("experiment-note", "children"),
        ],
        [("experiment", "value", key), ("reload", "n_clicks", 0)],
    )
    family = ov["family"]["value"]
    fc = _post(
        client,
        "..site.options...site.value...degree.options...degree.value...degree-label.children..",
        [
            ("site", "options"),
            ("site", "value"),
            ("degree", "options"),
            ("degree", "value"),
            ("degree-label", "children"),
        ],
        [("experiment", "value", key), ("family", "value", family), ("run", "value", "teacher")],
    )
    site, degree = fc["site"]["value"], fc["degree"]["value"]
    out = _post(
        client,
        "..teacher-graph.figure...teacher-note.children...teacher-graph.config..",
        [("teacher-graph", "figure"), ("teacher-note", "children"), ("teacher-graph", "config")],
        [
            ("experiment", "value", key),
            ("axis", "value", "linear"),
            ("tabs", "value", "teacher"),
            ("image-format", "value", "png"),
            ("reload", "n_clicks", 0),
        ],
    )
    assert out["teacher-graph"]["figure"]["data"], "teacher figure empty"
    t["first render (default tab)"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    g = ("timeline-graph", "sites-graph", "heatmap-graph")
    out = _post(
        client,
        "..timeline-graph.figure...sites-graph.figure...heatmap-graph.figure...features-note.children..."
        "timeline-graph.config...sites-graph.config...heatmap-graph.config..",
        [(x, "figure") for x in g] + [("features-note", "children")] + [(x, "config") for x in g],
        [
            ("experiment", "value", key),
            ("run", "value", "teacher"),
            ("family", "value", family),
            ("site", "value", site),
            ("degree", "value", degree),
            ("axis", "value", "linear"),
            ("ylog", "value", []),
            ("tabs", "value", "features"),
            ("image-format", "value", "png"),
            ("reload", "n_clicks", 0),
        ],
    )
    assert len(out["timeline-graph"]["figure"]["data"]) > 3
    t["features tab"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    g = ("students-graph", "side-graph", "twoshot-graph")
    out = _post(
        client,
        "..students-graph.figure...side-graph.figure...twoshot-graph.figure...students-note.children..."
        "students-graph.config...side-graph.config...twoshot-graph.config..",
        [(x, "figure") for x in g] + [("students-note", "children")] + [(x, "config") for x in g],
        [
            ("experiment", "value", key),
            ("family", "value", family),
            ("site", "value", site),
            ("degree", "value", degree),
            ("axis", "value", "linear"),
            ("ylog", "value", []),
            ("tabs", "value", "students"),
            ("image-format", "value", "png"),
            ("reload", "n_clicks", 0),
        ],
    )
    assert out["students-graph"]["figure"]["data"]
    t["students tab"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    out = _post(
        client,
        "..emergence-table.data...emergence-table.columns...emergence-note.children..",
        [("emergence-table", "data"), ("emergence-table", "columns"), ("emergence-note", "children")],
        [
            ("experiment", "value", key),
            ("tabs", "value", "emergence"),
            ("emergence-off-support", "value", []),
            ("reload", "n_clicks", 0),
        ],
    )
    assert out["emergence-table"]["data"]
    t["emergence tab"] = time.perf_counter() - t0
    return t


def naive_first_render(exp: Path) -> float:
    """Baseline: read the whole table (ResultsStore.query), filter in pandas, draw the same figures."""
    from dashboard import callbacks as cb
    from dashboard import figures as F
    from dashboard.data import DataSource

    t0 = time.perf_counter()
    src = DataSource(exp.parent)
    metrics = src.metrics(exp.name)
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        df = store.query()
    fam = df[["probe", "metric", "site"]].drop_duplicates()
    window = cb.window_of(metrics)
    F.teacher_overview(metrics, window).to_json()
    rows = df[(df.probe == "fourier") & (df.metric == "corr") & (df.run == "teacher") & (df.degree == 1)]
    F.feature_timeline(rows, title="t", window=window).to_json()
    assert len(fam)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoints", type=int, default=200)
    p.add_argument("--features", type=int, default=300)
    p.add_argument("--students", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)
    from dashboard.app import make_app

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "indexed"
        t0 = time.perf_counter()
        exp = build(root, args.checkpoints, args.features, args.students)
        with ResultsStore(exp / C.RESULTS_DB, readonly=True) as s:
            n_rows = s.count()
        print(
            f"built {n_rows:,} rows ({1 + args.students} runs x {args.checkpoints} checkpoints x "
            f"{args.features} Fourier features + linear + model) in {time.perf_counter() - t0:.1f}s"
        )
        pk_only = Path(tmp) / "pk-only"  # baseline 1: the primary keys, no secondary indexes
        shutil.copytree(root, pk_only)
        with sqlite3.connect(pk_only / exp.name / C.RESULTS_DB) as conn:
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"
            ).fetchall():
                conn.execute(f"DROP INDEX {name}")
        heap = Path(tmp) / "no-index"  # baseline 2: probe_results without any index (a heap table)
        shutil.copytree(pk_only, heap)
        with sqlite3.connect(heap / exp.name / C.RESULTS_DB) as conn:
            conn.execute("CREATE TABLE heap AS SELECT * FROM probe_results")
            conn.execute("DROP TABLE probe_results")
            conn.execute("ALTER TABLE heap RENAME TO probe_results")
        conn.close()

        def timed(r) -> dict[str, list[float]]:
            out: dict[str, list[float]] = {}
            for _ in range(args.repeats):
                client = make_app(r, prefetch=False).server.test_client()  # fresh app: cold cache
                for k, v in page_requests(client, exp.name).items():
                    out.setdefault(k, []).append(v)
            return out

        page_requests(
            make_app(root, prefetch=False).server.test_client(), exp.name
        )  # warm imports (plotly, pandas, probes)
        results = {"indexed": timed(root), "PK only": timed(pk_only), "no index": timed(heap)}
        naive = [naive_first_render(root / exp.name) for _ in range(args.repeats)]
        med = {name: {k: statistics.median(v) for k, v in r.items()} for name, r in results.items()}
        ours = med["indexed"]
        print(f"\nserver time per request, cold cache, median of {args.repeats} (seconds; ratio = baseline / indexed):")
        print(f"{'view':<28}{'indexed':>9}{'PK only':>9}{'ratio':>7}{'no index':>10}{'ratio':>7}")
        for k in ours:
            pk, nx = med["PK only"][k], med["no index"][k]
            print(f"{k:<28}{ours[k]:>9.3f}{pk:>9.3f}{pk / ours[k]:>6.1f}x{nx:>10.3f}{nx / ours[k]:>6.1f}x")
        n = statistics.median(naive)
        first = ours["first render (default tab)"]
        print(
            f"\nnaive first render (full-table read with ResultsStore.query + pandas filter): {n:.3f}s = "
            f"{n / first:.1f}x the dashboard's {first:.3f}s"
        )
        print(
            f"all four tabs, first open each: {sum(ours.values()):.3f}s "
            "(the app also prefetches the emergence table in the background after the first render)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

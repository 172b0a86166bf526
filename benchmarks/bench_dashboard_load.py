"""The dashboard under write load: 5 clients while a probe sweep commits a unit every second.

::

    python -m benchmarks.bench_dashboard_load [--seconds 60] [--clients 5] [--checkpoints 200] [--features 300]

Builds the 421k-row experiment of ``benchmarks.bench_dashboard`` (1 teacher + 4 students x 200
checkpoints x (300 Fourier + 120 linear + 1 model) rows), then, for each data source below,
runs for ``--seconds``:

- a **writer** process (a sweep): opens the database as ``probes.store.ResultsStore`` and
  commits one Fourier unit (300 rows, a new checkpoint of a student run, runs in turn)
  every ``--commit-every`` seconds;
- ``--clients`` threads, each requesting the page's callbacks in turn through the app's HTTP
  endpoint (page load with Reload, probe controls, teacher tab, features tab of the teacher
  and of a student, students tab, emergence table), as fast as answers come.

It prints, per callback, the median and p95 server time over every pass while the writer runs
(each client's first pass included, and also shown apart), the time of one pass before the
writer starts (imports, cold caches), and the process's resident memory (VmRSS) sampled every
second: after the warm-up, at the end and its largest value.

Data sources compared in the same run:

- **incremental** (``dashboard.data.DataSource``): probe rows fingerprinted per (run, probe)
  from the ``units`` table, one cached value per query, emergence table recombined from
  per-(run, probe) pieces summarised with the vectorised ``probes.summary.summarize_frame``;
- **whole-file baseline** (the dashboard before): every commit changes the database file's
  fingerprint, which invalidates every cached query, and the emergence table is recomputed
  from all rows with the per-series loop (``probes.summary.summarize_series_loop``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.bench_dashboard import _post, build
from curriculens import constants as C
from probes.store import ResultRow, ResultsStore, UnitKey

STUDENTS = ("progressive-s0", "one-shot-s0", "ce-s0", "two-shot-s0")


def writer(db: str, start_step: int, n_feat: int, every: float, stop, counter) -> None:
    """A sweep: one Fourier unit of a new checkpoint (runs in turn) every ``every`` seconds."""
    import numpy as np

    rng = np.random.default_rng(1)
    feats = [(f"{i}", 1, i < 6) for i in range(n_feat // 3)] + [
        (f"{i}_{i + 1}", 2, i < 5) for i in range(n_feat - n_feat // 3)
    ]
    methods = {
        "progressive-s0": C.METHOD_PROGRESSIVE,
        "one-shot-s0": C.METHOD_ONE_SHOT,
        "ce-s0": C.METHOD_CE,
        "two-shot-s0": C.METHOD_TWO_SHOT,
    }
    with ResultsStore(Path(db)) as store:
        i = 0
        t_next = time.monotonic()
        while not stop.is_set():
            run = STUDENTS[i % len(STUDENTS)]
            step = start_step + 100 * (i // len(STUDENTS))
            vals = rng.uniform(0, 0.01, len(feats))
            store.write_unit(
                UnitKey(run, "student", methods[run], 0, step, "fourier"),
                [
                    ResultRow("fourier", f, "output", "corr", float(v), degree=d, in_support=ins)
                    for (f, d, ins), v in zip(feats, vals, strict=True)
                ],
            )
            counter.value += 1
            i += 1
            t_next += every
            stop.wait(max(0.0, t_next - time.monotonic()))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def client_pass(client, key: str, run: str) -> dict[str, float]:
    """One pass over the page's callbacks; seconds per callback."""
    t: dict[str, float] = {}

    def timed(name, *args, **kw):
        t0 = time.perf_counter()
        out = _post(client, *args, **kw)
        t[name] = time.perf_counter() - t0
        return out

    ov = timed(
        "overview",
        "..experiment-summary.children...family.options...family.value...run.options...run.value..."
        "experiment-note.children..",
        [
            ("experiment-summary", "children"),
            ("family", "options"),
            ("family", "value"),
            ("run", "options"),
            ("run", "value"),
            ("experiment-note", "children"),
        ],
        [("experiment", "value", key), ("reload", "n_clicks", 1)],
    )
    family = ov["family"]["value"]
    fc = timed(
        "probe controls",
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
    timed(
        "teacher tab",
        "..teacher-graph.figure...teacher-note.children...teacher-graph.config..",
        [("teacher-graph", "figure"), ("teacher-note", "children"), ("teacher-graph", "config")],
        [
            ("experiment", "value", key),
            ("axis", "value", "linear"),
            ("tabs", "value", "teacher"),
            ("image-format", "value", "png"),
            ("reload", "n_clicks", 1),
        ],
    )
    g = ("timeline-graph", "sites-graph", "heatmap-graph")
    timed(
        "features tab",
        "..timeline-graph.figure...sites-graph.figure...heatmap-graph.figure...features-note.children..."
        "timeline-graph.config...sites-graph.config...heatmap-graph.config..",
        [(x, "figure") for x in g] + [("features-note", "children")] + [(x, "config") for x in g],
        [
            ("experiment", "value", key),
            ("run", "value", run),
            ("family", "value", family),
            ("site", "value", site),
            ("degree", "value", degree),
            ("axis", "value", "linear"),
            ("ylog", "value", []),
            ("tabs", "value", "features"),
            ("image-format", "value", "png"),
            ("reload", "n_clicks", 1),
        ],
    )
    g = ("students-graph", "side-graph", "twoshot-graph")
    timed(
        "students tab",
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
            ("reload", "n_clicks", 1),
        ],
    )
    out = timed(
        "emergence table",
        "..emergence-table.data...emergence-table.columns...emergence-note.children..",
        [("emergence-table", "data"), ("emergence-table", "columns"), ("emergence-note", "children")],
        [
            ("experiment", "value", key),
            ("tabs", "value", "emergence"),
            ("emergence-off-support", "value", []),
            ("reload", "n_clicks", 1),
        ],
    )
    assert out["emergence-table"]["data"], "emergence table empty"
    return t


def whole_file_source(root: Path):
    """The baseline data source (module docstring)."""
    from dashboard.data import DataSource, ResultsReader
    from probes.summary import summarize_series_loop

    class WholeFileSource(DataSource):
        def _units(self, key, r):
            return {}  # no per-unit fingerprints: everything keys on the database files

        def emergence(self, key):
            exp = self.experiment(key)
            r = ResultsReader(exp.db_path, timeout_s=self.db_timeout_s)
            specs = r.metric_specs()  # what the sweep stored
            return self._cached(("emergence", key), r.fingerprint(), lambda: summarize_series_loop(r.table(), specs))

    return WholeFileSource(root, prefetch=False)


def run_phase(name: str, source, exp: Path, args) -> dict:
    from dashboard.app import make_app

    app = make_app(exp.parent, source=source)
    ctx = mp.get_context("spawn")
    stop, counter = ctx.Event(), ctx.Value("i", 0)
    proc = ctx.Process(
        target=writer,
        args=(str(exp / C.RESULTS_DB), args.checkpoints * 100, args.features, args.commit_every, stop, counter),
        daemon=True,
    )
    warm_client = app.server.test_client()  # imports (plotly, probes, torch) and cold caches, timed apart
    t_cold = client_pass(warm_client, exp.name, "teacher")
    proc.start()
    t_write = time.monotonic()
    lat: dict[str, list[float]] = {}
    cold: dict[str, list[float]] = {}
    lock = threading.Lock()
    end = time.monotonic() + args.seconds
    rss: list[tuple[float, float]] = []
    rng = random.Random(0)
    runs = ["teacher", *STUDENTS]

    def client(i: int) -> None:
        c = app.server.test_client()
        first = True
        while time.monotonic() < end:
            t = client_pass(c, exp.name, runs[rng.randrange(len(runs))])
            with lock:
                for k, v in t.items():
                    lat.setdefault(k, []).append(v)  # every pass counts, the first (cold caches) too
                    if first:
                        cold.setdefault(k, []).append(v)
            first = False

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    while any(th.is_alive() for th in threads):
        rss.append((time.monotonic() - t0, rss_mb()))
        time.sleep(1.0)
    stop.set()
    proc.join(30)
    commits, write_s = counter.value, time.monotonic() - t_write
    warm = [m for t, m in rss if t >= min(args.seconds / 4, 15)]
    print(
        f"\n{name}: {args.clients} clients for {time.monotonic() - t0:.0f} s, writer committed {commits} units "
        f"in {write_s:.0f} s ({commits / max(write_s, 1e-9):.2f}/s)"
    )
    print(
        f"{'callback':<20}{'n':>6}{'median s':>10}{'p95 s':>9}{'max s':>8}   cold (no writer)   each client's first pass (median s)"
    )
    out = {}
    for k in lat or cold:
        v = sorted(lat.get(k, []))
        p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))] if v else float("nan")
        out[k] = p95
        c = statistics.median(cold[k]) if cold.get(k) else float("nan")
        print(
            f"{k:<20}{len(v):>6}{statistics.median(v) if v else float('nan'):>10.3f}{p95:>9.3f}"
            f"{max(v) if v else float('nan'):>8.3f}   {t_cold[k]:>8.3f}            {c:.3f}"
        )
    if warm:
        print(
            f"memory (VmRSS): {warm[0]:.0f} MB after warm-up, {warm[-1]:.0f} MB at the end, "
            f"max {max(warm):.0f} MB (growth {warm[-1] - warm[0]:+.0f} MB over {rss[-1][0] - rss[len(rss) - len(warm)][0]:.0f} s)"
        )
    return {"p95": out, "rss": (warm[0], warm[-1], max(warm)) if warm else None, "commits": commits}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--clients", type=int, default=5)
    p.add_argument("--commit-every", type=float, default=1.0)
    p.add_argument("--checkpoints", type=int, default=200)
    p.add_argument("--features", type=int, default=300)
    p.add_argument("--students", type=int, default=4)
    p.add_argument("--skip-baseline", action="store_true")
    args = p.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)
    from dashboard.data import DataSource

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        exp = build(Path(tmp) / "runs", args.checkpoints, args.features, args.students)
        with ResultsStore(exp / C.RESULTS_DB, readonly=True) as s:
            n_rows = s.count()
        print(f"built {n_rows:,} rows in {time.perf_counter() - t0:.0f} s; machine: {mp.cpu_count()} CPUs (shared)")
        ours = run_phase("incremental (DataSource)", DataSource(exp.parent, prefetch=True), exp, args)
        if args.skip_baseline:
            return 0
        base = run_phase("whole-file baseline", whole_file_source(exp.parent), exp, args)
    print("\np95 per callback, baseline / incremental (same machine, same run):")
    for k, v in ours["p95"].items():
        b = base["p95"].get(k, float("nan"))
        print(f"  {k:<20}{b:>8.3f} s / {v:.3f} s = {b / v:.1f}x   {'under 1 s' if v < 1 else 'NOT under 1 s'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

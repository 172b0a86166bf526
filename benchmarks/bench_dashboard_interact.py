"""What a dashboard user waits for: first paint, a picker change, and figure export per figure.

::

    python -m benchmarks.bench_dashboard_interact [--exp DIR] [--baseline /path/to/other/checkout]
        [--repeats 3] [--figures 24] [--formats png svg] [--json FILE]

Server side, called as the app calls them (``dashboard.callbacks``, figures encoded to JSON as
Dash sends them; the browser's drawing is not included):

- **first paint (teacher)**: a fresh ``DataSource`` (cold cache): the overview and the Teacher
  tab; then **findings + controls**: the findings panel where the code has one and the probe
  controls (with their default degree), which the browser requests alongside;
- **findings after warm-up** (code with ``dashboard.app.warm_up``, which ``make_app`` starts at
  server start): another fresh ``DataSource``, the warm-up run to its end (**warm-up**, in a
  background thread on a server), then the findings panel as a browser arriving after it gets it;
- **run change**: on the features tab, switching the Run picker to each other run in turn
  (``family_controls`` + ``features_view``; that run's rows are not cached yet);
- **degree change**: switching the Degree picker through each degree of the teacher (where the
  app leaves the per-site overview alone on such a change, ``draw_sites=False``, so does this);
- **export**: ``write_figures`` of the first ``--figures`` figures of ``export``'s list, per
  format: seconds per figure with the browser start-up spread over them (**per figure**), and
  split into the start-up (``write_figures`` of the first figure alone) and the **marginal**
  figure, ``(t(N) - t(1)) / (N - 1)``: what each further figure of a long export costs.

``--baseline DIR`` runs the same measurements on the code at DIR (another checkout, e.g. main)
in a child process with ``PYTHONPATH=DIR``; ours run the same way (a child with this
checkout), the two alternating repeat by repeat, the same threads (``OMP_NUM_THREADS=1``), the
load average printed before and after. Without ``--exp`` a synthetic experiment is built
(``bench_dashboard.build``, 60 checkpoints x 150 features x 4 students).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def measure(exp: Path, n_figures: int, formats: list[str]) -> dict:
    """One repeat of every measurement on experiment directory ``exp`` (seconds)."""
    import plotly.io as pio

    from dashboard import callbacks as cb
    from dashboard import layout as L
    from dashboard.data import DataSource
    from dashboard.export import experiment_figures, write_figures

    root, key = exp.parent, exp.name

    def encode(out) -> None:  # what Dash does with each figure before sending it
        for x in out if isinstance(out, tuple) else (out,):
            if hasattr(x, "to_plotly_json"):
                pio.to_json(x, validate=False)

    res: dict = {}
    src = DataSource(root, prefetch=False)
    t0 = time.perf_counter()
    _, _, family, _, teacher, _ = cb.experiment_overview(src, key)
    encode(cb.teacher_view(src, key, "linear", L.TAB_TEACHER))
    res["first paint (teacher)"] = [time.perf_counter() - t0]
    t0 = time.perf_counter()  # requests of their own in the browser, sent alongside the teacher's
    if hasattr(cb, "findings_view"):
        cb.findings_view(src, key)
    site_opts, site, deg_opts, degree, _ = cb.family_controls(src, key, family, teacher)
    res["findings + controls"] = [time.perf_counter() - t0]
    try:
        from dashboard.app import warm_up
    except ImportError:  # older code: no warm-up
        warm_up = None
    if warm_up is not None:
        warm = DataSource(root, prefetch=False)  # prefetch off: only the findings part of the warm-up is timed
        t0 = time.perf_counter()
        warm_up(warm, key).join()
        res["warm-up"] = [time.perf_counter() - t0]
        t0 = time.perf_counter()
        cb.findings_view(warm, key)
        res["findings after warm-up"] = [time.perf_counter() - t0]
    encode(cb.features_view(src, key, teacher, family, site, degree, "linear", [], L.TAB_FEATURES))

    runs = [r.name for r in src.experiment(key).runs if r.name != teacher]
    keeps = len(inspect.signature(cb.family_controls).parameters) > 4
    res["run change"] = []
    for run in runs:
        t0 = time.perf_counter()
        if keeps:  # this code keeps the picked site and degree
            _, site_r, _, deg_r, _ = cb.family_controls(src, key, family, run, site, degree)
        else:  # older code: the controls reset; the view is drawn at what they reset to
            _, site_r, _, deg_r, _ = cb.family_controls(src, key, family, run)
        encode(cb.features_view(src, key, run, family, site_r, deg_r, "linear", [], L.TAB_FEATURES))
        res["run change"].append(time.perf_counter() - t0)
    degree_kw = {"draw_sites": False} if "draw_sites" in inspect.signature(cb.features_view).parameters else {}
    res["degree change"] = []
    for opt in deg_opts:
        t0 = time.perf_counter()
        encode(
            cb.features_view(src, key, teacher, family, site, opt["value"], "linear", [], L.TAB_FEATURES, **degree_kw)
        )
        res["degree change"].append(time.perf_counter() - t0)

    figs = experiment_figures(DataSource(exp), ".")[:n_figures]
    for fmt in formats:
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            write_figures(figs[:1], out, fmt)
            one = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            write_figures(figs, out, fmt)
            every = time.perf_counter() - t0
        res[f"export {fmt} per figure"] = [every / max(1, len(figs))]
        res[f"export {fmt} start-up"] = [one]
        if len(figs) > 1:
            res[f"export {fmt} marginal"] = [(every - one) / (len(figs) - 1)]
    res["n_figures"] = len(figs)
    return res


def _child(code: Path, exp: Path, args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--exp", str(exp), "--figures", str(args.figures)]
    cmd += ["--formats", *args.formats]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=code)
    if out.returncode != 0:
        raise SystemExit(f"the run on {code} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--exp", type=Path, help="an experiment directory (default: a synthetic one)")
    p.add_argument("--baseline", type=Path, help="another checkout to compare against (e.g. /work/main)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--figures", type=int, default=24)
    p.add_argument("--formats", nargs="+", default=["png", "svg"])
    p.add_argument("--json", type=Path)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)
    if args.child:
        print(json.dumps(measure(args.exp, args.figures, args.formats)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        exp = args.exp
        if exp is None:
            from benchmarks.bench_dashboard import build

            exp = build(Path(tmp), 60, 150, 4)
        exp = exp.resolve()
        sides = {"this checkout": REPO} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
        load_before = _load()
        print(f"experiment {exp}; load average before: {load_before}; {os.cpu_count()} CPUs")
        got: dict = {name: {} for name in sides}
        n_figs = {}
        for i in range(args.repeats):  # alternate the sides repeat by repeat
            for name, code in sides.items():
                r = _child(code, exp, args)
                n_figs[name] = r.pop("n_figures")
                for k, v in r.items():
                    got[name].setdefault(k, []).extend(v)
                print(f"  repeat {i + 1} {name}: done (load {_load()})", flush=True)
        load_after = _load()
        print(f"load average after: {load_after}")
        print(f"\nseconds, median [max] over {args.repeats} repeat(s) x every change; export over {n_figs} figures")
        names = list(sides)
        print(f"{'measure':<24}" + "".join(f"{n:>26}" for n in names))
        summary: dict = {}
        for k in got[names[0]]:
            cells = []
            for n in names:
                v = got[n].get(k, [])
                summary.setdefault(n, {})[k] = (
                    {"median": statistics.median(v), "max": max(v), "n": len(v)} if v else None
                )
                cells.append(f"{statistics.median(v):>15.3f} [{max(v):.3f}]" if v else f"{'—':>26}")
            print(f"{k:<24}" + "".join(f"{c:>26}" for c in cells))
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "experiment": str(exp),
                        "sides": {n: str(c) for n, c in sides.items()},
                        "repeats": args.repeats,
                        "figures": n_figs,
                        "load_before": load_before,
                        "load_after": load_after,
                        "cpus": os.cpu_count(),
                        "results": summary,
                    },
                    indent=2,
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Method A against method B across seeds: steps to a target and per-feature appearance steps,
paired where the teacher is shared (torch-free: run configs, ``metrics.jsonl`` and the results
database; the dashboard calls ``compare`` too).

An *experiment* is a directory with ``runs/``; ``compare`` takes one, or a directory of
replicate experiments (one per teacher seed, e.g. ``demo --seeds N``'s ``seed<k>/``). Inside
an experiment, the A and B students of the same student seed share the teacher: they are a
pair, and the statistic is the mean of the paired differences A - B with its Student-t 95%
interval (``curriculens.findings.t_interval``). Verdict: "A earlier" when the whole interval is
below 0, "B earlier" when above, else "not established".

Steps to target: the first evaluation at or above ``target`` held-out accuracy. A run that
never reaches it counts at its last evaluated step (a lower bound of its true steps: a verdict
against the censored side still holds, one for it may be understated); the count is reported.
Appearance: ``probes.summary`` (features that pass its null); a pair counts when the feature
appeared in both runs, and how often it appeared in only one is reported. The per-feature
intervals are not corrected for the number of features compared (a count is reported).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from curriculens import constants as C
from curriculens import findings as F
from curriculens.curves import first_crossing
from curriculens.errors import CurriculensError

FEATURE_KEYS = ["probe", "metric", "site", "degree", "feature"]


@dataclass(frozen=True)
class RunRecord:
    """One run (students and the teacher): its experiment (replicate), method, seed, steps to
    target (or the last evaluated step when ``reached`` is False) and ``final_acc``, its last
    held-out accuracy (None: never evaluated)."""

    exp: str
    name: str
    method: str
    seed: int
    steps: int | None
    reached: bool
    final_acc: float | None = None


@dataclass(frozen=True)
class Comparison:
    """One compared quantity: the paired differences A - B, their interval and the verdict."""

    what: str
    interval: F.Interval
    verdict: str
    n_pairs: int
    a_only: int = 0  # pairs where only A reached / showed it
    b_only: int = 0
    censored: int = 0  # pairs with a run counted at its last step
    diffs: list = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["interval"] = self.interval.to_dict()
        return d


def experiments(root: Path | str) -> list[Path]:
    """``root`` if it is an experiment (has ``runs/``), else its experiment subdirectories
    (depth <= 2), sorted; CurriculensError when there is none."""
    root = Path(root)
    if (root / C.RUNS_DIR).is_dir():
        return [root]
    found = sorted(p.parent for p in root.glob(f"*/{C.RUNS_DIR}") if p.is_dir())
    found += sorted(p.parent for p in root.glob(f"*/*/{C.RUNS_DIR}") if p.is_dir())
    if not found:
        raise CurriculensError(f"{root} holds no experiment (no {C.RUNS_DIR}/ directory)")
    return found


def _method(cfg: dict) -> str | None:
    if cfg.get("role") == C.ROLE_TEACHER:
        return C.METHOD_TEACHER
    d = cfg.get("distill") or {}
    return d.get("method") if isinstance(d, dict) else None


def _metrics_rows(run: Path) -> list[dict]:
    """A run's ``metrics.jsonl`` rows by step (unreadable lines skipped; none without the file)."""
    metrics = run / C.METRICS_FILE
    rows = []
    if metrics.is_file():
        for line in metrics.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return sorted(rows, key=lambda r: r.get("step", 0))


def _last_acc(accs) -> float | None:
    """The last finite value of a run's ``eval_acc`` series by step (None: none)."""
    finite = [float(a) for a in accs if a is not None and not (isinstance(a, float) and math.isnan(a))]
    return finite[-1] if finite else None


def last_eval_acc(run: Path | str) -> float | None:
    """A run's last logged held-out accuracy (None: never evaluated). A teacher that ends below
    the students' target bounds what they are taught: its students' last teacher misses it."""
    return _last_acc(r.get("eval_acc") for r in _metrics_rows(Path(run)))


def teachers_below(records: list[RunRecord], target: float) -> list[dict]:
    """``[{"experiment", "run", "final_acc"}]`` for each teacher among ``records``
    (``student_runs`` and ``records_from_metrics`` list teachers too) whose last held-out
    accuracy is below ``target``."""
    return [
        {"experiment": r.exp, "run": r.name, "final_acc": float(r.final_acc)}
        for r in records
        if r.method == C.METHOD_TEACHER and r.final_acc is not None and r.final_acc < target
    ]


def student_runs(exp: Path, target: float) -> list[RunRecord]:
    """Every run of ``exp`` (the teacher too) with its method, seed, steps to ``target``
    accuracy and last held-out accuracy."""
    out = []
    for run in sorted((exp / C.RUNS_DIR).iterdir()):
        cfg_path = run / C.RUN_CONFIG_FILE
        if not cfg_path.is_file():
            continue
        try:
            cfg = json.loads(cfg_path.read_text())
        except json.JSONDecodeError:
            continue
        rows = _metrics_rows(run)
        accs = [r.get("eval_acc", math.nan) for r in rows]
        hit = first_crossing([r["step"] for r in rows], accs, target)
        last = int(rows[-1]["step"]) if rows else None
        out.append(
            RunRecord(
                str(exp),
                run.name,
                _method(cfg) or "",
                int(cfg.get("seed", 0)),
                hit if hit is not None else last,
                hit is not None,
                _last_acc(accs),
            )
        )
    return out


def _pairs(records: list, a: str, b: str) -> list[tuple]:
    """(A, B) records of the same experiment and seed."""
    by = {}
    for r in records:
        by.setdefault((r.exp, r.seed, r.method), r)
    return [(by[(e, s, a)], by[(e, s, b)]) for (e, s, m) in sorted(by) if m == a and (e, s, b) in by]


def _judge(what: str, diffs: list, **counts) -> Comparison:
    iv = F.t_interval(diffs)
    return Comparison(what, iv, F.verdict(iv), iv.n, diffs=[float(d) for d in diffs], **counts)


def records_from_metrics(metrics, target: float = C.TARGET_ACC, exp: str = "") -> list[RunRecord]:
    """``student_runs`` of a metrics frame (one row per (run, evaluated step), columns run,
    method, seed, step and eval_acc: the dashboard's ``load_metrics``); the same records as
    ``student_runs`` reads from the files, with ``exp`` as their experiment."""
    out = []
    if metrics is None or metrics.empty or "run" not in metrics:
        return out
    for run, g in sorted(metrics.groupby("run", sort=False), key=lambda kv: kv[0]):
        g = g.sort_values("step", kind="stable")
        acc = g["eval_acc"].astype("float64").tolist() if "eval_acc" in g else [math.nan] * len(g)
        hit = first_crossing([int(x) for x in g["step"]], acc, target)
        seed = g["seed"].iloc[0] if "seed" in g else 0
        method = g["method"].iloc[0] if "method" in g else ""
        out.append(
            RunRecord(
                exp,
                str(run),
                "" if method is None or (isinstance(method, float) and math.isnan(method)) else str(method),
                int(seed) if seed is not None and not (isinstance(seed, float) and math.isnan(seed)) else 0,
                hit if hit is not None else int(g["step"].iloc[-1]),
                hit is not None,
                _last_acc(acc),
            )
        )
    return out


def compare(root: Path | str, a: str, b: str, target: float = C.TARGET_ACC, features: bool = True) -> dict:
    """Method ``a`` against method ``b`` over the experiments of ``root`` (module docstring).

    Returns {"a", "b", "target", "experiments", "steps": Comparison dict, "features": [...],
    "teachers_below_target": ``teachers_below``}.
    CurriculensError when a method has no run or no pair exists.
    """
    exps = experiments(root)
    records = [r for e in exps for r in student_runs(e, target)]
    return compare_records(
        records,
        a,
        b,
        target,
        table=_summaries(exps) if features else None,
        exps=[str(e) for e in exps],
        where=str(root),
    )


def compare_records(
    records: list,
    a: str,
    b: str,
    target: float = C.TARGET_ACC,
    table=None,
    exps: list | None = None,
    where: str = "the experiment",
) -> dict:
    """``compare`` of given run records (``student_runs`` / ``records_from_metrics``) and, for
    the per-feature comparisons, a summary table (``probes.summary``'s columns plus ``exp``, the
    records' experiment; None: no feature comparisons). The one body behind ``compare``, the
    dashboard's findings panel and ``Experiment.compare``; its ``teachers_below_target`` is
    ``teachers_below`` of the records."""
    methods = sorted({r.method for r in records})
    for m in (a, b):
        if m not in methods:
            raise CurriculensError(f"no run of method {m!r} under {where} (methods: {', '.join(methods) or 'none'})")
    pairs = _pairs(records, a, b)
    if not pairs:
        raise CurriculensError(f"no {a} and {b} runs share a teacher and a seed under {where}")
    steps = _judge(
        f"steps to {target:g} accuracy",
        [ra.steps - rb.steps for ra, rb in pairs if ra.steps is not None and rb.steps is not None],
        a_only=sum(ra.reached and not rb.reached for ra, rb in pairs),
        b_only=sum(rb.reached and not ra.reached for ra, rb in pairs),
        censored=sum(not (ra.reached and rb.reached) for ra, rb in pairs),
    )
    out = {
        "a": a,
        "b": b,
        "target": target,
        "experiments": list(exps if exps is not None else sorted({r.exp for r in records})),
        "pairs": [[ra.name, rb.name, ra.exp] for ra, rb in pairs],
        "steps": steps.to_dict(),
        "features": [],
        "teachers_below_target": teachers_below(records, target),
    }
    if table is not None and len(table):
        out["features"] = [c.to_dict() for c in _feature_comparisons(table, pairs)]
    return out


def _summaries(exps: list[Path]):
    """The summary tables (``probes.summary.summarize``) of the experiments with results, with
    their ``exp``; None when none has any."""
    import pandas as pd

    from probes.summary import summarize

    tables = []
    for e in exps:
        db = e / C.RESULTS_DB
        if db.is_file():
            t = summarize(db)
            tables.append(t.assign(exp=str(e)))
    return pd.concat(tables, ignore_index=True) if tables else None


def _feature_comparisons(table, pairs: list[tuple]) -> list[Comparison]:
    import pandas as pd

    table = table[table["in_support"].isna() | (table["in_support"] == 1)]
    table = table.assign(degree=table["degree"].astype("float64").fillna(-1))
    step = {
        (r.exp, r.run, *[getattr(r, k) for k in FEATURE_KEYS]): r.appear_step
        for r in table[["exp", "run", *FEATURE_KEYS, "appear_step"]].itertuples(index=False)
    }
    keys = table[FEATURE_KEYS].drop_duplicates().itertuples(index=False)
    out = []
    for key in keys:
        diffs, a_only, b_only = [], 0, 0
        for ra, rb in pairs:
            sa = step.get((ra.exp, ra.name, *key), pd.NA)
            sb = step.get((rb.exp, rb.name, *key), pd.NA)
            if pd.notna(sa) and pd.notna(sb):
                diffs.append(int(sa) - int(sb))
            elif pd.notna(sa):
                a_only += 1
            elif pd.notna(sb):
                b_only += 1
        if diffs or a_only or b_only:
            probe, metric, site, degree, feature = key
            deg = "" if degree < 0 else f" degree {int(degree)}"
            out.append(_judge(f"{probe}/{metric} {site}{deg} {feature}", diffs, a_only=a_only, b_only=b_only))
    return out


def comparison_frame(res: dict) -> pd.DataFrame:  # noqa: F821 - pandas imported lazily
    """One row per compared quantity of a ``compare`` result: what, n, estimate, lo, hi,
    verdict, a_only, b_only, censored (the numbers ``format_comparison`` prints)."""
    import pandas as pd

    rows = []
    for c in [res["steps"], *res["features"]]:
        iv = c["interval"]
        rows.append(
            {
                "what": c["what"],
                "n": int(iv["n"]),
                "estimate": math.nan if iv["estimate"] is None else float(iv["estimate"]),
                "lo": math.nan if iv["lo"] is None else float(iv["lo"]),
                "hi": math.nan if iv["hi"] is None else float(iv["hi"]),
                "verdict": c["verdict"],
                "a_only": int(c["a_only"]),
                "b_only": int(c["b_only"]),
                "censored": int(c.get("censored", 0)),
            }
        )
    return pd.DataFrame(rows, columns=COMPARISON_FRAME_COLUMNS)


COMPARISON_FRAME_COLUMNS = ["what", "n", "estimate", "lo", "hi", "verdict", "a_only", "b_only", "censored"]


def format_comparison(res: dict) -> str:
    """Plain text: one line per compared quantity."""
    a, b = res["a"], res["b"]
    lines = [
        f"{a} (A) against {b} (B): {len(res['pairs'])} pair(s) sharing a teacher, over {len(res['experiments'])} "
        f"experiment(s); differences A - B in steps, mean and Student-t 95% interval"
    ]

    def line(c: dict) -> str:
        iv = c["interval"]
        body = F.format_estimate(
            iv["estimate"], iv["lo"], iv["hi"], iv["n"], signed=True, empty="no pair where both have it"
        ) + (f" (n = {iv['n']}{', no interval' if iv['n'] == 1 else ''})" if iv["n"] else "")
        extra = []
        if c["a_only"] or c["b_only"]:
            extra.append(f"only A: {c['a_only']}, only B: {c['b_only']}")
        if c.get("censored"):
            extra.append(f"{c['censored']} pair(s) with a run not reaching it, counted at its last step")
        return f"  {c['what']}: {body} -> {c['verdict']}" + (f" ({'; '.join(extra)})" if extra else "")

    lines.append(line(res["steps"]))
    below = res.get("teachers_below_target") or []
    if below:
        lines.append(
            "  teacher(s) that ended below the target, so their students' last teacher misses it: "
            + ", ".join(f"{t['experiment'] or t['run']} ({t['final_acc']:.2f})" for t in below)
        )
    feats = res["features"]
    if feats:
        lines.append(f"features that pass the summary's null ({len(feats)}; intervals not corrected for their number):")
        lines += [line(c) for c in feats]
    return "\n".join(lines)

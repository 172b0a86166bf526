"""One experiment for analysis in a notebook: ``curriculens.open(EXPERIMENT_DIR)``.

Read only and safe while a sweep or a training run writes: the runs and curves come from
their JSON files, the probe rows from ``results.sqlite`` opened read-only (SQLite ``mode=ro``,
as the dashboard does, through ``dashboard.data``), so a reader never blocks a writer and sees
the units committed so far. Each call reads again (cached on the files' mtime and size), so a
cell re-run during a sweep shows the new units. Imports pandas and plotly, never torch or
transformer_lens.

Every table is a pandas DataFrame; the columns (documented in docs/api.md):

``runs()``      run, role, method, label, seed, two_shot_step (-1 unless two-shot), two_shot_T,
                steps (configured), done, model, path
``metrics()``   one row per (run, evaluated step): run, role, method, label, seed,
                two_shot_step, two_shot_T, then each ``metrics.jsonl`` key (step, samples,
                train_loss, lr, teacher_step, wall_s, checkpoint, eval_acc, eval_loss, ...),
                ckpt (display path; "" for an evaluation-only step)
``results()``   one row per probe value: run, role, method, seed, step, probe, feature, site,
                metric, value, degree, in_support (NaN where not set), plus the step axes
                teacher_step, samples (see ``step_axes``)
``summary()``   ``probes.summary.summarize`` of the database: one row per primary-metric
                series with appear_step, peak_step, ... (``probes.summary.SUMMARY_COLUMNS``)

Trap: the frames may share memory with the reader's cache; copy before mutating in place.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from curriculens import constants as C
from curriculens.errors import CurriculensError
from dashboard.data import ROOT_KEY, DataSource, NoResultsYet
from training.experiment import is_experiment

log = logging.getLogger(__name__)

RUN_COLUMNS = (
    "run",
    "role",
    "method",
    "label",
    "seed",
    "two_shot_step",
    "two_shot_T",
    "steps",
    "done",
    "model",
    "path",
)
AXIS_COLUMNS = ("teacher_step", "samples", "tokens")  # the second x-axes a step can be read on


def step_axes(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, step) of ``metrics``: the step's other x-axes.

    Columns: run, step, teacher_step (the teacher checkpoint the student learned from at that
    step, nullable Int64; a teacher's own step for a teacher; missing for ce students and
    before a schedule starts), samples (training examples seen), tokens (only where the run's
    metrics record them; no task does today). Probe steps are checkpoint steps, which are
    always evaluated, so every probe row finds its axes here.
    """
    cols = ["run", "step", *AXIS_COLUMNS]
    if metrics.empty:  # typed, so that merging it on (run, step) works
        empty = {"run": pd.Series(dtype=object), "step": pd.Series(dtype="int64")}
        return pd.DataFrame({**empty, **{c: pd.Series(dtype="Int64") for c in AXIS_COLUMNS}})
    out = metrics[["run", "role", "step"]].copy()
    for c in AXIS_COLUMNS:
        out[c] = pd.to_numeric(metrics[c], errors="coerce") if c in metrics else float("nan")
    teacher = out["role"] == C.ROLE_TEACHER
    out.loc[teacher, "teacher_step"] = out.loc[teacher, "step"]
    for c in ("teacher_step", "samples", "tokens"):
        out[c] = out[c].round().astype("Int64")
    return out.drop(columns="role").drop_duplicates(["run", "step"], keep="last")[cols].reset_index(drop=True)


class Experiment:
    """A read-only view of one experiment directory (the one holding ``experiment.json``).

    Args:
        path: the experiment directory.
        db_timeout_s: how long a query waits for a database a writer holds locked.

    Raises:
        CurriculensError: ``path`` is not an experiment directory (one-line message).
    """

    def __init__(self, path: Path | str, db_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        if not is_experiment(self.path):
            raise CurriculensError(f"{self.path} is not an experiment directory (no {C.EXPERIMENT_FILE})")
        self._source = DataSource(self.path, db_timeout_s=db_timeout_s)

    # --- what it is -----------------------------------------------------------------------
    @property
    def _summary(self):
        return self._source.experiment(ROOT_KEY)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def task(self) -> dict:
        """The task config of ``experiment.json`` (``{}`` when unreadable; see ``problems``)."""
        return dict(self._summary.task)

    @property
    def problems(self) -> tuple[str, ...]:
        """What could not be read (a run without checkpoints yet, a broken config, ...)."""
        return self._summary.problems

    @property
    def db_path(self) -> Path:
        return self.path / C.RESULTS_DB

    @property
    def has_results(self) -> bool:
        return self.db_path.is_file()

    def __repr__(self) -> str:
        return f"<curriculens.Experiment {self.name}: {len(self._summary.runs)} runs, {self._summary.task_label}>"

    # --- tables ---------------------------------------------------------------------------
    def runs(self) -> pd.DataFrame:
        """One row per run (teacher first), columns ``RUN_COLUMNS``."""
        runs = self._summary.runs
        rows = [
            (r.name, r.role, r.method, r.label, r.seed, r.two_shot_step, r.two_shot_T, r.steps, r.done, r.model, r.path)
            for r in runs
        ]
        return pd.DataFrame(rows, columns=list(RUN_COLUMNS))

    def metrics(self, runs: Iterable[str] | None = None) -> pd.DataFrame:
        """The evaluation curves, one row per (run, evaluated step) (columns: module docstring)."""
        df = self._source.metrics(ROOT_KEY)
        if runs is not None:
            df = df[df["run"].isin(self._known_runs(runs))].reset_index(drop=True)
        return df

    def results(
        self,
        probe: str | None = None,
        metric: str | None = None,
        runs: Iterable[str] | None = None,
        site: str | None = None,
    ) -> pd.DataFrame:
        """Probe rows (optionally one probe / metric / site, some runs), sorted by run, probe,
        metric, site, feature, step; with the step axes of ``step_axes``.

        Raises ``dashboard.data.NoResultsYet`` (a ``CurriculensError``) when nothing is probed yet.
        """
        df = self._source.reader(ROOT_KEY).table()
        for col, val in (("probe", probe), ("metric", metric), ("site", site)):
            if val is not None:
                df = df[df[col] == val]
        if runs is not None:
            df = df[df["run"].isin(self._known_runs(runs))]
        df = df.sort_values(["run", "probe", "metric", "site", "feature", "step"], kind="stable")
        df = df.merge(step_axes(self._source.metrics(ROOT_KEY)), on=["run", "step"], how="left")
        return df.reset_index(drop=True)

    def catalog(self) -> pd.DataFrame:
        """What the database holds: probe, metric, site, n_features, degrees, has_in_support, runs."""
        return self._source.catalog(ROOT_KEY)

    def summary(self, **kwargs) -> pd.DataFrame:
        """When each feature appears: ``probes.summary.summarize`` of this experiment's database
        (keyword arguments pass through: ``probes``, ``metrics``, ``runs``, ``specs``)."""
        from probes.summary import summarize  # noqa: PLC0415 - pandas/numpy only; keeps open() light

        if not self.has_results:
            raise NoResultsYet(
                f"No probe results yet: {self.name}/{C.RESULTS_DB} does not exist. "
                "Run the probe sweep (curriculens probe EXPERIMENT_DIR) to measure the checkpoints."
            )
        return summarize(self.db_path, **kwargs)

    def compare(self, a: str, b: str, target: float = C.TARGET_ACC, features: bool = True) -> pd.DataFrame:
        """Method ``a`` against method ``b``, the numbers ``curriculens compare EXP A B`` prints
        (``curriculens.compare``): one row for steps to ``target`` accuracy, then one per
        in-support feature that passes the summary's null in some run (``features``); columns
        ``curriculens.compare.COMPARISON_FRAME_COLUMNS`` (what, n pairs, estimate = mean paired
        difference A - B in steps, lo / hi its Student-t 95% interval (NaN for one pair),
        verdict, a_only, b_only, censored). ``frame.attrs["teachers_below_target"]``: the
        teachers that ended below ``target`` (``[{"experiment", "run", "final_acc"}]``; their
        students' last teacher misses it, logged as a warning too). ``CurriculensError`` when a
        method has no run or no pair shares teacher and seed."""
        from curriculens.compare import compare, comparison_frame  # noqa: PLC0415 - torch-free

        res = compare(self.path, a, b, target=target, features=features and self.has_results)
        frame = comparison_frame(res)
        frame.attrs["teachers_below_target"] = res["teachers_below_target"]
        for t in res["teachers_below_target"]:
            log.warning(
                "teacher %s of %s ended at %.3f held-out accuracy, below the target %g: its students' last "
                "teacher misses it",
                t["run"],
                t["experiment"],
                t["final_acc"],
                target,
            )
        return frame

    def status(self) -> str:
        """One line: how many probe values are stored, and whether a sweep seems to be writing."""
        if not self.has_results:
            return "no probe results yet"
        try:
            return self._source.status(ROOT_KEY).describe()
        except CurriculensError as exc:
            return str(exc)

    def _known_runs(self, runs: Iterable[str]) -> list[str]:
        runs = [runs] if isinstance(runs, str) else list(runs)
        known = {r.name for r in self._summary.runs}
        unknown = [r for r in runs if r not in known]
        if unknown:
            raise CurriculensError(
                f"experiment {self.name} has no run {', '.join(map(repr, unknown))} (runs: {', '.join(sorted(known))})"
            )
        return runs

    # --- figures --------------------------------------------------------------------------
    def figures(self, log_x: bool = False) -> dict:
        """Every figure the dashboard draws for this experiment, ``{name: plotly Figure}``, the
        names those of ``curriculens export`` (``dashboard.export``'s table): ``teacher_accuracy``,
        ``students_accuracy``, ``features_<run>_<probe>_<metric>_<site>``, ...

        Draws every panel (the parity demo: 264 figures, ~10 s of CPU); ``teacher_accuracy``,
        ``students_accuracy`` and ``feature_timeline`` draw one."""
        from dashboard.export import experiment_figures  # noqa: PLC0415 - plotly: only when drawing

        return dict(experiment_figures(self._source, ROOT_KEY, log_x=log_x))

    def teacher_accuracy(self, log_x: bool = False):
        """F2a: the teacher's held-out accuracy, its transition window shaded (plotly Figure)."""
        from dashboard import figures as F  # noqa: PLC0415
        from dashboard.selection import window_of  # noqa: PLC0415

        m = self.metrics()
        return F.teacher_accuracy(m, window_of(m, self._summary.task_name), log_x=log_x)

    def students_accuracy(self, log_x: bool = False, labels: Iterable[str] | None = None):
        """F1a: the students' held-out accuracy by method, mean +- sd over seeds (plotly Figure);
        ``labels`` keeps some curve groups (``runs()["label"]``)."""
        from dashboard import figures as F  # noqa: PLC0415
        from dashboard.selection import student_groups, student_windows, window_of  # noqa: PLC0415

        m = self.metrics()
        students = [r for r in self._summary.runs if r.role == C.ROLE_STUDENT]
        windows = student_windows(m, student_groups(students), window_of(m, self._summary.task_name))
        return F.students_accuracy(m, windows, log_x=log_x, labels=None if labels is None else list(labels))

    def feature_timeline(
        self,
        run: str,
        probe: str,
        metric: str,
        site: str | None = None,
        degree: int | None = None,
        log_x: bool = False,
    ):
        """F2b: one run's probe values per feature vs step (one site; ``degree`` restricts to one
        degree / level / offset), the teacher's window shaded (plotly Figure). ``site`` may be
        left out when the (probe, metric) was measured at one site only."""
        from dashboard import figures as F  # noqa: PLC0415
        from dashboard.selection import selection_title, window_of  # noqa: PLC0415

        run = self._known_runs([run])[0]
        fam = self.catalog()
        fam = fam[(fam["probe"] == probe) & (fam["metric"] == metric)]
        sites = sorted(fam["site"])
        if not sites:
            raise CurriculensError(f"experiment {self.name} has no {probe} {metric} results")
        if site is None and len(sites) > 1:
            raise CurriculensError(
                f"{probe} {metric} was measured at several sites; pass site= one of {', '.join(sites)}"
            )
        site = sites[0] if site is None else site
        if site not in sites:
            raise CurriculensError(f"{probe} {metric} has no site {site!r} (sites: {', '.join(sites)})")
        rows = self._source.rows(ROOT_KEY, probe, metric, runs=[run], site=site, degree=degree)
        m = self.metrics()
        return F.feature_timeline(
            rows,
            title=f"{run}: {selection_title(probe, metric, site, degree)}",
            window=window_of(m, self._summary.task_name),
            log_x=log_x,
            ckpt_prefix=self._summary.ckpt_display(run),
            y_title=metric,
        )

    # --- Jupyter --------------------------------------------------------------------------
    def _repr_html_(self) -> str:
        s = self._summary
        runs = self.runs()
        table = runs[["run", "role", "method", "seed", "steps", "done", "model"]].to_html(
            index=False, escape=True, border=0
        )
        parts = [
            f"<div><b>curriculens experiment</b> <code>{html.escape(str(self.path))}</code><br>",
            f"task: {html.escape(s.task_label)}; {len(runs)} runs; {html.escape(self.status())}",
            table,
        ]
        if s.problems:
            parts.append("<b>problems</b><ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in s.problems) + "</ul>")
        parts.append("</div>")
        return "\n".join(parts)

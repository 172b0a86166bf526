"""``curriculens export``: every figure of one experiment as PNG, SVG, PDF or HTML files.

The figures are the dashboard's (``dashboard.figures``) on the same data, default selections:

======================================= ==================================================
file stem                               panel
======================================= ==================================================
``teacher_accuracy``                    F2a: teacher accuracy, transition window shaded
``teacher_accuracy_loss``               teacher accuracy and loss
``students_accuracy``                   F1a: students' accuracy by method, mean +- sd
``two_shot_accuracy``                   F2c: two-shot students per chosen checkpoint
``two_shot_sweep``                      the (2, T) sweep: student steps to 95 % vs the teacher checkpoint used
``features_<run>_<probe>_<metric>_<site>[_<d>]``  F2b/F3b timelines: every run, site and degree
``heatmap_<run>_<probe>_<metric>_<site>[_<d>]``   feature x step heatmap, same selections
``sites_<run>_<probe>_<metric>``                  the metric per site and degree (the per-degree overview)
``students_<probe>_<metric>_<site>[_<d>]``        every student method side by side, every site/degree
======================================= ==================================================

``<d>`` names what the probe's ``degree`` column means: ``deg2`` (parity monomial degree),
``level3`` (``nt_span`` tree level), ``offset-2`` (``context``), ``n3`` (``ngram`` window);
``all`` is the dashboard's "all (degrees apart)" view, written when there are several.
Plus ``emergence.csv`` (the emergence table) when the experiment has probe results.

Images come from kaleido 1.x driving a local Chromium (``/usr/bin/chromium`` or
``BROWSER_PATH``) with MathJax off, so nothing is fetched from the network: one browser, one
tab reused for every figure (reloaded every ``RELOAD_EVERY``; kaleido's own reload after each
figure re-parses plotly.js), the figures built in a worker thread while the browser renders.
HTML needs no browser; the pages share one ``plotly.min.js`` written beside them. Every file is
written through a temp file and a rename, after every image is rendered.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import plotly.graph_objects as go

from curriculens import constants as C
from curriculens.errors import CurriculensError
from curriculens.io import atomic_write_bytes, atomic_write_text
from dashboard import figures as F
from dashboard.data import DataSource, NoResultsYet, ResultsReader
from dashboard.selection import (
    ckpt_prefix,
    degree_name,
    degree_tag,
    selection_title,
    side_by_side_labels,
    student_groups,
    student_window,
    student_windows,
    window_of,
)
from dashboard.sweep import has_sweep, sweep_figure

log = logging.getLogger(__name__)

FORMATS = ("png", "svg", "pdf", "html")
PLOTLY_JS = "plotly.min.js"  # written once beside the HTML files, which load it by this relative name
IMAGE_SIZE = (1000, 560)  # width, height in CSS pixels (PNG at scale 2)
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_BROWSER_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome-stable")
INSTALL_HINT = "apt-get install chromium (or set BROWSER_PATH to a Chrome/Chromium binary)"


def safe_stem(*parts: object) -> str:
    """A readable file stem: parts joined by ``_``, anything but ``[A-Za-z0-9.-]`` -> ``-``."""
    text = "_".join(str(p) for p in parts if p not in (None, ""))
    return re.sub(r"[^A-Za-z0-9.\-_]+", "-", text).strip("-_") or "figure"


def find_browser() -> str | None:
    """The Chromium kaleido should drive: ``BROWSER_PATH``, then PATH, then Debian's paths."""
    env = os.environ.get("BROWSER_PATH")
    if env:
        return env if os.path.isfile(env) and os.access(env, os.X_OK) else None
    for name in _BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in _BROWSER_PATHS if os.path.isfile(p) and os.access(p, os.X_OK)), None)


# --- which figures ------------------------------------------------------------------------
def experiment_figures(source: DataSource, key: str, *, log_x: bool = False) -> list[tuple[str, go.Figure]]:
    """``[(file stem, figure)]`` for every panel of experiment ``key`` (see the module table)."""
    return list(iter_experiment_figures(source, key, log_x=log_x))


def iter_experiment_figures(source: DataSource, key: str, *, log_x: bool = False) -> Iterator[tuple[str, go.Figure]]:
    """``experiment_figures`` one figure at a time (export draws the next while the browser
    renders the last)."""
    exp = source.experiment(key)
    metrics = source.metrics(key)
    window = window_of(metrics, exp.task_name)
    if exp.teacher is not None:
        yield ("teacher_accuracy", F.teacher_accuracy(metrics, window, log_x=log_x))
        yield ("teacher_accuracy_loss", F.teacher_overview(metrics, window, log_x=log_x))
    students = [r for r in exp.runs if r.role == C.ROLE_STUDENT]
    windows = student_windows(
        metrics, student_groups(students), window
    )  # the teacher's window on each student's own steps
    if not metrics.empty and (metrics["role"] == C.ROLE_STUDENT).any():
        yield ("students_accuracy", F.students_accuracy(metrics, windows, log_x=log_x))
    if not metrics.empty and (metrics["method"] == C.METHOD_TWO_SHOT).any():
        yield ("two_shot_accuracy", F.two_shot_accuracy(metrics, log_x=log_x))
    if has_sweep(metrics):
        yield ("two_shot_sweep", sweep_figure(source, key, metrics))
    if not exp.has_results:
        return
    try:
        catalog = source.catalog(key)
    except NoResultsYet as exc:  # damage is not skipped: it raises (ResultsUnavailable)
        log.warning("probe figures skipped: %s", exc)
        return
    side_labels = side_by_side_labels(students)
    for (probe, metric), fam in catalog.groupby(["probe", "metric"], sort=True):
        if probe == "model":  # the model's own accuracy/loss: already in the accuracy panels
            continue
        sites = sorted(fam["site"].unique(), key=F.natural_key)
        for run in exp.runs:  # every run, every site it has, every degree / level / offset
            prefix = exp.ckpt_display(run.name)
            run_window = student_window(metrics, [run.name], window) if run.role == C.ROLE_STUDENT else window
            run_sites = [s for s in sites if run.name in fam.loc[fam["site"] == s, "runs"].iloc[0]]
            for site in run_sites:
                row = fam[fam["site"] == site].iloc[0]
                for d in _degree_views(row["degrees"]):
                    rows = source.rows(key, probe, metric, runs=[run.name], site=site, degree=d)
                    if rows.empty:
                        continue
                    sel = selection_title(probe, metric, site, d)
                    tag = _tag(probe, d, row["degrees"])
                    yield (
                        safe_stem("features", run.name, probe, metric, site, tag),
                        F.feature_timeline(
                            rows,
                            title=f"{run.name}: {sel}",
                            window=run_window,
                            log_x=log_x,
                            ckpt_prefix=prefix,
                            y_title=metric,
                        ),
                    )
                    yield (
                        safe_stem("heatmap", run.name, probe, metric, site, tag),
                        F.feature_heatmap(
                            rows,
                            title=f"{run.name}: {sel}, feature x step",
                            log_x=log_x,
                            ckpt_prefix=prefix,
                            window=run_window,
                        ),
                    )
            if run_sites:  # the dashboard draws it for one site too: the degrees' order in one picture
                rows = source.rows(key, probe, metric, runs=[run.name])
                yield (
                    safe_stem("sites", run.name, probe, metric),
                    F.site_timeline(
                        rows,
                        title=f"{run.name}: {probe} · {metric} per site",
                        window=run_window,
                        log_x=log_x,
                        ckpt_prefix=prefix,
                        y_title=metric,
                        degree_word=degree_name(probe),
                    ),
                )
        if side_labels:
            runs_of = {lab: [r.name for r in students if r.label == lab] for lab in side_labels}
            for site in sites:
                row = fam[fam["site"] == site].iloc[0]
                for d in _degree_views(row["degrees"]):
                    panels = {
                        lab: source.rows(key, probe, metric, runs=runs, site=site, degree=d)
                        for lab, runs in runs_of.items()
                    }
                    if all(p.empty for p in panels.values()):
                        continue
                    sel = selection_title(probe, metric, site, d)
                    tag = _tag(probe, d, row["degrees"])
                    yield (
                        safe_stem("students", probe, metric, site, tag),
                        F.students_features(
                            panels,
                            title=f"Students' features side by side: {sel}",
                            window=window,
                            log_x=log_x,
                            y_title=metric,
                            ckpt_prefixes={lab: ckpt_prefix(exp, runs) for lab, runs in runs_of.items()},
                            windows=windows,
                        ),
                    )


def _degree_views(degrees) -> list:
    """The degree selections the dashboard offers: each degree, and all of them (None) when
    there are several (or no degree at all)."""
    degrees = list(degrees)
    return degrees + [None] if len(degrees) > 1 else (degrees or [None])


def _tag(probe: str, d, degrees) -> str:
    if d is not None:
        return f"{degree_tag(probe)}{d}"
    return "all" if len(list(degrees)) > 1 else ""


# --- writing ------------------------------------------------------------------------------
RELOAD_EVERY = 64  # figures rendered in one tab between page reloads (a bound on what a page accumulates)


def _reusing_kaleido(kaleido):
    """A ``kaleido.Kaleido`` whose tab is handed back without a page reload after each figure.

    Kaleido reloads its page (and so re-parses the 4.6 MB plotly.js) after every figure: about
    half of each PNG's time. Its renderer (``Plotly.toImage``) plots into a detached element and
    keeps no state between figures, so the same tab is reused and reloaded only every
    ``RELOAD_EVERY`` figures; PNG bytes are identical to a reload per figure
    (tests/dashboard/test_export.py). A kaleido without the private hook falls back to its own
    behaviour (slower, same files)."""
    base = kaleido.Kaleido
    if not callable(getattr(base, "_return_kaleido_tab", None)):
        return base

    class ReusingKaleido(base):
        _since_reload = 0

        async def _return_kaleido_tab(self, tab) -> None:
            self._since_reload += 1
            if self._since_reload >= RELOAD_EVERY or not isinstance(getattr(self, "tabs_ready", None), asyncio.Queue):
                self._since_reload = 0
                await super()._return_kaleido_tab(tab)
            else:
                await self.tabs_ready.put(tab)

    return ReusingKaleido


class _BuildFailed(Exception):
    """A figure failed to build (the data's fault, not the browser's): re-raised as it was."""


def _render_images(figs: Iterable[tuple[str, go.Figure]], fmt: str, browser: str) -> list[tuple[str, bytes]]:
    """``[(stem, image bytes)]``, rendered with one kaleido browser (MathJax off: no CDN request).

    ``figs`` is consumed in a worker thread one figure ahead: the first builds while the browser
    starts, each next one while the browser renders the last (figures are built in Python,
    rendered in Chromium, so the two overlap on two cores)."""
    try:
        import kaleido
    except ImportError:
        raise CurriculensError(
            f"{fmt.upper()} export needs kaleido: pip install 'kaleido>=1.0', and {INSTALL_HINT}"
        ) from None

    width, height = IMAGE_SIZE
    it = iter(figs)

    def build_next() -> tuple[str, go.Figure] | None:
        try:
            return next(it, None)
        except Exception as exc:
            raise _BuildFailed() from exc

    async def render() -> list[tuple[str, bytes]]:
        loop = asyncio.get_running_loop()
        out = []
        with ThreadPoolExecutor(1, thread_name_prefix="export-figures") as pool:
            pending = loop.run_in_executor(pool, build_next)
            async with _reusing_kaleido(kaleido)(n=1, path=browser, mathjax=False, timeout=120) as k:
                while (item := await pending) is not None:
                    pending = loop.run_in_executor(pool, build_next)
                    stem, fig = item
                    opts = {"format": fmt, "width": width, "height": int(fig.layout.height or height)}
                    out.append((stem, await k.calc_fig(fig, opts=opts | {"scale": 2 if fmt == "png" else 1})))
        return out

    try:
        return asyncio.run(render())
    except _BuildFailed as exc:
        raise exc.__cause__ from None
    except CurriculensError:
        raise
    except Exception as exc:  # noqa: BLE001 - kaleido/choreographer raise many kinds
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CurriculensError(
            f"{fmt.upper()} export failed while driving {browser}: {first}; check that it runs, or {INSTALL_HINT}"
        ) from None


def write_figures(figs: Iterable[tuple[str, go.Figure]], out_dir: Path | str, fmt: str) -> list[Path]:
    """Write each ``(stem, figure)`` as ``out_dir/stem.fmt``; returns the paths in order.
    Images are all rendered before the first file is written."""
    if fmt not in FORMATS:
        raise CurriculensError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    out_dir = Path(out_dir)
    if fmt != "html":
        return _write_images(figs, out_dir, fmt)
    figs = list(figs)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.{fmt}" for stem, _ in figs]
    # one plotly.js beside the pages, not one copy (4.6 MB) in each
    from plotly.offline import get_plotlyjs

    atomic_write_text(out_dir / PLOTLY_JS, get_plotlyjs())
    for path, (_, fig) in zip(paths, figs, strict=True):
        atomic_write_text(path, fig.to_html(include_plotlyjs=PLOTLY_JS, full_html=True, include_mathjax=False))
    return [*paths, out_dir / PLOTLY_JS]


def _write_images(figs: Iterable[tuple[str, go.Figure]], out_dir: Path, fmt: str) -> list[Path]:
    browser = find_browser()
    if browser is None:
        raise CurriculensError(f"{fmt.upper()} export needs a Chromium browser, none found: {INSTALL_HINT}")
    images = _render_images(figs, fmt, browser)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.{fmt}" for stem, _ in images]
    for path, (_, data) in zip(paths, images, strict=True):
        atomic_write_bytes(path, data)
    return paths


def export_experiment(exp_dir: Path | str, out_dir: Path | str, fmt: str, *, log_x: bool = False) -> list[Path]:
    """Write every figure of the experiment at ``exp_dir`` into ``out_dir`` (and
    ``emergence.csv`` when it has probe results); returns the written paths."""
    exp_dir = Path(exp_dir)
    if fmt not in FORMATS:
        raise CurriculensError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    if not (exp_dir / C.EXPERIMENT_FILE).is_file():
        raise CurriculensError(f"{exp_dir} is not an experiment directory (no {C.EXPERIMENT_FILE})")
    source = DataSource(exp_dir)
    table = None
    if (exp_dir / C.RESULTS_DB).is_file():
        try:  # a damaged database is an error before anything is written, not a shorter export
            ResultsReader(exp_dir / C.RESULTS_DB, timeout_s=30.0).check()
            table = source.emergence(".")
        except NoResultsYet as exc:
            log.warning("no probe figures and no emergence table: %s", exc)
    figs = iter_experiment_figures(source, ".", log_x=log_x)  # built while the browser renders
    first = next(figs, None)
    if first is None:
        raise CurriculensError(f"{exp_dir} has no runs with metrics yet: nothing to export")
    paths = write_figures(itertools.chain([first], figs), out_dir, fmt)
    if table is not None:
        csv = Path(out_dir) / "emergence.csv"
        atomic_write_text(csv, table.to_csv(index=False))
        paths.append(csv)
    return paths

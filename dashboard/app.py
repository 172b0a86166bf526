"""``make_app(runs_dir)``: the Dash app over every experiment under a runs directory.

::

    from dashboard.app import make_app
    app = make_app("runs/")          # reads in the background what the first page leads with
    app.run(host="127.0.0.1", port=8050, debug=False)

Each app owns one ``DataSource`` (its cache); callbacks are the pure functions of
``dashboard.callbacks`` bound to it, wrapped so an error becomes a sentence on the page.
With ``prefetch`` (the default) the app starts ``warm_up``: a daemon thread that computes the
findings panel's inputs for the experiment the page opens on, so a browser arriving a few
seconds after the server starts finds them cached (``prefetch=False``: nothing is read until a
page asks).
The database is opened read-only (SQLite ``mode=ro``); the app never writes results (SQLite
may create the empty ``-wal``/``-shm`` companions that every reader of a WAL database needs).
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path

from dash import Dash, Input, Output, State, ctx, no_update

from dashboard import callbacks as cb
from dashboard import figures as F
from dashboard import layout as L
from dashboard.data import DataSource
from dashboard.selection import ALL_DEGREES

log = logging.getLogger(__name__)


def make_app(
    runs_dir: Path | str,
    *,
    title: str = "curriculens",
    db_timeout_s: float = 2.0,
    cache_size: int = 64,
    prefetch: bool = True,
    source: DataSource | None = None,
) -> Dash:
    """Build the dashboard for the experiments at or below ``runs_dir``.

    Args:
        runs_dir: a directory holding experiment directories (or one experiment itself).
        title: the page title.
        db_timeout_s: how long a query waits on a locked results database before the page
            says it is locked.
        cache_size: query results kept in this app's cache (keyed on file mtimes and sizes).
        prefetch: compute the emergence table in the background once an experiment is shown,
            and warm the first page's findings at start-up (``warm_up``).
        source: serve this ``DataSource`` instead (the other data arguments are then unused).
    """
    source = source or DataSource(runs_dir, cache_size=cache_size, db_timeout_s=db_timeout_s, prefetch=prefetch)
    app = Dash(__name__, title=title, update_title=None, serve_locally=True, assets_ignore=".*")
    app.layout = L.build_layout(title)
    _register(app, source)
    if source.prefetch:
        warm_up(source)
    return app


def warm_up(source: DataSource, key: str | None = None) -> threading.Thread:
    """Compute, in a daemon thread, the findings panel of experiment ``key`` (default: the one the
    page opens on; its emergence pieces land in ``source``'s cache), then prefetch that
    experiment's whole emergence table. Errors are left for the page, which says them when it asks."""

    def work() -> None:
        try:
            shown = key if key is not None else cb.list_experiments(source, None, None)[1]
            if shown:
                cb.findings_view(source, shown)
                source.prefetch_emergence(shown)
        except Exception:  # noqa: BLE001 - the views report it
            log.debug("dashboard warm-up failed", exc_info=True)

    thread = threading.Thread(target=work, name="dashboard-warm-up", daemon=True)
    thread.start()
    return thread


def _bind(fn, source: DataSource, fallback):
    return cb.guarded(functools.wraps(fn)(functools.partial(fn, source)), fallback)


def _register(app: Dash, source: DataSource) -> None:
    ef = F.empty_figure

    # Reload -> experiment picker
    app.callback(
        Output(L.EXPERIMENT, "options"),
        Output(L.EXPERIMENT, "value"),
        Output(L.PAGE_NOTE, "children"),
        Input(L.RELOAD, "n_clicks"),
        State(L.EXPERIMENT, "value"),
    )(_bind(cb.list_experiments, source, lambda msg: ([], None, msg)))

    # Experiment -> summary, probe families, runs
    app.callback(
        Output(L.SUMMARY, "children"),
        Output(L.FAMILY, "options"),
        Output(L.FAMILY, "value"),
        Output(L.RUN, "options"),
        Output(L.RUN, "value"),
        Output(L.EXPERIMENT_NOTE, "children"),
        Input(L.EXPERIMENT, "value"),
        Input(L.RELOAD, "n_clicks"),
    )(_bind(_drop_last(cb.experiment_overview), source, lambda msg: ("", [], None, [], None, msg)))

    # Experiment -> the x-axis picker (steps | tokens), shown where the metrics record tokens
    app.callback(
        Output(L.X_UNIT_BOX, "style"),
        Output(L.X_UNIT, "value"),
        Input(L.EXPERIMENT, "value"),
        Input(L.RELOAD, "n_clicks"),
        State(L.X_UNIT, "value"),
    )(_bind(_skip_reload(cb.x_unit_control), source, lambda msg: ({"display": "none"}, L.X_STEP)))

    # Experiment -> the findings the page leads with
    app.callback(
        Output(L.FINDINGS, "children"),
        Input(L.EXPERIMENT, "value"),
        Input(L.RELOAD, "n_clicks"),
    )(_bind(_drop_last(cb.findings_view), source, lambda msg: msg))

    # Probe family -> sites, degrees (the current site and degree kept when they still exist)
    app.callback(
        Output(L.SITE, "options"),
        Output(L.SITE, "value"),
        Output(L.DEGREE, "options"),
        Output(L.DEGREE, "value"),
        Output(L.DEGREE_LABEL, "children"),
        Input(L.EXPERIMENT, "value"),
        Input(L.FAMILY, "value"),
        Input(L.RUN, "value"),
        State(L.SITE, "value"),
        State(L.DEGREE, "value"),
    )(
        _bind(
            cb.family_controls,
            source,
            lambda msg: ([], None, [{"label": "all", "value": ALL_DEGREES}], None, "Degree"),
        )
    )

    # Teacher tab (each view also sends its graphs' configs: the download format and file name)
    teacher = (L.TEACHER_GRAPH,)
    app.callback(
        Output(L.TEACHER_GRAPH, "figure"),
        Output(L.TEACHER_NOTE, "children"),
        *_configs(teacher),
        Input(L.EXPERIMENT, "value"),
        Input(L.AXIS, "value"),
        Input(L.TABS, "value"),
        Input(L.X_UNIT, "value"),
        Input(L.IMAGE_FORMAT, "value"),
        Input(L.RELOAD, "n_clicks"),
    )(_bind(_view(cb.teacher_view, teacher), source, lambda msg: (ef(msg), msg, *_no(teacher))))

    # Curriculum-features tab
    features = (L.TIMELINE_GRAPH, L.SITES_GRAPH, L.HEATMAP_GRAPH)
    app.callback(
        *[Output(g, "figure") for g in features],
        Output(L.FEATURES_NOTE, "children"),
        *_configs(features),
        Input(L.EXPERIMENT, "value"),
        Input(L.RUN, "value"),
        Input(L.FAMILY, "value"),
        Input(L.SITE, "value"),
        Input(L.DEGREE, "value"),
        Input(L.AXIS, "value"),
        Input(L.YLOG, "value"),
        Input(L.TABS, "value"),
        Input(L.X_UNIT, "value"),
        Input(L.IMAGE_FORMAT, "value"),
        Input(L.RELOAD, "n_clicks"),
    )(
        _bind(
            _view(_sites_when_needed(cb.features_view), features),
            source,
            lambda msg: (ef(msg), ef(""), ef(""), msg, *_no(features)),
        )
    )

    # Students tab
    students = (L.STUDENTS_GRAPH, L.SIDE_GRAPH, L.TWOSHOT_GRAPH)
    app.callback(
        *[Output(g, "figure") for g in students],
        Output(L.STUDENTS_NOTE, "children"),
        *_configs(students),
        Input(L.EXPERIMENT, "value"),
        Input(L.FAMILY, "value"),
        Input(L.SITE, "value"),
        Input(L.DEGREE, "value"),
        Input(L.AXIS, "value"),
        Input(L.YLOG, "value"),
        Input(L.TABS, "value"),
        Input(L.X_UNIT, "value"),
        Input(L.IMAGE_FORMAT, "value"),
        Input(L.RELOAD, "n_clicks"),
    )(_bind(_view(cb.students_view, students), source, lambda msg: (ef(msg), ef(""), ef(""), msg, *_no(students))))

    # Emergence tab
    app.callback(
        Output(L.EMERGENCE_TABLE, "data"),
        Output(L.EMERGENCE_TABLE, "columns"),
        Output(L.EMERGENCE_NOTE, "children"),
        Input(L.EXPERIMENT, "value"),
        Input(L.TABS, "value"),
        Input(L.EMERGENCE_OFF, "value"),
        Input(L.FAMILY, "value"),
        Input(L.SITE, "value"),
        Input(L.DEGREE, "value"),
        Input(L.RELOAD, "n_clicks"),
    )(_bind(_drop_last(cb.emergence_view), source, lambda msg: ([], [], msg)))

    # CSV downloads
    app.callback(
        Output(L.EMERGENCE_DOWNLOAD, "data"),
        Output(L.EMERGENCE_CSV_NOTE, "children"),
        Input(L.EMERGENCE_CSV, "n_clicks"),
        State(L.EXPERIMENT, "value"),
        prevent_initial_call=True,
    )(_bind(cb.download_emergence, source, lambda msg: (no_update, msg)))
    app.callback(
        Output(L.ROWS_DOWNLOAD, "data"),
        Output(L.ROWS_CSV_NOTE, "children"),
        Input(L.ROWS_CSV, "n_clicks"),
        State(L.EXPERIMENT, "value"),
        prevent_initial_call=True,
    )(_bind(cb.download_rows, source, lambda msg: (no_update, msg)))


def _configs(gids):
    return [Output(g, "config") for g in gids]


def _no(gids):
    return tuple(no_update for _ in gids)


def _view(fn, gids):
    """Register view ``fn`` with two extra trailing inputs, the image format and the Reload
    clicks, and its graphs' configs appended to its outputs (a config reaches the browser only
    with a new figure, see ``layout.graph_config``; a figure left as ``no_update`` keeps its config)."""

    @functools.wraps(fn)
    def wrapper(source, key, *args):
        *view_args, image_format, _reload = args
        out = fn(source, key, *view_args)
        configs = (
            no_update if fig is no_update else L.graph_config(g, image_format, key)
            for fig, g in zip(out[: len(gids)], gids, strict=True)
        )
        return (*out, *configs)

    return wrapper


SITES_KEEP = (L.SITE, L.DEGREE, L.YLOG)  # pickers the per-site overview does not depend on


def draw_sites(triggered: list[str] | tuple[str, ...]) -> bool:
    """Whether a features-tab request must redraw the per-site overview: not when only the
    ``SITES_KEEP`` pickers changed (``triggered``: Dash's ``"id.prop"`` of the changed inputs;
    empty on the first call, which draws everything)."""
    ids = {t.split(".")[0] for t in triggered if t and t != "."}
    return not ids or not ids <= set(SITES_KEEP)


def _sites_when_needed(fn):
    """``features_view`` told by the request's triggers whether to draw the per-site overview."""

    @functools.wraps(fn)
    def wrapper(source, *args):
        try:
            triggered = list(ctx.triggered_prop_ids)
        except Exception:  # noqa: BLE001 - outside a Dash request: draw everything
            triggered = []
        return fn(source, *args, draw_sites=draw_sites(triggered))

    return wrapper


def _skip_reload(fn):
    """Register ``fn(source, key, state)`` with the Reload clicks between its input and its state."""

    @functools.wraps(fn)
    def wrapper(source, key, _reload, state):
        return fn(source, key, state)

    return wrapper


def _drop_last(fn):
    """Register ``fn`` with one extra trailing input (the Reload clicks) that it ignores:
    reloading re-runs the view, and the mtime-keyed cache picks up new results."""

    @functools.wraps(fn)
    def wrapper(source, *args):
        return fn(source, *args[:-1])

    return wrapper

"""The page: controls on top, one tab per view. Component ids are the constants below.

Built by a function (``build_layout``) so nothing is created at import time; the layout holds
no data, the callbacks fill it.
"""

from __future__ import annotations

from dash import dash_table, dcc, html

from curriculens import constants as C
from dashboard.selection import ALL_DEGREES  # noqa: F401 - the degree dropdown's 'all' value

# --- component ids ------------------------------------------------------------------------
RELOAD = "reload"
EXPERIMENT = "experiment"
AXIS = "axis"
X_UNIT = "x-unit"  # what the accuracy and feature figures plot against: X_STEP or X_TOKENS
X_UNIT_BOX = "x-unit-box"  # shown only where the experiment's metrics record tokens
X_STEP, X_TOKENS = "step", C.TOKENS_KEY
YLOG = "ylog"
IMAGE_FORMAT = "image-format"
PAGE_NOTE = "page-note"
SUMMARY = "experiment-summary"
FINDINGS = "findings"
EXPERIMENT_NOTE = "experiment-note"
FAMILY = "family"
SITE = "site"
DEGREE = "degree"
DEGREE_LABEL = "degree-label"
RUN = "run"
TABS = "tabs"
TEACHER_GRAPH = "teacher-graph"
TEACHER_NOTE = "teacher-note"
TIMELINE_GRAPH = "timeline-graph"
SITES_GRAPH = "sites-graph"
HEATMAP_GRAPH = "heatmap-graph"
FEATURES_NOTE = "features-note"
STUDENTS_GRAPH = "students-graph"
SIDE_GRAPH = "side-graph"
TWOSHOT_GRAPH = "twoshot-graph"
STUDENTS_NOTE = "students-note"
EMERGENCE_TABLE = "emergence-table"
EMERGENCE_NOTE = "emergence-note"
EMERGENCE_OFF = "emergence-off-support"
EMERGENCE_CSV = "emergence-csv"
ROWS_CSV = "rows-csv"
EMERGENCE_DOWNLOAD = "emergence-download"
ROWS_DOWNLOAD = "rows-download"
EMERGENCE_CSV_NOTE = "emergence-csv-note"
ROWS_CSV_NOTE = "rows-csv-note"

TAB_TEACHER, TAB_FEATURES, TAB_STUDENTS, TAB_EMERGENCE = "teacher", "features", "students", "emergence"
GRAPHS = (TEACHER_GRAPH, TIMELINE_GRAPH, SITES_GRAPH, HEATMAP_GRAPH, STUDENTS_GRAPH, SIDE_GRAPH, TWOSHOT_GRAPH)

_BOX = {"display": "flex", "flexWrap": "wrap", "gap": "18px", "alignItems": "flex-end"}
_LABEL = {"fontSize": "12px", "color": "#555", "marginBottom": "2px"}
_NOTE = {"color": "#7a4b00", "margin": "6px 0", "whiteSpace": "pre-wrap"}
_BUTTON = {
    "padding": "6px 12px",
    "border": "1px solid #bbb",
    "borderRadius": "4px",
    "background": "#f7f7f7",
    "cursor": "pointer",
}


def _control(label: str, component, width: str = "auto") -> html.Div:
    return html.Div([html.Div(label, style=_LABEL), component], style={"minWidth": width})


def file_stem(key: str | None) -> str:
    """A file-name stem for an experiment key (``sweeps/exp1`` -> ``sweeps_exp1``)."""
    if not key or key == ".":
        return "experiment"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key.replace("/", "_"))


def graph_config(gid: str, image_format: str = "png", key: str | None = None) -> dict:
    """A graph's config: its modebar button saves ``<experiment>_<view>.png`` (or ``.svg``).

    Notes:
        ``dcc.Graph`` re-plots only when its figure changes, so the views send a config
        together with its figure.
    """
    fmt = image_format if image_format in ("png", "svg") else "png"
    return {
        "displaylogo": False,
        "modeBarButtonsToRemove": ["sendChartToCloud", "lasso2d", "select2d"],
        "toImageButtonOptions": {
            "format": fmt,
            "filename": f"{file_stem(key)}_{gid.removesuffix('-graph')}",
            "scale": 2,
        },
    }


def graph(gid: str) -> dcc.Graph:
    """A graph whose modebar saves PNG (or SVG, see the image-format switch)."""
    return dcc.Graph(id=gid, config=graph_config(gid))


def note(nid: str) -> html.Div:
    return html.Div(id=nid, role="status", style=_NOTE)


def build_layout(title: str = "curriculens") -> html.Div:
    controls = html.Div(
        [
            _control("Experiment", dcc.Dropdown(id=EXPERIMENT, clearable=False, placeholder="no experiment"), "420px"),
            html.Button("Reload", id=RELOAD, n_clicks=0, style=_BUTTON, title="look for new experiments and results"),
            _control(
                "Step axis",
                dcc.RadioItems(
                    id=AXIS,
                    options=[{"label": " linear", "value": "linear"}, {"label": " log", "value": "log"}],
                    value="linear",
                    inline=True,
                    inputStyle={"marginLeft": "8px"},
                ),
            ),
            html.Div(
                _control(
                    "x axis",
                    dcc.RadioItems(
                        id=X_UNIT,
                        options=[{"label": " step", "value": X_STEP}, {"label": " tokens", "value": X_TOKENS}],
                        value=X_STEP,
                        inline=True,
                        inputStyle={"marginLeft": "8px"},
                    ),
                ),
                id=X_UNIT_BOX,
                style={"display": "none"},
            ),
            _control(
                "Feature values",
                dcc.Checklist(
                    id=YLOG,
                    options=[{"label": " log axis", "value": "log"}],
                    value=[],
                    inputStyle={"marginLeft": "8px"},
                ),
            ),
            _control(
                "Graph download",
                dcc.RadioItems(
                    id=IMAGE_FORMAT,
                    options=[{"label": " PNG", "value": "png"}, {"label": " SVG", "value": "svg"}],
                    value="png",
                    inline=True,
                    inputStyle={"marginLeft": "8px"},
                ),
            ),
        ],
        style=_BOX,
    )
    family = html.Div(
        [
            _control(
                "Probe and metric", dcc.Dropdown(id=FAMILY, clearable=False, placeholder="no probe results"), "260px"
            ),
            _control("Site", dcc.Dropdown(id=SITE, clearable=False), "220px"),
            html.Div(
                [html.Div("Degree", id=DEGREE_LABEL, style=_LABEL), dcc.Dropdown(id=DEGREE, clearable=False)],
                style={"minWidth": "180px"},
            ),
        ],
        style={**_BOX, "marginTop": "10px"},
    )
    tabs = dcc.Tabs(
        id=TABS,
        value=TAB_TEACHER,
        children=[
            dcc.Tab(label="Teacher", value=TAB_TEACHER, children=[note(TEACHER_NOTE), graph(TEACHER_GRAPH)]),
            dcc.Tab(
                label="Curriculum features",
                value=TAB_FEATURES,
                children=[
                    html.Div(
                        [_control("Run", dcc.Dropdown(id=RUN, clearable=False), "260px")],
                        style={**_BOX, "marginTop": "8px"},
                    ),
                    note(FEATURES_NOTE),
                    graph(TIMELINE_GRAPH),
                    graph(SITES_GRAPH),
                    graph(HEATMAP_GRAPH),
                ],
            ),
            dcc.Tab(
                label="Students",
                value=TAB_STUDENTS,
                children=[
                    note(STUDENTS_NOTE),
                    graph(STUDENTS_GRAPH),
                    graph(SIDE_GRAPH),
                    graph(TWOSHOT_GRAPH),
                ],
            ),
            dcc.Tab(
                label="Emergence table",
                value=TAB_EMERGENCE,
                children=[
                    html.Div(
                        [
                            html.Button("Download table (CSV)", id=EMERGENCE_CSV, n_clicks=0, style=_BUTTON),
                            html.Span(id=EMERGENCE_CSV_NOTE, style={"fontSize": "12px", "color": "#555"}),
                            html.Button("Download all probe rows (CSV)", id=ROWS_CSV, n_clicks=0, style=_BUTTON),
                            html.Span(id=ROWS_CSV_NOTE, style={"fontSize": "12px", "color": "#555"}),
                            dcc.Checklist(
                                id=EMERGENCE_OFF,
                                options=[{"label": " show off-support series (the null)", "value": "show"}],
                                value=[],
                                inputStyle={"marginLeft": "8px"},
                            ),
                            dcc.Download(id=EMERGENCE_DOWNLOAD),
                            dcc.Download(id=ROWS_DOWNLOAD),
                        ],
                        style={**_BOX, "marginTop": "8px", "alignItems": "center"},
                    ),
                    note(EMERGENCE_NOTE),
                    dash_table.DataTable(
                        id=EMERGENCE_TABLE,
                        data=[],
                        columns=[],
                        sort_action="native",
                        filter_action="native",
                        page_action="native",
                        page_size=25,
                        sort_mode="multi",
                        style_table={"overflowX": "auto"},
                        style_cell={"fontFamily": "sans-serif", "fontSize": "12px", "padding": "3px 6px"},
                        style_header={"fontWeight": "bold", "background": "#f2f2f2"},
                    ),
                ],
            ),
        ],
    )
    return html.Div(
        [
            html.H2(title, style={"margin": "4px 0"}),
            html.Div(
                "When does each curriculum feature appear in the teacher, and do students pick it up earlier?",
                style={"color": "#666", "marginBottom": "10px"},
            ),
            controls,
            note(PAGE_NOTE),
            html.Div(
                id=FINDINGS,
                style={
                    "margin": "8px 0",
                    "padding": "6px 10px",
                    "fontSize": "13px",
                    "background": "#fbf7ee",
                    "borderLeft": "3px solid #a05a00",
                },
            ),
            html.Div(id=SUMMARY, style={"margin": "8px 0", "fontSize": "13px"}),
            note(EXPERIMENT_NOTE),
            family,
            tabs,
        ],
        style={"fontFamily": "sans-serif", "margin": "12px 20px"},
    )

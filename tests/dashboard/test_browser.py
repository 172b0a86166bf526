"""End to end in a real headless Chromium (``dash[testing]``'s ``dash_duo``, the system browser).

Run with the rest (headless is forced by ``conftest.pytest_setup_options``); skipped when
``chromium`` / ``chromedriver`` are missing (``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from curriculens import constants as C
from dashboard.app import make_app
from dashboard.data import DataSource

from .conftest import PLANT, chromium_paths

pytest.importorskip("selenium", reason="needs dash[testing] (selenium)")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not all(chromium_paths()), reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)"
    ),
]


def wait_until(fn, timeout=30.0, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - the DOM is changing under us
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def plot(dash_duo, gid: str, expr: str):
    """Evaluate ``expr`` on the plotly div of graph ``gid`` (``p`` in the expression)."""
    return dash_duo.driver.execute_script(
        f"const p = document.querySelector('#{gid} .js-plotly-plot'); return p && p.data ? ({expr}) : null;"
    )


def pick(dash_duo, selector: str, starts_with: str) -> None:
    """Open a dcc.Dropdown and click the option whose label starts with ``starts_with``."""
    dash_duo.find_element(selector).click()
    options = wait_until(
        lambda: dash_duo.driver.find_elements("css selector", ".dash-dropdown-options .dash-dropdown-option"),
        what="dropdown options",
    )
    match = [o for o in options if o.text.startswith(starts_with)]
    assert match, [o.text for o in options]
    match[0].click()


def downloaded(folder: Path, name: str, timeout=20.0) -> Path:
    return wait_until(
        lambda: (folder / name) if (folder / name).is_file() and not list(folder.glob("*.crdownload")) else None,
        timeout,
        f"download {name}",
    )


@pytest.fixture
def two_experiments(dash_fixture, fresh_copy) -> Path:
    """The fixture plus a copy without probe results, so there is something to pick."""
    root = fresh_copy()
    other = root / "another-exp"
    shutil.copytree(root / dash_fixture.key, other)
    for p in other.glob(C.RESULTS_DB + "*"):
        p.unlink()
    return root


def test_db001_pick_draw_log_axis_download(dash_duo, dash_fixture, two_experiments):
    root = two_experiments
    dash_duo.start_server(make_app(root))
    download_dir = Path(dash_duo.download_path)

    # the page loads with the first experiment and the teacher's curves
    dash_duo.wait_for_element("#teacher-graph .main-svg", timeout=30)
    wait_until(lambda: plot(dash_duo, "teacher-graph", "p.data.map(t => t.name)"), what="teacher traces")
    assert "another-exp" in dash_duo.find_element("#experiment").text
    dash_duo.wait_for_contains_text("#experiment-summary", "No probe results yet", timeout=15)

    # pick the experiment with results
    pick(dash_duo, "#experiment", f"{dash_fixture.key} ")
    dash_duo.wait_for_contains_text("#experiment-summary", "probe values from", timeout=20)
    names = wait_until(lambda: plot(dash_duo, "teacher-graph", "p.data.map(t => t.name)"), what="teacher traces")
    assert {"teacher accuracy", "transition checkpoints (saved)", "teacher loss"} <= set(names)
    shapes = plot(
        dash_duo, "teacher-graph", "(p.layout.shapes || []).filter(s => s.name === 'teacher transition window').length"
    )
    assert shapes == 2
    dash_duo.wait_for_contains_text("#teacher-note", "Transition window (shaded)", timeout=10)

    # step axis to log
    assert plot(dash_duo, "teacher-graph", "p.layout.xaxis.type") == "linear"
    dash_duo.find_element("#axis input[value='log']").click()
    wait_until(lambda: plot(dash_duo, "teacher-graph", "p.layout.xaxis.type") == "log", what="log x axis")

    # the modebar's download button saves the graph (PNG, then SVG after switching the format)
    dash_duo.driver.execute_script(
        "arguments[0].click()", dash_duo.find_element("#teacher-graph .modebar-btn[data-title^='Download plot']")
    )
    png = downloaded(download_dir, f"{dash_fixture.key}_teacher.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    dash_duo.find_element("#image-format input[value='svg']").click()
    wait_until(
        lambda: plot(dash_duo, "teacher-graph", "p._context.toImageButtonOptions.format") == "svg",
        what="svg download format",
    )
    dash_duo.driver.execute_script(
        "arguments[0].click()", dash_duo.find_element("#teacher-graph .modebar-btn[data-title^='Download plot']")
    )
    svg = downloaded(download_dir, f"{dash_fixture.key}_teacher.svg")
    assert b"<svg" in svg.read_bytes()[:400]

    # curriculum features: in-support lines, the Rest band, the heatmap, on the log axis
    dash_duo.find_element("#tabs .tab:nth-child(2)").click()
    names = wait_until(lambda: plot(dash_duo, "timeline-graph", "p.data.map(t => t.name)"), what="feature traces")
    assert names[:3] == list(PLANT.in_deg1) and "Rest (off-support)" in names
    assert plot(dash_duo, "timeline-graph", "p.layout.xaxis.type") == "log"
    assert wait_until(lambda: plot(dash_duo, "heatmap-graph", "p.data[0].type"), what="heatmap") == "heatmap"

    # students: every method overlaid, progressive vs one-shot side by side
    dash_duo.find_element("#tabs .tab:nth-child(3)").click()
    names = wait_until(lambda: plot(dash_duo, "students-graph", "p.data.map(t => t.name)"), what="student traces")
    assert {"ce", "one-shot", "progressive", "teacher"} <= set(names)
    titles = wait_until(
        lambda: plot(dash_duo, "side-graph", "p.layout.annotations.map(a => a.text)"), what="side panels"
    )
    assert "progressive<br>(mean of 2 run(s))" in titles and "one-shot<br>(mean of 2 run(s))" in titles

    # emergence table, sortable and filterable, and its CSV download
    dash_duo.find_element("#tabs .tab:nth-child(4)").click()
    dash_duo.wait_for_element("#emergence-table td", timeout=30)
    header = dash_duo.find_element("#emergence-table").text
    assert "appear_step" in header and "peak_value" in header
    dash_duo.find_element("#emergence-csv").click()
    csv = downloaded(download_dir, f"{dash_fixture.key}_emergence.csv")
    table = pd.read_csv(csv)
    assert len(table) == len(DataSource(root).emergence(dash_fixture.key))

    assert dash_duo.get_logs() == []


def test_db002_empty_runs_dir_says_so(dash_duo, tmp_path):
    dash_duo.start_server(make_app(tmp_path))
    dash_duo.wait_for_contains_text("#page-note", "No experiments found under", timeout=30)
    assert dash_duo.get_logs() == []


def test_db003_corrupt_database_keeps_the_page_working(dash_duo, dash_fixture, fresh_copy):
    root = fresh_copy()
    db = root / dash_fixture.key / C.RESULTS_DB
    for p in db.parent.glob(C.RESULTS_DB + "-*"):
        p.unlink()
    db.write_bytes(b"garbage" * 500)
    dash_duo.start_server(make_app(root))
    dash_duo.wait_for_contains_text("#experiment-summary", "cannot be read", timeout=30)
    wait_until(lambda: plot(dash_duo, "teacher-graph", "p.data.length"), what="teacher graph still drawn")
    dash_duo.find_element("#tabs .tab:nth-child(4)").click()
    dash_duo.wait_for_contains_text("#emergence-note", "cannot be read", timeout=20)
    assert "Traceback" not in dash_duo.driver.page_source
    assert dash_duo.get_logs() == []


def test_db004_findings_lead_and_the_run_switch_keeps_the_degree(dash_duo, dash_fixture):
    """Issue 25.1-2: the page opens with the findings and a degree with signal; switching the
    run on the features tab keeps the degree the user picked."""
    dash_duo.start_server(make_app(dash_fixture.root))
    dash_duo.wait_for_contains_text("#findings", "Teacher's transition: eval_acc goes from", timeout=30)
    dash_duo.wait_for_contains_text("#findings", "in the order they appeared", timeout=20)
    dash_duo.wait_for_contains_text("#degree", "degree 1", timeout=20)  # the teacher's planted spike
    dash_duo.find_element("#tabs .tab:nth-child(2)").click()
    wait_until(lambda: plot(dash_duo, "timeline-graph", "p.data.length"), what="feature traces")
    pick(dash_duo, "#degree", "degree 2")
    wait_until(lambda: "degree 2" in (plot(dash_duo, "timeline-graph", "p.layout.title.text") or ""), what="deg 2")
    pick(dash_duo, "#run", "ce-s0")
    title = wait_until(
        lambda: (
            (plot(dash_duo, "timeline-graph", "p.layout.title.text") or "").startswith("ce-s0")
            and plot(dash_duo, "timeline-graph", "p.layout.title.text")
        ),
        what="ce-s0 timeline",
    )
    assert "degree 2" in title
    assert "degree 2" in dash_duo.find_element("#degree").text
    assert dash_duo.get_logs() == []

"""Screenshot the real dashboard page in headless Chromium (for docs/dashboard.md).

::

    python scripts/screenshot.py RUNS_DIR [--tab features] [--out docs/dashboard.png]

Serves ``make_app(RUNS_DIR)`` on a free local port in a background thread, opens it with the
system Chromium + chromedriver through selenium (``dash[testing]`` installs it), picks the
experiment (the first one, or ``--experiment KEY``), opens the tab, waits until every graph
of the tab has drawn, and saves a PNG. Needs ``chromium`` and ``chromium-driver`` (Debian).
Exits 2 with one line if something is missing.

To make a demo experiment first: ``curriculens demo --out runs/demo``.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TAB_GRAPHS = {
    "teacher": ("teacher-graph",),
    "features": ("timeline-graph", "sites-graph", "heatmap-graph"),
    "students": ("students-graph", "side-graph", "twoshot-graph"),
    "emergence": (),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(app, port: int) -> None:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", port, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def driver(width: int, height: int):
    """A headless Chrome driver over the system Chromium (None if it is not installed)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    chromedriver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if not browser or not chromedriver:
        return None
    opts = Options()
    opts.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--disable-background-networking",
        "--disable-component-update",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(chromedriver), options=opts)


def wait_for_tab(drv, tab: str, timeout: float = 60.0) -> None:
    """Wait until the tab's graphs have drawn (an SVG in each) and nothing is loading."""
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    while time.time() < deadline:
        ready = all(drv.find_elements(By.CSS_SELECTOR, f"#{g} .main-svg") for g in TAB_GRAPHS[tab])
        if tab == "emergence":
            ready = bool(drv.find_elements(By.CSS_SELECTOR, "#emergence-table td"))
        loading = drv.find_elements(By.CSS_SELECTOR, "[data-dash-is-loading='true']")
        if ready and not loading:
            time.sleep(0.8)  # let plotly finish its transitions
            return
        time.sleep(0.2)
    raise TimeoutError(f"the {tab} tab did not finish drawing within {timeout:.0f} s")


def _pick(drv, dropdown_id: str, text: str) -> None:
    """Open the dropdown ``dropdown_id`` and click the option whose label contains ``text``."""
    from selenium.webdriver.common.by import By

    drv.find_element(By.CSS_SELECTOR, f"#{dropdown_id}").click()
    opt = [o for o in drv.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option") if text in o.text]
    if not opt:
        raise SystemExit(f"screenshot: no option matching {text!r} in #{dropdown_id}")
    opt[0].click()


def take(
    runs_dir: Path,
    out: Path,
    tab: str = "features",
    experiment: str | None = None,
    width: int = 1400,
    height: int = 1700,
    degree: int | None = None,
) -> Path:
    """Serve ``runs_dir``, screenshot ``tab``, write ``out``; returns ``out``."""
    from selenium.webdriver.common.by import By

    from dashboard.app import make_app

    port = _free_port()
    _serve(make_app(runs_dir), port)
    drv = driver(width, height)
    if drv is None:
        raise SystemExit("screenshot: needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    try:
        drv.get(f"http://127.0.0.1:{port}/")
        deadline = time.time() + 30
        while not drv.find_elements(By.CSS_SELECTOR, "#teacher-graph .main-svg") and time.time() < deadline:
            time.sleep(0.2)
        if experiment:
            _pick(drv, "experiment", experiment)
        if tab != "teacher":
            labels = {"features": "Curriculum features", "students": "Students", "emergence": "Emergence table"}
            drv.find_element(By.XPATH, f"//div[contains(@class,'tab') and normalize-space()='{labels[tab]}']").click()
        wait_for_tab(drv, tab)
        if degree is not None:
            _pick(drv, "degree", f"degree {degree}")
            time.sleep(0.5)
            wait_for_tab(drv, tab)
        out.parent.mkdir(parents=True, exist_ok=True)
        drv.save_screenshot(str(out))
    finally:
        drv.quit()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs_dir", type=Path, help="directory holding experiment directories")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "dashboard.png", help="PNG to write")
    p.add_argument("--tab", choices=tuple(TAB_GRAPHS), default="features", help="which tab to show")
    p.add_argument("--experiment", help="experiment to pick (a substring of its name); default the first")
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=1700)
    p.add_argument("--degree", type=int, help="pick this monomial degree in the feature views")
    args = p.parse_args(argv)
    if not args.runs_dir.is_dir():
        print(f"screenshot: {args.runs_dir} is not a directory", file=sys.stderr)
        return 2
    try:
        path = take(args.runs_dir, args.out, args.tab, args.experiment, args.width, args.height, args.degree)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

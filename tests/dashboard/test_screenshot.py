"""``scripts/screenshot.py`` runs and writes a real picture of the page (issue 25.11)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from .conftest import chromium_paths
from .imagecheck import assert_png_not_blank, png_size

pytest.importorskip("selenium", reason="needs dash[testing] (selenium)")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not all(chromium_paths()), reason="needs chromium and chromedriver"),
]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshot.py"


def _script():
    spec = importlib.util.spec_from_file_location("screenshot_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_screenshot_script_writes_the_students_tab(dash_fixture, tmp_path):
    out = tmp_path / "shot.png"
    assert _script().main([str(dash_fixture.root), "--tab", "students", "--out", str(out), "--width", "900"]) == 0
    assert png_size(out.read_bytes())[0] == 900
    assert_png_not_blank(out)


def test_screenshot_script_refuses_a_missing_directory(tmp_path, capsys):
    assert _script().main([str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err

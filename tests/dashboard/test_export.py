"""``curriculens export``: valid PNG, SVG, PDF and HTML files with readable names."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
import zlib

import pandas as pd
import pytest

from curriculens import constants as C
from curriculens.cli import main
from curriculens.errors import CurriculensError
from dashboard import export as X
from dashboard.data import DataSource

from .imagecheck import PNG_SIGNATURE, assert_html, assert_pdf, assert_png_not_blank, assert_svg, png_size

needs_browser = pytest.mark.skipif(X.find_browser() is None, reason="needs a Chromium (apt-get install chromium)")


def _figs(dash_fixture):
    figs = dict(X.experiment_figures(DataSource(dash_fixture.exp), "."))
    return [(k, figs[k]) for k in ("teacher_accuracy", "features_teacher_fourier_corr_output_deg1")]


def test_experiment_figures_cover_the_paper_panels(dash_fixture):
    stems = [s for s, _ in X.experiment_figures(DataSource(dash_fixture.exp), ".")]
    for need in (
        "teacher_accuracy",
        "teacher_accuracy_loss",
        "students_accuracy",
        "two_shot_accuracy",
        "features_teacher_fourier_corr_output_deg1",
        "features_teacher_fourier_corr_output_deg2",
        "heatmap_teacher_fourier_corr_output_deg1",
        "heatmap_teacher_fourier_corr_output_deg2",
        "students_fourier_corr_output_deg1",
        "students_fourier_corr_output_deg2",
        "sites_teacher_linear_test_acc",
        "students_linear_test_acc_blocks.0.hook_pre_deg1",
    ):
        assert need in stems
    runs = [r.name for r in DataSource(dash_fixture.exp).experiment(".").runs]
    for run in runs:  # every run, not only the teacher, at every degree and site
        for tail in ("fourier_corr_output_deg1", "fourier_corr_output_deg2", "linear_test_acc_blocks.0.hook_post_deg1"):
            assert f"features_{run}_{tail}" in stems and f"heatmap_{run}_{tail}" in stems
    assert not [s for s in stems if "model" in s.split("_")]  # the model's own accuracy is the accuracy panels
    assert len(stems) == len(set(stems))


def test_export_writes_every_view_the_dashboard_shows(dash_fixture):
    """Issue 25.3: the per-degree overview of a single-site probe (``sites_*``), the "all
    degrees" views, and the side-by-side panels of every student method."""
    figs = dict(X.experiment_figures(DataSource(dash_fixture.exp), "."))
    runs = [r.name for r in DataSource(dash_fixture.exp).experiment(".").runs]
    for run in runs:
        sites = figs[f"sites_{run}_fourier_corr"]  # fourier has one site (output): drawn all the same
        assert [t.name for t in sites.data] == ["output · degree 1", "output · degree 2"]
        assert f"features_{run}_fourier_corr_output_all" in figs and f"heatmap_{run}_fourier_corr_output_all" in figs
    assert "features_teacher_linear_test_acc_blocks.0.hook_post_all" not in figs  # one degree: no "all" copy
    side = figs["students_fourier_corr_output_deg1"]
    titles = [a.text for a in side.layout.annotations if a.text and "run(s)" in a.text]
    assert [t.split("<br>")[0].split(" (")[0] for t in titles] == ["progressive", "one-shot", "two-shot", "ce"]


def test_html_export_needs_no_browser(dash_fixture, tmp_path, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-browser"))
    paths = X.export_experiment(dash_fixture.exp, tmp_path / "out", "html")
    names = {p.name for p in paths}
    assert "teacher_accuracy.html" in names and "emergence.csv" in names
    assert [p.name for p in paths].count(X.PLOTLY_JS) == 1
    js = (tmp_path / "out" / X.PLOTLY_JS).read_text()
    for p in paths:
        if p.suffix == ".html":
            assert_html(p)
            text = p.read_text()
            assert f'src="{X.PLOTLY_JS}"' in text and len(text) < len(js) / 4, p.name  # shares the one plotly.js
    assert_html(tmp_path / "out" / "teacher_accuracy.html", "Teacher accuracy, transition window shaded")
    table = pd.read_csv(tmp_path / "out" / "emergence.csv")
    assert {"run", "feature", "appear_step", "peak_step"} <= set(table.columns) and len(table) > 0


@needs_browser
@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_image_exports_are_valid(dash_fixture, tmp_path, fmt):
    paths = X.write_figures(_figs(dash_fixture), tmp_path, fmt)
    assert [p.name for p in paths] == [f"teacher_accuracy.{fmt}", f"features_teacher_fourier_corr_output_deg1.{fmt}"]
    for p in paths:
        if fmt == "png":
            assert_png_not_blank(p)
        elif fmt == "svg":
            assert_svg(p, "Teacher accuracy" if p.stem == "teacher_accuracy" else "fourier")
        else:
            assert_pdf(p)
    assert not list(tmp_path.glob(".*.tmp"))  # written through temp files, none left


def _plain_kaleido_render(figs, fmt):
    """The reference: kaleido as shipped, which reloads its page after every figure."""
    import asyncio

    import kaleido

    async def render():
        async with kaleido.Kaleido(n=1, path=X.find_browser(), mathjax=False, timeout=120) as k:
            out = []
            for _, f in figs:
                h = int(f.layout.height or X.IMAGE_SIZE[1])
                opts = {"format": fmt, "width": X.IMAGE_SIZE[0], "height": h, "scale": 2 if fmt == "png" else 1}
                out.append(await k.calc_fig(f, opts=opts))
            return out

    return asyncio.run(render())


def _svg_without_uid(data: bytes) -> str:
    """Canonical XML (attributes sorted: plotly sets some in another order once its text-size
    cache is warm) with the random 6-hex uids plotly.js gives each plot (its clip paths) and
    each trace replaced: what is left is the drawing."""
    uid = re.search(rb'<defs id="defs-([0-9a-f]+)"', data).group(1)
    data = re.sub(rb'(class="trace \w+ trace)[0-9a-f]{6}"', rb'\1UID"', data.replace(uid, b"UID"))
    return ET.canonicalize(data.decode())


@needs_browser
@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_reused_tab_renders_what_a_fresh_page_renders(dash_fixture, monkeypatch, fmt):
    """Export reuses one page for many figures (issue 25.10); nothing may carry over from one
    figure to the next: the files equal kaleido's reload-per-figure ones (PNG bytes; SVG up to
    plotly's random uid), a figure drawn after another equals itself drawn first, and the
    periodic reload (every 2 figures here) changes nothing."""
    monkeypatch.setattr(X, "RELOAD_EVERY", 2)
    a, b = _figs(dash_fixture)
    figs = [a, b, a, b]
    rendered = X._render_images(figs, fmt, X.find_browser())
    assert [stem for stem, _ in rendered] == [stem for stem, _ in figs]
    ours = [data for _, data in rendered]
    ref = _plain_kaleido_render(figs, fmt)
    if fmt == "svg":
        ours, ref = [_svg_without_uid(x) for x in ours], [_svg_without_uid(x) for x in ref]
    else:
        sizes = [(2 * X.IMAGE_SIZE[0], 2 * int(f.layout.height or X.IMAGE_SIZE[1])) for _, f in figs]
        assert [png_size(x) for x in ours] == sizes  # the requested size at scale 2
    assert ours == ref
    assert ours[0] == ours[2] and ours[1] == ours[3] and ours[0] != ours[1]


@needs_browser
def test_a_figure_that_fails_to_build_fails_the_export_as_itself(dash_fixture, tmp_path, monkeypatch):
    """Figures are built in a worker thread while the browser renders: an error there is the
    data's, raised as it was (not as a browser failure), and no file is written."""
    good = _figs(dash_fixture)[0]

    def figures(*_a, **_k):
        yield good
        raise ValueError("planted: this figure cannot be drawn")

    monkeypatch.setattr(X, "iter_experiment_figures", figures)
    with pytest.raises(ValueError, match="planted"):
        X.export_experiment(dash_fixture.exp, tmp_path / "out", "png")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_blank_png_is_caught(tmp_path):
    """The not-blank check itself must fail on a white image."""
    w, h = 800, 400
    raw = b"".join(b"\x00" + b"\xff" * (w * 3) for _ in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (
        PNG_SIGNATURE
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    (tmp_path / "blank.png").write_bytes(png)
    with pytest.raises(AssertionError):
        assert_png_not_blank(tmp_path / "blank.png")


def test_missing_browser_is_one_clear_error(dash_fixture, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-browser"))
    with pytest.raises(CurriculensError, match="apt-get install chromium"):
        X.write_figures(_figs(dash_fixture), tmp_path / "out", "png")
    assert not list((tmp_path / "out").glob("*.png"))
    code = main(["export", str(dash_fixture.exp), "--format", "pdf", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "apt-get install chromium" in err[0]


def test_cli_rejects_a_non_experiment(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--format", "html", "--out", str(tmp_path / "o")]) == 2
    assert "is not an experiment directory" in capsys.readouterr().err


@needs_browser
@pytest.mark.slow
def test_cli_exports_every_figure_as_png(dash_fixture, tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["-q", "export", str(dash_fixture.exp), "--format", "png", "--out", str(out)]) == 0
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == len(X.experiment_figures(DataSource(dash_fixture.exp), "."))
    for p in pngs:
        assert_png_not_blank(p)
    assert (out / "emergence.csv").is_file()
    assert f"wrote {len(pngs) + 1} files" in capsys.readouterr().out


def test_safe_stem():
    assert (
        X.safe_stem("features", "teacher", "linear", "test_acc", "blocks.0.hook_post", "deg1")
        == "features_teacher_linear_test_acc_blocks.0.hook_post_deg1"
    )
    assert X.safe_stem("a b/c", "", None) == "a-b-c"
    assert C.RESULTS_DB == "results.sqlite"

"""Fixtures of the dashboard tests: a tiny real experiment with planted probe rows.

``dash_experiment`` trains a real (10, 3)-parity teacher and its students (2 seeds of ce,
one-shot and progressive, one two-shot) in a few seconds, then writes probe rows with
``ResultsStore.write_unit`` at the runs' real checkpoint steps. The probe values are planted
(``PLANT``), so the figures' expected traces, the shaded window and the emergence table's
values are known exactly. Each row states its sampling sd as a probe does (Fourier:
``extra["noise"]`` = ``NOISE``; linear: ``extra["n_test"]`` = ``N_TEST``) and every planted rise
holds over at least two checkpoints (or, the spikes, stands far beyond the noise at one), so
``probes.summary``'s sampling null must find exactly the planted features: the off-support
values scatter within a few ``NOISE`` and must not pass. ``pytest_setup_options`` configures the headless Chromium that
``dash_duo`` drives.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from curriculens import constants as C


# --- headless Chromium for dash[testing] ------------------------------------------------------
def chromium_paths() -> tuple[str | None, str | None]:
    """(browser, driver) found on PATH or at the Debian locations, else None."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    return browser, driver


def pytest_setup_options():
    """Chrome options for ``dash_duo``: always headless, the system Chromium, no network chatter."""
    from selenium.webdriver.chrome.options import Options

    browser, _ = chromium_paths()
    opts = Options()
    if browser:
        opts.binary_location = browser
    for arg in (
        "--headless=new",
        "--window-size=1400,1800",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ):
        opts.add_argument(arg)
    return opts


@pytest.fixture(autouse=True)
def _chromedriver_on_path(monkeypatch):
    """selenium 4.2 has no driver manager: the driver must be on PATH."""
    _, driver = chromium_paths()
    if driver and str(Path(driver).parent) not in (os.environ.get("PATH") or "").split(":"):
        monkeypatch.setenv("PATH", f"{Path(driver).parent}:{os.environ.get('PATH', '')}")


# --- the planted experiment -------------------------------------------------------------------
@dataclass(frozen=True)
class Plant:
    """The planted probe values (see ``_plant_rows``)."""

    in_deg1: tuple = ("0", "1", "2")
    off_deg1: tuple = ("3", "4", "5", "6", "7", "8", "9")
    in_deg2: tuple = ("0_1", "0_2", "1_2")
    off_deg2: tuple = ("3_4", "5_9")
    sites: tuple = ("blocks.0.hook_pre", "blocks.0.hook_post")
    spike_value: float = 0.1


PLANT = Plant()
NOISE = 0.003  # the Fourier rows' stated sampling sd (extra["noise"]): the off-support scatter is ~ this
N_TEST = 512  # the linear rows' test-set size (extra["n_test"]): sd 0.5 / sqrt(512) ~ 0.022


@dataclass(frozen=True)
class Fixture:
    root: Path  # the runs directory holding the experiment
    exp: Path
    key: str
    teacher_steps: tuple  # the teacher's checkpoint steps
    student_steps: tuple
    spike_step: int  # the teacher's planted degree-1 spike
    progressive_spike: int  # the progressive students' planted spike
    appear: dict  # (run, feature) -> planted appear step of linear test_acc
    off_values: dict  # (run, step, feature) -> planted off-support degree-1 corr


def _corr_rows(run: str, step: int, spike: int | None, rng: np.random.Generator, off_store: dict):
    from probes.store import ResultRow

    rows = []
    noise = {"noise": NOISE}
    for i, f in enumerate(PLANT.in_deg1):
        if spike is None:
            v = 0.004 + 0.001 * i
        elif step == spike:
            v = PLANT.spike_value + 0.01 * i
        elif step < spike:
            v = 0.02 + 0.002 * i
        else:
            v = 0.001
        rows.append(ResultRow("fourier", f, "output", "corr", v, degree=1, in_support=True, extra=noise))
    for f in PLANT.off_deg1:
        v = float(rng.uniform(0.001, 0.009))
        off_store[(run, step, f)] = v
        rows.append(ResultRow("fourier", f, "output", "corr", v, degree=1, in_support=False, extra=noise))
    for f in PLANT.in_deg2:
        rows.append(ResultRow("fourier", f, "output", "corr", 0.03, degree=2, in_support=True, extra=noise))
    for f in PLANT.off_deg2:
        rows.append(ResultRow("fourier", f, "output", "corr", 0.002, degree=2, in_support=False, extra=noise))
    return rows


def _linear_rows(step: int, appear_of: dict):
    from probes.store import ResultRow

    rows = []
    n_test = {"n_test": N_TEST}
    for site_i, site in enumerate(PLANT.sites):
        for f, a in appear_of.items():
            acc = 1.0 if step >= a else 0.5
            if site_i == 0:
                acc = min(acc, 0.9)  # the pre-activation site saturates lower
            ins = f in PLANT.in_deg1
            rows.append(ResultRow("linear", f, site, "test_acc", acc, degree=1, in_support=ins, extra=n_test))
            rows.append(ResultRow("linear", f, site, "control_acc", 0.5, degree=1, in_support=ins, extra=n_test))
    return rows


def build_experiment(root: Path, *, with_results: bool = True) -> Fixture:
    """Train the tiny experiment under ``root/parity-small`` and plant its probe rows."""
    import torch

    from probes.registry import metric_specs
    from probes.store import ResultRow, ResultsStore, UnitKey
    from training.experiment import list_runs, read_metrics
    from training.plans import PARITY_SIZES, parity_students_for, parity_teacher_config, run_plan

    exp = root / "parity-small"
    size = replace(
        PARITY_SIZES["tiny"],
        teacher_steps=400,
        student_steps=240,
        save_every=20,
        student_save_every=40,
        eval_every=20,
        lr=0.2,
        two_shot_T=120,
        n_eval=512,
    )
    teacher = parity_teacher_config(size, device="cpu")

    def students(e, t):  # ce, one-shot, progressive x 2 seeds; two-shot x 1 seed
        return [
            s
            for s in parity_students_for(e, size, t, seeds=(0, 1))
            if not (s.seed == 1 and s.distill.method == "two-shot")
        ]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only add overhead
    try:
        run_plan(exp, teacher, students)
    finally:
        torch.set_num_threads(threads)

    runs = list_runs(exp)
    steps_of = {r.name: [m["step"] for m in read_metrics(r.path) if m.get("checkpoint")] for r in runs}
    t_steps = steps_of["teacher"]
    s_steps = steps_of["progressive-s0"]
    spike_step = t_steps[len(t_steps) // 4]
    prog_spike = s_steps[len(s_steps) // 4]
    rng = np.random.default_rng(0)
    off_values: dict = {}
    appear: dict = {}
    if with_results:
        with ResultsStore(exp / C.RESULTS_DB) as store:
            store.write_metric_specs(metric_specs("parity"))  # as the sweep does
            for r in runs:
                spike = {"teacher": spike_step, "progressive": prog_spike}.get(r.method)
                steps = steps_of[r.name]
                # a rise must hold over two checkpoints: none is planted at the last one
                appear_of = {f: steps[min(len(steps) - 2, 2 + 2 * i)] for i, f in enumerate(PLANT.in_deg1 + ("3", "4"))}
                for f, a in appear_of.items():
                    appear[(r.name, f)] = a
                for s in steps:
                    base = dict(run=r.name, role=r.role, method=r.method, seed=r.seed, step=s)
                    store.write_unit(UnitKey(probe="fourier", **base), _corr_rows(r.name, s, spike, rng, off_values))
                    store.write_unit(UnitKey(probe="linear", **base), _linear_rows(s, appear_of))
                    acc = next(m["eval_acc"] for m in read_metrics(r.path) if m["step"] == s)
                    store.write_unit(
                        UnitKey(probe="model", **base), [ResultRow("model", "label", "output", "accuracy", acc)]
                    )
    return Fixture(
        root=root,
        exp=exp,
        key=exp.name,
        teacher_steps=tuple(t_steps),
        student_steps=tuple(s_steps),
        spike_step=spike_step,
        progressive_spike=prog_spike,
        appear=appear,
        off_values=off_values,
    )


@pytest.fixture(scope="session")
def dash_fixture(tmp_path_factory) -> Fixture:
    """The planted experiment (session-scoped: trained once, a few seconds)."""
    return build_experiment(tmp_path_factory.mktemp("dash-runs"))


@pytest.fixture
def fresh_copy(dash_fixture, tmp_path):
    """A private copy of the fixture's runs directory, for tests that damage it."""

    def make() -> Path:
        dst = tmp_path / "runs"
        shutil.copytree(dash_fixture.root, dst)
        return dst

    return make

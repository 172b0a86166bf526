"""The PCFG demo end to end at a tiny size: teacher, four students, probe sweep, summary."""

import pytest
import torch

from curriculens import constants as C
from probes.store import ResultsStore
from probes.summary import summarize
from probes.sweep import SweepConfig, run_sweep
from training.experiment import list_runs
from training.plans import run_plan
from training.plans.pcfg import demo_probe_options, pcfg_demo_plan


@pytest.mark.slow
def test_pcfg_demo_end_to_end_at_tiny_size(tmp_path):
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a busy 2-core machine
    try:
        exp = tmp_path / "pcfg-demo"
        teacher, students_for = pcfg_demo_plan(exp, size="tiny", device="cpu")
        run_plan(exp, teacher, students_for)
        runs = list_runs(exp)
        assert [r.method for r in runs] == ["teacher", "ce", "one-shot", "progressive", "two-shot"]
        assert all(r.done for r in runs)

        res = run_sweep(exp, SweepConfig(device="cpu", options=demo_probe_options("tiny")))
        assert res.n_failed == 0 and res.n_done > 0
        again = run_sweep(exp, SweepConfig(device="cpu", options=demo_probe_options("tiny")))
        assert again.n_done == 0 and again.n_skipped == res.n_done, "a rerun resumes: nothing left to do"
    finally:
        torch.set_num_threads(n_threads)

    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        df = store.query()
    assert set(df.probe) >= {"nt_span", "ngram", "context"}
    assert set(df.run) == {r.name for r in runs}
    ng = df[(df.probe == "ngram") & (df.metric == "p50")]
    assert set(ng.feature) == {"robust_n3", "robust_n5", "close_n3", "close_n5"}
    assert (ng.value >= 0).all() and (ng.value <= 2).all(), "an L1 distance between distributions"
    summary = summarize(exp / C.RESULTS_DB)
    pcfg_rows = summary[summary.probe.isin(["nt_span", "ngram", "context"])]
    assert set(pcfg_rows.metric) == {"test_acc", "selectivity", "p50"}, "the declared primary metrics"
    assert len(pcfg_rows) > 0 and pcfg_rows["n_steps"].min() >= 2


@pytest.mark.parametrize("size", ["tiny", "demo"])
def test_pcfg_demo_sweeps_with_its_presets_probe_sizes(tmp_path, monkeypatch, size):
    """The demo's sweep takes the preset's probe sizes, not the paper's 1,024 n-gram sentences."""
    import probes.sweep
    import training.plans
    from curriculens.cli.entry import main

    seen = []

    class Stop(Exception):
        pass

    def capture(out, cfg, **kw):
        seen.append(cfg)
        raise Stop  # nothing to summarise: the command stops here

    monkeypatch.setattr(training.plans, "run_plan", lambda *a, **k: None)
    monkeypatch.setattr(probes.sweep, "run_sweep", capture)
    main(["--quiet", "demo", "--task", "pcfg", "--size", size, "--out", str(tmp_path / "x"), "--device", "cpu"])
    assert seen[0].options == demo_probe_options(size)
    assert seen[0].options["ngram_sentences"] <= 32

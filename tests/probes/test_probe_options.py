"""Typed probe options: parsed once per sweep by the task's hook, strict for every task, with
aliases in one place."""

import pytest

from curriculens.errors import CurriculensError
from probes import registry
from probes.sweep import SweepConfig, run_sweep
from probes.tasks.parity.common import ParityProbeOptions
from probes.tasks.pcfg.common import PCFGProbeOptions


def test_a_sweep_parses_its_options_once_not_per_checkpoint(exp_copy, small_options, monkeypatch):
    import probes.tasks.parity as parity_probes
    import probes.tasks.parity.common as common

    calls = []
    real = common.parse_options

    def counting(options):
        calls.append(dict(options or {}))
        return real(options)

    monkeypatch.setattr(parity_probes, "parse_options", counting)  # the registry's hook
    monkeypatch.setattr(common, "parse_options", counting)  # a probe's fallback
    res = run_sweep(exp_copy, SweepConfig(device="cpu", options=small_options))
    assert res.n_done >= 9 and res.n_failed == 0  # many checkpoints x probes ...
    assert len(calls) == 2  # ... one check while planning, one parse for the (local) block


def test_every_task_refuses_unknown_options():
    with pytest.raises(CurriculensError, match="unknown config key"):
        registry.parse_options("parity", {"n_prbe": 10})
    with pytest.raises(CurriculensError, match="unknown PCFG probe option n_sentence"):
        registry.parse_options("pcfg", {"n_sentence": 3})
    with pytest.raises(CurriculensError, match="bad PCFG probe options"):
        registry.parse_options("pcfg", {"n_sentences": "many"})


def test_typed_options_and_aliases():
    assert registry.parse_options("parity", {"n_probe": 64}) == ParityProbeOptions(n_probe=64)
    opts = registry.parse_options("pcfg", {"n_probe": 8, "ngram_windows": [3]})
    assert opts == PCFGProbeOptions(n_sentences=8, ngram_windows=(3,))
    # the option's own name wins over its alias, whatever the order
    assert PCFGProbeOptions.from_options({"n_sentences": 6, "n_probe": 9}).n_sentences == 6
    assert PCFGProbeOptions.from_options({"n_probe": 9, "n_sentences": 6}).n_sentences == 6

"""``curriculens import``: foreign trajectories in every layout become runs that probe, summarise
and show in the dashboard; bad input is one line and writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from curriculens import constants as C
from curriculens.errors import CurriculensError
from curriculens.io import read_json, sha256_file
from models.checkpoint import list_checkpoints, load_checkpoint
from models.configs import HFConfig, MLPConfig
from training.foreign.fixtures import sample_text, write_hub_cache, write_mlp_pt, write_trainer_dir
from training.foreign.importer import IMPORT_FILE, ImportConfig, import_trajectory
from training.foreign.sources import discover, parse_step

SMALL = {"n_sentences": 8, "ngram_sentences": 4, "max_tokens": 200, "batch_size": 16}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(sample_text(60, seed=1))
    return path


@pytest.fixture(scope="module")
def gpt_trainer(tmp_path_factory) -> Path:
    return write_trainer_dir(tmp_path_factory.mktemp("gpt") / "out", "gpt2", steps=(0, 5, 10))


@pytest.fixture(scope="module")
def bert_bin(tmp_path_factory) -> Path:
    return write_trainer_dir(tmp_path_factory.mktemp("bert") / "out", "bert", steps=(0, 5, 10), fmt="bin")


def _text(corpus: Path) -> dict:
    return {"name": "text", "corpus": str(corpus)}


def test_parse_step_names():
    assert parse_step("checkpoint-500") == 500
    assert parse_step("step1000") == 1000
    assert parse_step("step1000-tokens4M") == 1000
    assert parse_step("step_000001000") == 1000
    assert parse_step("global_step7") == 7
    assert parse_step("final") is None and parse_step("main") is None
    assert parse_step("model_step_300", file=True) == 300
    assert parse_step("ckpt-20", file=True) == 20
    assert parse_step("400", file=True) == 400
    assert parse_step("model", file=True) is None


def test_trainer_dir_import_references_weights_in_place(gpt_trainer, corpus, tmp_path):
    exp = tmp_path / "exp"
    res = import_trajectory(ImportConfig(src=str(gpt_trainer), out=str(exp), task=_text(corpus)))
    assert res.steps == [0, 5, 10] and res.layout == "dirs" and not res.duplicates
    ckpts = list_checkpoints(res.run_dir)
    assert [s for s, _ in ckpts] == [0, 5, 10]
    for step, d in ckpts:
        meta = read_json(d / C.META_FILE)
        src = gpt_trainer / f"checkpoint-{step}" / "model.safetensors"
        assert not (d / C.WEIGHTS_FILE).exists()  # referenced, not copied
        assert meta["weights"] == {"path": str(src.absolute()), "format": "safetensors", "layout": "hf"}
        assert meta["sha256"] == meta["source"]["sha256"] == sha256_file(src)
        assert meta["source"]["revision"] == f"checkpoint-{step}"
        model, cfg, _ = load_checkpoint(d)
        assert isinstance(cfg, HFConfig) and cfg.architecture == "GPT2LMHeadModel"
        from safetensors.torch import load_file

        theirs = load_file(str(src))
        assert all(torch.equal(model.state_dict()[k], v) for k, v in theirs.items())
    metrics = [json.loads(x) for x in (res.run_dir / C.METRICS_FILE).read_text().splitlines()]
    assert [r["step"] for r in metrics] == [0, 5, 10]
    assert metrics[-1]["eval_acc"] == pytest.approx(0.15) and all(r["checkpoint"] for r in metrics)
    assert read_json(res.run_dir / C.DONE_FILE)["imported"] is True
    assert read_json(res.run_dir / IMPORT_FILE)["layout"] == "dirs"


def test_bin_import_with_copy_is_a_native_checkpoint(bert_bin, corpus, tmp_path):
    res = import_trajectory(ImportConfig(src=str(bert_bin), out=str(tmp_path / "exp"), task=_text(corpus), copy=True))
    for step, d in list_checkpoints(res.run_dir):
        meta = read_json(d / C.META_FILE)
        assert "weights" not in meta and (d / C.WEIGHTS_FILE).is_file()
        assert meta["source"]["format"] == "torch"
        assert meta["source"]["sha256"] == sha256_file(bert_bin / f"checkpoint-{step}" / "pytorch_model.bin")
        assert (d / "tokenizer.json").is_file()  # the tokenizer travels with a copy
        model, cfg, _ = load_checkpoint(d)
        theirs = torch.load(bert_bin / f"checkpoint-{step}" / "pytorch_model.bin", weights_only=True)
        assert cfg.architecture == "BertForMaskedLM"
        mine = model.state_dict()
        assert all(torch.equal(mine[k], v) for k, v in theirs.items() if k in mine)


def test_hub_cache_revisions_and_duplicates(tmp_path, corpus):
    repo = write_hub_cache(tmp_path / "hub", "gpt2", steps=(0, 4, 8), same_as={8: 4}, revision="step{}-tokens1M")
    layout, found = discover(tmp_path / "hub")  # a cache root with one model works too
    assert layout == "hub" and [c.step for c in found] == [0, 4, 8]
    assert found[1].commit == (repo / "refs" / "step4-tokens1M").read_text()
    res = import_trajectory(ImportConfig(src=str(repo), out=str(tmp_path / "exp"), task=_text(corpus)))
    assert res.duplicates == {8: 4}
    meta8 = read_json(res.run_dir / C.CHECKPOINTS_DIR / "step_000000008" / C.META_FILE)
    assert meta8["duplicate_of"] == 4 and meta8["source"]["commit"] == found[2].commit
    assert read_json(res.run_dir / IMPORT_FILE)["duplicates"] == {"8": 4}
    (repo / "refs" / "v1").write_text(found[0].commit)  # a branch name without a step
    _refuses(ImportConfig(src=str(repo), out=str(tmp_path / "exp2"), task=_text(corpus)), "revision name.*v1")


def test_paper_mlp_pt_state_dicts(tmp_path):
    src = write_mlp_pt(tmp_path / "mlp", steps=(0, 100), d_in=10, width=8)
    res = import_trajectory(
        ImportConfig(src=str(src), out=str(tmp_path / "exp"), task={"name": "parity", "n": 10, "k": 3})
    )
    model, cfg, _ = load_checkpoint(res.run_dir / C.CHECKPOINTS_DIR / "step_000000100")
    assert cfg == MLPConfig(d_in=10, width=8, depth=1, n_classes=2)
    theirs = torch.load(src / "step100.pt", weights_only=True)
    seq = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    seq.load_state_dict(theirs)
    x = torch.randn(5, 10)
    assert torch.allclose(model(x), seq(x))


def test_foreign_student_beside_native_teacher(tiny_parity_experiment, tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(tiny_parity_experiment, exp)
    task = read_json(exp / C.EXPERIMENT_FILE)["task"]
    src = write_mlp_pt(tmp_path / "student", steps=(0, 10, 20), d_in=task["n"], width=6)
    res = import_trajectory(
        ImportConfig(src=str(src), out=str(exp), task=task, role="student", method="progressive", seed=7)
    )
    assert res.run_dir.name == "progressive-s7"
    from probes.summary import summarize
    from probes.sweep import SweepConfig, run_sweep
    from training.experiment import list_runs

    runs = {r.name: r for r in list_runs(exp)}
    assert runs["teacher"].role == "teacher" and (runs["progressive-s7"].role, runs["progressive-s7"].method) == (
        "student",
        "progressive",
    )
    out = run_sweep(exp, SweepConfig(probes=("fourier",), runs=("teacher", "progressive-s7"), device="cpu"))
    assert out.n_failed == 0
    table = summarize(exp / C.RESULTS_DB)
    assert {"teacher", "progressive-s7"} <= set(table["run"])


# --- bad input: one line, nothing written -------------------------------------------------
class Pickled:  # a pickled object that weights_only refuses
    pass


def _refuses(cfg: ImportConfig, match: str) -> None:
    out = Path(cfg.out)
    before = sorted(p.relative_to(out) for p in out.rglob("*")) if out.exists() else None
    with pytest.raises(CurriculensError, match=match) as info:
        import_trajectory(cfg)
    assert "\n" not in str(info.value)
    after = sorted(p.relative_to(out) for p in out.rglob("*")) if out.exists() else None
    assert before == after


def test_mixed_architectures(tmp_path, corpus):
    src = tmp_path / "mixed"
    write_trainer_dir(src, "gpt2", steps=(0,))
    write_trainer_dir(src, "bert", steps=(5,))
    _refuses(ImportConfig(src=str(src), out=str(tmp_path / "exp"), task=_text(corpus)), "mixed architectures")


def test_missing_config(gpt_trainer, tmp_path, corpus):
    src = tmp_path / "src"
    shutil.copytree(gpt_trainer, src)
    (src / "checkpoint-5" / "config.json").unlink()
    _refuses(
        ImportConfig(src=str(src), out=str(tmp_path / "exp"), task=_text(corpus)), "missing config.json for step 5"
    )
    for d in src.iterdir():
        (d / "config.json").unlink(missing_ok=True)
    _refuses(ImportConfig(src=str(src), out=str(tmp_path / "exp"), task=_text(corpus)), "missing config.json")


def test_unparseable_step_names(gpt_trainer, tmp_path, corpus):
    src = tmp_path / "src"
    shutil.copytree(gpt_trainer, src)
    (src / "checkpoint-5").rename(src / "final")
    (src / "final" / "trainer_state.json").unlink()
    _refuses(ImportConfig(src=str(src), out=str(tmp_path / "exp"), task=_text(corpus)), "cannot read a step .* final")
    loose = tmp_path / "loose"
    write_mlp_pt(loose, steps=(0,), name="weights{}.pt")  # weights0.pt: no step marker
    (loose / "weights0.pt").rename(loose / "weights.pt")
    _refuses(
        ImportConfig(src=str(loose), out=str(tmp_path / "exp2"), task={"name": "parity", "n": 12, "k": 3}),
        "cannot read a step",
    )


def test_trainer_state_names_the_step(gpt_trainer, tmp_path, corpus):
    src = tmp_path / "src"
    shutil.copytree(gpt_trainer, src)
    (src / "checkpoint-10").rename(src / "last")  # its trainer_state.json says global_step 10
    _, found = discover(src)
    assert [(c.step, c.revision) for c in found] == [(0, "checkpoint-0"), (5, "checkpoint-5"), (10, "last")]


def test_pickled_objects_are_refused(tmp_path):
    src = write_mlp_pt(tmp_path / "mlp", steps=(0, 10), d_in=12)
    state = torch.load(src / "step10.pt", weights_only=True)
    torch.save({**state, "extra": Pickled()}, src / "step10.pt")
    _refuses(
        ImportConfig(src=str(src), out=str(tmp_path / "exp"), task={"name": "parity", "n": 12, "k": 3}),
        "weights_only=True",
    )


def test_unsupported_architecture(gpt_trainer, tmp_path, corpus):
    src = tmp_path / "src"
    shutil.copytree(gpt_trainer, src)
    for d in src.iterdir():
        cfg = read_json(d / "config.json")
        cfg["architectures"] = ["FancyNewForCausalLM"]
        (d / "config.json").write_text(json.dumps(cfg))
    _refuses(
        ImportConfig(src=str(src), out=str(tmp_path / "exp"), task=_text(corpus)),
        "FancyNewForCausalLM .*not supported by the TransformerLens 4 bridge",
    )


def test_bad_corpus_and_missing_tokenizer(gpt_trainer, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n")
    _refuses(ImportConfig(src=str(gpt_trainer), out=str(tmp_path / "a"), task=_text(empty)), "is empty")
    binary = tmp_path / "blob.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    _refuses(ImportConfig(src=str(gpt_trainer), out=str(tmp_path / "b"), task=_text(binary)), "not text")
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"body": "x"}\n')
    _refuses(ImportConfig(src=str(gpt_trainer), out=str(tmp_path / "c"), task=_text(jsonl)), "no string field 'text'")
    good = tmp_path / "good.txt"
    good.write_text(sample_text(20))
    notok = write_trainer_dir(tmp_path / "notok", "gpt2", steps=(0, 5), tokenizer=False)
    _refuses(ImportConfig(src=str(notok), out=str(tmp_path / "d"), task=_text(good)), "no tokenizer in")


def test_existing_run_and_task_mismatch(gpt_trainer, corpus, tmp_path):
    exp = tmp_path / "exp"
    import_trajectory(ImportConfig(src=str(gpt_trainer), out=str(exp), task=_text(corpus)))
    _refuses(ImportConfig(src=str(gpt_trainer), out=str(exp), task=_text(corpus)), "already exists")
    _refuses(
        ImportConfig(src=str(gpt_trainer), out=str(exp), task={**_text(corpus), "max_tokens": 64}, name="other"),
        "different task",
    )
    res = import_trajectory(ImportConfig(src=str(gpt_trainer), out=str(exp), task=_text(corpus), force=True))
    assert res.steps == [0, 5, 10]


def test_paper_pcfg_bert_trainer_dir_probes_with_the_pcfg_task(tmp_path, one_thread):
    """The paper's PCFG BERT scripts write HF Trainer directories: import them under the pcfg task."""
    from probes.sweep import SweepConfig, run_sweep
    from training.foreign.fixtures import make_model, save_checkpoint_dir
    from training.tasks import build_task

    task_cfg = {"name": "pcfg", "gen_levels": 4, "n_eval": 32}
    task = build_task(task_cfg)
    for s in (0, 7):
        model = make_model("bert", task.vocab_size, seed=s, n_positions=task.seq_len + 2)
        save_checkpoint_dir(
            tmp_path / "paper" / f"checkpoint-{s}", model, trainer_state={"global_step": s, "log_history": []}
        )
    exp = tmp_path / "exp"
    import_trajectory(ImportConfig(src=str(tmp_path / "paper"), out=str(exp), task=task_cfg))
    res = run_sweep(
        exp,
        SweepConfig(
            probes=("ngram", "nt_span"),
            device="cpu",
            options={"n_sentences": 8, "ngram_sentences": 4, "max_tokens": 100},
        ),
    )
    assert res.n_failed == 0 and res.n_done == 4
    small = ImportConfig(
        src=str(tmp_path / "paper"), out=str(tmp_path / "exp2"), task={**task_cfg, "objective": "next"}
    )
    _refuses(small, "needs a causal LM, got BertForMaskedLM")

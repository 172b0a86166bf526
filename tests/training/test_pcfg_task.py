"""The PCFG task: masking, padding, next-token targets, eval set, models, training, presets, phases."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from curriculens import constants as C
from curriculens.curves import detect_phases, nearest_step
from curriculens.errors import CurriculensError
from curriculens.seeding import Keyed, torch_generator
from models.checkpoint import list_checkpoints
from models.configs import BertConfig, GPT2Config, model_config_from_dict
from training.data.pcfg_mlm import (
    IGNORE,
    SpecialIds,
    mlm_batch,
    mlm_mask,
    next_token_batch,
    pad_sequences,
)
from training.experiment import list_runs, read_metrics
from training.plans.pcfg import PRESETS, SIZES, get_preset, model_dict, pcfg_demo_plan, teacher_config
from training.tasks import build_task, task_config_from_dict
from training.tasks.pcfg import PCFGTask

CFG3B = Path(__file__).resolve().parents[2] / "training" / "data" / "pcfg" / "grammars" / "cfg3b.json"
SPECIAL = SpecialIds(bos=3, eos=4, pad=5, mask=6, terminals=(0, 1, 2))
TINY = {"name": "pcfg", "gen_levels": 4, "gen_seed": 1, "n_eval": 64}


pytestmark = pytest.mark.usefixtures("one_thread")


def _random_seqs(n, lo, hi, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 3, size=int(rng.integers(lo, hi + 1))) for _ in range(n)]


# --- masking and padding -------------------------------------------------------------------
def test_pad_sequences_prepends_bos_pads_and_marks_real():
    ids, real = pad_sequences([np.array([0, 1]), np.array([2, 2, 1, 0])], SPECIAL, eos=True)
    assert ids.tolist() == [[3, 0, 1, 4, 5, 5], [3, 2, 2, 1, 0, 4]]
    assert real.tolist() == [[True] * 4 + [False] * 2, [True] * 6]
    ids, real = pad_sequences([np.array([0, 1, 2, 0])], SPECIAL, max_len=2)
    assert ids.tolist() == [[3, 0, 1]] and real.all()


def test_mlm_masking_statistics_follow_30_percent_and_80_10_10():
    seqs = _random_seqs(400, 80, 120)
    ids, real = pad_sequences(seqs, SPECIAL)
    inp, labels, sel = mlm_mask(ids, real, SPECIAL, torch_generator(Keyed(1), 2, 3), mask_rate=0.3)
    n_real = int(real.sum())
    assert abs(sel.sum().item() / n_real - 0.3) < 0.01
    assert not (sel & ~real).any(), "PAD is never selected"
    # labels: the original token exactly at the selection, -100 elsewhere
    assert torch.equal(labels[sel], ids[sel]) and (labels[~sel] == IGNORE).all()
    assert torch.equal(inp[~sel], ids[~sel])
    s_in, s_orig = inp[sel], ids[sel]
    frac_mask = (s_in == SPECIAL.mask).float().mean().item()
    frac_same = (s_in == s_orig).float().mean().item()
    frac_other = ((s_in != s_orig) & (s_in != SPECIAL.mask)).float().mean().item()
    assert abs(frac_mask - 0.8) < 0.015
    # 10% kept + 10% random terminal that happens to equal the original (1 in 3)
    assert abs(frac_same - (0.1 + 0.1 / 3)) < 0.012
    assert abs(frac_other - 0.1 * 2 / 3) < 0.012
    # random replacements are terminals only
    assert set(s_in[(s_in != s_orig) & (s_in != SPECIAL.mask)].tolist()) <= {0, 1, 2}


def test_bos_is_selectable_as_in_the_paper_or_excluded_on_request():
    seqs = _random_seqs(2000, 5, 10)
    ids, real = pad_sequences(seqs, SPECIAL)
    _, _, sel = mlm_mask(ids, real, SPECIAL, torch_generator(Keyed(5)), include_bos=True)
    assert abs(sel[:, 0].float().mean().item() - 0.3) < 0.04
    _, _, sel = mlm_mask(ids, real, SPECIAL, torch_generator(Keyed(5)), include_bos=False)
    assert not sel[:, 0].any()


def test_every_row_gets_at_least_one_scored_position():
    seqs = [np.array([1])] * 300  # BOS + 1 token: P(no selection) = 0.49 without the rule
    ids, real = pad_sequences(seqs, SPECIAL)
    _, labels, sel = mlm_mask(ids, real, SPECIAL, torch_generator(Keyed(0)))
    assert sel.any(dim=1).all() and (labels != IGNORE).any(dim=1).all()


def test_attention_mask_hides_pad_and_optionally_selected_keys():
    seqs = _random_seqs(64, 10, 30)
    b = mlm_batch(seqs, SPECIAL, torch_generator(Keyed(7)), hide_masked_keys=True)
    _, real = pad_sequences(seqs, SPECIAL)
    sel = b["labels"] != IGNORE
    assert torch.equal(b["attention_mask"].bool(), real & ~sel)
    b2 = mlm_batch(seqs, SPECIAL, torch_generator(Keyed(7)), hide_masked_keys=False)
    assert torch.equal(b2["attention_mask"].bool(), real)
    assert torch.equal(b2["input_ids"], b["input_ids"]), "the same generator gives the same masks"


def test_next_token_labels_are_the_shifted_inputs_on_real_positions():
    b = next_token_batch([np.array([0, 1, 2]), np.array([2])], SPECIAL, eos=True)
    assert b["input_ids"].tolist() == [[3, 0, 1, 2, 4], [3, 2, 4, 5, 5]]
    assert b["labels"].tolist() == [[0, 1, 2, 4, IGNORE], [2, 4, IGNORE, IGNORE, IGNORE]]
    assert b["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]


# --- the task -------------------------------------------------------------------------------
def _same(a, b):
    return all(a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)


def test_train_batches_are_deterministic_per_seed_and_step():
    task = build_task(TINY)
    a = task.train_batch(5, 16, seed=3)
    assert _same(a, task.train_batch(5, 16, seed=3))
    assert not _same(a, task.train_batch(6, 16, seed=3))
    assert not _same(a, task.train_batch(5, 16, seed=4))
    # a fresh task object (as after a resume) gives the same batch
    assert _same(a, PCFGTask(task_config_from_dict(TINY)).train_batch(5, 16, seed=3))


def test_eval_set_is_fixed_and_independent_of_the_batch_size():
    t1, t2 = build_task(TINY), build_task(TINY)

    def flat(task, bs):
        out = []
        for b in task.eval_batches(bs):
            for row_ids, row_lab, row_att in zip(b["input_ids"], b["labels"], b["attention_mask"], strict=True):
                n = int((row_ids != task.special.pad).sum())
                out.append((row_ids[:n].tolist(), row_lab[:n].tolist(), row_att[:n].tolist()))
        return out

    a, b = flat(t1, 1024), flat(t2, 7)
    assert len(a) == TINY["n_eval"] and a == b
    other = build_task({**TINY, "data_seed": 1})
    assert flat(other, 64) != a


def test_scored_returns_logits_and_targets_at_labelled_positions():
    task = build_task(TINY)
    batch = task.train_batch(0, 8, seed=0)
    logits = torch.randn(*batch["input_ids"].shape, task.vocab_size)
    lg, tg = task.scored(logits, batch, None)
    keep = batch["labels"] != IGNORE
    assert lg.shape == (int(keep.sum()), task.vocab_size) and torch.equal(tg, batch["labels"][keep])
    assert torch.equal(lg, logits[keep])


def test_generated_grammar_sizes_and_positions_are_checked():
    task = build_task(TINY)
    ok = model_config_from_dict(model_dict("mlm", "tiny-teacher", task.vocab_size, task.seq_len))
    task.check_model(ok)
    with pytest.raises(CurriculensError, match="BERT"):
        task.check_model(GPT2Config(vocab_size=task.vocab_size, n_positions=512))
    with pytest.raises(CurriculensError, match="vocab_size"):
        task.check_model(replace(ok, vocab_size=3))
    with pytest.raises(CurriculensError, match="positions"):
        task.check_model(replace(ok, max_position_embeddings=task.seq_len - 1))
    nxt = build_task({**TINY, "objective": "next"})
    assert nxt.seq_len == task.seq_len + 1, "next-token sentences end with EOS"
    with pytest.raises(CurriculensError, match="GPT2"):
        nxt.check_model(ok)
    with pytest.raises(CurriculensError, match="objective"):
        build_task({**TINY, "objective": "causal"})
    with pytest.raises(CurriculensError, match="unknown config key"):
        build_task({**TINY, "levels": 3})


@pytest.mark.skipif(not CFG3B.is_file(), reason="cfg3b.json not available")
def test_cfg3b_task_sizes():
    task = build_task({"name": "pcfg", "grammar": str(CFG3B), "n_eval": 8})
    assert task.vocab_size == 8 and task.max_terminals == 432 and task.seq_len == 433
    lvl1 = build_task({"name": "pcfg", "grammar": str(CFG3B), "start_level": 1, "n_eval": 64})
    lens = [int((b["input_ids"] != lvl1.special.pad).sum(1).float().mean()) for b in lvl1.eval_batches(64)]
    assert 120 < lens[0] < 180, "cfg3b from level 1: ~150-token sentences (calibration notes)"


class _Scripted(nn.Module):
    """A 'next-token model' that emits a fixed token script, then EOS, whatever it is fed."""

    def __init__(self, script, vocab):
        super().__init__()
        self.script, self.vocab = list(script), vocab
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, ids, attention_mask=None):
        B, T = ids.shape
        out = torch.full((B, T, self.vocab), -1e4)
        for t in range(T):
            tok = self.script[t] if t < len(self.script) else self.script[-1]
            out[:, t, tok] = 1e4
        return out + self.dummy


def test_accept_rate_of_generated_sentences_is_measured_with_the_parser():
    task = build_task({**TINY, "objective": "next", "n_generate": 8})
    sentence = task.sentences(1, seed=123).tokens[0]
    good = _Scripted(list(sentence) + [task.special.eos], task.vocab_size)
    assert task.extra_eval(good, None, torch.device("cpu")) == {"eval_accept": 1.0}
    bad = _Scripted(list(sentence[:-1]) + [task.special.eos], task.vocab_size)  # one token short
    if not task.accepts(sentence[:-1]):
        assert task.extra_eval(bad, None, torch.device("cpu")) == {"eval_accept": 0.0}
    never = _Scripted([int(sentence[0])], task.vocab_size)  # never emits EOS
    assert task.extra_eval(never, None, torch.device("cpu")) == {"eval_accept": 0.0}
    assert build_task(TINY).extra_eval(good, None, torch.device("cpu")) == {}, "masked LM: no generation"


# --- training through the one engine -----------------------------------------------------
@pytest.fixture(scope="module")
def tiny_experiment(tmp_path_factory):
    from training.plans import run_plan

    exp = tmp_path_factory.mktemp("pcfg") / "exp"
    teacher, students_for = pcfg_demo_plan(exp, size="tiny", device="cpu")
    run_plan(exp, teacher, students_for)
    return exp


def test_tiny_pcfg_teacher_trains_and_its_loss_falls(tiny_experiment):
    rows = read_metrics(tiny_experiment / C.RUNS_DIR / "teacher")
    assert rows[0]["step"] == 0 and rows[-1]["step"] == PRESETS["cpu-tiny"].steps
    assert rows[-1]["eval_loss"] < rows[0]["eval_loss"] - 0.5, "from ~ln(V) to well below"
    assert all(0.0 <= r["eval_acc"] <= 1.0 for r in rows)


def test_every_student_method_runs_through_train_run_with_a_pcfg_teacher(tiny_experiment):
    runs = {r.name: r for r in list_runs(tiny_experiment)}
    methods = {r.method for r in runs.values() if r.role == C.ROLE_STUDENT}
    assert methods == {"ce", "one-shot", "progressive", "two-shot"}
    assert all(r.done for r in runs.values())
    teacher_steps = [s for s, _ in list_checkpoints(tiny_experiment / C.RUNS_DIR / "teacher")]
    for r in runs.values():
        if r.role != C.ROLE_STUDENT:
            continue
        used = [m["teacher_step"] for m in read_metrics(r.path)]
        if r.method == "ce":
            assert set(used) == {None}
        elif r.method == "one-shot":
            assert set(used) == {teacher_steps[-1]}
        elif r.method == "progressive":
            assert len(set(used)) >= 2 and used == sorted(used)
        else:
            assert r.config.distill.two_shot_step in teacher_steps and r.config.distill.two_shot_step in used
        assert r.config.distill.tau < 1e-6 and r.config.distill.alpha == 0.0, "paper: hard-label pure distillation"


def test_a_tiny_gpt2_next_token_teacher_trains_and_logs_accept_rate(tmp_path):
    from training.loop import train_run

    p = get_preset("cpu-tiny", objective="next", n_generate=4)
    cfg = teacher_config(p, device="cpu").replace(steps=30)
    res = train_run(cfg, tmp_path / "teacher")
    rows = read_metrics(tmp_path / "teacher")
    assert "eval_accept" in res.final_eval and 0.0 <= res.final_eval["eval_accept"] <= 1.0
    assert rows[-1]["eval_loss"] < rows[0]["eval_loss"]


# --- presets ---------------------------------------------------------------------------------
def test_paper_sizes_match_the_spec():
    bert_t = model_dict("mlm", "teacher", 8, 433)
    bert_s = model_dict("mlm", "student", 8, 433)
    assert (bert_t["num_hidden_layers"], bert_t["num_attention_heads"], bert_t["hidden_size"]) == (4, 32, 256)
    assert (bert_s["num_hidden_layers"], bert_s["num_attention_heads"], bert_s["hidden_size"]) == (4, 8, 64)
    assert bert_t["intermediate_size"] == 1024 and bert_t["max_position_embeddings"] == 1024
    gpt_t = model_config_from_dict(model_dict("next", "teacher", 8, 434))
    assert (gpt_t.n_layer, gpt_t.n_head, gpt_t.n_embd) == (4, 32, 256)
    t = build_task(TINY).default_model("teacher")
    assert isinstance(t, BertConfig) and (t.hidden_size, t.num_attention_heads, t.dropout) == (256, 32, 0.1)
    s = build_task({**TINY, "objective": "next"}).default_model("student")
    assert isinstance(s, GPT2Config) and (s.n_embd, s.n_head, s.n_layer) == (64, 8, 4)
    p = PRESETS["paper-bert"]
    assert (p.batch_size, p.optim.lr, p.optim.betas, p.optim.warmup_frac) == (512, 5e-3, (0.9, 0.95), 0.06)
    with pytest.raises(CurriculensError, match="grammar"):
        get_preset("paper-bert")
    with pytest.raises(CurriculensError, match="unknown model size"):
        model_dict("mlm", "huge", 8, 10)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_a_valid_teacher(name):
    if name.startswith("paper"):
        if not CFG3B.is_file():
            pytest.skip("cfg3b.json not available")
        p = get_preset(name, grammar=str(CFG3B))
    else:
        p = get_preset(name)
    t = teacher_config(p, device="cpu")
    task = build_task(t.task)
    task.check_model(t.model)
    _, student = p.models_for(task)
    task.check_model(model_config_from_dict(student))
    assert set(SIZES) >= {p.teacher, p.student}


def test_progressive_walks_the_whole_teacher_within_a_shorter_student_budget():
    from training.plans.pcfg import progressive_speed, student_configs_for

    p = get_preset("cpu-demo")
    assert (p.steps, p.student_steps) == (600, 400) and progressive_speed(p) == 1.5
    teacher = teacher_config(p, device="cpu")
    students = {s.method: s for s in student_configs_for(p, "unused", teacher, methods=("ce", "progressive"))}
    assert students["progressive"].distill.speed == 1.5 and students["ce"].distill.speed == 1.0
    assert progressive_speed(PRESETS["paper-bert"]) == 1.0, "the paper: student and teacher budgets are equal"


def test_demo_plan_rejects_unknown_sizes_and_missing_grammars(tmp_path):
    with pytest.raises(CurriculensError, match="size"):
        pcfg_demo_plan(tmp_path, size="huge")
    with pytest.raises(CurriculensError, match="not found"):
        pcfg_demo_plan(tmp_path, grammar_path=str(tmp_path / "nope.json"))


# --- phases -----------------------------------------------------------------------------------
def _planted_curve(seed=0, noise=0.003):
    x = np.arange(0, 2001, 50)
    y = np.full(x.shape, 1.03)
    y[0] = 2.08
    y = np.where(x >= 950, 1.03 - 0.24 * np.clip((x - 950) / 350, 0, 1), y) - 4e-5 * np.clip(x - 1300, 0, None)
    return x, y + np.random.default_rng(seed).normal(0, noise, x.size)


def test_phase_detector_recovers_a_planted_plateau_drop_and_slow_phase():
    for seed in range(6):
        x, y = _planted_curve(seed, noise=0.006 if seed >= 3 else 0.003)
        ph = detect_phases(x, y)
        assert ph.clear
        assert 900 <= ph.drop_start <= 1000 and 1250 <= ph.drop_end <= 1350  # planted: 950 - 1300
        assert ph.plateau_end <= ph.drop_start < ph.drop_end <= ph.slow_start
        assert 1050 <= ph.mid_step <= 1200, ph.mid_step  # planted middle: 950 + 175 = 1125
        assert ph.phase_of(500) == "plateau" and ph.phase_of(1100) == "drop" and ph.phase_of(1900) == "slow"
        assert ph.drop_slope < 0 and abs(ph.plateau_slope) < 0.1 * abs(ph.drop_slope)
        assert abs(ph.plateau_loss - 1.03) < 0.01 and isinstance(ph.slow_slope, float)


def test_phase_detector_finds_a_drop_followed_by_a_curved_slow_phase():
    # the shape of the CPU teachers (cfg3b from level 2): a short plateau, a drop, a long
    # decelerating tail; a fit with independent segments hides such a drop in a jump
    x = np.arange(0, 1601, 50)
    y = np.where(x < 300, 1.0 - 1e-4 * x, 0.97 - (0.32 / 350) * (x - 300))
    tail = x >= 650
    y[tail] = 0.65 - 0.17 * (1 - np.exp(-(x[tail] - 650) / 400))
    y[0] = 2.03
    ph = detect_phases(x, y)
    assert ph.clear and 250 <= ph.drop_start <= 350 and 600 <= ph.drop_end <= 700
    assert 400 <= ph.mid_step <= 550


def test_phase_detector_keeps_a_short_early_plateau_of_a_long_run():
    # the wide CPU teacher's shape (setting cpu-long): 5000 steps, a 300-step plateau and a
    # 450-step drop early on, a long slow phase; thinning alone put no breakpoint on the plateau
    for every in (25, 50, 100):
        x = np.arange(0, 5001, every).astype(float)
        y = np.where(x < 150, 1.03 + np.exp(-x / 40), 1.03 - 2e-5 * (x - 150))
        top = y[np.searchsorted(x, 450)]
        y = np.where((x >= 450) & (x < 900), top - 0.55 * (x - 450) / 450, y)
        y = np.where(x >= 900, top - 0.55 - 0.3 * (1 - np.exp(-(x - 900) / 1500)), y)
        y[0] = 2.08
        for seed in range(3):
            ph = detect_phases(x, y + np.random.default_rng(seed).normal(0, 0.004, x.size))
            assert ph.clear, (every, seed)
            # on the log axis a breakpoint near step 900 moves by one or two evaluations
            assert 400 <= ph.drop_start <= 500 and 850 <= ph.drop_end <= 1000, (every, seed, ph)
            assert 625 <= ph.mid_step <= 725, (every, seed, ph.mid_step)  # planted middle: 675


def test_phase_detector_says_unclear_for_a_smooth_decay_and_handles_short_input():
    # plateau-free decays, lightly noisy: no phases. (On the log axis the rule uses, an
    # exponential decay whose time constant is several evaluations long *is* flat before it
    # falls: it is not a plateau-free control; tests/curriculens/test_phases.py has power laws.)
    x = np.arange(0, 2001, 50)
    for b in (0.1, 0.2, 0.4, 0.8):
        noise = np.random.default_rng(int(10 * b)).normal(0, 0.003, x.size)
        assert not detect_phases(x, 1.5 * (np.maximum(x, 1) / 10) ** -b + 0.5 + noise).clear, b
    for t in (50, 100):  # decays already mostly over by the first evaluations
        noise = np.random.default_rng(t).normal(0, 0.003, x.size)
        assert not detect_phases(x, 2.0 * np.exp(-x / t) + 0.5 + noise).clear, t
    assert not detect_phases(x, 1.0 - 1e-4 * x).clear
    assert detect_phases([0, 1, 2], [1.0, 0.9, 0.8]) is None
    assert nearest_step([0, 100, 200, 300], 149) == 100 and nearest_step([0, 100, 200], 150) == 100


def test_two_shot_checkpoint_is_the_saved_step_nearest_the_middle_of_the_drop(tmp_path):
    from curriculens.io import append_jsonl
    from models.checkpoint import ckpt_dirname
    from training.experiment import two_shot_checkpoint as pick

    def two_shot_checkpoint(path, fallback_frac=0.5):
        return pick(path, "pcfg", fallback_frac)

    def fake_run(path, x, y):
        for s, v in zip(x, y, strict=True):
            append_jsonl(path / C.METRICS_FILE, {"step": int(s), "eval_loss": float(v), "eval_acc": 0.5})
        for s in range(0, 2001, 100):
            (path / C.CHECKPOINTS_DIR / ckpt_dirname(s)).mkdir(parents=True)

    x, y = _planted_curve()
    fake_run(tmp_path / "sharp", x, y)
    assert two_shot_checkpoint(tmp_path / "sharp") == 1100  # planted middle 1125; saves every 100
    fake_run(tmp_path / "smooth", x, 2.0 * np.exp(-x / 400) + 0.5)
    assert two_shot_checkpoint(tmp_path / "smooth", fallback_frac=0.3) == 600


# --- fidelity: padding id, positions, progressive rule ------------------------------------
@pytest.mark.parametrize("grammar", ["cfg3b", ""])
def test_every_terminal_embedding_is_nonzero_at_init_and_gets_a_gradient(grammar):
    """BERT's padding row is the grammar's PAD (cfg3b: 5), never a terminal (cfg3b's 'a' is 0)."""
    from models.registry import build_model

    task = build_task({"name": "pcfg", "grammar": grammar, "start_level": 3 if grammar else 0, "n_eval": 8})
    p = get_preset("cpu-small", grammar=grammar or None, start_level=3 if grammar else 0, n_eval=8)
    models = [task.default_model("teacher"), task.default_model("cpu-student")]
    models += [model_config_from_dict(d) for d in p.models_for(task)]
    for cfg in models:
        torch.manual_seed(0)
        model = build_model(cfg)
        emb = model.bert.embeddings.word_embeddings
        terms = list(task.special.terminals)
        assert (emb.weight[terms].norm(dim=1) > 0).all(), "a terminal's input embedding starts at zero"
        assert emb.padding_idx == task.grammar.pad_id == cfg.pad_token_id
        batch = task.train_batch(0, 16, seed=0)
        inp, kw = task.model_input(batch, cfg)
        logits, targets = task.scored(model(inp, **kw).logits, batch, cfg)
        torch.nn.functional.cross_entropy(logits, targets).backward()
        assert (emb.weight.grad[terms].norm(dim=1) > 0).all(), "a terminal's input embedding gets no gradient"
        # input side alone (the decoder is tied to this matrix): the gradient through the embedding lookup
        e = emb(inp)
        g = torch.autograd.grad(e.sum(), emb.weight)[0]
        assert (g[terms].norm(dim=1) > 0).all() and float(g[task.grammar.pad_id].abs().max()) == 0.0


def test_a_bert_whose_pad_id_is_a_terminal_is_refused():
    task = build_task({**TINY})
    good = task.default_model("cpu-teacher")
    task.check_model(good)
    bad = replace(good, pad_token_id=task.special.terminals[0])
    with pytest.raises(CurriculensError, match="pad_token_id"):
        task.check_model(bad)


@pytest.mark.parametrize("objective", ["mlm", "next"])
def test_the_bridge_sees_the_models_positions_when_the_mask_hides_real_tokens(objective):
    """TransformerLens derives positions from the attention mask unless told; the task passes
    explicit position ids, so bridge activations equal Hugging Face's (the masked-LM batches
    hide selected tokens as keys)."""
    from models.registry import build_model, hookable

    task = build_task({**TINY, "objective": objective})
    cfg = task.default_model("tiny-teacher")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    batch = task.train_batch(0, 8, seed=0)
    if objective == "next":  # hide one real token as a key, as the n-gram maskings do
        batch["attention_mask"][:, 2] = 0
    assert bool(((batch["attention_mask"] == 0) & (batch["input_ids"] != task.special.pad)).any())
    inp, kw = task.model_input(batch, cfg)
    ref = model(inp, output_hidden_states=True, **kw)
    out, cache = hookable(model, cfg).run_with_cache(inp, names_filter=["blocks.0.hook_in", "blocks.1.hook_out"], **kw)
    assert torch.allclose(cache["blocks.0.hook_in"], ref.hidden_states[0], atol=1e-5)
    assert torch.allclose(out if isinstance(out, torch.Tensor) else out.logits, ref.logits, atol=1e-4)


def test_pcfg_students_use_the_official_progressive_rule():
    from training.plans.pcfg import student_configs_for

    for name, R in (("paper-bert", 1000), ("cpu-demo", PRESETS["cpu-demo"].save_every)):
        p = get_preset(name, grammar="cfg3b" if name.startswith("paper") else None)
        teacher = teacher_config(p, device="cpu")
        prog = student_configs_for(p, "unused", teacher, methods=("progressive",))[0].distill
        assert (prog.progressive_rule, prog.interval) == ("pcfg", R)


def test_next_token_supervision_only_at_span_ends_as_in_the_papers_gpt2_setting():
    """create_ce.py --desired_level L: only the last token of each level-L span is a target."""
    task = build_task(
        {"name": "pcfg", "grammar": "cfg3b", "start_level": 1, "objective": "next", "next_span_level": 3, "n_eval": 8}
    )
    corpus = task.sentences(4, seed=11)
    batch = task._build(corpus.tokens, None, corpus.ends)
    for i, (toks, ends) in enumerate(zip(corpus.tokens, corpus.ends, strict=True)):
        scored = np.nonzero(batch["labels"][i].numpy() != IGNORE)[0]
        want = np.nonzero(ends[:, 3])[0]  # terminal j is input position j + 1, predicted from position j
        assert np.array_equal(scored, want)
        assert np.array_equal(batch["labels"][i].numpy()[scored], toks[want])
        assert task.special.eos not in batch["labels"][i].tolist()
    every = build_task({"name": "pcfg", "grammar": "cfg3b", "start_level": 1, "objective": "next", "n_eval": 8})
    assert int((every._build(corpus.tokens, None, corpus.ends)["labels"] != IGNORE).sum()) == int(
        sum(len(t) + 1 for t in corpus.tokens)
    )
    for bad in ({"next_span_level": 0}, {"next_span_level": 7}, {"objective": "mlm", "next_span_level": 3}):
        with pytest.raises(CurriculensError, match="next_span_level"):
            build_task({"name": "pcfg", "grammar": "cfg3b", "start_level": 1, "objective": "next", "n_eval": 8, **bad})


def test_official_pad_option_gives_bert_pad_id_0_and_the_default_keeps_the_grammars():
    """The official masked-LM models come from the bert-base-uncased config (pad_token_id 0);
    the default is the grammar's PAD id, and each task refuses the other's model."""
    from dataclasses import replace as dc_replace

    from training.plans.pcfg import PRESETS

    ours, official = build_task(TINY), build_task({**TINY, "official_pad": True})
    assert ours.model_pad_id == ours.special.pad != 0 and official.model_pad_id == 0
    assert official.special.pad == ours.special.pad  # the data still pads with PAD, as the official tokenizer
    m_ours, m_off = ours.default_model("tiny-teacher"), official.default_model("tiny-teacher")
    assert m_ours.pad_token_id == ours.special.pad and m_off.pad_token_id == 0
    official.check_model(m_off)
    ours.check_model(m_ours)
    with pytest.raises(CurriculensError, match="pad"):
        ours.check_model(m_off)
    with pytest.raises(CurriculensError, match="pad"):
        official.check_model(dc_replace(m_off, pad_token_id=ours.special.pad))
    t_dict, s_dict = PRESETS["paper-bert"].models_for(official)
    assert t_dict["kind"] == "bert" and t_dict["pad_token_id"] == 0 == s_dict["pad_token_id"]
    assert PRESETS["paper-bert"].models_for(ours)[0]["pad_token_id"] == ours.special.pad

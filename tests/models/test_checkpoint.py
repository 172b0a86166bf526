"""Checkpoint format: bit-exact round trip, HF compatibility, and clear errors."""

import json

import pytest
import torch
import transformers

from curriculens.errors import CurriculensError
from models import BertConfig, GPT2Config, MLPConfig, build_model
from models.checkpoint import (
    ckpt_dirname,
    list_checkpoints,
    load_checkpoint,
    load_foreign_torch,
    load_optimizer_state,
    save_checkpoint,
)

CONFIGS = [
    MLPConfig(d_in=12, width=32, depth=2),
    GPT2Config(vocab_size=2, n_positions=16, n_layer=1, n_head=2, head_dim=4),
    BertConfig(
        vocab_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    ),
]


def test_dirname_is_zero_padded_and_sorts():
    assert ckpt_dirname(1000) == "step_000001000"
    assert sorted([ckpt_dirname(s) for s in (10, 2, 300)]) == [ckpt_dirname(s) for s in (2, 10, 300)]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.kind)
def test_round_trip_bit_exact(tmp_path, cfg):
    torch.manual_seed(0)
    model = build_model(cfg)
    path = save_checkpoint(tmp_path, 7, model, cfg, {"seed": 3, "eval_acc": 0.5})
    loaded, cfg2, meta = load_checkpoint(path, expected=cfg)
    assert cfg2 == cfg
    assert meta["step"] == 7 and meta["seed"] == 3 and len(meta["sha256"]) == 64
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert list_checkpoints(tmp_path) == [(7, path)]


@pytest.mark.parametrize("cfg", CONFIGS[1:], ids=lambda c: c.kind)
def test_transformer_checkpoint_loads_with_from_pretrained(tmp_path, cfg):
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    path = save_checkpoint(tmp_path, 1, model, cfg, {})
    auto = transformers.AutoModelForCausalLM if cfg.kind == "gpt2" else transformers.AutoModelForMaskedLM
    hf = auto.from_pretrained(path).eval()
    x = torch.randint(0, cfg.vocab_size, (2, 10))
    assert torch.equal(hf(x).logits, model(x).logits)


def test_corrupted_weights_are_detected(tmp_path):
    cfg = CONFIGS[0]
    path = save_checkpoint(tmp_path, 1, build_model(cfg), cfg, {})
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CurriculensError, match="sha256"):
        load_checkpoint(path)


def test_config_mismatch_is_one_line(tmp_path):
    cfg = CONFIGS[0]
    path = save_checkpoint(tmp_path, 1, build_model(cfg), cfg, {})
    with pytest.raises(CurriculensError, match="config mismatch"):
        load_checkpoint(path, expected=MLPConfig(d_in=12, width=33, depth=2))
    # a config.json edited to a different width no longer fits the weights
    conf = json.loads((path / "config.json").read_text())
    conf["width"] = 31
    (path / "config.json").write_text(json.dumps(conf))
    with pytest.raises(CurriculensError) as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value) and "do not fit" in str(err.value)


def test_missing_directory_and_weights(tmp_path):
    with pytest.raises(CurriculensError, match="not found"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "step_000000001").mkdir()
    with pytest.raises(CurriculensError, match="no model.safetensors"):
        load_checkpoint(tmp_path / "step_000000001")


def test_optimizer_state_round_trip(tmp_path):
    cfg = CONFIGS[0]
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, 12)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path, 1, model, cfg, {}, optimizer=opt)
    opt2 = torch.optim.Adam(build_model(cfg).parameters(), lr=1e-3)
    assert load_optimizer_state(path, opt2)
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert s1.keys() == s2.keys()
    for k in s1:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(torch.as_tensor(s1[k][name]), torch.as_tensor(s2[k][name]))


def test_no_partial_checkpoint_left_on_failure(tmp_path, monkeypatch):
    cfg = CONFIGS[0]
    import models.checkpoint as ck

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ck, "write_json", boom)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, 5, build_model(cfg), cfg, {})
    assert list(tmp_path.iterdir()) == []


def test_foreign_checkpoints_load_without_pickle_code(tmp_path):
    sd = {"w": torch.arange(4.0)}
    torch.save(sd, tmp_path / "ok.pt")
    assert torch.equal(load_foreign_torch(tmp_path / "ok.pt")["w"], sd["w"])

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CurriculensError, match="weights_only"):
        load_foreign_torch(tmp_path / "evil.pt")

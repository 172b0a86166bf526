"""Foreign weights: safe loading, the paper's MLP layouts, HF config acceptance."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from curriculens.errors import CurriculensError
from models.configs import MLPConfig
from models.foreign import canonical_hf_config, flat_state_dict, hf_model_config, mlp_state, read_weights
from models.mlp import ParityMLP


def _seq(d_in=6, width=5, depth=2):
    torch.manual_seed(0)
    layers = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 2))


@pytest.mark.parametrize("depth", [1, 2])
def test_sequential_mlp_maps_onto_parity_mlp(tmp_path, depth):
    seq = _seq(depth=depth)
    torch.save(seq.state_dict(), tmp_path / "s.pt")
    state = read_weights(tmp_path / "s.pt", "torch", "mlp")
    cfg, _ = mlp_state(torch.load(tmp_path / "s.pt", weights_only=True), "s.pt")
    assert cfg == MLPConfig(d_in=6, width=5, depth=depth, n_classes=2)
    model = ParityMLP(cfg)
    model.load_state_dict(state)
    x = torch.randn(7, 6)
    assert torch.allclose(model(x), seq(x))


def test_old_list_of_layer_dicts_and_nested_state_dict(tmp_path):
    seq = _seq(depth=1)
    layers = [{"weight": seq[0].weight, "bias": seq[0].bias}, {"weight": seq[2].weight, "bias": seq[2].bias}]
    torch.save(layers, tmp_path / "old.pt")
    torch.save({"state_dict": seq.state_dict(), "step": 3}, tmp_path / "nested.pt")
    a = read_weights(tmp_path / "old.pt", "torch", "mlp")
    b = read_weights(tmp_path / "nested.pt", "torch", "mlp")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_bad_mlp_and_non_tensor_files(tmp_path):
    with pytest.raises(CurriculensError, match="do not chain"):
        mlp_state(
            {
                "0.weight": torch.zeros(4, 3),
                "0.bias": torch.zeros(4),
                "2.weight": torch.zeros(2, 5),
                "2.bias": torch.zeros(2),
            },
            "x",
        )
    with pytest.raises(CurriculensError, match="state dict of tensors"):
        flat_state_dict({"a": 1}, "x")


def test_hf_config_acceptance():
    cfg = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "n_layer": 2,
        "transformers_version": "5.0",
        "_name_or_path": "x",
    }
    hf = hf_model_config(cfg, "c", supported={"GPT2LMHeadModel"})
    assert hf.architecture == "GPT2LMHeadModel" and hf.n_layers == 2 and hf.objective == "next"
    assert "transformers_version" not in hf.config and canonical_hf_config(cfg) == hf.config
    with pytest.raises(CurriculensError, match="Foo .*not supported"):
        hf_model_config({**cfg, "architectures": ["Foo"]}, "c", supported={"GPT2LMHeadModel"})
    with pytest.raises(CurriculensError, match="not a model class"):
        hf_model_config({**cfg, "architectures": ["NotInTransformers"]}, "c", supported={"NotInTransformers"})
    with pytest.raises(CurriculensError, match="names no architecture"):
        hf_model_config({"model_type": "gpt2"}, "c", supported=set())

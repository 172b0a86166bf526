"""Declared interfaces: the optional task hooks have defaults on ``Task`` (no ``hasattr``
probing), and every model config has ``n_layers`` and ``d_model``."""

import pytest
import torch

from curriculens.errors import CurriculensError
from models.configs import BertConfig, GPT2Config, MLPConfig, d_model, n_layers
from training.tasks import build_task
from training.tasks.base import Task


class Bare(Task):
    """A task that declares only what it must."""

    name = "bare"

    def train_batch(self, step, batch_size, seed):
        return {"x": torch.zeros(batch_size, 2)}

    def eval_batches(self, batch_size):
        yield {"x": torch.zeros(1, 2)}

    def model_input(self, batch, model_cfg):
        return batch["x"], {}

    def scored(self, logits, batch, model_cfg):
        return logits, torch.zeros(logits.shape[0], dtype=torch.long)


def test_a_task_gets_every_optional_hook_with_its_default(tmp_path):
    task = Bare(cfg=None)
    assert task.check_model(MLPConfig()) is None and task.check_source(tmp_path, MLPConfig()) is None
    assert task.support is None and task.objective is None
    with pytest.raises(NotImplementedError, match="no sentence length"):
        task.expected_length()


def test_parity_and_pcfg_declare_their_hooks():
    parity = build_task({"name": "parity", "n": 8, "k": 3, "n_eval": 16})
    assert parity.support == (0, 1, 2) and parity.objective is None
    with pytest.raises(CurriculensError, match="d_in"):
        parity.check_model(MLPConfig(d_in=9))
    pcfg = build_task({"name": "pcfg", "gen_levels": 4, "gen_seed": 1, "n_eval": 16, "objective": "next"})
    assert pcfg.objective == "next" and pcfg.support is None
    g = pcfg.grammar
    syms = g.level_symbols(pcfg.cfg.start_level)
    assert pcfg.expected_length() == pytest.approx(sum(g.expected_length(s) for s in syms) / len(syms))


@pytest.mark.parametrize(
    "cfg, layers, width",
    [
        (MLPConfig(depth=2, width=7), 2, 7),
        (GPT2Config(n_layer=3, n_head=2, head_dim=4), 3, 8),
        (BertConfig(num_hidden_layers=5, hidden_size=16, num_attention_heads=4), 5, 16),
    ],
)
def test_every_model_config_has_n_layers_and_d_model(cfg, layers, width):
    assert (cfg.n_layers, cfg.d_model) == (layers, width) == (n_layers(cfg), d_model(cfg))

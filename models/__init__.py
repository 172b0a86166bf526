"""Models and the checkpoint format.

- ``models.configs``: frozen model configs (``MLPConfig``, ``GPT2Config``, ``BertConfig``).
- ``models.mlp``: the parity MLP, a TransformerLens ``HookedRootModule``.
- ``models.hf``: GPT-2 / BERT built from local configs, wrapped by the TransformerLens 4 bridge.
- ``models.registry``: build any model from its config; get a hookable view of it.
- ``models.foreign``: foreign weights (``.bin``/``.pt`` with ``weights_only``, safetensors), their
  key layouts, and the model config of a foreign checkpoint (``curriculens import``).
- ``models.checkpoint``: ``step_<zero-padded>/`` directories with safetensors + JSON.
"""

from models.configs import BertConfig, GPT2Config, HFConfig, MLPConfig, ModelConfig, model_config_from_dict


def __getattr__(name: str):
    # torch-heavy names are imported on first use, so `import models.configs` stays cheap
    if name in ("build_model", "hookable", "logits_of"):
        from models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")


__all__ = [
    "BertConfig",
    "GPT2Config",
    "HFConfig",
    "MLPConfig",
    "ModelConfig",
    "build_model",
    "hookable",
    "logits_of",
    "model_config_from_dict",
]

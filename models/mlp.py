"""The parity MLP as a TransformerLens ``HookedRootModule``.

Hook names (``d`` = layer index, 0-based):

- ``blocks.{d}.hook_pre``   [batch, width]  pre-activation of hidden layer d
- ``blocks.{d}.hook_post``  [batch, width]  post-ReLU of hidden layer d
- ``hook_logits``           [batch, n_classes]

Footgun: the input is float in {-1, +1}, not the {0, 1} token ids the Transformer takes.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from models.configs import MLPConfig


class MLPBlock(nn.Module):
    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d_in, d_out)
        self.hook_pre = HookPoint()  # [batch, width]
        self.hook_post = HookPoint()  # [batch, width]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hook_post(torch.relu(self.hook_pre(self.fc(x))))


class ParityMLP(HookedRootModule):
    """ReLU MLP with PyTorch's default init; ``forward(x [batch, d_in]) -> logits [batch, n_classes]``."""

    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dims = [cfg.d_in] + [cfg.width] * cfg.depth
        self.blocks = nn.ModuleList(MLPBlock(a, b) for a, b in pairwise(dims))
        self.unembed = nn.Linear(dims[-1], cfg.n_classes)
        self.hook_logits = HookPoint()  # [batch, n_classes]
        self.setup()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.to(self.unembed.weight.dtype)
        for block in self.blocks:
            h = block(h)
        return self.hook_logits(self.unembed(h))

    def output_logits(self, x: torch.Tensor, work: list | None = None) -> torch.Tensor:
        """``forward(x)``'s logits [batch, n_classes] for callers that need only the output
        (the Fourier probe's 100,000 inputs): the same ``F.linear`` arithmetic (``addmm``, as
        ``F.linear`` runs it for a 2-D input) without the hook points and with the ReLU in
        place, bit for bit the forward's numbers (tested). No hooks fire; the in-place ReLU
        needs no-grad / inference mode.

        ``work``: a list the caller keeps across batches; the hidden layers are written into
        its two [rows, width] buffers (grown when a batch is larger), so a stream of batches
        allocates (and page-faults) them once instead of once per batch per layer. The
        returned logits are a fresh tensor."""
        h = x.to(self.unembed.weight.dtype)
        for d, block in enumerate(self.blocks):
            w, b = block.fc.weight, block.fc.bias
            if work is None or b is None:
                h = nn.functional.linear(h, w, b).relu_()
                continue
            while len(work) < 2:
                work.append(torch.empty(0, device=w.device, dtype=w.dtype))
            buf = work[d % 2]
            if buf.shape[0] < h.shape[0] or buf.shape[1:] != (w.shape[0],):
                buf = work[d % 2] = torch.empty(h.shape[0], w.shape[0], device=w.device, dtype=w.dtype)
            h = torch.addmm(b, h, w.t(), out=buf[: h.shape[0]]).relu_()
        return nn.functional.linear(h, self.unembed.weight, self.unembed.bias)

    def site_names(self) -> list[str]:
        """Every hook name, in forward order."""
        names = []
        for d in range(len(self.blocks)):
            names += [f"blocks.{d}.hook_pre", f"blocks.{d}.hook_post"]
        return names + ["hook_logits"]

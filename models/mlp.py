"""The parity MLP as a TransformerLens ``HookedRootModule``.

Hook names (``d`` = layer index, 0-based):

- ``blocks.{d}.hook_pre``   [batch, width]  pre-activation of hidden layer d
- ``blocks.{d}.hook_post``  [batch, width]  post-ReLU of hidden layer d
- ``hook_logits``           [batch, n_classes]

Footgun: the input is float in {-1, +1}, not the {0, 1} token ids the Transformer takes.

Layout: the first layer's weight ``blocks.0.fc.weight`` [width, d_in] is stored input-major
(its transpose is contiguous: strides ``(1, width)``). Its forward ``x @ W.T`` and gradient
``x.T @ dpre`` then run as plain GEMMs with a long output row; at the parity demo's (60, 8000)
the gradient product takes 0.37 ms instead of 0.49 ms, with the same bits (tested). Values,
shapes and saved files are unchanged (checkpoints are written contiguous); code that needs a
contiguous tensor calls ``.contiguous()`` (``.view`` on it raises).
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from curriculens.constants import FORWARD_HIDDEN_FLOATS, MARGIN_HIDDEN_UNITS
from models.configs import MLPConfig


def rows_that_fit(width: int, multiple: int) -> int:
    """Rows of a streaming forward: the largest multiple of ``multiple`` (one at least) whose
    [rows, width] hidden layer holds at most ``constants.FORWARD_HIDDEN_FLOATS`` floats."""
    return multiple * max(1, FORWARD_HIDDEN_FLOATS // (multiple * max(width, 1)))


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
        first = self.blocks[0].fc
        # input-major storage of the first layer (module docstring): same values, same shape
        first.weight = nn.Parameter(first.weight.detach().t().contiguous().t())
        self.unembed = nn.Linear(dims[-1], cfg.n_classes)
        self.hook_logits = HookPoint()  # [batch, n_classes]
        self.setup()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.to(self.unembed.weight.dtype)
        for block in self.blocks:
            h = block(h)
        return self.hook_logits(self.unembed(h))

    def output_logits(self, x: torch.Tensor, work: list | None = None, hidden: bool = False):
        """``forward(x)``'s logits [batch, n_classes] for callers that need only the output
        (the Fourier probe's 100,000 inputs): the same ``F.linear`` arithmetic (``addmm``, as
        ``F.linear`` runs it for a 2-D input) without the hook points and with the ReLU in
        place, bit for bit the forward's numbers (tested). No hooks fire; the in-place ReLU
        needs no-grad / inference mode.

        ``work``: a list the caller keeps across batches; the hidden layers are written into
        its two [rows, width] buffers (grown when a batch is larger), so a stream of batches
        allocates (and page-faults) them once instead of once per batch per layer. The
        returned logits are a fresh tensor.

        ``hidden``: return ``(logits, last hidden post-ReLU [batch, width])`` instead; that
        hidden tensor is a view of ``work`` (valid until its next use) when ``work`` is given.

        With ``work`` and without ``hidden``, a batch whose widest hidden layer would hold more
        than ``constants.FORWARD_HIDDEN_FLOATS`` runs in row chunks that fit it (a GEMM's output
        rows do not depend on the rows beside them, so the logits are the same; at the parity
        teacher's (60, 8000) 256-row chunks take about 3/4 of the time of one 1024-row GEMM)."""
        n = x.shape[0]
        if work is not None and not hidden:
            rows = self._chunk_rows()
            if n > rows:
                return torch.cat([self.output_logits(x[i : i + rows], work) for i in range(0, n, rows)])
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
        logits = nn.functional.linear(h, self.unembed.weight, self.unembed.bias)
        return (logits, h) if hidden else logits

    def class1_margin(
        self, x: torch.Tensor, work: list | None = None, hidden_out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``logit_1 - logit_0`` [batch] of a two-class MLP: p(class 1) = sigmoid(margin) =
        softmax(logits)[:, 1], and softmax([0, margin] / tau) = softmax(logits / tau): the
        Fourier probe's p(x) (``probes.tasks.parity.maths``) and, on CPU, a two-class MLP
        teacher's soft targets (``training.teachers``).

        The last hidden layer is computed ``constants.MARGIN_HIDDEN_UNITS`` units at a time
        ([batch, 2000] blocks that stay in cache) and each block's ReLU output is multiplied by
        its slice of ``w_1 - w_0`` and accumulated, plus ``b_1 - b_0``: no [batch, width]
        hidden layer is written and the output layer's [rows, 2] GEMM (a fifth of the first
        layer's speed at width 8000) is skipped; 0.67-0.80x the time of ``output_logits`` on
        the parity teachers (``benchmarks/bench_teacher_forward.py``). Not the forward's bits:
        the margin differs from the difference of the two logits by float32 rounding (about
        1e-7 of the logits' size). Deterministic for the same rows; a row's value can depend
        on the rows around it (a matrix-vector product computes a call's last rows apart when
        their count is not a multiple of 8), so callers that compare runs call it on the same
        row blocks. No hooks fire; needs no-grad / inference mode.

        ``work``: a list kept across calls for the block buffer. ``hidden_out`` [batch, width]:
        the last hidden layer post-ReLU is also copied there (curriculum extraction's teacher),
        the margin's numbers unchanged."""
        if self.cfg.n_classes != 2:
            raise ValueError(f"class1_margin needs two classes, not {self.cfg.n_classes}")
        w2, b2 = self.unembed.weight, self.unembed.bias
        h = x.to(w2.dtype)
        for block in self.blocks[:-1]:  # earlier hidden layers whole (depth > 1)
            h = nn.functional.linear(h, block.fc.weight, block.fc.bias).relu_()
        w, b = self.blocks[-1].fc.weight, self.blocks[-1].fc.bias
        n, width = h.shape[0], w.shape[0]
        units = min(MARGIN_HIDDEN_UNITS, width)
        if work is None:
            work = []
        if not work or work[0].dim() != 1 or work[0].numel() < n * units or work[0].dtype != h.dtype:
            work[:] = [torch.empty(n * units, dtype=h.dtype, device=h.device)]
        v = w2[1] - w2[0]
        margin = torch.zeros(n, dtype=h.dtype, device=h.device)
        for j in range(0, width, units):
            k = min(units, width - j)
            hb = work[0][: n * k].view(n, k)  # contiguous whatever k
            if b is None:
                torch.mm(h, w[j : j + k].t(), out=hb)
            else:
                torch.addmm(b[j : j + k], h, w[j : j + k].t(), out=hb)
            margin.addmv_(hb.relu_(), v[j : j + k])
            if hidden_out is not None:
                hidden_out[:, j : j + k].copy_(hb)
        return margin if b2 is None else margin.add_(b2[1] - b2[0])

    def _chunk_rows(self) -> int:
        """Rows per streaming forward chunk (``output_logits``): a multiple of 32, at least 32."""
        return rows_that_fit(self.cfg.width, 32)

    def ce_grads(self, x: torch.Tensor, targets: torch.Tensor, work: dict, sgd_lr: float | None = None) -> torch.Tensor:
        """``F.cross_entropy(self(x), targets)`` (mean over the batch) and its backward,
        hand-written: returns the loss (a 0-d tensor, no graph) and sets every parameter's
        ``.grad`` to what ``loss.backward()`` would leave after ``zero_grad(set_to_none=True)``,
        bit for bit (the same ATen ops autograd runs: ``addmm``, ``relu``, ``log_softmax``,
        ``nll_loss`` forward and backward, ``mm`` for the weight and input gradients,
        ``threshold_backward``, ``sum`` over the batch for the biases; tested). Hooks do not
        fire (callers use it only for plain training, where none are attached).

        ``x [B, d_in]``, ``targets [B]`` int64. ``work``: a dict the caller keeps across steps;
        the hidden activations, their gradients and the ``.grad`` tensors live in it and are
        reused (written with ``out=``), so a step allocates only its few small outputs. The
        grads are therefore overwritten by the next call: step the optimizer before it.

        ``sgd_lr``: apply plain SGD (``p -= sgd_lr * grad``) here instead of writing the grads:
        each weight's update is one ``addmm_`` (``alpha = -sgd_lr``) into the weight, each
        bias's an ``add_`` of its batch sum, every ``.grad`` is left None (an optimizer step
        that follows skips them). It saves writing and re-reading the first layer's gradient:
        the parity demo teacher's step takes 0.85x the time (``benchmarks.bench_teacher_step``).
        Not ``torch.optim``'s bits: the fused GEMM rounds the update once where
        gradient-then-``add_`` rounds twice (last-bit differences that a long run carries into
        different weights)."""
        if self.unembed.bias is None or any(b.fc.bias is None for b in self.blocks):
            raise ValueError("ce_grads needs biases on every layer")
        layers = [(b.fc.weight, b.fc.bias) for b in self.blocks] + [(self.unembed.weight, self.unembed.bias)]
        h = x.to(layers[0][0].dtype)
        n = h.shape[0]
        key = (n, h.dtype, h.device)
        if work.get("key") != key:
            work.clear()
            work["key"] = key
            work["h"] = [torch.empty(n, w.shape[0], dtype=w.dtype, device=w.device) for w, _ in layers[:-1]]
            work["dh"] = [torch.empty(n, w.shape[0], dtype=w.dtype, device=w.device) for w, _ in layers[:-1]]
            work["gb"] = [torch.empty_like(b) for _, b in layers]
        if sgd_lr is None and "gw" not in work:  # the fused update writes no weight gradient
            work["gw"] = [torch.empty_like(w) for w, _ in layers]
        hs = [h]
        with torch.no_grad():
            for (w, b), buf in zip(layers[:-1], work["h"], strict=True):
                h = torch.addmm(b, h, w.t(), out=buf).relu_()
                hs.append(h)
            w, b = layers[-1]
            logits = torch.addmm(b, h, w.t())
            logp = torch.log_softmax(logits, 1)
            loss, total_weight = torch.ops.aten.nll_loss_forward(logp, targets, None, 1, -100)
            one = torch.ones((), dtype=loss.dtype, device=loss.device)
            grad = torch.ops.aten.nll_loss_backward(one, logp, targets, None, 1, -100, total_weight)
            grad = torch.ops.aten._log_softmax_backward_data(grad, logp, 1, logits.dtype)
            for i in range(len(layers) - 1, -1, -1):
                (w, b), gb = layers[i], work["gb"][i]
                torch.sum(grad, 0, keepdim=True, out=gb.view(1, -1))
                dh = None
                if i > 0:  # the input's gradient, from the weight before its update
                    dh = torch.mm(grad, w, out=work["dh"][i - 1])
                if sgd_lr is None:
                    gw = work["gw"][i]
                    if gw.t().is_contiguous():  # the input-major first layer: [d_in, width] out
                        torch.mm(hs[i].t(), grad, out=gw.t())
                    else:
                        torch.mm(grad.t(), hs[i], out=gw)
                    w.grad, b.grad = gw, gb
                else:
                    if w.t().is_contiguous():
                        w.t().addmm_(hs[i].t(), grad, alpha=-sgd_lr)
                    else:
                        w.addmm_(grad.t(), hs[i], alpha=-sgd_lr)
                    b.add_(gb, alpha=-sgd_lr)
                    w.grad = b.grad = None
                if dh is not None:
                    grad = torch.ops.aten.threshold_backward.grad_input(dh, hs[i], 0, grad_input=dh)
        return loss

    def site_names(self) -> list[str]:
        """Every hook name, in forward order."""
        names = []
        for d in range(len(self.blocks)):
            names += [f"blocks.{d}.hook_pre", f"blocks.{d}.hook_post"]
        return names + ["hook_logits"]

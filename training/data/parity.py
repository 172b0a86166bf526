"""(n, k)-sparse parity data, as in the paper.

x ~ U{-1, +1}^n; chi_S(x) = prod_{i in S} x_i; label y = 0 if chi_S(x) = +1 else 1.
Transformer tokens are (1 - x) / 2 (so +1 -> 0, -1 -> 1) and y = XOR of the support tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def sample_pm1(n_rows: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """[n_rows, n] float32 in {-1, +1}, uniform i.i.d."""
    bits = torch.randint(0, 2, (n_rows, n), generator=generator, dtype=torch.int8)
    return (1 - 2 * bits).to(torch.float32)


def monomial(x: torch.Tensor, coords: Sequence[int]) -> torch.Tensor:
    """chi_A(x) = prod_{i in A} x_i for x [N, n] in {-1, +1}; returns [N] (1 for A empty)."""
    if len(coords) == 0:
        return torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    return x[:, list(coords)].prod(dim=1)


def parity_labels(x: torch.Tensor, support: Sequence[int]) -> torch.Tensor:
    """[N] int64: 0 where chi_S(x) = +1, 1 where chi_S(x) = -1."""
    return (monomial(x, support) < 0).to(torch.int64)


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """{-1, +1} -> token ids {1, 0} (int64), the paper's Transformer encoding."""
    return ((1 - x) / 2).to(torch.int64)

"""Fourier correlations of a parity model's output with low-degree monomials (paper section 3.1).

For a monomial chi_A(x) = prod_{i in A} x_i on x in {-1, +1}^n and the model's class-1
probability p(x) (the probability that chi_S(x) = -1):

    Corr(A) = | mean_x [ chi_A(x) * p(x) ] |

over N fresh, seeded inputs x ~ U{-1, +1}^n (or over an explicit input set: pass the whole
hypercube to get the exact Fourier coefficient |p_hat(A)|). The signed mean is kept in the
row's ``extra["signed"]``.

Monomials, for every degree d = 1 .. k-1 (the paper does not compute d = k):

- in-support: every d-subset A of the support S (all C(k, d));
- off-support: ``n_off`` (default 100) seeded random d-subsets of {0 .. n-1}, each drawn
  without replacement and rejected only if it lies inside S, as in the paper, so an
  off-support monomial **may partially overlap S** (``extra["disjoint"]`` says whether it is
  disjoint from S). Unlike the paper's code, the list has no duplicates; when fewer than
  ``n_off`` such subsets exist, all of them are taken (sorted).

Noise: the estimator does not centre p, so each coefficient has sampling noise
sd = RMS(p) / sqrt(N) (``sampling_noise``; RMS(p) = sqrt(mean p^2)): about 5e-3 at N = 20,000
and 2.2e-3 at the paper's N = 100,000 (the default) for a model that has learnt the parity
(RMS(p) ~ 0.71), 3.5e-3 / 1.6e-3 at chance (p ~ 0.5). Rows carry it in ``extra["noise"]``;
the summary's appearance rule requires a rise above it (``probes.summary``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from curriculens import constants as C
from curriculens.seeding import FOURIER_MONOMIALS, torch_generator
from models.configs import ModelConfig
from models.mlp import rows_that_fit
from models.registry import output_logits
from probes.store import ResultRow
from training.data.parity import parity_labels
from training.tasks.base import Task

FOURIER_SITE = "output"
FOURIER_METRIC = "corr"


@dataclass(frozen=True)
class Monomial:
    """chi_A for the sorted coordinate tuple ``coords``; ``in_support`` if A is inside S."""

    coords: tuple[int, ...]
    in_support: bool
    disjoint: bool

    @property
    def degree(self) -> int:
        return len(self.coords)

    @property
    def feature(self) -> str:
        """The ``feature`` column: sorted coordinates joined by ``_`` (``"0_3"``)."""
        return "_".join(str(i) for i in self.coords)


def in_support_monomials(support: Sequence[int], degree: int) -> list[Monomial]:
    """All C(k, degree) monomials inside ``support``, in lexicographic order."""
    s = sorted(support)
    return [Monomial(tuple(a), True, False) for a in itertools.combinations(s, degree)]


def off_support_monomials(
    n: int, support: Sequence[int], degree: int, count: int, generator: torch.Generator
) -> list[Monomial]:
    """``count`` distinct random ``degree``-subsets of range(n) that are not inside ``support``.

    Subsets may partially overlap the support (the paper's rule). If at most ``count`` such
    subsets exist, all are returned in lexicographic order; otherwise they are drawn with
    ``generator`` (rejection sampling) and returned in draw order.
    """
    s = set(support)
    pool = math.comb(n, degree) - math.comb(len(s), degree)
    if pool <= count:
        return [
            Monomial(a, False, not (set(a) & s)) for a in itertools.combinations(range(n), degree) if not set(a) <= s
        ]
    seen: set[tuple[int, ...]] = set()
    out: list[Monomial] = []
    while len(out) < count:
        a = tuple(sorted(torch.randperm(n, generator=generator)[:degree].tolist()))
        if set(a) <= s or a in seen:
            continue
        seen.add(a)
        out.append(Monomial(a, False, not (set(a) & s)))
    return out


def monomial_set(
    n: int, support: Sequence[int], degrees: Iterable[int], n_off: int = 100, seed: int = 0
) -> list[Monomial]:
    """In-support then off-support monomials of each degree; the same for a given seed."""
    g = torch_generator(FOURIER_MONOMIALS, seed)
    out: list[Monomial] = []
    for d in degrees:
        out += in_support_monomials(support, d)
        out += off_support_monomials(n, support, d, n_off, g)
    return out


def _indicator(n: int, monomials: Sequence[Monomial], device) -> torch.Tensor:
    """[n, M] float32 0/1 matrix: column j marks the coordinates of monomial j."""
    ind = torch.zeros(n, len(monomials), dtype=torch.float32, device=device)
    for j, m in enumerate(monomials):
        ind[list(m.coords), j] = 1.0
    return ind


def _check_pm1(x: torch.Tensor) -> None:
    if x.numel() and not bool((x.abs() == 1).all()):
        raise ValueError("monomial_values needs x in {-1, +1}")


def _parity(bits: torch.Tensor, ind: torch.Tensor) -> torch.Tensor:
    """chi as int8 ±1 [c, M] from bits [c, n] float 0/1: (-1)^(bits @ ind), the exponent's
    parity read from the low bit of the (exact, small) integer counts."""
    odd = (bits @ ind).to(torch.int32).bitwise_and_(1).to(torch.int8)
    return 1 - 2 * odd


def monomial_values(x: torch.Tensor, monomials: Sequence[Monomial]) -> torch.Tensor:
    """chi_A(x) for every monomial: x [N, n] in {-1, +1} -> [N, M] (same dtype as x).

    One matrix product for all monomials: with bits b = (x < 0), chi_A(x) = (-1)^(b . 1_A), and
    the counts b @ 1_A are small integers, exact in float32. Values other than ±1 are an error.
    """
    _check_pm1(x)
    ind = _indicator(x.shape[1], monomials, x.device)
    return _parity((x < 0).to(torch.float32), ind).to(x.dtype)


def parity_matrix(
    x: torch.Tensor, monomials: Sequence[Monomial], chunk: int = 8192, dtype: torch.dtype = torch.int8
) -> torch.Tensor:
    """chi_A(x) for every monomial as ±1 [N, M] of ``dtype``, built ``chunk`` rows at a time
    (peak float memory chunk x M x 4 bytes). int8: N x M bytes (40 MB at N = 100,000, M = 400;
    ``coefficients`` converts it in cache-sized chunks, faster than reading a float64 copy 8x
    the size). Reuse it for every checkpoint: ``coefficients(p, chi)``."""
    _check_pm1(x)
    ind = _indicator(x.shape[1], monomials, x.device)
    out = torch.empty(x.shape[0], len(monomials), dtype=dtype, device=x.device)
    for i in range(0, x.shape[0], chunk):
        out[i : i + chunk] = _parity((x[i : i + chunk] < 0).to(torch.float32), ind)
    return out


def coefficients(p: torch.Tensor, chi: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """mean_x[chi_A(x) p(x)] for every column of ``chi`` [N, M] (±1, int8 or float64) and p [N]
    -> [M] float64 CPU: one matrix-vector product per ``chunk`` rows, accumulated in float64
    (the same sums for either dtype of chi). An int8 chi is converted a chunk at a time into
    one reused float64 buffer that stays in cache (2,048 x 400 x 8 bytes = 6.4 MB): at
    N = 100,000 and M = 400 that takes 12 ms, against 29 ms for one pass over a float64 chi
    (320 MB read from memory) and 170 ms for a fresh 16,384-row conversion per chunk."""
    if p.shape[0] != chi.shape[0]:
        raise ValueError(f"p has {p.shape[0]} rows but chi has {chi.shape[0]}")
    p = p.to(chi.device, torch.float64)
    total = torch.zeros(chi.shape[1], dtype=torch.float64, device=chi.device)
    buf = (
        None
        if chi.dtype == torch.float64
        else torch.empty(min(chunk, chi.shape[0]), chi.shape[1], dtype=torch.float64, device=chi.device)
    )
    for i in range(0, chi.shape[0], chunk):
        part = chi[i : i + chunk]
        if buf is not None:
            part = buf[: part.shape[0]].copy_(part)
        total += p[i : i + chunk] @ part
    return (total / max(chi.shape[0], 1)).cpu()


def fourier_coefficients(
    p: torch.Tensor, x: torch.Tensor, monomials: Sequence[Monomial], chunk: int = 8192
) -> torch.Tensor:
    """Signed empirical coefficients mean_x[chi_A(x) p(x)] -> [M] float64.

    ``p`` [N] and ``x`` [N, n] (±1) are paired row by row. With ``x`` = the whole hypercube
    {-1, +1}^n the result is the exact Fourier coefficient of p. Accumulated in float64, in
    chunks of ``chunk`` rows (memory stays bounded for any N).
    """
    if p.shape[0] != x.shape[0]:
        raise ValueError(f"p has {p.shape[0]} rows but x has {x.shape[0]}")
    total = torch.zeros(len(monomials), dtype=torch.float64)
    for i in range(0, x.shape[0], chunk):
        chi = parity_matrix(x[i : i + chunk], monomials, chunk)
        total += coefficients(p[i : i + chunk], chi) * chi.shape[0]
    return total / max(x.shape[0], 1)


def sampling_noise(p: torch.Tensor) -> float:
    """Standard error of each empirical coefficient mean_x[chi_A(x) p(x)] over N = len(p)
    random inputs: RMS(p) / sqrt(N) (chi_A^2 = 1; exact when the true coefficient is 0)."""
    n = int(p.shape[0])
    return float(p.double().pow(2).mean().sqrt()) / math.sqrt(n) if n else math.nan


def hypercube(n: int) -> torch.Tensor:
    """All 2^n points of {-1, +1}^n as float32 [2^n, n] (keep n small)."""
    bits = torch.tensor(list(itertools.product((1.0, -1.0), repeat=n)), dtype=torch.float32)
    return bits.reshape(-1, n)


def forward_rows(model_cfg: ModelConfig, batch_size: int) -> int:
    """Rows per forward for ``class1_probability``: ``batch_size``, or for an MLP narrower
    than ``FORWARD_HIDDEN_FLOATS / batch_size`` the multiple of it that fits
    (``models.mlp.rows_that_fit``; a (60, 50)
    student's 100,000 inputs then take 3 forwards instead of 391: the per-forward overhead, not
    its arithmetic, was its cost). Each output row is the same number whatever the rows around
    it (tested), so this changes no result."""
    width = getattr(model_cfg, "width", None)
    if model_cfg.takes_tokens or not width:
        return batch_size
    return rows_that_fit(width, batch_size)


@torch.no_grad()
def class1_probability(
    model: torch.nn.Module,
    model_cfg: ModelConfig,
    task: Task,
    x: torch.Tensor,
    support: Sequence[int],
    batch_size: int = C.DEFAULT_PROBE_BATCH,
    device: torch.device | None = None,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """p(x) = softmax(logits)[:, 1] at the task's scored position, for x [N, n] ±1 -> [N] float64 CPU.

    Only the output is computed where the model offers it (``output_logits``: no hooks, ReLU
    in place; the same numbers). A two-class MLP whose scored logits are its raw ones (the
    parity MLP) gives p = sigmoid(``class1_margin``) instead: the same quantity without the
    output layer's slow [rows, 2] GEMM, equal to the softmax of the forward's logits up to
    float32 rounding (about 1e-7 of the logits' size; docs/probe-sweep.md). ``labels``:
    chi_S(x) [N] if already known (the task's batch carries them), else computed per batch.
    ``batch_size``: rows per forward, raised for a narrow MLP (``forward_rows``)."""
    device = device or next(model.parameters()).device
    out, work = [], []  # work: the MLP's hidden-layer buffers, reused by every batch
    batch_size = forward_rows(model_cfg, batch_size)
    margin = None
    for i in range(0, x.shape[0], batch_size):
        xb = x[i : i + batch_size]
        yb = labels[i : i + batch_size] if labels is not None else parity_labels(xb, support)
        batch = {"x": xb.to(device), "y": yb.to(device)}
        inp, kw = task.model_input(batch, model_cfg)
        if margin is None:
            margin = task.scores_by_margin(model, batch, model_cfg)
        if margin:
            out.append(torch.sigmoid(model.class1_margin(inp, work)).double().cpu())
            continue
        logits, _ = task.scored(output_logits(model, inp, kw, work), batch, model_cfg)
        out.append(torch.softmax(logits.float(), dim=-1)[:, 1].double().cpu())
    return torch.cat(out)


def correlation_rows(
    coefs: torch.Tensor,
    monomials: Sequence[Monomial],
    n_samples: int,
    probe: str = "fourier",
    noise: float | None = None,
) -> list[ResultRow]:
    """One ``corr`` row per monomial: value |coef|, degree, in_support; extra: signed, disjoint,
    n_samples and, when given, ``noise`` (the coefficient's sampling sd, ``sampling_noise``)."""
    more = {} if noise is None else {"noise": float(noise)}
    return [
        ResultRow(
            probe=probe,
            feature=m.feature,
            site=FOURIER_SITE,
            metric=FOURIER_METRIC,
            value=abs(float(c)),
            degree=m.degree,
            in_support=m.in_support,
            extra={"signed": float(c), "disjoint": m.disjoint, "n_samples": int(n_samples), **more},
        )
        for c, m in zip(coefs.tolist(), monomials, strict=True)
    ]


def fourier_rows_for(
    predict: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    monomials: Sequence[Monomial],
    probe: str = "fourier",
) -> list[ResultRow]:
    """Rows for any ``predict(x [N, n]) -> p [N]`` on an explicit input set ``x`` (tests, hypercube)."""
    p = predict(x)
    return correlation_rows(fourier_coefficients(p, x, monomials), monomials, x.shape[0], probe)

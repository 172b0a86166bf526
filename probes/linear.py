"""Logistic-regression probes with a shuffled-label control (Hewitt & Liang 2019 style).

``fit_linear_probes(features [N, D], labels [N, M], cfg)`` fits one probe per label column
and returns, for each, the held-out accuracy, the train accuracy, the majority-class rate, and
the accuracy of the same probe trained and tested on **shuffled** labels (the column's labels
permuted over all N examples with a seeded permutation, so the control has the same class
balance and the same features but no relation between them). ``selectivity = test_acc -
control_acc``: a probe that decodes a feature beats its control; a probe that memorises does not.

Protocol (fixed, so values are comparable along a trajectory):

1. Optionally keep a seeded random subset of ``max_features`` feature columns (neurons) when
   D is larger (0 = keep all). A probe on a neuron subset is a restricted linear probe; it keeps
   wide layers (a width-50,000 teacher) affordable. Recorded in ``ProbeFit.n_features``.
2. Split with a seeded permutation: the first ``test_frac`` of it is the test set.
3. Standardise each feature with the train mean and std (a constant feature is left at 0).
4. Fit L2 (``l1_ratio=0``) or elastic-net logistic regression minimising
   ``mean_i CE_i + ||W||^2 / (2 C n_train)``, scikit-learn's objective (unpenalised intercept).

Backends:

- ``"torch"`` (default): every column (and its control) solved as an independent problem, all
  batched together by ``probes.logreg.fit_logistic`` (per-column Newton-CG: each column its own
  steps and stopping). Binary columns use the sigmoid model, like scikit-learn; multi-class
  columns the multinomial one (classes absent from a column's train split are masked). L2 only;
  ``l1_ratio > 0`` falls back to scikit-learn. Runs on ``cfg.device`` (CPU or CUDA, same code).
  Same objective as scikit-learn, so the same solution up to the stopping tolerance (tested:
  coefficients within 0.02, held-out accuracy within 0.02).
- ``"sklearn"``: ``LogisticRegression(C=C, l1_ratio=l1_ratio)`` per column (no deprecated
  ``penalty=``), solver lbfgs (saga when ``l1_ratio > 0``).

``converged`` is False when scikit-learn raised a ConvergenceWarning, or when the torch fit
stopped at ``max_iter`` with a column's largest gradient component above ``tol``; ``n_iter``
is the solver's iteration count (Newton iterations for torch, lbfgs iterations for sklearn).

Reuse across checkpoints: ``prepare_targets`` computes the feature-independent part (split,
control permutations, encodings, neuron subset) once; ``WarmStart`` carries a solution from
one checkpoint's fit to the next (the objective is strictly convex, so a warm start changes
only how fast the fit stops, not where).

A column whose train split holds one class gets a constant predictor (``converged`` True).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from curriculens.errors import CurriculensError
from curriculens.seeding import LINEAR_SPLIT, LINEAR_TARGETS, torch_generator
from probes.logreg import fit_logistic

BACKENDS = ("torch", "sklearn")


@dataclass(frozen=True)
class LinearProbeConfig:
    """Args:
    C: inverse L2 strength (scikit-learn's C; default 1.0).
    l1_ratio: 0 = L2 (default); >0 elastic net (scikit-learn saga).
    test_frac: held-out fraction.
    max_iter: optimiser iterations.
    tol: gradient tolerance (max |component|) for convergence.
    seed: seeds the split, the control permutations and the feature subset.
    backend: ``"torch"`` | ``"sklearn"``.
    max_features: keep at most this many feature columns (seeded subset); 0 = all.
    device: where the torch backend fits (``"cpu"`` or ``"cuda"``).
    """

    C: float = 1.0
    l1_ratio: float = 0.0
    test_frac: float = 0.25
    max_iter: int = 100
    tol: float = 1e-4
    seed: int = 0
    backend: str = "torch"
    max_features: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise CurriculensError(f"unknown linear probe backend {self.backend!r} (one of {', '.join(BACKENDS)})")
        if not 0.0 < self.test_frac < 1.0:
            raise CurriculensError("linear probe test_frac must be in (0, 1)")
        if self.C <= 0:
            raise CurriculensError("linear probe C must be positive")
        if not 0.0 <= self.l1_ratio <= 1.0:
            raise CurriculensError("linear probe l1_ratio must be in [0, 1]")
        if self.max_iter <= 0 or self.max_features < 0:
            raise CurriculensError("linear probe max_iter must be positive and max_features >= 0")


@dataclass(frozen=True)
class ProbeFit:
    """One fitted probe. Accuracies are fractions of the train / test split."""

    test_acc: float
    train_acc: float
    majority: float
    control_acc: float
    control_train_acc: float
    converged: bool
    control_converged: bool
    n_train: int
    n_test: int
    n_features: int
    n_iter: int = 0
    control_n_iter: int = 0

    @property
    def selectivity(self) -> float:
        return self.test_acc - self.control_acc

    def metric_values(self) -> dict[str, float]:
        """The values every linear probe reports, keyed by the ``metric`` column."""
        return {
            "test_acc": self.test_acc,
            "control_acc": self.control_acc,
            "majority": self.majority,
            "selectivity": self.selectivity,
        }


def split_indices(n: int, test_frac: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) index tensors from one seeded permutation of range(n); both non-empty."""
    perm = torch.randperm(n, generator=torch_generator(LINEAR_SPLIT, seed))
    n_test = min(max(1, int(round(n * test_frac))), n - 1)
    return perm[n_test:], perm[:n_test]


def _encode(labels: torch.Tensor, train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per column, map labels to 0..K_m-1 by the train split's sorted classes (-1 if unseen).

    Returns (codes [N, M] int64, n_classes [M] int64).
    """
    n, m = labels.shape
    codes = torch.full((n, m), -1, dtype=torch.long)
    counts = torch.zeros(m, dtype=torch.long)
    for j in range(m):
        classes = torch.unique(labels[train, j])
        counts[j] = classes.numel()
        pos = torch.searchsorted(classes, labels[:, j].contiguous())
        pos_c = pos.clamp(max=classes.numel() - 1)
        codes[:, j] = torch.where(classes[pos_c] == labels[:, j], pos_c, torch.full_like(pos_c, -1))
    return codes, counts


def _fit_torch(x: torch.Tensor, y: torch.Tensor, k: torch.Tensor, cfg: LinearProbeConfig, warm: WarmStart | None):
    """Batched per-column Newton-CG (``probes.logreg``). x [n, D] standardised, y [n, M] codes,
    k [M] (>= 2) classes per column. Returns (predict(x) -> codes [*, M], converged [M], n_iter [M])."""
    device = torch.device(cfg.device)
    init = warm.solution if warm is not None else None
    sol = fit_logistic(x.to(device), y, k, C=cfg.C, tol=cfg.tol, max_iter=cfg.max_iter, init=init)
    if warm is not None:
        warm.solution = (sol.w, sol.b)
    k_dev = k.to(device)

    def predict(xe: torch.Tensor) -> torch.Tensor:
        return sol.predict(xe.to(device), k_dev).cpu()

    return predict, sol.converged, sol.n_iter


def _fit_sklearn(x: torch.Tensor, y: torch.Tensor, cfg: LinearProbeConfig):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    xn = x.double().cpu().numpy()
    models, converged, n_iter = [], [], []
    for j in range(y.shape[1]):
        yj = y[:, j].cpu().numpy()
        clf = LogisticRegression(
            C=cfg.C,
            l1_ratio=cfg.l1_ratio,
            solver="lbfgs" if cfg.l1_ratio == 0 else "saga",
            max_iter=cfg.max_iter,
            tol=cfg.tol,
            random_state=cfg.seed,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            clf.fit(xn, yj)
        converged.append(not any(issubclass(c.category, ConvergenceWarning) for c in caught))
        n_iter.append(int(np.max(clf.n_iter_)))
        models.append(clf)

    def predict(xe: torch.Tensor) -> torch.Tensor:
        xe_n = xe.double().cpu().numpy()
        return torch.from_numpy(np.stack([mdl.predict(xe_n) for mdl in models], axis=1)).long()

    return predict, torch.tensor(converged), torch.tensor(n_iter)


@dataclass
class WarmStart:
    """A mutable slot for warm-starting the torch backend: holds the last solution (w, b) of
    one probe set (same label columns, same feature width); ``fit_linear_probes`` reads it as
    the initial point (when the shapes fit) and overwrites it with its solution. ``step``: the
    checkpoint step the solution was fitted at (set by the sweep; None outside a sweep)."""

    solution: tuple[torch.Tensor, torch.Tensor] | None = None
    step: int | None = None


@dataclass(frozen=True)
class ProbeTargets:
    """Everything about a probe set that does not depend on the features (compute it once,
    reuse it for every checkpoint): the split, the control labels, their encodings, and the
    feature subset. Built by ``prepare_targets``."""

    n: int
    m: int
    n_features_total: int
    cols: torch.Tensor | None  # kept feature columns (sorted) when subsetting, else None
    train: torch.Tensor
    test: torch.Tensor
    codes: torch.Tensor  # [N, 2M] real columns then controls
    k: torch.Tensor  # [2M] train classes per column
    majority: torch.Tensor  # [M]


def prepare_targets(
    labels: torch.Tensor, n_features_total: int, cfg: LinearProbeConfig = LinearProbeConfig()
) -> ProbeTargets:
    """The feature-independent part of ``fit_linear_probes`` for labels [N] or [N, M] and a
    feature width ``n_features_total`` (it decides the seeded neuron subset)."""
    y = labels.detach().cpu().long()
    if y.dim() == 1:
        y = y[:, None]
    n, m = y.shape
    if n < 4:
        raise CurriculensError("linear probe needs at least 4 examples")
    g = torch_generator(LINEAR_TARGETS, cfg.seed)
    cols = None
    if cfg.max_features and n_features_total > cfg.max_features:
        cols = torch.randperm(n_features_total, generator=g)[: cfg.max_features].sort().values
    # control labels: each column permuted over all N examples
    perms = torch.argsort(torch.rand(n, m, generator=g), dim=0)
    y_all = torch.cat([y, y.gather(0, perms)], dim=1)  # [N, 2M]: real then control
    train, test = split_indices(n, cfg.test_frac, cfg.seed)
    codes, k = _encode(y_all, train)
    majority = torch.empty(m)
    for j in range(m):
        tr_vals, tr_counts = torch.unique(y[train, j], return_counts=True)
        majority[j] = (y[test, j] == tr_vals[tr_counts.argmax()]).float().mean()
    return ProbeTargets(n, m, n_features_total, cols, train, test, codes, k, majority)


def fit_linear_probes(
    features: torch.Tensor,
    labels: torch.Tensor | ProbeTargets,
    cfg: LinearProbeConfig = LinearProbeConfig(),
    *,
    warm: WarmStart | None = None,
) -> list[ProbeFit]:
    """Fit one probe (and its shuffled-label control) per label column.

    Args:
        features: [N, D] activations (any float dtype; used as float32 on ``cfg.device``), or
            [N, max_features] when they are already the subset ``targets.cols`` of a wider site.
        labels: [N] or [N, M] integer class labels (any values; remapped per column), or the
            ``ProbeTargets`` prepared from them (reused across checkpoints).
        cfg: the protocol (see ``LinearProbeConfig``).
        warm: optional warm start slot (torch backend; see ``WarmStart``).

    Returns:
        M ``ProbeFit``s, in column order.
    """
    if features.dim() != 2:
        raise CurriculensError(f"linear probe features must be [N, D], got {tuple(features.shape)}")
    n, d = features.shape
    t = labels if isinstance(labels, ProbeTargets) else prepare_targets(labels, d, cfg)
    if t.n != n:
        raise CurriculensError(f"linear probe: {n} feature rows but {t.n} label rows")
    device = torch.device(cfg.device) if cfg.backend == "torch" else torch.device("cpu")
    x = features.detach().to(device, torch.float32)
    if t.cols is not None and d == t.n_features_total:
        x = x[:, t.cols.to(device)]
    elif d != (t.cols.numel() if t.cols is not None else t.n_features_total):
        raise CurriculensError(f"linear probe: features have {d} columns, the targets expect {t.n_features_total}")
    d = x.shape[1]
    m = t.m
    train, test = t.train.to(device), t.test.to(device)
    mu = x[train].mean(0)
    sd = x[train].std(0)
    sd = torch.where(sd > 1e-12, sd, torch.ones_like(sd))
    xs = (x - mu) / sd
    backend = cfg.backend if cfg.l1_ratio == 0 else "sklearn"
    fit_cols = (t.k >= 2).nonzero().flatten()  # a column with one train class predicts it (code 0)
    converged = torch.ones(2 * m, dtype=torch.bool)
    n_iter = torch.zeros(2 * m, dtype=torch.long)
    pred_tr = torch.zeros(t.train.numel(), 2 * m, dtype=torch.long)
    pred_te = torch.zeros(t.test.numel(), 2 * m, dtype=torch.long)
    if fit_cols.numel():
        codes_tr = t.codes[t.train][:, fit_cols]
        if backend == "torch":
            predict, conv, iters = _fit_torch(xs[train], codes_tr, t.k[fit_cols], cfg, warm)
        else:
            predict, conv, iters = _fit_sklearn(xs[train], codes_tr, cfg)
        converged[fit_cols] = conv
        n_iter[fit_cols] = iters
        pred_tr[:, fit_cols] = predict(xs[train])
        pred_te[:, fit_cols] = predict(xs[test])
    acc_tr = (pred_tr == t.codes[t.train]).float().mean(0)
    acc_te = (pred_te == t.codes[t.test]).float().mean(0)
    return [
        ProbeFit(
            test_acc=float(acc_te[j]),
            train_acc=float(acc_tr[j]),
            majority=float(t.majority[j]),
            control_acc=float(acc_te[m + j]),
            control_train_acc=float(acc_tr[m + j]),
            converged=bool(converged[j]),
            control_converged=bool(converged[m + j]),
            n_train=int(t.train.numel()),
            n_test=int(t.test.numel()),
            n_features=int(d),
            n_iter=int(n_iter[j]),
            control_n_iter=int(n_iter[m + j]),
        )
        for j in range(m)
    ]


def fit_linear_probe(
    features: torch.Tensor, labels: torch.Tensor, cfg: LinearProbeConfig = LinearProbeConfig()
) -> ProbeFit:
    """One probe: ``labels`` [N]."""
    return fit_linear_probes(features, labels.reshape(-1), cfg)[0]

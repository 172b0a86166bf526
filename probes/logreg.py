"""Batched L2 logistic regression: many independent probes solved at once by Newton-CG.

``fit_logistic(x [n, D], y [n, M], k [M])`` minimises, for every column j independently,

    mean_i CE(y_ij, softmax/sigmoid(x_i W_j + b_j)) + ||W_j||^2 / (2 C n)

which is scikit-learn's ``LogisticRegression(C=C)`` objective (unpenalised intercept; binary
columns use the sigmoid model with one weight vector, multi-class columns the multinomial one
with K_j weight vectors). The problem is strictly convex, so the solution is unique and equal
to scikit-learn's up to the stopping tolerance.

Every column takes its own steps: a truncated Newton (Newton-CG) iteration per column, the
Hessian-vector products of all active columns as two matrix products (``x @ V`` and
``x.T @ (s * u)``), per-column conjugate-gradient coefficients and stopping, and a per-column
Armijo backtracking line search that costs no extra matrix product (the line search moves
along ``x @ d``, which CG accumulates). Columns leave the batch as they converge.

Preconditioner: with ``x.T x / n = Q diag(lam) Q.T`` (one ``eigh`` per fit), column j's
Hessian is approximated by ``c_j x.T x / n + reg`` with c_j its mean curvature weight, applied as
``Q diag(1 / (c_j lam + reg)) Q.T`` (two more small products).

Convergence, per column: ``max |grad| <= tol`` (the gradient of the objective above, the same
test as scikit-learn's lbfgs ``gtol``), else ``max_iter`` Newton iterations. Warm starts:
``init=(W0, b0)`` from a previous solution with the same shapes.

No ``torch.optim`` (its first use imports ``torch._dynamo``, ~1.5 s) and no autograd.
Traps: ``x`` must be standardised (or at least well scaled) for the preconditioner to help;
padded classes (``k_j < K``) are masked with a large negative logit and their weights stay 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_NEG = -1e4  # logit of a padded (absent) class
_ARMIJO = 1e-4
_MAX_BACKTRACK = 30
_MAX_CG = 50


@dataclass
class LogisticSolution:
    """Weights of M fitted columns (on the standardised features the fit saw).

    Attributes:
        w: [D, M, K] weights (K = 1 when every column is binary: the sigmoid model).
        b: [M, K] intercepts.
        n_iter: [M] Newton iterations per column (0: the initial point already converged).
        converged: [M] bool, ``max |grad| <= tol`` at the returned point.
        grad_max: [M] ``max |grad|`` at the returned point.
    """

    w: torch.Tensor
    b: torch.Tensor
    n_iter: torch.Tensor
    converged: torch.Tensor
    grad_max: torch.Tensor

    @property
    def binary(self) -> bool:
        return self.w.shape[2] == 1

    def logits(self, x: torch.Tensor, k: torch.Tensor | None = None) -> torch.Tensor:
        """[N, M, K] logits of ``x`` [N, D] (padded classes masked when ``k`` is given)."""
        d, m, kk = self.w.shape
        z = (x.to(self.w) @ self.w.reshape(d, m * kk)).reshape(-1, m, kk) + self.b
        if k is not None and not self.binary:
            z = z + _class_mask(k.to(self.w.device), kk, self.w.dtype)
        return z

    def predict(self, x: torch.Tensor, k: torch.Tensor | None = None) -> torch.Tensor:
        """[N, M] class codes 0..k_j-1 for ``x`` [N, D]."""
        z = self.logits(x, k)
        if self.binary:
            return (z[..., 0] > 0).long()
        return z.argmax(-1)


def _class_mask(k: torch.Tensor, kk: int, dtype) -> torch.Tensor:
    valid = torch.arange(kk, device=k.device)[None, :] < k[:, None]
    return torch.zeros(k.shape[0], kk, dtype=dtype, device=k.device).masked_fill(~valid, _NEG)


class _Problem:
    """Loss, gradient and Hessian-vector products for a subset of columns (binary or multinomial)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, k: torch.Tensor, kk: int, reg: float):
        self.x = x  # [n, D]
        self.n = x.shape[0]
        self.reg = reg
        self.kk = kk
        self.binary = kk == 1
        if self.binary:
            self.target = y.to(x.dtype).unsqueeze(-1)  # [n, M, 1]
            self.mask = None
        else:
            self.target = torch.nn.functional.one_hot(y, kk).to(x.dtype)  # [n, M, K]
            self.mask = _class_mask(k, kk, x.dtype)  # [M, K]

    def xw(self, w: torch.Tensor) -> torch.Tensor:
        d, m, kk = w.shape
        return (self.x @ w.reshape(d, m * kk)).reshape(self.n, m, kk)

    def xtr(self, r: torch.Tensor) -> torch.Tensor:
        """x.T @ r for r [n, m, K] -> [D, m, K], divided by n."""
        n, m, kk = r.shape
        return (self.x.T @ r.reshape(n, m * kk)).reshape(-1, m, kk) / self.n

    def stats(self, z: torch.Tensor, cols: torch.Tensor):
        """Per-column loss [m] (without the penalty), residual p - y [n, m, K], probabilities."""
        tgt = self.target[:, cols]
        if self.binary:
            p = torch.sigmoid(z)
            ce = torch.nn.functional.softplus(z) - tgt * z
            return ce.sum((0, 2)) / self.n, p - tgt, p
        zm = z + self.mask[cols]
        logp = torch.log_softmax(zm, dim=-1)
        p = logp.exp()
        ce = -(tgt * logp).sum(-1)
        return ce.sum(0) / self.n, p - tgt, p

    def loss_only(self, z: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        tgt = self.target[:, cols]
        if self.binary:
            return (torch.nn.functional.softplus(z) - tgt * z).sum((0, 2)) / self.n
        logp = torch.log_softmax(z + self.mask[cols], dim=-1)
        return -(tgt * logp).sum((0, 2)) / self.n

    def curvature_apply(self, p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The per-example Hessian of the loss in the logits applied to ``u`` [n, m, K]."""
        if self.binary:
            return p * (1 - p) * u
        return p * (u - (p * u).sum(-1, keepdim=True))


def fit_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    k: torch.Tensor,
    *,
    C: float = 1.0,
    tol: float = 1e-4,
    max_iter: int = 100,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> LogisticSolution:
    """Fit M independent L2 logistic regressions on shared features.

    Args:
        x: [n, D] float features (standardised); the device and dtype of the fit.
        y: [n, M] int64 class codes 0..k_j-1 (binary columns: 0/1).
        k: [M] classes per column, each >= 2. All ``k == 2``: sigmoid model, else multinomial
            padded to K = max(k).
        C: scikit-learn's inverse regularisation strength (penalty ||W||^2 / (2 C n)).
        tol: convergence threshold on each column's max |gradient component|.
        max_iter: Newton iterations at most.
        init: optional warm start (w [D, M, K], b [M, K]); ignored when the shapes differ.

    Returns:
        ``LogisticSolution`` (on ``x``'s device).
    """
    device, dtype = x.device, x.dtype
    n, d = x.shape
    m = y.shape[1]
    y = y.to(device)
    k = k.to(device)
    kk = 1 if bool((k <= 2).all()) else int(k.max())
    reg = 1.0 / (C * n)
    prob = _Problem(x, y, k, kk, reg)
    w = torch.zeros(d, m, kk, dtype=dtype, device=device)
    b = torch.zeros(m, kk, dtype=dtype, device=device)
    if init is not None and tuple(init[0].shape) == (d, m, kk) and tuple(init[1].shape) == (m, kk):
        w = init[0].to(device, dtype).clone()
        b = init[1].to(device, dtype).clone()
    if not prob.binary:  # padded classes carry no weight
        valid = prob.mask == 0
        w = w * valid
        b = b * valid
    lam, q = torch.linalg.eigh(x.T @ x / n)  # preconditioner basis
    lam = lam.clamp(min=0)
    n_iter = torch.zeros(m, dtype=torch.long, device=device)
    converged = torch.zeros(m, dtype=torch.bool, device=device)
    gmax_all = torch.full((m,), float("inf"), dtype=dtype, device=device)
    active = torch.arange(m, device=device)
    z = prob.xw(w) + b  # [n, M, K]
    for it in range(max_iter + 1):
        wa, ba, za = w[:, active], b[active], z[:, active]
        loss, resid, p = prob.stats(za, active)
        gw = prob.xtr(resid) + reg * wa
        gb = resid.sum(0) / n
        if not prob.binary:
            gb = gb * (prob.mask[active] == 0)
            gw = gw * (prob.mask[active] == 0)
        gmax = torch.maximum(gw.abs().amax((0, 2)), gb.abs().amax(1))
        gmax_all[active] = gmax
        done = gmax <= tol
        converged[active] = done
        if it == max_iter or bool(done.all()):
            break
        keep = (~done).nonzero().flatten()
        active, wa, ba, za, loss = active[keep], wa[:, keep], ba[keep], za[:, keep], loss[keep]
        p, gw, gb = p[:, keep], gw[:, keep], gb[keep]
        dw, db, xd = _newton_direction(prob, q, lam, p, gw, gb, active)
        # per-column Armijo backtracking along the Newton direction, on z + t * x d
        slope = (gw * dw).sum((0, 2)) + (gb * db).sum(1)  # [m] < 0
        pen0 = 0.5 * reg * (wa * wa).sum((0, 2))
        f0 = loss + pen0
        t = torch.ones(active.shape[0], dtype=dtype, device=device)
        todo = torch.ones_like(t, dtype=torch.bool)
        for _ in range(_MAX_BACKTRACK):
            tt = t[None, :, None]
            f1 = prob.loss_only(za + tt * xd, active) + 0.5 * reg * ((wa + tt * dw) ** 2).sum((0, 2))
            ok = f1 <= f0 + _ARMIJO * t * slope
            todo = todo & ~ok
            if not bool(todo.any()):
                break
            t = torch.where(todo, t * 0.5, t)
        tt = t[None, :, None]
        w[:, active] = wa + tt * dw
        b[active] = ba + t[:, None] * db
        z[:, active] = za + tt * xd
        n_iter[active] += 1
    return LogisticSolution(w, b, n_iter.cpu(), converged.cpu(), gmax_all.cpu())


def _newton_direction(prob: _Problem, q, lam, p, gw, gb, cols):
    """Solve H d = -g per column by preconditioned CG (inexact, Eisenstat-Walker forcing).

    Returns (dw [D, m, K], db [m, K], x @ dw + db [n, m, K]).
    """
    reg, n = prob.reg, prob.n
    mask = None if prob.binary else (prob.mask[cols] == 0).to(gw.dtype)  # [m, K]
    s = p * (1 - p)
    c = s.mean((0, 2)).clamp(min=1e-8)  # [m] mean curvature weight

    def precond(rw, rb):
        d_, m_, kk = rw.shape
        proj = q.T @ rw.reshape(d_, m_ * kk)  # [D, m*K]
        denom = c[None, :, None] * lam[:, None, None] + reg  # [D, m, 1]
        zw = (q @ (proj.reshape(d_, m_, kk) / denom).reshape(d_, m_ * kk)).reshape(d_, m_, kk)
        zb = rb / c[:, None]
        if mask is not None:
            zw, zb = zw * mask, zb * mask
        return zw, zb

    def hess(vw, vb):
        u = prob.xw(vw) + vb  # [n, m, K]
        hu = prob.curvature_apply(p, u)
        hw = prob.xtr(hu) + reg * vw
        hb = hu.sum(0) / n
        if mask is not None:
            hw, hb = hw * mask, hb * mask
        return hw, hb, u

    def dot(aw, ab, bw, bb):
        return (aw * bw).sum((0, 2)) + (ab * bb).sum(1)

    dw = torch.zeros_like(gw)
    db = torch.zeros_like(gb)
    xd = torch.zeros(n, *gb.shape, dtype=gw.dtype, device=gw.device)
    rw, rb = -gw, -gb
    gnorm = dot(gw, gb, gw, gb).sqrt()
    eta = torch.minimum(torch.full_like(gnorm, 0.5), gnorm.sqrt()) * gnorm
    zw, zb = precond(rw, rb)
    pw, pb = zw, zb
    rz = dot(rw, rb, zw, zb)
    live = torch.ones_like(gnorm, dtype=torch.bool)
    for _ in range(_MAX_CG):
        hw, hb, u = hess(pw, pb)
        php = dot(pw, pb, hw, hb)
        alpha = torch.where(live & (php > 0), rz / php.clamp(min=1e-30), torch.zeros_like(rz))
        a = alpha[None, :, None]
        dw = dw + a * pw
        db = db + alpha[:, None] * pb
        xd = xd + a * u
        rw = rw - a * hw
        rb = rb - alpha[:, None] * hb
        live = live & (dot(rw, rb, rw, rb).sqrt() > eta)
        if not bool(live.any()):
            break
        zw, zb = precond(rw, rb)
        rz_new = dot(rw, rb, zw, zb)
        beta = torch.where(live, rz_new / rz.clamp(min=1e-30), torch.zeros_like(rz))
        rz = rz_new
        pw = zw + beta[None, :, None] * pw
        pb = zb + beta[:, None] * pb
    return dw, db, xd

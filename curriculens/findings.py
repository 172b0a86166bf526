"""The statistics behind every finding the suite states: a sampling null for "appears", false
discovery control, and intervals over seeds. numpy and the standard library only (no torch, no
transformer_lens), so the dashboard and ``curriculens.open()`` can use it.

Appearance null (``probes.summary`` applies it to every series of a run):

- a series' sampling sd ``sigma`` is the largest of its checkpoints' own sd (parity Fourier:
  ``extra["noise"]``; a linear probe's accuracy: the binomial sd of its test set,
  ``0.5 / sqrt(n_test)``, the worst case p = 0.5; selectivity = accuracy - control accuracy on
  the same test set: ``sqrt(2)`` times that), and, on a series of at least ``EMPIRICAL_MIN_STEPS``
  checkpoints, never below its own checkpoint-to-checkpoint scatter
  (``1.4826 * MAD(diff) / sqrt(2)``, which also catches fitting noise);
- a rise must *hold*: the held rise at checkpoint t is ``min(rise_t, rise_t+1)`` (two consecutive
  checkpoints), the series' held effect the largest of them; ``held_rise_p`` is the chance that
  a series of independent N(0, sigma^2) checkpoint values holds a rise that large over some pair
  of checkpoints: a union bound over the ``n_steps - 2`` pairs of
  ``P(X_t - X_0 >= e, X_t+1 - X_0 >= e)`` (exact for one pair, Gauss-Hermite quadrature over X_0);
- or one checkpoint must stand far beyond the noise (``single_rise_p``: a union bound over the
  checkpoints of ``P(X_t - X_0 >= e)``), so a sharp spike that the checkpoint cadence samples
  once (the parity teacher's degree-2 spike, saved every 2,000 steps) is found while a small
  blip is not; ``rise_p`` takes the smaller p-value times 2 (Bonferroni over the two routes),
  and the series' effect is the held rise or the single peak, whichever route that was;
- Benjamini-Hochberg at ``FDR_Q`` = 5% over all series of one run (every probe, metric, site and
  feature, in- and off-support alike): the false discovery rate among the features a run reports
  is <= 5%; when no series really rises (a student that never learns) this is the chance that the
  run reports any feature at all (family-wise).

Intervals: ``t_interval`` (Student t on the mean, the default for seeds: honest at n = 3 where a
bootstrap is too narrow) and ``bootstrap_interval`` (percentile, for skewed steps with n >= 10).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

FDR_Q = 0.05  # Benjamini-Hochberg level over the series of one run
LEVEL = 0.95  # the intervals' coverage
EMPIRICAL_MIN_STEPS = 8  # the scatter estimate needs this many checkpoints
MAD_TO_SD = 1.4826
VERDICT_A, VERDICT_B, VERDICT_NONE = "A earlier", "B earlier", "not established"

_GH_Z, _GH_W = np.polynomial.hermite_e.hermegauss(60)  # probabilists' Gauss-Hermite: E[f(Z)], Z ~ N(0, 1)
_GH_W = _GH_W / _GH_W.sum()
_ERFC = np.frompyfunc(math.erfc, 1, 1)


def normal_sf(x) -> np.ndarray:
    """P(Z >= x) for a standard normal, elementwise (float64 array)."""
    x = np.asarray(x, dtype=np.float64)
    return (0.5 * _ERFC(x / math.sqrt(2.0))).astype(np.float64)


def held_rise_p(z, n_steps) -> np.ndarray:
    """p-value of a held rise of ``z`` sampling sds in a series of ``n_steps`` checkpoints
    (module docstring); NaN where z is NaN, 1 where fewer than 3 checkpoints."""
    z = np.atleast_1d(np.asarray(z, dtype=np.float64))
    n = np.broadcast_to(np.asarray(n_steps, dtype=np.float64), z.shape)
    out = np.full(z.shape, np.nan)
    ok = np.isfinite(z)
    if ok.any():
        tail = normal_sf(z[ok][:, None] + _GH_Z[None, :])  # P(X_t - X_0 >= e | X_0) for each node
        pair = (tail**2 * _GH_W[None, :]).sum(axis=1)
        out[ok] = np.minimum(1.0, np.maximum(n[ok] - 2.0, 1.0) * pair)
    out[np.isposinf(z)] = 0.0
    out[(n < 3) & ~np.isnan(z)] = 1.0
    return out


def single_rise_p(z, n_steps) -> np.ndarray:
    """p-value of one checkpoint ``z`` sampling sds above the first (X_t - X_0 ~ N(0, 2 sd^2)),
    union bound over the ``n_steps - 1`` later checkpoints; NaN where z is NaN."""
    z = np.atleast_1d(np.asarray(z, dtype=np.float64))
    n = np.broadcast_to(np.asarray(n_steps, dtype=np.float64), z.shape)
    out = np.full(z.shape, np.nan)
    ok = np.isfinite(z)
    out[ok] = np.minimum(1.0, np.maximum(n[ok] - 1.0, 1.0) * normal_sf(z[ok] / math.sqrt(2.0)))
    out[np.isposinf(z)] = 0.0
    out[(n < 2) & ~np.isnan(z)] = 1.0
    return out


def rise_p(z_held, z_peak, n_steps) -> tuple[np.ndarray, np.ndarray]:
    """The series' p-value and which route gave it: ``min(1, 2 min(p_held, p_single))``
    (Bonferroni over the two routes: a rise held over two checkpoints, or one checkpoint far
    beyond the noise, such as a sharp spike sampled by one checkpoint); ``single`` is True where
    the single-checkpoint route is the smaller."""
    ph, ps = held_rise_p(z_held, n_steps), single_rise_p(z_peak, n_steps)
    single = np.nan_to_num(ps, nan=2.0) < np.nan_to_num(ph, nan=2.0)
    p = np.minimum(1.0, 2.0 * np.fmin(ph, ps))
    return p, single


def bh_reject(p: Sequence[float], q: float = FDR_Q) -> np.ndarray:
    """Benjamini-Hochberg: which of the p-values are discoveries at false discovery rate ``q``
    (NaN p-values are not tested and not counted in m)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.zeros(p.shape, dtype=bool)
    tested = np.nonzero(np.isfinite(p))[0]
    m = tested.size
    if m == 0:
        return out
    order = tested[np.argsort(p[tested], kind="stable")]
    below = p[order] <= q * np.arange(1, m + 1) / m
    if below.any():
        out[order[: int(np.nonzero(below)[0][-1]) + 1]] = True
    return out


def empirical_sd(values: Sequence[float]) -> float:
    """A series' checkpoint-to-checkpoint scatter, ``1.4826 * MAD(diff) / sqrt(2)`` (a rise of a
    few checkpoints does not move it); NaN under ``EMPIRICAL_MIN_STEPS`` points."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < EMPIRICAL_MIN_STEPS:
        return math.nan
    d = np.diff(v)
    return float(MAD_TO_SD * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0))


def sampling_sd(metric: str, extra: dict | None) -> float:
    """The sampling sd of one checkpoint's value, from the row's own ``extra`` (NaN if unknown):
    ``noise`` when the probe states it, else from ``n_test`` for accuracies (``0.5/sqrt(n)``)
    and selectivity (``sqrt(0.5/n)``, a difference of two accuracies)."""
    if not isinstance(extra, dict):
        return math.nan
    if extra.get("noise") is not None:
        return float(extra["noise"])
    n = extra.get("n_test")
    if n is None or not n or n <= 0:
        return math.nan
    if metric == "selectivity":
        return math.sqrt(0.5 / float(n))
    if metric.endswith("acc") or metric == "accuracy":
        return 0.5 / math.sqrt(float(n))
    return math.nan


# --- intervals ------------------------------------------------------------------------------
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta (Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def _betai(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbeta) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbeta) * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T >= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _betai(0.5 * df, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t (bisection on ``t_sf``; |error| < 1e-10)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    lo, hi = -1e6, 1e6
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 1.0 - t_sf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Interval:
    """A mean (or median, ``how``) with its interval; ``lo``/``hi`` NaN when n < 2."""

    estimate: float
    lo: float
    hi: float
    n: int
    level: float
    how: str  # "t" | "bootstrap"

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.__dict__.items()}

    def text(self, fmt: str = "{:,.0f}") -> str:
        if self.n == 0:
            return "n = 0"
        if self.n < 2:
            return f"{fmt.format(self.estimate)} (n = 1, no interval)"
        return f"{fmt.format(self.estimate)} [{fmt.format(self.lo)}, {fmt.format(self.hi)}] (n = {self.n}, {self.how})"


def _clean(values: Iterable) -> np.ndarray:
    v = np.asarray([float(x) for x in values if x is not None and not _isnan(x)], dtype=np.float64)
    return v


def _isnan(x) -> bool:
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def t_interval(values: Iterable, level: float = LEVEL) -> Interval:
    """The mean and its Student-t interval at ``level`` (missing values dropped)."""
    v = _clean(values)
    n = int(v.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, level, "t")
    m = float(v.mean())
    if n < 2:
        return Interval(m, math.nan, math.nan, 1, level, "t")
    half = t_quantile(0.5 + level / 2.0, n - 1) * float(v.std(ddof=1)) / math.sqrt(n)
    return Interval(m, m - half, m + half, n, level, "t")


def bootstrap_interval(values: Iterable, level: float = LEVEL, n_boot: int = 4000, seed: int = 0) -> Interval:
    """The mean and its percentile-bootstrap interval (``n_boot`` resamples, fixed ``seed``)."""
    v = _clean(values)
    n = int(v.size)
    if n < 2:
        return Interval(float(v.mean()) if n else math.nan, math.nan, math.nan, n, level, "bootstrap")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    a = (1.0 - level) / 2.0
    return Interval(
        float(v.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a)), n, level, "bootstrap"
    )


def format_estimate(
    estimate: float, lo: float, hi: float, n: int, *, signed: bool = False, empty: str = "n = 0"
) -> str:
    """``est [lo, hi]`` in steps (``est`` alone when n = 1, ``empty`` when n = 0)."""
    f = "{:+,.0f}" if signed else "{:,.0f}"
    if n == 0:
        return empty
    if n == 1:
        return f.format(estimate)
    return f"{f.format(estimate)} [{f.format(lo)}, {f.format(hi)}]"


def verdict(diff: Interval) -> str:
    """For a difference A - B of steps (lower = earlier): "A earlier" when the whole interval is
    below 0, "B earlier" when above, else "not established"."""
    if diff.n < 2 or not np.isfinite(diff.lo):
        return VERDICT_NONE
    if diff.hi < 0:
        return VERDICT_A
    if diff.lo > 0:
        return VERDICT_B
    return VERDICT_NONE

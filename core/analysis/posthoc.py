"""Numerical kernels on per-group arrays: one-way tests, assumption checks and post-hoc pairs."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SHAPIRO_MAX_N = 5000
PAIR_COLUMNS = [
    "group1",
    "group2",
    "label1",
    "label2",
    "diff",
    "se",
    "statistic",
    "df",
    "p_adj",
    "ci_low",
    "ci_high",
    "significant",
]


@dataclass(frozen=True)
class Groups:
    """The samples a test compares: one 1-D float array per group, each with n >= 2.

    Example:
        >>> g = make_groups(["a", "b"], ["A", "B"], [np.array([1.0, 2.0]), np.array([3.0, 5.0])])
        >>> g.mean.tolist()
        [1.5, 4.0]
    """

    keys: tuple[str, ...]
    labels: tuple[str, ...]
    samples: tuple[np.ndarray, ...]
    n: np.ndarray
    mean: np.ndarray
    var: np.ndarray

    @property
    def k(self) -> int:
        """Number of groups."""
        return len(self.keys)

    @property
    def total(self) -> int:
        """Number of observations over all groups."""
        return int(self.n.sum())


def make_groups(keys: list[str], labels: list[str], samples: list[np.ndarray]) -> Groups:
    """Bundle per-group arrays with their sizes, means and variances (ddof 1).

    Args:
        keys: Group keys as found in the data (as strings).
        labels: Display labels, one per key.
        samples: One finite 1-D float array per group.

    Returns:
        The Groups bundle.
    """
    n = np.array([len(s) for s in samples], dtype=float)
    mean = np.array([s.mean() for s in samples], dtype=float)
    var = np.array([s.var(ddof=1) if len(s) > 1 else np.nan for s in samples], dtype=float)
    return Groups(tuple(keys), tuple(labels), tuple(samples), n, mean, var)


def _pairs(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) in R's order: (1,2), (1,3), ..., (2,3), ..."""
    i, j = np.triu_indices(k, 1)
    return i, j


def _frame(g: Groups, i: np.ndarray, j: np.ndarray, cols: dict[str, np.ndarray]) -> pd.DataFrame:
    """Assemble a pairwise table with the shared column layout."""
    data: dict[str, object] = {
        "group1": [g.keys[a] for a in i],
        "group2": [g.keys[b] for b in j],
        "label1": [g.labels[a] for a in i],
        "label2": [g.labels[b] for b in j],
    }
    data.update(cols)
    return pd.DataFrame(data, columns=PAIR_COLUMNS)


def tukey_hsd(g: Groups, ms_within: float, df_within: float, alpha: float) -> pd.DataFrame:
    """Tukey's honestly significant difference (Tukey–Kramer for unequal n).

    ``diff`` is mean(group2) - mean(group1), as R's TukeyHSD writes ``group2-group1``;
    ``statistic`` is the studentized range q, ``p_adj`` the family-wise adjusted p-value and
    ``ci_low``/``ci_high`` the simultaneous (1 - alpha) confidence interval of ``diff``.

    Args:
        g: The groups (k >= 2).
        ms_within: Pooled within-group mean square of the one-way ANOVA (> 0).
        df_within: Its degrees of freedom, N - k.
        alpha: Family-wise error rate; the intervals have coverage 1 - alpha.

    Returns:
        One row per pair, in the PAIR_COLUMNS layout.
    """
    i, j = _pairs(g.k)
    diff = g.mean[j] - g.mean[i]
    se = np.sqrt(ms_within / 2.0 * (1.0 / g.n[i] + 1.0 / g.n[j]))
    q = np.abs(diff) / se
    p = range_sf(q, g.k, np.full(len(q), float(df_within)))
    half = q_quantile(1.0 - alpha, g.k, float(df_within)) * se
    cols = {
        "diff": diff,
        "se": se,
        "statistic": q,
        "df": np.full(len(i), float(df_within)),
        "p_adj": p,
        "ci_low": diff - half,
        "ci_high": diff + half,
        "significant": p < alpha,
    }
    return _frame(g, i, j, cols)


def games_howell(g: Groups, alpha: float) -> pd.DataFrame:
    """Games–Howell comparisons: Welch t per pair, p from the studentized range.

    ``statistic`` is Welch's t of mean(group2) - mean(group1), ``df`` the Welch–Satterthwaite
    degrees of freedom of the pair, ``p_adj`` = P(Q > |t| * sqrt(2)) for k groups.

    Args:
        g: The groups (k >= 2), every variance > 0.
        alpha: Family-wise error rate; the intervals have coverage 1 - alpha.

    Returns:
        One row per pair, in the PAIR_COLUMNS layout.
    """
    i, j = _pairs(g.k)
    vi, vj = g.var[i] / g.n[i], g.var[j] / g.n[j]
    diff = g.mean[j] - g.mean[i]
    se = np.sqrt(vi + vj)
    t = diff / se
    df = (vi + vj) ** 2 / (vi**2 / (g.n[i] - 1) + vj**2 / (g.n[j] - 1))
    p = range_sf(np.abs(t) * np.sqrt(2.0), g.k, df)
    crit = _q_quantiles(1.0 - alpha, g.k, df) / np.sqrt(2.0)
    cols = {
        "diff": diff,
        "se": se,
        "statistic": t,
        "df": df,
        "p_adj": p,
        "ci_low": diff - crit * se,
        "ci_high": diff + crit * se,
        "significant": p < alpha,
    }
    return _frame(g, i, j, cols)


def range_sf(q: np.ndarray, k: int, df: np.ndarray) -> np.ndarray:
    """P(Q > q) of the studentized range for each (q, df): the post-hoc p-values.

    Within :func:`range_cdf`'s range (2 <= df <= 2000, k <= 40) the p-value comes from
    :func:`range_tail`, which integrates the upper tail itself: about 0.2 ms a pair, and
    accurate relative to the p-value however small it is down to 1e-10, where SciPy's sf is
    1 - cdf with the cdf's absolute tolerance (1e-11). Everything outside that range comes
    from SciPy's ``studentized_range.sf``, as before: 5–15 ms a pair, and a Compare page of
    four groups and three metrics has eighteen pairs.
    """
    q = np.asarray(q, dtype=float)
    df = np.asarray(df, dtype=float)
    out = np.full(len(q), np.nan)
    for i, (qi, di) in enumerate(zip(q, df, strict=True)):
        if np.isfinite(qi) and np.isfinite(di) and qi > 0 and _product_rule_covers(k, float(di)):
            out[i] = range_tail(float(qi), k, float(di))
            continue
        from scipy.stats import studentized_range

        out[i] = float(studentized_range.sf(qi, k, di))
    return np.clip(out, 0.0, 1.0)


def _q_quantiles(level: float, k: int, df: np.ndarray) -> np.ndarray:
    """Studentized-range quantiles for an array of df (each distinct df computed once)."""
    return np.array([q_quantile(level, k, float(d)) for d in df])


_LARGE_DF = 2000.0
_ASYMPTOTIC_DF = 100000.0
_PRODUCT_RULE_DF = (2.0, _LARGE_DF)
_PRODUCT_RULE_K = 40
"""Where :func:`range_cdf` replaces SciPy's cdf (checked there against SciPy to 1e-12)."""


def _product_rule_covers(k: int, df: float) -> bool:
    """Whether :func:`range_cdf` is used for k groups and df degrees of freedom."""
    return _PRODUCT_RULE_DF[0] <= df <= _PRODUCT_RULE_DF[1] and k <= _PRODUCT_RULE_K


@functools.lru_cache(maxsize=4096)
def q_quantile(level: float, k: int, df: float) -> float:
    """The studentized range's ``level`` quantile for k groups and df degrees of freedom.

    Brent's method starts from a tight bracket, the k = 2 quantile below and the Bonferroni
    bound above, on :func:`range_cdf` (SciPy's cdf outside the range that function covers:
    df under 2, k over 40). SciPy's own cdf integrates adaptively (10–20 ms a call, about ten
    calls a quantile), which made a Compare page of 1,000 trials spend over a second finding
    the Games–Howell intervals of a new grouping. Results are cached, so a page that
    re-renders the same comparison pays nothing.

    Args:
        level: The probability, e.g. 0.95.
        k: The number of groups (>= 2).
        df: The degrees of freedom (> 0, may be fractional).

    Returns:
        q such that P(Q <= q) = level, to about 1e-12 relative.
    """
    from scipy.optimize import brentq
    from scipy.stats import studentized_range
    from scipy.stats import t as t_dist

    if _LARGE_DF < df < _ASYMPTOTIC_DF:
        # q is smooth in 1/df: interpolate between df = 2000 and SciPy's asymptotic form
        # (df = infinity, used from 100000 on); the error is below 2e-7 relative, and a page with
        # thousands of trials a group no longer integrates numerically for every pair.
        near = q_quantile(level, k, _LARGE_DF)
        far = q_quantile(level, k, _ASYMPTOTIC_DF)  # SciPy's infinite-df form
        return far + (near - far) * _LARGE_DF / df
    a = 1.0 - level
    lo = math.sqrt(2.0) * float(t_dist.ppf(1.0 - a / 2.0, df)) * 0.999
    hi = math.sqrt(2.0) * float(t_dist.ppf(1.0 - a / (k * (k - 1)), df)) * 1.001
    fast = _product_rule_covers(k, df)

    def gap(q: float) -> float:
        cdf = range_cdf(q, k, df) if fast else float(studentized_range.cdf(q, k, df))
        return cdf - level

    if gap(lo) > 0 or gap(hi) < 0:  # outside the usual bracket: SciPy's own search
        return float(studentized_range.ppf(level, k, df))
    return float(brentq(gap, lo, hi, xtol=1e-13, rtol=1e-13))


@functools.lru_cache(maxsize=4)
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.special import roots_legendre

    x, w = roots_legendre(n)
    return x, w


def _panel(n: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights of ``n`` points on [a, b]."""
    x, w = _legendre(n)
    return 0.5 * (b - a) * x + 0.5 * (a + b), 0.5 * (b - a) * w


def _range_integral(
    q: float,
    k: int,
    df: float,
    nz: int,
    ns: int,
    integrand: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> float:
    """∫ g(s) · k ∫ φ(z) integrand(z, q s) dz ds by the product rule, clipped to [0, 1].

    g is the density of s = χ_df / √df. z over [−9, 9] (``nz`` Gauss–Legendre points); s
    over the mode ± 10/√df, in two panels split where q s = 12, ``ns`` points each, the panel
    from 0 taken in s = u² so that s^(df−1) is smooth. ``integrand`` gets z as a column and
    q s as a row and returns their grid.
    """
    from scipy.special import gammaln

    z, wz = _panel(nz, -9.0, 9.0)
    inner = wz * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    mode = math.sqrt(max(df - 1.0, 0.0) / df)
    half = 10.0 / math.sqrt(df)
    lo, hi = max(0.0, mode - half), mode + half
    cut = 12.0 / q
    edges = [lo, *([cut] if lo < cut < hi else []), hi]
    parts = []
    for a, b in zip(edges[:-1], edges[1:], strict=False):
        if a == 0.0:
            u, wu = _panel(ns, 0.0, 1.0)
            parts.append((b * u * u, wu * 2.0 * b * u))
        else:
            parts.append(_panel(ns, a, b))
    s = np.concatenate([p[0] for p in parts])
    ws = np.concatenate([p[1] for p in parts])
    log_const = 0.5 * df * math.log(df) - float(gammaln(0.5 * df)) - (0.5 * df - 1.0) * math.log(2)
    density = np.exp(log_const + (df - 1.0) * np.log(s) - 0.5 * df * s * s)
    ranges = k * (inner @ integrand(z[:, None], q * s[None, :]))
    return float(min(1.0, max(0.0, (density * ws) @ ranges)))


def range_cdf(q: float, k: int, df: float, *, nz: int = 128, ns: int = 64) -> float:
    """P(Q <= q) for the studentized range of k groups with df degrees of freedom.

    The same double integral SciPy's ``studentized_range.cdf`` evaluates,

        F(q) = ∫ g(s) · k ∫ φ(z) [Φ(z + q s) − Φ(z)]^(k−1) dz ds,

    with g the density of s = χ_df / √df, by a fixed Gauss–Legendre product rule
    (:func:`_range_integral`). All points at once in NumPy: about 0.1 ms a call instead of
    SciPy's 10–20 ms. For 2 <= df <= 2000 and k <= 40, at levels 0.5–0.999, it agrees with
    SciPy (whose own tolerance is 1e-11) to 1e-12 and with a 400-point rule to 3e-13
    (``tests/analysis/test_stats.py``); :func:`q_quantile` uses it there only.

    Args:
        q: The studentized range (> 0).
        k: The number of groups (>= 2).
        df: The degrees of freedom (>= 2 for this accuracy).
        nz: Points of the inner (normal) rule.
        ns: Points of each panel of the outer (chi) rule.

    Returns:
        The probability.
    """
    from scipy.special import ndtr

    def inside(z: np.ndarray, w: np.ndarray) -> np.ndarray:
        return (ndtr(z + w) - ndtr(z)) ** (k - 1)

    return _range_integral(q, k, df, nz, ns, inside)


def range_tail(q: float, k: int, df: float, *, nz: int = 128, ns: int = 64) -> float:
    """P(Q > q) for the studentized range, integrated as a tail (no ``1 - cdf``).

    Since k ∫ φ(z) Φc(z)^(k−1) dz = 1 (the density of a sample's minimum),

        1 − F(q) = ∫ g(s) · k ∫ φ(z) [a^(k−1) − (a − c)^(k−1)] dz ds,

    with a = Φc(z) and c = Φc(z + q s), and a^n − (a − c)^n = −a^n expm1(n log1p(−c / a))
    has no cancellation however small the tail. Same rule as :func:`range_cdf`. Against an
    adaptive quadrature of the same integral (relative tolerance 1e-12; ``bench/bench_tail.py``
    at 19 points, four of them in ``tests/analysis/test_stats.py``) it is within about 1e-13
    of the p-value down to 1e-5, 2e-11 down to 5e-9 and 2e-9 at 1.9e-10, where SciPy's
    1 − cdf is off by 1e-3 of it. Arguments and result as for :func:`range_cdf`.
    """
    from scipy.special import ndtr

    n = k - 1

    def gap(z: np.ndarray, w: np.ndarray) -> np.ndarray:
        a, c = ndtr(-z), ndtr(-(z + w))
        with np.errstate(divide="ignore"):  # c == a only where q s == 0: the whole a^n
            return -(a**n) * np.expm1(n * np.log1p(-c / a))

    return _range_integral(q, k, df, nz, ns, gap)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of a vector of p-values.

    Args:
        p: Unadjusted p-values.

    Returns:
        Adjusted p-values in the input order, capped at 1.
    """
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def dunn(g: Groups, mean_ranks: np.ndarray, tie_sum: float, alpha: float) -> pd.DataFrame:
    """Dunn's rank comparisons after Kruskal–Wallis, Holm-adjusted, with the tie correction.

    ``diff`` is the mean-rank difference (group2 - group1), ``statistic`` its z, ``p_adj`` the
    Holm-adjusted two-sided p-value; Dunn's test has no interval of the raw difference.

    Args:
        g: The groups (k >= 2).
        mean_ranks: Mean rank of each group in the pooled ranking.
        tie_sum: Sum over tied blocks of t**3 - t.
        alpha: Family-wise error rate.

    Returns:
        One row per pair, in the PAIR_COLUMNS layout (CI columns NaN).
    """
    from scipy.stats import norm

    i, j = _pairs(g.k)
    big_n = float(g.total)
    sigma2 = big_n * (big_n + 1) / 12.0 - tie_sum / (12.0 * (big_n - 1))
    diff = mean_ranks[j] - mean_ranks[i]
    se = np.sqrt(sigma2 * (1.0 / g.n[i] + 1.0 / g.n[j]))
    z = diff / se
    p_adj = holm(2.0 * norm.sf(np.abs(z)))
    nan = np.full(len(i), np.nan)
    cols = {
        "diff": diff,
        "se": se,
        "statistic": z,
        "df": nan,
        "p_adj": p_adj,
        "ci_low": nan,
        "ci_high": nan,
        "significant": p_adj < alpha,
    }
    return _frame(g, i, j, cols)


def fmt_stat(x: float, digits: int = 2) -> str:
    """A statistic for text: "5.63", "inf"."""
    if not math.isfinite(x):
        return "inf" if x > 0 else "n/a"
    return f"{x:.{digits}f}"


def fmt_df(x: float) -> str:
    """Degrees of freedom for text: integers plainly, others with two decimals."""
    return str(int(round(x))) if abs(x - round(x)) < 1e-9 else f"{x:.2f}"


@dataclass(frozen=True)
class AnovaResult:
    """Classic one-way ANOVA with its sums of squares and effect sizes."""

    f: float
    df_between: float
    df_within: float
    p: float
    ss_between: float
    ss_within: float
    ms_between: float
    ms_within: float
    eta_sq: float
    omega_sq: float

    def text(self) -> str:
        """As a sentence fragment: "F(2, 57) = 5.63"."""
        return f"F({fmt_df(self.df_between)}, {fmt_df(self.df_within)}) = {fmt_stat(self.f)}"

    def cell(self) -> str:
        """As a table cell: "5.63 (2, 57)"."""
        return f"{fmt_stat(self.f)} ({fmt_df(self.df_between)}, {fmt_df(self.df_within)})"


@dataclass(frozen=True)
class WelchResult:
    """Welch's one-way ANOVA for unequal variances."""

    f: float
    df_num: float
    df_den: float
    p: float

    def text(self) -> str:
        """As a sentence fragment: "Welch's F(2, 17.13) = 5.18"."""
        return f"Welch's F({fmt_df(self.df_num)}, {fmt_df(self.df_den)}) = {fmt_stat(self.f)}"

    def cell(self) -> str:
        """As a table cell: "5.18 (2, 17.13)"."""
        return f"{fmt_stat(self.f)} ({fmt_df(self.df_num)}, {fmt_df(self.df_den)})"


@dataclass(frozen=True)
class KruskalResult:
    """Kruskal–Wallis rank test (tie-corrected H) with epsilon squared."""

    h: float
    df: float
    p: float
    epsilon_sq: float

    def text(self) -> str:
        """As a sentence fragment: "Kruskal–Wallis H(2) = 7.99"."""
        return f"Kruskal–Wallis H({fmt_df(self.df)}) = {fmt_stat(self.h)}"

    def cell(self) -> str:
        """As a table cell: "H = 7.99 (2)"."""
        return f"H = {fmt_stat(self.h)} ({fmt_df(self.df)})"


@dataclass(frozen=True)
class LeveneResult:
    """Levene's test (center "mean") or Brown–Forsythe's (center "median")."""

    statistic: float
    df_num: float
    df_den: float
    p: float
    center: str


def anova_oneway(g: Groups) -> AnovaResult:
    """Classic one-way ANOVA from group sizes, means and variances (two-pass, no cancellation).

    Args:
        g: The groups (k >= 2, each n >= 2).

    Returns:
        F, its degrees of freedom and p, the sums and mean squares, eta² and omega²;
        F is infinite (p = 0) when every group is constant but the means differ.
    """
    from scipy.stats import f as f_dist

    n, big_n, k = g.n, float(g.total), g.k
    grand = float((n * g.mean).sum() / big_n)
    ssb = float((n * (g.mean - grand) ** 2).sum())
    ssw = float(((n - 1) * g.var).sum())
    dfb, dfw = k - 1.0, big_n - k
    msb, msw = ssb / dfb, ssw / dfw
    if msw > 0:
        f = msb / msw
        p = float(f_dist.sf(f, dfb, dfw))
    else:
        f, p = (math.inf, 0.0) if msb > 0 else (math.nan, math.nan)
    sst = ssb + ssw
    eta = ssb / sst if sst > 0 else math.nan
    omega = (ssb - dfb * msw) / (sst + msw) if sst > 0 else math.nan
    return AnovaResult(f, dfb, dfw, p, ssb, ssw, msb, msw, eta, omega)


def welch_anova(g: Groups) -> WelchResult | None:
    """Welch's heteroscedastic F test (R's oneway.test, var.equal = FALSE).

    Args:
        g: The groups (k >= 2, each n >= 2).

    Returns:
        The result, or None when a group has zero variance (its weight would be infinite).
    """
    from scipy.stats import f as f_dist

    if np.any(g.var <= 0):
        return None
    k = g.k
    w = g.n / g.var
    sw = w.sum()
    mw = float((w * g.mean).sum() / sw)
    a = float((w * (g.mean - mw) ** 2).sum() / (k - 1))
    tmp = float(((1 - w / sw) ** 2 / (g.n - 1)).sum())
    b = 1 + 2 * (k - 2) / (k**2 - 1) * tmp
    f = a / b
    df2 = (k**2 - 1) / (3 * tmp) if tmp > 0 else math.inf
    return WelchResult(f, k - 1.0, df2, float(f_dist.sf(f, k - 1, df2)))


def rank_sums(x: np.ndarray, group_id: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Sum of average ranks (1-based, ties averaged) per group with one sort, and the tie sum.

    Args:
        x: All values.
        group_id: Group index (0..k-1) of each value.
        k: Number of groups.

    Returns:
        The rank sum of each group and the sum over tied blocks of t**3 - t.
    """
    order = np.argsort(x, kind="quicksort")
    s = x[order]
    changes = s[1:] != s[:-1]
    if changes.all():  # no ties: the rank of the i-th smallest value is i + 1
        ranks = np.arange(1.0, len(x) + 1.0)
        return np.bincount(group_id[order], weights=ranks, minlength=k), 0.0
    bounds = np.flatnonzero(changes) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(x)]))
    sizes = ends - starts
    ranks_in_order = np.repeat((starts + ends + 1) / 2.0, sizes)
    sums = np.bincount(group_id[order], weights=ranks_in_order, minlength=k)
    t = sizes[sizes > 1].astype(float)
    return sums, float((t**3 - t).sum())


def kruskal_wallis(g: Groups) -> tuple[KruskalResult, np.ndarray, float]:
    """Tie-corrected Kruskal–Wallis H; also the mean ranks and tie sum for Dunn's test.

    Args:
        g: The groups (k >= 2).

    Returns:
        The result (H, df, p, epsilon² = H / (N - 1)), each group's mean rank, and the sum
        over tied blocks of t**3 - t.
    """
    from scipy.stats import chi2

    x = np.concatenate(g.samples)
    big_n = float(len(x))
    group_id = np.repeat(
        np.arange(g.k, dtype=np.int16 if g.k < 32000 else np.int64), g.n.astype(int)
    )
    sums, ties = rank_sums(x, group_id, g.k)
    mean_ranks = sums / g.n
    h = 12.0 / (big_n * (big_n + 1)) * float((g.n * (mean_ranks - (big_n + 1) / 2) ** 2).sum())
    correction = 1.0 - ties / (big_n**3 - big_n)
    h = h / correction if correction > 0 else math.nan
    df = g.k - 1.0
    p = float(chi2.sf(h, df)) if math.isfinite(h) else math.nan
    return KruskalResult(h, df, p, h / (big_n - 1)), mean_ranks, ties


def spread_test(
    g: Groups, center: Literal["mean", "median"], medians: np.ndarray | None = None
) -> LeveneResult:
    """Levene (mean) or Brown–Forsythe (median): ANOVA on absolute deviations from the center.

    Args:
        g: The groups (k >= 2, each n >= 2).
        center: "mean" for Levene's test, "median" for Brown–Forsythe's (R car's default).
        medians: The group medians when already known (they cost a partial sort each).

    Returns:
        The F statistic, its degrees of freedom and p.
    """
    if center == "mean":
        centers = g.mean
    else:
        centers = medians if medians is not None else np.array([np.median(s) for s in g.samples])
    dev = [np.abs(s - c) for s, c in zip(g.samples, centers, strict=True)]
    res = anova_oneway(make_groups(list(g.keys), list(g.labels), dev))
    return LeveneResult(res.f, res.df_between, res.df_within, res.p, center)


def shapiro_table(g_all: list[tuple[str, str, np.ndarray]]) -> pd.DataFrame:
    """Shapiro–Wilk per group where 3 <= n <= 5000, with a note where it is not run.

    Args:
        g_all: (key, label, values) of every group.

    Returns:
        Columns group, label, n, W, p, note (W and p NaN where the test is not run).
    """
    from scipy.stats import shapiro

    rows = []
    for key, label, x in g_all:
        n = len(x)
        w = p = math.nan
        note = None
        if n < 3:
            note = "not run: fewer than 3 trials"
        elif n > SHAPIRO_MAX_N:
            note = f"not run: more than {SHAPIRO_MAX_N} trials (the test is defined up to 5000)"
        elif np.ptp(x) == 0:
            note = "not run: every value is the same"
        else:
            res = shapiro(x)
            w, p = float(res.statistic), float(res.pvalue)
        rows.append({"group": key, "label": label, "n": n, "W": w, "p": p, "note": note})
    return pd.DataFrame(rows, columns=["group", "label", "n", "W", "p", "note"])


def descriptives_table(parts: list[tuple[str, str, np.ndarray]], alpha: float) -> pd.DataFrame:
    """n, mean, sd, median, min, max and the (1 - alpha) t interval of the mean per group.

    Args:
        parts: (key, label, values) of every group, empty groups included.
        alpha: 0.05 gives the 95 % interval.

    Returns:
        One row per group; statistics a group is too small for are NaN.
    """
    from scipy.stats import t as t_dist

    rows = []
    for key, label, x in parts:
        n = len(x)
        rows.append(
            {
                "group": key,
                "label": label,
                "n": n,
                "mean": float(x.mean()) if n else math.nan,
                "sd": float(x.std(ddof=1)) if n > 1 else math.nan,
                "median": float(np.median(x)) if n else math.nan,
                "min": float(x.min()) if n else math.nan,
                "max": float(x.max()) if n else math.nan,
            }
        )
    out = pd.DataFrame(rows, columns=["group", "label", "n", "mean", "sd", "median", "min", "max"])
    n = out["n"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = t_dist.ppf(1 - alpha / 2, n - 1) * out["sd"].to_numpy() / np.sqrt(n)
    out["ci_low"] = out["mean"] - half
    out["ci_high"] = out["mean"] + half
    return out

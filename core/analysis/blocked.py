"""The blocked (repeated-measures) comparison: every group measured on the same blocks.

The fair platform benchmark trains the same N configurations on every platform, so a trial is
identified by (platform, configuration) and the configuration is a block. Comparing platforms
with a one-way test would leave the configuration's large effect in the error term; the
blocked design removes it:

* **Repeated-measures ANOVA**, ``y ~ group + Error(block/group)`` in R: with one observation
  per (block, group) cell it is the additive two-way ANOVA, F on (k - 1, (k - 1)(n - 1)) df.
* **Friedman's rank test**, its rank-based counterpart (``friedman.test`` in R, with the
  ties correction), and Kendall's W as its effect size.
* **Paired post-hoc comparisons**: paired t-tests and Wilcoxon signed-rank tests (normal
  approximation with continuity correction, zeros dropped), Holm-adjusted, as R's
  ``pairwise.t.test(paired = TRUE)`` and ``pairwise.wilcox.test(paired = TRUE, exact = FALSE)``.

Only complete blocks count: a configuration that is missing on one platform is left out, and
the result says how many were. Checked against R in tests/analysis/test_blocked.py.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

# SciPy (0.6 s to import) is imported by the functions that use it: Home, Launch and Monitor
# import this module through core.analysis.views and never need it.
from core.analysis.posthoc import fmt_df, fmt_stat, holm
from core.analysis.stats import (
    BACKEND_LABELS,
    StatsError,
    format_p,
    group_words,
    metric_info,
    p_phrase,
)
from core.spec.design import CONFIG_INDEX

log = logging.getLogger(__name__)

DESIGN_BLOCK = f"p_{CONFIG_INDEX}"
"""The trials table's column of a same-configurations trial's configuration: the block."""
PAIRED_COLUMNS = [
    "group1",
    "group2",
    "mean_difference",
    "t",
    "df",
    "p_t_holm",
    "p_wilcoxon_holm",
    "significant",
]


@dataclass
class BlockedResult:
    """A blocked comparison of one metric: the ANOVA, Friedman's test and paired post-hoc."""

    metric: str
    name: str
    group: str
    block: str
    alpha: float
    groups: list[str]
    n_blocks: int
    dropped_blocks: int
    f: float = math.nan
    df_effect: float = math.nan
    df_error: float = math.nan
    p_anova: float = math.nan
    ss_effect: float = math.nan
    ss_block: float = math.nan
    ss_error: float = math.nan
    partial_eta_sq: float = math.nan
    chi2: float = math.nan
    df_friedman: float = math.nan
    p_friedman: float = math.nan
    kendall_w: float = math.nan
    means: dict[str, float] = field(default_factory=dict)
    paired: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAIRED_COLUMNS))
    conclusions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """The tests as a readable table: one row per test, in the study's column layout."""
        b_word = group_words(self.block)[0]
        rows = [
            (
                f"{self.name}: repeated-measures ANOVA ({b_word} as block)",
                f"F = {fmt_stat(self.f)} ({fmt_df(self.df_effect)}, {fmt_df(self.df_error)})",
                p_phrase(self.p_anova, self.alpha),
                _verdict(self.p_anova, self.alpha),
            ),
            (
                f"{self.name}: Friedman rank test",
                f"χ² = {fmt_stat(self.chi2)} ({fmt_df(self.df_friedman)})",
                p_phrase(self.p_friedman, self.alpha),
                _verdict(self.p_friedman, self.alpha),
            ),
        ]
        return pd.DataFrame(rows, columns=["Analysis", "Statistic (df)", "p-value", "Conclusion"])

    def paired_table(self) -> pd.DataFrame:
        """The paired post-hoc comparisons as a readable table: one row a pair of groups."""
        columns = [
            "Comparison",
            "Mean difference (first − second)",
            "Paired t (df)",
            "p (paired t, Holm)",
            "p (Wilcoxon, Holm)",
            "Conclusion",
        ]
        rows = [
            (
                f"{r.group1} vs {r.group2}",
                f"{r.mean_difference:.4g}",
                f"t = {fmt_stat(r.t)} ({fmt_df(r.df)})",
                format_p(r.p_t_holm, self.alpha),
                format_p(r.p_wilcoxon_holm, self.alpha),
                _verdict(r.p_t_holm, self.alpha),
            )
            for r in self.paired.itertuples(index=False)
        ]
        return pd.DataFrame(rows, columns=columns)


def _verdict(p: float, alpha: float) -> str:
    if not math.isfinite(p):
        return "Not tested"
    return "Significant" if p < alpha else "Not significant"


def _matrix(
    df: pd.DataFrame, metric: str, group: str, block: str, labels: Mapping[str, str]
) -> tuple[pd.DataFrame, int, list[str]]:
    """One row a block, one column a group; incomplete blocks dropped, repeats averaged."""
    data = pd.DataFrame(
        {
            "y": pd.to_numeric(df[metric], errors="coerce"),
            "g": df[group].map(lambda v: labels.get(str(v), str(v))),
            "b": df[block],
        }
    )
    data = data[np.isfinite(data["y"]) & data["g"].notna() & data["b"].notna()]
    warnings: list[str] = []
    counts = data.groupby(["b", "g"], observed=True).size()
    if len(counts) and counts.max() > 1:
        warnings.append(
            f"Some {group_words(block)[0]} and {group_words(group)[0]} pairs have more than "
            "one trial; their mean was used."
        )
    wide = data.pivot_table(index="b", columns="g", values="y", aggfunc="mean", observed=True)
    complete = wide.dropna()
    dropped = len(wide) - len(complete)
    if dropped:
        warnings.append(
            f"{dropped} {group_words(block)[1] if dropped > 1 else group_words(block)[0]} "
            f"{'were' if dropped > 1 else 'was'} not measured on every "
            f"{group_words(group)[0]} and {'were' if dropped > 1 else 'was'} left out."
        )
    return complete, dropped, warnings


def _anova(y: np.ndarray) -> tuple[float, float, float, float, float, float, float]:
    """F, df1, df2, p and the sums of squares (effect, block, error) of an n x k table."""
    from scipy import stats as st

    n, k = y.shape
    grand = y.mean()
    ss_effect = n * float(((y.mean(axis=0) - grand) ** 2).sum())
    ss_block = k * float(((y.mean(axis=1) - grand) ** 2).sum())
    ss_error = float(((y - grand) ** 2).sum()) - ss_effect - ss_block
    df1, df2 = k - 1.0, (k - 1.0) * (n - 1.0)
    ms_error = ss_error / df2
    if ms_error <= 0 or not math.isfinite(ms_error):
        return math.nan, df1, df2, math.nan, ss_effect, ss_block, max(ss_error, 0.0)
    f = (ss_effect / df1) / ms_error
    return f, df1, df2, float(st.f.sf(f, df1, df2)), ss_effect, ss_block, ss_error


def _friedman(y: np.ndarray) -> tuple[float, float, float, float]:
    """Friedman's chi-squared with R's ties correction, its df, p and Kendall's W."""
    from scipy import stats as st

    n, k = y.shape
    ranks = np.apply_along_axis(st.rankdata, 1, y)
    r = ranks.sum(axis=0)
    ties = 0.0
    for row in y:
        _, t = np.unique(row, return_counts=True)
        ties += float((t**3 - t).sum())
    denom = n * k * (k + 1) / 12.0 - ties / (12.0 * (k - 1))
    if denom <= 0:
        return math.nan, k - 1.0, math.nan, math.nan
    chi2 = float(((r - n * (k + 1) / 2.0) ** 2).sum()) / denom
    w = chi2 / (n * (k - 1))
    return chi2, k - 1.0, float(st.chi2.sf(chi2, k - 1)), w


def _wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided signed-rank p, normal approximation with continuity and ties corrections."""
    from scipy import stats as st

    d = d[d != 0]
    n = len(d)
    if n == 0:
        return math.nan
    ranks = st.rankdata(np.abs(d))
    v = float(ranks[d > 0].sum())
    mean = n * (n + 1) / 4.0
    _, t = np.unique(ranks, return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24.0 - float((t**3 - t).sum()) / 48.0
    if var <= 0:
        return math.nan
    z = v - mean
    z = (z - math.copysign(0.5, z)) / math.sqrt(var) if z != 0 else 0.0
    return float(2 * min(st.norm.sf(z), st.norm.cdf(z)))


def _paired(y: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Every pair of groups: mean difference, paired t and Wilcoxon, Holm-adjusted."""
    from scipy import stats as st

    rows = []
    for a, b in combinations(list(y.columns), 2):
        d = (y[a] - y[b]).to_numpy(dtype=float)
        n = len(d)
        sd = float(d.std(ddof=1)) if n > 1 else math.nan
        t = float(d.mean() / (sd / math.sqrt(n))) if sd and math.isfinite(sd) else math.nan
        p_t = float(2 * st.t.sf(abs(t), n - 1)) if math.isfinite(t) else math.nan
        rows.append([str(a), str(b), float(d.mean()), t, n - 1.0, p_t, _wilcoxon_p(d)])
    out = pd.DataFrame(rows, columns=PAIRED_COLUMNS[:-1])
    for col in ("p_t_holm", "p_wilcoxon_holm"):
        raw = out[col].to_numpy(dtype=float)
        ok = np.isfinite(raw)
        adjusted = np.full(len(raw), math.nan)
        if ok.any():
            adjusted[ok] = holm(raw[ok])
        out[col] = adjusted
    out["significant"] = out["p_t_holm"] < alpha
    return out


def blocked_compare(
    df: pd.DataFrame,
    metric: str,
    group: str = "backend",
    block: str = DESIGN_BLOCK,
    alpha: float = 0.05,
    *,
    labels: Mapping[str, str] | None = None,
    name: str | None = None,
) -> BlockedResult:
    """Compare groups measured on the same blocks (e.g. platforms on the same configurations).

    Args:
        df: Tidy per-trial table, one row a trial.
        metric: The metric column, e.g. "objective" or "duration_s".
        group: The grouping column (backend by default).
        block: The block column: the configuration index in the fair benchmark design.
        alpha: Significance level, 0 < alpha < 1.
        labels: Display labels of group values; backends get "AWS SageMaker" etc. by default.
        name: Display name of the metric instead of the default ("Accuracy", ...).

    Returns:
        The BlockedResult; too few groups or blocks are sentences in its warnings.

    Raises:
        StatsError: A named column is missing or alpha is out of range.
    """
    for role, col in (("metric", metric), ("grouping", group), ("block", block)):
        if col not in df.columns:
            raise StatsError(
                f"The {role} column '{col}' is not in the table; "
                f"available columns: {', '.join(map(str, df.columns))}."
            )
    if not 0 < alpha < 1:
        raise StatsError(f"alpha must be between 0 and 1 (got {alpha!r}); 0.05 is usual.")
    default = BACKEND_LABELS if group in ("backend", "platform") else {}
    info = metric_info(metric, name)
    y, dropped, warnings = _matrix(df, metric, group, block, {**default, **(labels or {})})
    res = BlockedResult(
        metric, info.name, group, block, alpha, [str(c) for c in y.columns], len(y), dropped
    )
    res.warnings.extend(warnings)
    g_word, g_plural = group_words(group)
    b_plural = group_words(block)[1]
    if y.shape[1] < 2 or y.shape[0] < 2:
        res.warnings.append(
            f"{info.name}: a blocked comparison needs two or more {g_plural} measured on the "
            f"same two or more {b_plural}; there are {y.shape[1]} {g_plural} and "
            f"{y.shape[0]} complete {b_plural}."
        )
        return res
    values = y.to_numpy(dtype=float)
    # values near the float limit are scaled first, so squares do not overflow; others are not,
    # so that ties in the differences stay ties, as in R
    peak = float(np.nanmax(np.abs(values)))
    scale = peak if peak > 1e100 else 1.0
    f, df1, df2, p, ss_e, ss_b, ss_r = _anova(values / scale)
    res.f, res.df_effect, res.df_error, res.p_anova = f, df1, df2, p
    res.ss_effect, res.ss_block, res.ss_error = (
        ss_e * scale * scale,
        ss_b * scale * scale,
        ss_r * scale * scale,
    )
    res.partial_eta_sq = ss_e / (ss_e + ss_r) if ss_e + ss_r > 0 else math.nan
    res.chi2, res.df_friedman, res.p_friedman, res.kendall_w = _friedman(values)
    res.means = {str(c): float(v) * scale for c, v in (y / scale).mean().items()}
    res.paired = _paired(y / scale, alpha)  # t and Wilcoxon do not change with the scale
    res.paired["mean_difference"] *= scale
    res.conclusions = _conclusions(res, info.direction, g_word, g_plural)
    return res


def _conclusions(
    res: BlockedResult, direction: str | None, g_word: str, g_plural: str
) -> list[str]:
    """Plain-language sentences: the group effect with the block removed, then the pairs."""
    b_word, b_plural = group_words(res.block)
    sig = math.isfinite(res.p_anova) and res.p_anova < res.alpha
    out = [
        f"With each {b_word} measured on every {g_word} ({res.n_blocks} {b_plural}), "
        f"{res.name} {'differs' if sig else 'does not differ significantly'} between "
        f"{g_plural} (repeated-measures F({fmt_df(res.df_effect)}, {fmt_df(res.df_error)}) = "
        f"{fmt_stat(res.f)}, {p_phrase(res.p_anova, res.alpha)}; Friedman "
        f"χ²({fmt_df(res.df_friedman)}) = {fmt_stat(res.chi2)}, "
        f"{p_phrase(res.p_friedman, res.alpha)}). The {b_word} effect is separated from the "
        f"{g_word} effect: differences between {b_plural} do not count as {g_word} differences."
    ]
    both = math.isfinite(res.p_anova) and math.isfinite(res.p_friedman)
    if both and (res.p_anova < res.alpha) != (res.p_friedman < res.alpha):
        out.append(
            f"The ANOVA and Friedman's rank test disagree; with few {b_plural} or skewed "
            "values, trust the rank test."
        )
    for row in res.paired.itertuples():
        if not row.significant:
            continue
        diff = float(row.mean_difference)
        higher, lower = (row.group1, row.group2) if diff > 0 else (row.group2, row.group1)
        better = ""
        if direction is not None:
            winner = lower if direction == "lower" else higher
            better = f"; {winner} is better"
        out.append(
            f"{res.name} is higher on {higher} than on {lower} by {fmt_stat(abs(diff), 3)} "
            f"on average over the same {b_plural} (paired t, Holm-adjusted "
            f"{p_phrase(float(row.p_t_holm), res.alpha)}{better})."
        )
    return out


def same_configurations_note(specs: Sequence[Mapping[str, Any]]) -> tuple[bool, str | None]:
    """Whether runs of these specs form one same-configurations design, and why not if close.

    Returns:
        (True, None) when every spec holds the same drawn configurations; (False, a sentence)
        when some but not all do, or their configurations differ; (False, None) otherwise.
    """
    drawn = [tuple(map(_key, s.get("configurations") or ())) for s in specs]
    if not any(drawn):
        return False, None
    if all(drawn) and len(set(drawn)) == 1:
        return True, None
    return False, (
        "Some of these runs train a same-configurations design and others do not (or another "
        "set of configurations), so the blocked comparison is not shown; pick runs launched "
        "with the same configurations."
    )


def _key(config: Mapping[str, Any]) -> str:
    return json.dumps(dict(config), sort_keys=True, default=str)


def design_comparisons(
    specs: Sequence[Mapping[str, Any]],
    done: pd.DataFrame,
    metrics: Sequence[str],
    group: str,
    alpha: float,
) -> tuple[dict[str, BlockedResult], str | None]:
    """The blocked comparison of each metric when the runs of ``specs`` form one design.

    Returns:
        (metric -> result, a sentence when some runs are a design and others not); the
        results are empty unless every run trained the same configurations.
    """
    design, why_not = same_configurations_note(specs)
    if not design or done.empty or DESIGN_BLOCK not in done.columns:
        return {}, why_not
    results = {
        m: blocked_compare(done, m, group=group, alpha=alpha) for m in metrics if m in done.columns
    }
    return results, why_not

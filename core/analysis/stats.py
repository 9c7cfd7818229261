"""Group comparison of trial results: descriptives, the ANOVA family, checks, post-hoc, reports."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.analysis.posthoc import (
    SHAPIRO_MAX_N,
    AnovaResult,
    Groups,
    KruskalResult,
    LeveneResult,
    WelchResult,
    anova_oneway,
    descriptives_table,
    dunn,
    fmt_df,
    fmt_stat,
    games_howell,
    kruskal_wallis,
    make_groups,
    shapiro_table,
    spread_test,
    tukey_hsd,
    welch_anova,
)
from core.backends.platforms import PLATFORMS
from core.errors import CloudTuneError

log = logging.getLogger(__name__)

Direction = Literal["lower", "higher"]
TestName = Literal["anova", "welch", "kruskal"]

BACKEND_LABELS: dict[str, str] = {name: p.short_label for name, p in PLATFORMS.items()}
SMALL_GROUP_N = 30  # below this a group's mean is not rescued by the central limit theorem
NORMALITY_BAD_P = 0.01  # Shapiro–Wilk p below this counts as failing badly
LARGEST_VALUE = 1e75  # Welch and Games–Howell square variances (x^4): finite below 1.8e308
TABLE_COLUMNS = ["Analysis", "F-statistic (df)", "p-value", "Conclusion"]
TEST_TITLES = {"anova": "One-way ANOVA", "welch": "Welch's ANOVA", "kruskal": "Kruskal–Wallis"}
POSTHOC_TITLES = {"tukey": "Tukey HSD", "games_howell": "Games–Howell", "dunn": "Dunn (Holm)"}


class StatsError(CloudTuneError):
    """The data or the options of a group comparison cannot be used as given."""


@dataclass(frozen=True)
class MetricInfo:
    """How a metric column is named in sentences and which way is better.

    Example:
        >>> metric_info("duration_s").best
        'fastest'
    """

    name: str
    direction: Direction | None = None
    best: str | None = None
    better: str | None = None


_KNOWN_METRICS: dict[str, MetricInfo] = {
    "duration_s": MetricInfo("Time per trial", "lower", "fastest", "faster"),
    "cost_usd": MetricInfo("Cost", "lower", "cheapest", "cheaper"),
    "objective": MetricInfo("Accuracy", "higher", "most accurate", "more accurate"),
    "val_accuracy": MetricInfo("Accuracy", "higher", "most accurate", "more accurate"),
    "accuracy": MetricInfo("Accuracy", "higher", "most accurate", "more accurate"),
}
_GROUP_WORDS: dict[str, tuple[str, str]] = {
    "backend": ("platform", "platforms"),
    "platform": ("platform", "platforms"),
    "strategy": ("strategy", "strategies"),
    "instance_type": ("instance type", "instance types"),
    "seed": ("seed", "seeds"),
    "config_index": ("configuration", "configurations"),
    "p_config_index": ("configuration", "configurations"),
    "run_id": ("run", "runs"),
    "study_id": ("study", "studies"),
}


def plural(word: str) -> str:
    """The English plural of a noun or noun phrase: strategy -> strategies, batch size -> batch
    sizes, loss -> losses."""
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


def metric_info(
    column: str, name: str | None = None, direction: Direction | None = None
) -> MetricInfo:
    """Display name and direction of a metric column, with optional overrides.

    Args:
        column: The metric column (duration_s, cost_usd, objective, ... or any other).
        name: Display name to use instead of the default.
        direction: "lower" or "higher" is better; unknown columns have none unless given.

    Returns:
        The MetricInfo; with a direction but no known words, "lowest"/"highest" are used.
    """
    base = _KNOWN_METRICS.get(column, MetricInfo(column))
    if direction is not None and direction != base.direction:
        best, better = ("lowest", "lower") if direction == "lower" else ("highest", "higher")
        base = MetricInfo(base.name, direction, best, better)
    return dataclasses.replace(base, name=name) if name else base


def group_words(column: str) -> tuple[str, str]:
    """Singular and plural nouns for the groups of a column ("platform", "platforms").

    Args:
        column: The grouping column (backend, strategy, instance_type, seed, a parameter's
            ``p_`` column or any other).

    Returns:
        (singular, plural), e.g. ("instance type", "instance types"), ("optimizer",
        "optimizers") for ``p_optimizer``.
    """
    if column in _GROUP_WORDS:
        return _GROUP_WORDS[column]
    word = column.removeprefix("p_").replace("_", " ")
    return word, plural(word)


def format_p(p: float, alpha: float = 0.05) -> str:
    """Write a p-value the way the study does: "< 0.001", "< 0.01", "0.034".

    Args:
        p: The p-value.
        alpha: Significance level; a value that would round onto it or onto its wrong side
            gets a fourth decimal ("0.0496", not "0.050").

    Returns:
        The p-value as text ("n/a" when undefined).
    """
    if p is None or not math.isfinite(p):
        return "n/a"
    if p < 0.001:
        return "< 0.001"
    if p < 0.01:
        return "< 0.01"
    if p >= 0.9995:
        return "> 0.999"
    text = f"{p:.3f}"
    ambiguous = (float(text) < alpha) != (p < alpha) or float(text) == alpha
    return f"{p:.4f}" if ambiguous else text


def p_phrase(p: float, alpha: float = 0.05) -> str:
    """A p-value for a sentence: "p = 0.005" or "p < 0.001".

    Args:
        p: The p-value.
        alpha: Significance level; values that would round onto it get a fourth decimal.

    Returns:
        The phrase, "p undefined" when p is NaN.
    """
    if p is None or not math.isfinite(p):
        return "p undefined"
    if p < 0.001:
        return "p < 0.001"
    if p >= 0.9995:
        return "p > 0.999"
    text = f"{p:.3f}"
    if (float(text) < alpha) != (p < alpha) or float(text) in (alpha, 0.0):
        text = f"{p:.4f}"
    return f"p = {text}"


@dataclass
class TwoWayResult:
    """A two-factor (or blocked) ANOVA through statsmodels, Type II sums of squares."""

    kind: str
    formula: str
    table: pd.DataFrame
    conclusions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows: list[tuple[str, str, float, str]] = field(default_factory=list)


@dataclass
class MetricResult:
    """Everything computed for one metric: descriptives, tests, checks, post-hoc, words."""

    metric: str
    info: MetricInfo
    group: str
    alpha: float
    descriptives: pd.DataFrame
    shapiro: pd.DataFrame
    anova: AnovaResult | None = None
    welch: WelchResult | None = None
    kruskal: KruskalResult | None = None
    levene: LeveneResult | None = None
    brown_forsythe: LeveneResult | None = None
    tukey: pd.DataFrame | None = None
    games_howell: pd.DataFrame | None = None
    dunn: pd.DataFrame | None = None
    chosen_test: TestName | None = None
    choice_reason: str = ""
    conclusion: str = ""
    significant: bool | None = None
    best_group: str | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    two_way: TwoWayResult | None = None

    def result(
        self, test: TestName | None = None
    ) -> AnovaResult | WelchResult | KruskalResult | None:
        """The result of a test (the chosen one by default)."""
        name = test or self.chosen_test
        return getattr(self, name) if name else None

    @property
    def posthoc_name(self) -> str | None:
        """The post-hoc that goes with the chosen test: tukey, games_howell or dunn."""
        return {"anova": "tukey", "welch": "games_howell", "kruskal": "dunn"}.get(
            self.chosen_test or ""
        )

    @property
    def posthoc(self) -> pd.DataFrame | None:
        """The pairwise table that goes with the chosen test."""
        name = self.posthoc_name
        return getattr(self, name) if name else None

    def table_row(self, test: TestName | Literal["chosen"] = "chosen") -> list[str]:
        """This metric as one row of the published table layout."""
        name: TestName | None = self.chosen_test if test == "chosen" else test
        res = self.result(name) if name else None
        if name is None or res is None:
            why = self.conclusion
            if name is not None and self.anova is not None:
                why = f"{TEST_TITLES[name]} cannot be computed here; see the warnings."
            return [self.info.name, "—", "—", why]
        title = TEST_TITLES[name]
        label = self.info.name if name == "anova" else f"{self.info.name} ({title})"
        verdict = "Significant" if res.p < self.alpha else "Not significant"
        return [label, res.cell(), format_p(res.p, self.alpha), verdict]


@dataclass
class Comparison:
    """The comparison of groups of trials over one or more metrics.

    Example:
        >>> cmp = compare(trials, ["duration_s", "objective"], group="backend")  # doctest: +SKIP
        >>> cmp.table().to_csv("anova.csv", index=False)  # doctest: +SKIP
    """

    group: str
    alpha: float
    n_rows: int
    metrics: dict[str, MetricResult]
    warnings: list[str] = field(default_factory=list)

    def table(self, test: TestName | Literal["chosen"] = "chosen") -> pd.DataFrame:
        """The study's table: Analysis | F-statistic (df) | p-value | Conclusion.

        Args:
            test: "chosen" (the test the checks pick for each metric) or a fixed test.

        Returns:
            One row per metric, then the two-factor rows when a second factor was given.
        """
        rows = [m.table_row(test) for m in self.metrics.values()]
        for m in self.metrics.values():
            if m.two_way is not None:
                rows.extend(
                    [label, cell, format_p(p, self.alpha), verdict]
                    for label, cell, p, verdict in m.two_way.rows
                )
        return pd.DataFrame(rows, columns=TABLE_COLUMNS)

    def descriptives(self) -> pd.DataFrame:
        """Per-metric, per-group descriptives stacked in one frame."""
        frames = [m.descriptives.assign(metric=k) for k, m in self.metrics.items()]
        out = pd.concat(frames, ignore_index=True)
        return out[["metric", *[c for c in out.columns if c != "metric"]]]

    def conclusions(self) -> list[str]:
        """The plain-language conclusion of every metric (and two-factor term)."""
        out = [m.conclusion for m in self.metrics.values()]
        for m in self.metrics.values():
            if m.two_way is not None:
                out.extend(m.two_way.conclusions)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Every number and sentence, JSON-ready (NaN as null, infinities as strings)."""
        return {
            "group": self.group,
            "alpha": self.alpha,
            "n_rows": self.n_rows,
            "warnings": list(self.warnings),
            "table": _jsonable(self.table()),
            "metrics": {k: _metric_dict(m) for k, m in self.metrics.items()},
        }


def _metric_dict(m: MetricResult) -> dict[str, Any]:
    """One MetricResult as plain JSON-ready data."""
    out: dict[str, Any] = {
        "metric": m.metric,
        "name": m.info.name,
        "direction": m.info.direction,
        "chosen_test": m.chosen_test,
        "choice_reason": m.choice_reason,
        "posthoc": m.posthoc_name,
        "conclusion": m.conclusion,
        "significant": m.significant,
        "best_group": m.best_group,
        "dropped": dict(m.dropped),
        "warnings": list(m.warnings),
    }
    for key in ("descriptives", "shapiro", "tukey", "games_howell", "dunn"):
        out[key] = _jsonable(getattr(m, key))
    for key in ("anova", "welch", "kruskal", "levene", "brown_forsythe"):
        res = getattr(m, key)
        out[key] = _jsonable(dataclasses.asdict(res)) if res is not None else None
    if m.two_way is not None:
        tw = m.two_way
        out["two_way"] = {
            "kind": tw.kind,
            "formula": tw.formula,
            "table": _jsonable(tw.table),
            "conclusions": tw.conclusions,
            "warnings": tw.warnings,
        }
    return out


def _jsonable(obj: Any) -> Any:
    """Turn frames, numpy scalars and non-finite floats into JSON-ready values."""
    if isinstance(obj, pd.DataFrame):
        return [_jsonable(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
    return obj


# ----------------------------------------------------------------------------- data layout


@dataclass(frozen=True)
class _Layout:
    """Rows ordered by group (rows without a group left out), shared by every metric."""

    keys: list[str]
    labels: list[str]
    order: np.ndarray
    codes: np.ndarray
    missing_group: int


def _layout(df: pd.DataFrame, group: str, labels: Mapping[str, str]) -> _Layout:
    """Factorize the grouping column once and sort the rows by group (radix sort on codes)."""
    col = df[group]
    try:
        codes, uniques = pd.factorize(col, sort=True)
    except TypeError:
        codes, uniques = pd.factorize(col.astype(str).where(col.notna()), sort=True)
    keys = [str(u) for u in uniques]
    small = codes.astype(np.int16 if len(keys) < 32000 else np.int64)
    order = np.argsort(small, kind="stable")
    missing = int((small < 0).sum())
    order = order[missing:]
    return _Layout(keys, [labels.get(k, k) for k in keys], order, small[order], missing)


def _numeric(df: pd.DataFrame, metric: str) -> tuple[np.ndarray | None, np.ndarray, str | None]:
    """The metric as floats, a mask of non-numeric entries and, if unusable, why."""
    col = df[metric]
    none = np.zeros(len(col), dtype=bool)
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=float), none, None
    if pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(dtype=float, na_value=np.nan), none, None
    if pd.api.types.is_datetime64_any_dtype(col) or pd.api.types.is_timedelta64_dtype(col):
        return (
            None,
            none,
            f"Column '{metric}' holds dates or durations, not numbers; choose a numeric metric column.",
        )
    coerced = pd.to_numeric(col, errors="coerce")
    bad = (coerced.isna() & col.notna()).to_numpy()
    if not coerced.notna().any():
        sample = ", ".join(repr(v) for v in col.dropna().unique()[:3])
        why = f"Column '{metric}' is not numeric (values like {sample}); choose a numeric metric column."
        return None, bad, why
    return coerced.to_numpy(dtype=float, na_value=np.nan), bad, None


# ----------------------------------------------------------------------------- choosing and saying


def _choose(m: MetricResult, usable: Groups) -> tuple[TestName, str]:
    """Pick the test to report from the checks, and say why in plain words."""
    sw = m.shapiro[m.shapiro["group"].isin(usable.keys)]
    bad = sw[(sw["p"] < NORMALITY_BAD_P) & (sw["n"] < SMALL_GROUP_N)]
    if not bad.empty:
        worst = bad.sort_values("p").iloc[0]
        return "kruskal", (
            f"Kruskal–Wallis was chosen: the trials of {worst['label']} are far from normal "
            f"(Shapiro–Wilk {p_phrase(worst['p'])}) and the group is small (n = {worst['n']}), "
            "so a test on ranks is safer than one on means."
        )
    flagged = sw[sw["p"] < NORMALITY_BAD_P]
    big_note = (
        f" Shapiro–Wilk flags non-normal trials in {', '.join(flagged['label'])}, but the groups "
        f"have at least {SMALL_GROUP_N} trials, enough for the means to be trusted."
        if not flagged.empty
        else ""
    )
    bf = m.brown_forsythe
    ratio = (
        float(np.nanmax(usable.var) / np.nanmin(usable.var)) if np.all(usable.var > 0) else math.inf
    )
    if bf is not None and bf.p < m.alpha:
        if m.welch is None:
            return "kruskal", (
                "Kruskal–Wallis was chosen: the spread differs between groups "
                f"(Brown–Forsythe {p_phrase(bf.p)}) and Welch's ANOVA cannot be used because a "
                "group has the same value in every trial." + big_note
            )
        return "welch", (
            "Welch's ANOVA was chosen: the spread differs between groups (Brown–Forsythe "
            f"{p_phrase(bf.p)}; the largest variance is {ratio:.1f} times the smallest), and "
            "Welch's test does not assume equal variances." + big_note
        )
    spread = f" (Brown–Forsythe {p_phrase(bf.p)})" if bf is not None and math.isfinite(bf.p) else ""
    return "anova", (
        f"One-way ANOVA was used: {_normality_clause(m, sw, flagged)} and their spreads are "
        f"similar{spread}." + big_note
    )


def _normality_clause(m: MetricResult, sw: pd.DataFrame, flagged: pd.DataFrame) -> str:
    """What the Shapiro–Wilk checks say, in words that agree with every p-value they cite."""
    tested = sw[np.isfinite(sw["p"].to_numpy(dtype=float))]
    if tested.empty:
        return "normality could not be checked (Shapiro–Wilk needs 3 or more varying trials)"
    mild = tested[tested["p"] < m.alpha]
    if mild.empty:
        return f"no group departs from normal (every Shapiro–Wilk p ≥ {m.alpha:g})"
    if not flagged.empty:  # p < 0.01 in large groups: big_note says why the means still hold
        return "the groups are large enough for their means to be trusted"
    worst = mild.sort_values("p").iloc[0]
    return (
        f"Shapiro–Wilk finds a mild departure from normal in {_join(list(mild['label']))} "
        f"({p_phrase(float(worst['p']), m.alpha)} < α = {m.alpha:g}, but not below "
        f"{NORMALITY_BAD_P:g}), which the F test tolerates,"
    )


def _best(m: MetricResult, usable: Groups) -> tuple[str, str]:
    """Key and label of the best group (or the highest when no direction is known)."""
    d = m.descriptives.set_index("group").loc[list(usable.keys)]
    centre = d["median"] if m.chosen_test == "kruskal" else d["mean"]
    key = centre.idxmin() if m.info.direction == "lower" else centre.idxmax()
    return str(key), str(d.loc[key, "label"])


def _pair_clause(m: MetricResult, key: str, label: str) -> str:
    """What the post-hoc says about the best group, as a clause."""
    ph, name = m.posthoc, POSTHOC_TITLES.get(m.posthoc_name or "", "")
    if ph is None or ph.empty:
        return ""
    mine = ph[((ph["group1"] == key) | (ph["group2"] == key)) & ph["significant"]]
    if mine.empty:
        return f", though no single pair differs significantly after the {name} correction"
    others = [r.label2 if r.group1 == key else r.label1 for r in mine.itertuples()]
    worst_p = float(mine["p_adj"].max())
    how = f"significantly {m.info.better} than" if m.info.better else "significantly different from"
    return f", {how} {_join(others)} ({name}, adjusted {p_phrase(worst_p).replace('p =', 'p ≤')})"


def _join(items: list[str]) -> str:
    """Join labels as a sentence does: A; A and B; A, B and C."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _conclude(m: MetricResult, usable: Groups) -> str:
    """The plain-language conclusion for the chosen test."""
    res = m.result()
    _, plural = group_words(m.group)
    if res is None or not math.isfinite(res.p):
        return m.conclusion or f"{m.info.name} could not be tested between {plural}."
    stat = f"{res.text()}, {p_phrase(res.p, m.alpha)}"
    if res.p >= m.alpha:
        return f"{m.info.name} does not differ significantly between {plural} ({stat})."
    key, label = _best(m, usable)
    m.best_group = key
    if m.info.best:
        tail = f"{label} was {m.info.best}{_pair_clause(m, key, label)}"
    else:
        which = "median" if m.chosen_test == "kruskal" else "mean"
        tail = f"{label} had the highest {which}{_pair_clause(m, key, label)}"
    return f"{m.info.name} differs between {plural} ({stat}); {tail}."


# ----------------------------------------------------------------------------- per metric


def _split(
    values: np.ndarray, layout: _Layout, bad: np.ndarray
) -> tuple[list[tuple[str, str, np.ndarray]], dict[str, int]]:
    """Drop NaN / infinite values, count them, and cut the rest into per-group arrays."""
    v = values[layout.order]
    nonnum = int(bad[layout.order].sum()) if bad.any() else 0
    nan = int(np.isnan(v).sum()) - nonnum
    inf = int(np.isinf(v).sum())
    keep = np.isfinite(v)
    v, c = v[keep], layout.codes[keep]
    counts = np.bincount(c, minlength=len(layout.keys))
    edges = np.concatenate(([0], np.cumsum(counts)))
    parts = [
        (key, label, v[edges[i] : edges[i + 1]])
        for i, (key, label) in enumerate(zip(layout.keys, layout.labels, strict=True))
    ]
    dropped = {"nan": nan, "inf": inf, "non_numeric": nonnum, "missing_group": layout.missing_group}
    return parts, dropped


def _dropped_sentence(name: str, dropped: dict[str, int]) -> str | None:
    """Say how many values were left out, and why (rows without a group are said once)."""
    what = {"nan": "missing (NaN)", "inf": "infinite", "non_numeric": "non-numeric"}
    bits = [f"{dropped[k]} {w}" for k, w in what.items() if dropped.get(k)]
    if not bits:
        return None
    total = sum(dropped.get(k, 0) for k in what)
    return f"{name}: {_join(bits)} value{'s' if total != 1 else ''} left out."


def _usable(m: MetricResult, parts: list[tuple[str, str, np.ndarray]]) -> Groups | None:
    """Groups with at least two trials; records a sentence for each group left out."""
    _, plural = group_words(m.group)
    keep = [p for p in parts if len(p[2]) >= 2]
    for _key, label, x in parts:
        if len(x) < 2:
            m.warnings.append(
                f"{label} has {len(x)} usable trial{'s' if len(x) != 1 else ''} of "
                f"{m.info.name}; a group needs at least 2 to measure spread, so it is left "
                "out of the tests."
            )
    if len(keep) < 2:
        have = f"only {keep[0][1]} qualifies" if keep else "none qualifies"
        m.conclusion = (
            f"{m.info.name} cannot be compared: the tests need at least two {plural} with two "
            f"or more trials each, and {have}."
        )
        return None
    return make_groups([p[0] for p in keep], [p[1] for p in keep], [p[2] for p in keep])


def _analyse(m: MetricResult, g: Groups) -> None:
    """Run every test on the usable groups, choose one and write the conclusion."""
    lo = min(float(s.min()) for s in g.samples)
    hi = max(float(s.max()) for s in g.samples)
    if lo == hi:
        m.conclusion = (
            f"All {g.total} values of {m.info.name} are equal ({lo:g}); there is nothing to "
            "compare."
        )
        return
    m.anova = anova_oneway(g)
    m.welch = welch_anova(g)
    m.kruskal, mean_ranks, ties = kruskal_wallis(g)
    m.levene = spread_test(g, "mean")
    medians = m.descriptives.set_index("group").loc[list(g.keys), "median"].to_numpy()
    m.brown_forsythe = spread_test(g, "median", medians)
    if m.anova.ms_within > 0:
        m.tukey = tukey_hsd(g, m.anova.ms_within, m.anova.df_within, m.alpha)
    else:
        m.warnings.append(
            f"Every trial within each group gave the same {m.info.name}, so the groups differ "
            "without any noise: F is infinite and no post-hoc interval can be computed."
        )
    if m.welch is not None:
        m.games_howell = games_howell(g, m.alpha)
    else:
        flat = _join([lab for lab, v in zip(g.labels, g.var, strict=True) if v <= 0])
        m.warnings.append(
            f"Welch's ANOVA and Games–Howell need spread in every group, but {flat} gave the "
            f"same {m.info.name} in every trial."
        )
    m.dunn = dunn(g, mean_ranks, ties, m.alpha)
    m.chosen_test, m.choice_reason = _choose(m, g)
    res = m.result()
    m.significant = bool(res.p < m.alpha) if res is not None and math.isfinite(res.p) else None
    m.conclusion = _conclude(m, g)


def _metric(
    df: pd.DataFrame, metric: str, layout: _Layout, group: str, alpha: float, info: MetricInfo
) -> MetricResult:
    """Compute the whole comparison of one metric."""
    values, bad, problem = _numeric(df, metric)
    empty = pd.DataFrame()
    m = MetricResult(metric, info, group, alpha, empty, empty)
    if values is None:
        m.conclusion = problem or f"Column '{metric}' cannot be used."
        m.dropped = {"non_numeric": int(bad.sum())}
        return m
    parts, m.dropped = _split(values, layout, bad)
    note = _dropped_sentence(info.name, m.dropped)
    if note:
        m.warnings.append(note)
    largest = max((float(np.abs(x).max()) for _k, _l, x in parts if len(x)), default=0.0)
    if largest > LARGEST_VALUE:  # squares and sums of squares would overflow to infinity
        m.conclusion = (
            f"{info.name} cannot be compared: its values reach {largest:.3g}, and the tests "
            f"square their variances, which overflows beyond ±{LARGEST_VALUE:g}; rescale the "
            f"column (e.g. divide it by {LARGEST_VALUE:g}) and compare again."
        )
        return m
    m.descriptives = descriptives_table(parts, alpha)
    m.shapiro = shapiro_table(parts)
    big = [label for _k, label, x in parts if len(x) > SHAPIRO_MAX_N]
    if big:
        m.warnings.append(
            f"Shapiro–Wilk was skipped for {_join(big)}: more than {SHAPIRO_MAX_N} trials. "
            "With groups this large the tests on means rely on the central limit theorem."
        )
    usable = _usable(m, parts)
    if usable is not None:
        _analyse(m, usable)
    return m


# ----------------------------------------------------------------------------- two factors


def _two_way(
    df: pd.DataFrame, m: MetricResult, factor: str | None, block: str | None
) -> TwoWayResult | None:
    """Two-way (group x factor) and/or blocked ANOVA through statsmodels, Type II."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    cols = {"y": m.metric, "g": m.group}
    if factor:
        cols["f"] = factor
    if block:
        cols["b"] = block
    data = pd.DataFrame({k: df[v] for k, v in cols.items()})
    data["y"] = pd.to_numeric(data["y"], errors="coerce")
    data = data[np.isfinite(data["y"])].dropna()
    warnings: list[str] = []
    terms = ["C(g)"]
    interaction = False
    if factor:
        cells = data.groupby(["g", "f"], observed=True).size()
        full = len(cells) == data["g"].nunique() * data["f"].nunique()
        interaction = bool(full and cells.min() >= 2)
        terms = ["C(g) * C(f)"] if interaction else ["C(g)", "C(f)"]
        if not interaction:
            warnings.append(
                f"Not every {m.group} × {factor} combination has two or more trials, so the "
                "interaction was not tested (additive model)."
            )
    if block:
        terms.append("C(b)")
    formula = "y ~ " + " + ".join(terms)
    if data["g"].nunique() < 2 or len(data) <= 1 + data["g"].nunique():
        m.warnings.append(f"{m.info.name}: too few trials for a two-factor ANOVA.")
        return None
    try:
        fit = smf.ols(formula, data=data).fit()
        table = sm.stats.anova_lm(fit, typ=2)
    except (ValueError, np.linalg.LinAlgError) as err:
        m.warnings.append(f"{m.info.name}: the two-factor ANOVA could not be fitted ({err}).")
        return None
    return _two_way_result(m, table, formula, factor, block, warnings)


def _two_way_result(
    m: MetricResult,
    table: pd.DataFrame,
    formula: str,
    factor: str | None,
    block: str | None,
    warnings: list[str],
) -> TwoWayResult:
    """Name the terms, add partial eta squared, and write rows and sentences."""
    g_word, g_plural = group_words(m.group)
    f_word, f_plural = group_words(factor) if factor else ("", "")
    names = {
        "C(g)": g_word,
        "C(f)": f_word,
        "C(g):C(f)": f"{g_word} × {f_word}",
        "C(b)": f"{group_words(block)[0] if block else ''} (block)",
        "Residual": "residual",
    }
    t = table.rename(columns={"PR(>F)": "p", "sum_sq": "sum_sq", "df": "df"}).copy()
    t.insert(0, "term", [names.get(str(i), str(i)) for i in t.index])
    resid = float(t.loc["Residual", "sum_sq"])
    t["mean_sq"] = t["sum_sq"] / t["df"]
    t["partial_eta_sq"] = t["sum_sq"] / (t["sum_sq"] + resid)
    t.loc["Residual", "partial_eta_sq"] = math.nan
    t = t.reset_index(drop=True)[["term", "df", "sum_sq", "mean_sq", "F", "p", "partial_eta_sq"]]
    kind = "factorial" if factor else "block"
    res = TwoWayResult(kind, formula, t, warnings=warnings)
    dfw = float(t["df"].iloc[-1])
    context = f" with {f_word} taken into account" if factor else f" with {block} as a block"
    for row in t.iloc[:-1].itertuples():
        stat = f"F({fmt_df(row.df)}, {fmt_df(dfw)}) = {fmt_stat(row.F)}"
        verdict = "Significant" if row.p < m.alpha else "Not significant"
        res.rows.append(
            (
                f"{m.info.name}: {row.term}",
                f"{fmt_stat(row.F)} ({fmt_df(row.df)}, {fmt_df(dfw)})",
                row.p,
                verdict,
            )
        )
        phrase = f"({stat}, {p_phrase(row.p, m.alpha)})"
        sig = row.p < m.alpha
        if row.term == g_word:
            res.conclusions.append(
                f"{m.info.name} {'differs' if sig else 'does not differ significantly'} between "
                f"{g_plural}{context} {phrase}."
            )
        elif row.term == f_word:
            res.conclusions.append(
                f"{m.info.name} {'differs' if sig else 'does not differ significantly'} between "
                f"{f_plural} {phrase}."
            )
        elif "×" in row.term:
            res.conclusions.append(
                f"The {g_word} effect on {m.info.name} "
                f"{'depends' if sig else 'shows no significant dependence'} on {f_word} "
                f"(interaction {stat}, {p_phrase(row.p, m.alpha)})."
            )
    return res


# ----------------------------------------------------------------------------- entry point


def compare(
    df: pd.DataFrame,
    metrics: str | Sequence[str],
    group: str = "backend",
    alpha: float = 0.05,
    block: str | None = None,
    second_factor: str | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
    directions: Mapping[str, Direction] | None = None,
) -> Comparison:
    """Compare groups of trials (platforms by default) on one or more metrics.

    Args:
        df: Tidy per-trial table, one row a trial.
        metrics: Metric column(s), e.g. "duration_s" or ["duration_s", "objective"].
        group: Grouping column (backend, strategy, instance_type or any other).
        alpha: Significance level, 0 < alpha < 1; intervals have coverage 1 - alpha.
        block: Optional blocking column (e.g. seed) for a randomized-block ANOVA.
        second_factor: Optional second factor (e.g. strategy) for a two-way ANOVA.
        labels: Display labels of group values; backends get "AWS SageMaker" etc. by default.
        names: Display names of metrics, overriding "Time to completion" etc.
        directions: "lower" or "higher" is better, per metric, overriding the defaults.

    Returns:
        The Comparison; edge cases are sentences in its conclusions and warnings.

    Raises:
        StatsError: A named column is missing, alpha is out of range or the table is empty.
    """
    metric_list = [metrics] if isinstance(metrics, str) else list(dict.fromkeys(metrics))
    _validate(df, metric_list, group, alpha, block, second_factor)
    default_labels = BACKEND_LABELS if group in ("backend", "platform") else {}
    layout = _layout(df, group, {**default_labels, **(labels or {})})
    out = Comparison(group, alpha, len(df), {})
    for metric in metric_list:
        info = metric_info(metric, (names or {}).get(metric), (directions or {}).get(metric))
        m = _metric(df, metric, layout, group, alpha, info)
        if (block or second_factor) and m.anova is not None:
            m.two_way = _two_way(df, m, second_factor, block)
        out.metrics[metric] = m
        out.warnings.extend(w for w in m.warnings if w not in out.warnings)
    if layout.missing_group:
        out.warnings.append(
            f"{layout.missing_group} row(s) have no value in '{group}' and were left out."
        )
    out.warnings.extend(_diverged_sentences(df, group, layout))
    return out


def _diverged_sentences(df: pd.DataFrame, group: str, layout: _Layout) -> list[str]:
    """Say per group how many trials diverged (``diverged`` column); they stay in the tests.

    Example: "2 of 6 Local trials diverged (loss not finite or accuracy at chance); they
    count in the statistics as real outcomes."
    """
    if "diverged" not in df.columns or group not in df.columns:
        return []
    flags = df["diverged"].fillna(False).astype(bool).to_numpy()
    out = []
    for code, label in enumerate(layout.labels):
        rows = layout.order[layout.codes == code]
        n, bad = len(rows), int(flags[rows].sum())
        if bad:
            out.append(
                f"{bad} of {n} {label} trials diverged (loss not finite or accuracy at "
                "chance); they count in the statistics as real outcomes."
            )
    return out


def _validate(
    df: pd.DataFrame,
    metrics: list[str],
    group: str,
    alpha: float,
    block: str | None,
    factor: str | None,
) -> None:
    """Raise a StatsError naming the field and the fix for unusable options."""
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise StatsError("The trial table is empty; run some trials or pick a file with rows.")
    if not metrics:
        raise StatsError("No metric was given; name at least one metric column, e.g. duration_s.")
    if not (isinstance(alpha, int | float) and 0 < alpha < 1):
        raise StatsError(f"alpha must be between 0 and 1 (got {alpha!r}); 0.05 is usual.")
    available = ", ".join(map(str, df.columns))
    for role, col in [("grouping", group), ("block", block), ("second factor", factor)]:
        if col is not None and col not in df.columns:
            raise StatsError(
                f"The {role} column '{col}' is not in the table; available columns: {available}."
            )
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise StatsError(
            f"Metric column(s) {', '.join(repr(m) for m in missing)} not in the table; "
            f"available columns: {available}."
        )
    if group in metrics:
        raise StatsError(f"'{group}' cannot be both the grouping column and a metric.")

"""The blocked comparison against R.

Reference data: RoundingTimes (Hollander & Wolfe 1973, p. 140), the example of R's
``friedman.test`` help page, whose printed output is "Friedman chi-squared = 11.143, df = 2,
p-value = 0.003805". The other figures are R 4.2's, from (d: long form, g: method, b: player)::

    summary(aov(y ~ g + Error(b/g), data = d))
    pairwise.t.test(d$y, d$g, paired = TRUE, p.adjust.method = "holm")
    pairwise.wilcox.test(d$y, d$g, paired = TRUE, p.adjust.method = "holm", exact = FALSE)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.analysis.blocked import blocked_compare
from core.analysis.stats import StatsError, compare

ROUNDING_TIMES = [
    (5.40, 5.50, 5.55), (5.85, 5.70, 5.75), (5.20, 5.60, 5.50), (5.55, 5.50, 5.40),
    (5.90, 5.85, 5.70), (5.45, 5.55, 5.60), (5.40, 5.40, 5.35), (5.45, 5.50, 5.35),
    (5.25, 5.15, 5.00), (5.85, 5.80, 5.70), (5.25, 5.20, 5.10), (5.65, 5.55, 5.45),
    (5.60, 5.35, 5.45), (5.05, 5.00, 4.95), (5.50, 5.50, 5.40), (5.45, 5.55, 5.50),
    (5.55, 5.55, 5.35), (5.45, 5.50, 5.55), (5.50, 5.45, 5.25), (5.65, 5.60, 5.40),
    (5.70, 5.65, 5.55), (6.30, 6.30, 6.25),
]  # fmt: skip
METHODS = ("Round Out", "Narrow Angle", "Wide Angle")


@pytest.fixture(scope="module")
def rounding() -> pd.DataFrame:
    rows = [
        {"method": m, "player": i, "seconds": t}
        for i, times in enumerate(ROUNDING_TIMES, 1)
        for m, t in zip(METHODS, times, strict=True)
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=4)  # order must not matter


def test_friedman_matches_r_help_page(rounding) -> None:
    r = blocked_compare(rounding, "seconds", group="method", block="player")
    assert r.chi2 == pytest.approx(11.142857142857, rel=1e-10)
    assert r.df_friedman == 2
    assert r.p_friedman == pytest.approx(0.003805040776, rel=1e-8)
    assert r.kendall_w == pytest.approx(11.142857142857 / (22 * 2), rel=1e-10)


def test_repeated_measures_anova_matches_r_aov_error_stratum(rounding) -> None:
    r = blocked_compare(rounding, "seconds", group="method", block="player")
    assert (r.df_effect, r.df_error) == (2, 42)
    assert r.ss_effect == pytest.approx(0.09371212121, rel=1e-9)
    assert r.ss_error == pytest.approx(0.31295454545, rel=1e-9)
    assert r.f == pytest.approx(6.288307916, rel=1e-9)
    assert r.p_anova == pytest.approx(0.004084100722, rel=1e-8)


def test_paired_posthoc_matches_r_pairwise_tests(rounding) -> None:
    r = blocked_compare(rounding, "seconds", group="method", block="player")
    by_pair = {frozenset((row.group1, row.group2)): row for row in r.paired.itertuples()}
    expected = {  # (pairwise.t.test holm, pairwise.wilcox.test holm)
        ("Narrow Angle", "Round Out"): (0.732481326856, 0.366520998798),
        ("Narrow Angle", "Wide Angle"): (0.002026320713, 0.005785392909),
        ("Round Out", "Wide Angle"): (0.02841533137, 0.02926368517),
    }
    for pair, (p_t, p_w) in expected.items():
        row = by_pair[frozenset(pair)]
        assert row.p_t_holm == pytest.approx(p_t, rel=1e-8)
        assert row.p_wilcoxon_holm == pytest.approx(p_w, rel=1e-8)
    assert sorted(r.paired["significant"]) == [False, True, True]


def test_paired_table_is_readable(rounding) -> None:
    r = blocked_compare(rounding, "seconds", group="method", block="player")
    table = r.paired_table()
    assert len(table.columns) == 6 and table.columns[0] == "Comparison"
    assert {"p (paired t, Holm)", "p (Wilcoxon, Holm)", "Conclusion"} <= set(table.columns)
    rows = {row.Comparison: row for row in table.itertuples(index=False)}
    assert set(rows) == {f"{row.group1} vs {row.group2}" for row in r.paired.itertuples()}
    narrow_wide = next(row for name, row in rows.items() if "Narrow" in name and "Wide" in name)
    assert narrow_wide[3] == "< 0.01" and narrow_wide[4] == "< 0.01"  # Holm p 0.00203, 0.00579
    round_wide = next(row for name, row in rows.items() if "Round" in name and "Wide" in name)
    assert (round_wide[3], round_wide[4]) == ("0.028", "0.029")  # 0.02842, 0.02926
    assert narrow_wide.Conclusion == "Significant" and narrow_wide[2].endswith("(21)")
    assert sorted(table["Conclusion"]) == ["Not significant", "Significant", "Significant"]


def test_conclusion_separates_the_block_effect(rounding) -> None:
    r = blocked_compare(rounding, "seconds", group="method", block="player")
    first = r.conclusions[0]
    assert "differs between methods" in first
    assert "F(2, 42) = 6.29, p = 0.004" in first
    assert "Friedman χ²(2) = 11.14, p = 0.004" in first
    assert "effect is separated from the method effect" in first
    assert any("higher on Narrow Angle than on Wide Angle" in c for c in r.conclusions)
    assert list(r.table()["Conclusion"]) == ["Significant", "Significant"]


def test_platform_effect_hidden_by_configurations_is_found() -> None:
    # six configurations whose accuracy differs widely; vertex is 0.02 lower on every one
    rng = np.random.default_rng(7)
    base = np.array([0.55, 0.93, 0.71, 0.30, 0.88, 0.64])
    rows = []
    for backend, shift in (("local", 0.0), ("vertex", -0.02), ("azure", 0.0)):
        for i, b in enumerate(base):
            rows.append({"backend": backend, "p_config_index": i,
                         "objective": b + shift + rng.normal(0, 0.003)})  # fmt: skip
    df = pd.DataFrame(rows)
    r = blocked_compare(df, "objective")
    assert set(r.groups) == {"Local", "Vertex AI", "Azure ML"}
    assert r.p_anova < 1e-4  # blocked: found

    assert compare(df, "objective").metrics["objective"].anova.p > 0.5  # one-way: hidden
    pairs = " ".join(r.conclusions[1:])
    assert "higher on Azure ML than on Vertex AI by 0.0" in pairs
    assert "higher on Local than on Vertex AI by 0.0" in pairs
    assert "over the same configurations (paired t" in pairs and "Local is better" in pairs
    assert "Local than on Azure ML" not in pairs and "Azure ML than on Local" not in pairs


def test_incomplete_blocks_are_left_out_with_a_sentence(rounding) -> None:
    df = rounding[~((rounding["player"] == 3) & (rounding["method"] == "Wide Angle"))]
    r = blocked_compare(df, "seconds", group="method", block="player")
    assert r.n_blocks == 21 and r.dropped_blocks == 1
    assert "1 player was not measured on every method and was left out." in r.warnings


def test_too_few_blocks_and_bad_columns_are_sentences(rounding) -> None:
    one = rounding[rounding["player"] == 1]
    r = blocked_compare(one, "seconds", group="method", block="player")
    assert np.isnan(r.p_anova)
    assert "needs two or more methods measured on the same two or more players" in r.warnings[-1]
    with pytest.raises(StatsError, match="block column 'config'"):
        blocked_compare(rounding, "seconds", group="method", block="config")


def test_huge_values_do_not_overflow() -> None:
    df = pd.DataFrame(
        {
            "g": ["a", "b"] * 4,
            "b": [0, 0, 1, 1, 2, 2, 3, 3],
            "y": [1e308, 9e307, 8e307, 7e307, 9.5e307, 8.5e307, 6e307, 5e307],
        }
    )
    r = blocked_compare(df, "y", group="g", block="b")
    assert np.isfinite(r.f) and 0 <= r.p_anova <= 1

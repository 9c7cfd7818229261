"""Tests of core.analysis.stats against published results for classic datasets, and its edge cases.

References (each number below is copied from the named publication, never computed here):

* PlantGrowth (R ``datasets``; Dobson 1983) -- near-equal variances. R output of
  ``anova(lm(weight ~ group))``, ``TukeyHSD(aov(...))``, ``kruskal.test`` (agricolae prints
  the statistic and p to 7 digits), ``dunn.test``, ``shapiro.test`` per group,
  ``car::leveneTest`` (Brown–Forsythe centring), ``oneway.test`` and dplyr summaries, as
  printed in R tutorials and package vignettes.
* InsectSprays (R ``datasets``; Beall 1942) -- clearly unequal variances (largest variance
  12.9 times the smallest). R ``oneway.test`` (Welch), ``kruskal.test`` and ``TukeyHSD``.
* sleep (R ``datasets``; Student 1908) -- R's documented ``t.test(extra ~ group)`` Welch
  output and ``oneway.test`` output. With two groups Games–Howell is exactly Welch's t-test.
* Games–Howell with k > 2: SPSS ``ONEWAY /POSTHOC=GH`` output (16 digits) and R
  ``PMCMRplus::gamesHowellTest`` p-values (14 digits) for two unequal-variance samples, as
  published in SciPy's test suite (``TestGamesHowell``).
* NIST StRD one-way ANOVA datasets SiRstv, AtmWtAg and SmLs04 with their certified values
  (15 significant digits).
* warpbreaks (R ``datasets``; Tippett 1950): R ``summary(aov(breaks ~ wool * tension))``.

Cross-checks against statsmodels and scipy (independent implementations) are separate tests.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from core.analysis.posthoc import holm
from core.analysis.stats import (
    BACKEND_LABELS,
    TABLE_COLUMNS,
    StatsError,
    compare,
    format_p,
    metric_info,
    p_phrase,
)
from core.errors import CloudTuneError

# ----------------------------------------------------------------------------- helpers


def sig_digits(published: str) -> int:
    """Significant digits shown in a published number ("0.0120064" -> 6)."""
    digits = Decimal(published).as_tuple().digits
    return len("".join(map(str, digits)).lstrip("0")) or 1


def assert_published(actual: float, published: str, min_sig: int = 6) -> None:
    """`actual`, rounded to the digits `published` shows, equals the published number."""
    assert sig_digits(published) >= min_sig, f"{published} has fewer than {min_sig} digits"
    exponent = Decimal(published).as_tuple().exponent
    assert isinstance(exponent, int)
    half_ulp = 0.5 * 10.0**exponent
    assert abs(actual - float(published)) <= half_ulp * (1 + 1e-9), (actual, published)


def frame(groups: dict[str, list[float]], value: str = "y", group: str = "g") -> pd.DataFrame:
    """A tidy frame from a dict of group -> values."""
    return pd.DataFrame(
        {
            group: [k for k, v in groups.items() for _ in v],
            value: [x for v in groups.values() for x in v],
        }
    )


def pair(table: pd.DataFrame, g1: str, g2: str) -> pd.Series:
    """The row of a pairwise table for (g1, g2)."""
    rows = table[(table["group1"] == g1) & (table["group2"] == g2)]
    assert len(rows) == 1
    return rows.iloc[0]


# ----------------------------------------------------------------------------- datasets

PLANT_GROWTH = {
    "ctrl": [4.17, 5.58, 5.18, 6.11, 4.50, 4.61, 5.17, 4.53, 5.33, 5.14],
    "trt1": [4.81, 4.17, 4.41, 3.59, 5.87, 3.83, 6.03, 4.89, 4.32, 4.69],
    "trt2": [6.31, 5.12, 5.54, 5.50, 5.37, 5.29, 4.92, 6.15, 5.80, 5.26],
}
INSECT_SPRAYS = {
    "A": [10, 7, 20, 14, 14, 12, 10, 23, 17, 20, 14, 13],
    "B": [11, 17, 21, 11, 16, 14, 17, 17, 19, 21, 7, 13],
    "C": [0, 1, 7, 2, 3, 1, 2, 1, 3, 0, 1, 4],
    "D": [3, 5, 12, 6, 4, 3, 5, 5, 5, 5, 2, 4],
    "E": [3, 5, 3, 5, 3, 6, 1, 1, 3, 2, 6, 4],
    "F": [11, 9, 15, 22, 15, 16, 13, 10, 26, 26, 24, 13],
}
SLEEP = {
    "1": [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0],
    "2": [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4],
}
NIST_SIRSTV = {
    "1": [196.3052, 196.1240, 196.1890, 196.2569, 196.3403],
    "2": [196.3042, 196.3825, 196.1669, 196.3257, 196.0422],
    "3": [196.1303, 196.2005, 196.2889, 196.0343, 196.1811],
    "4": [196.2795, 196.1748, 196.1494, 196.1485, 195.9885],
    "5": [196.2119, 196.1051, 196.1850, 196.0052, 196.2090],
}
NIST_ATMWTAG = {
    "1": [
        107.8681568, 107.8681465, 107.8681572, 107.8681785, 107.8681446, 107.8681903,
        107.8681526, 107.8681494, 107.8681616, 107.8681587, 107.8681519, 107.8681486,
        107.8681419, 107.8681569, 107.8681508, 107.8681672, 107.8681385, 107.8681518,
        107.8681662, 107.8681424, 107.8681360, 107.8681333, 107.8681610, 107.8681477,
    ],
    "2": [
        107.8681079, 107.8681344, 107.8681513, 107.8681197, 107.8681604, 107.8681385,
        107.8681642, 107.8681365, 107.8681151, 107.8681082, 107.8681517, 107.8681448,
        107.8681198, 107.8681482, 107.8681334, 107.8681609, 107.8681101, 107.8681512,
        107.8681469, 107.8681360, 107.8681254, 107.8681261, 107.8681450, 107.8681368,
    ],
}  # fmt: skip


def nist_smls04() -> dict[str, list[float]]:
    """NIST SmLs04: 9 groups of 21, each d, then (d - 1, d + 1) ten times, as 1000000.d."""
    firsts = [4, 3, 5, 3, 5, 3, 5, 3, 5]
    out = {}
    for i, d in enumerate(firsts, start=1):
        digits = [d] + [d - 1, d + 1] * 10
        out[str(i)] = [float(f"1000000.{x}") for x in digits]
    return out


WARPBREAKS = pd.DataFrame(
    {
        "breaks": [
            26, 30, 54, 25, 70, 52, 51, 26, 67, 18, 21, 29, 17, 12, 18, 35, 30, 36,
            36, 21, 24, 18, 10, 43, 28, 15, 26, 27, 14, 29, 19, 29, 31, 41, 20, 44,
            42, 26, 19, 16, 39, 28, 21, 39, 29, 20, 21, 24, 17, 13, 15, 15, 16, 28,
        ],
        "wool": ["A"] * 27 + ["B"] * 27,
        "tension": (["L"] * 9 + ["M"] * 9 + ["H"] * 9) * 2,
    }
)  # fmt: skip


@pytest.fixture(scope="module")
def plant() -> object:
    """The PlantGrowth comparison (weight by group)."""
    return compare(frame(PLANT_GROWTH, "weight", "group"), "weight", group="group").metrics[
        "weight"
    ]


@pytest.fixture(scope="module")
def insects_cmp() -> object:
    """The InsectSprays comparison (count by spray)."""
    return compare(frame(INSECT_SPRAYS, "count", "spray"), "count", group="spray")


@pytest.fixture(scope="module")
def insects(insects_cmp) -> object:
    """The InsectSprays metric result."""
    return insects_cmp.metrics["count"]


# ----------------------------------------------------------------------------- PlantGrowth (R)


def test_plantgrowth_descriptives_match_r(plant) -> None:
    d = plant.descriptives.set_index("group")
    for g, mean, sd, median in [
        ("ctrl", "5.032", "0.5830914", "5.155"),
        ("trt1", "4.661", "0.7936757", "4.550"),
        ("trt2", "5.526", "0.4425733", "5.435"),
    ]:
        assert d.loc[g, "n"] == 10
        assert_published(d.loc[g, "mean"], mean, min_sig=4)  # exact decimals in R's print
        assert_published(d.loc[g, "sd"], sd)
        assert_published(d.loc[g, "median"], median, min_sig=4)
    assert d.loc["trt1", "min"] == 3.59 and d.loc["trt1", "max"] == 6.03
    # the 95 % interval is mean +/- t(0.975, 9) * sd / sqrt(10); t(0.975, 9) = 2.262157 (tables)
    half = d.loc["ctrl", "ci_high"] - d.loc["ctrl", "mean"]
    assert_published(half / (d.loc["ctrl", "sd"] / math.sqrt(10)), "2.262157")


def test_plantgrowth_anova_matches_r(plant) -> None:
    a = plant.anova
    assert (a.df_between, a.df_within) == (2, 27)
    assert_published(a.ss_between, "3.76634")
    assert_published(a.ss_within, "10.49209", min_sig=7)
    assert_published(a.ms_between, "1.8831700")
    assert_published(a.ms_within, "0.3885959")
    assert_published(a.f, "4.846088")
    assert_published(a.p, "0.01590996")
    assert_published(a.omega_sq, "0.2040788")  # effectsize::omega_squared
    assert a.eta_sq == pytest.approx(3.76634 / (3.76634 + 10.49209), rel=1e-6)


def test_plantgrowth_tukey_matches_r(plant) -> None:
    published = [  # TukeyHSD: diff, lwr, upr, p adj  (R writes group2-group1)
        ("ctrl", "trt1", "-0.371", "-1.0622161", "0.3202161", "0.3908711"),
        ("ctrl", "trt2", "0.494", "-0.1972161", "1.1852161", "0.1979960"),
        ("trt1", "trt2", "0.865", "0.1737839", "1.5562161", "0.0120064"),
    ]
    for g1, g2, diff, lwr, upr, padj in published:
        row = pair(plant.tukey, g1, g2)
        assert_published(row["diff"], diff, min_sig=3)  # exact
        assert_published(row["ci_low"], lwr)
        assert_published(row["ci_high"], upr)
        assert_published(row["p_adj"], padj)
    assert plant.tukey["significant"].tolist() == [False, False, True]


def test_plantgrowth_kruskal_and_dunn_match_r(plant) -> None:
    k = plant.kruskal
    assert k.df == 2
    assert_published(k.h, "7.988229")
    assert_published(k.p, "0.01842376")
    assert k.epsilon_sq == pytest.approx(k.h / 29)
    # dunn.test: Z (row minus column) and one-sided P for ctrl-trt1, ctrl-trt2, trt1-trt2
    z_pub = ["1.117725", "-1.689290", "-2.807015"]
    p_one_sided = np.array([0.131842134, 0.045581972, 0.002500145])
    for (g1, g2), z in zip(
        [("ctrl", "trt1"), ("ctrl", "trt2"), ("trt1", "trt2")], z_pub, strict=True
    ):
        assert_published(-pair(plant.dunn, g1, g2)["statistic"], z)
    np.testing.assert_allclose(plant.dunn["p_adj"], holm(2 * p_one_sided), rtol=1e-6)


def test_plantgrowth_assumption_checks_match_r(plant) -> None:
    sw = plant.shapiro.set_index("group")
    for g, w, p in [
        ("ctrl", "0.9566815", "0.7474734"),
        ("trt1", "0.9304107", "0.4519440"),
        ("trt2", "0.9410052", "0.5642519"),
    ]:
        assert_published(sw.loc[g, "W"], w)
        assert_published(sw.loc[g, "p"], p)
    bf = plant.brown_forsythe
    assert (bf.center, bf.df_num, bf.df_den) == ("median", 2, 27)
    assert_published(bf.statistic, "1.119186")
    assert_published(bf.p, "0.341227")


def test_plantgrowth_welch_matches_r_print(plant) -> None:
    # oneway.test(weight ~ group, PlantGrowth): R prints 4-5 significant digits only
    w = plant.welch
    assert w.df_num == 2
    assert_published(w.f, "5.181", min_sig=4)
    assert_published(w.df_den, "17.128", min_sig=5)
    assert_published(w.p, "0.01739", min_sig=4)


def test_plantgrowth_choice_and_conclusion(plant) -> None:
    assert plant.chosen_test == "anova"
    assert "Brown–Forsythe p = 0.341" in plant.choice_reason
    assert plant.significant is True
    assert plant.conclusion.startswith(
        "weight differs between groups (F(2, 27) = 4.85, p = 0.016); trt2 had the highest mean"
    )
    assert "trt1 (Tukey HSD, adjusted p ≤ 0.012)" in plant.conclusion


# ----------------------------------------------------------------------------- InsectSprays (R)


def test_insectsprays_welch_matches_r(insects) -> None:
    w = insects.welch
    assert w.df_num == 5
    assert_published(w.f, "36.06544")
    assert_published(w.df_den, "30.04256")
    assert_published(w.p, "7.999379e-12")


def test_insectsprays_kruskal_matches_r(insects) -> None:
    assert insects.kruskal.df == 5
    assert_published(insects.kruskal.h, "54.69134")
    assert_published(insects.kruskal.p, "1.510844e-10")


def test_insectsprays_tukey_matches_r(insects) -> None:
    published = """
    B-A   0.8333333  -3.866075  5.532742 0.9951810
    C-A -12.4166667 -17.116075 -7.717258 0.0000000
    D-A  -9.5833333 -14.282742 -4.883925 0.0000014
    E-A -11.0000000 -15.699409 -6.300591 0.0000000
    F-A   2.1666667  -2.532742  6.866075 0.7542147
    C-B -13.2500000 -17.949409 -8.550591 0.0000000
    D-B -10.4166667 -15.116075 -5.717258 0.0000002
    E-B -11.8333333 -16.532742 -7.133925 0.0000000
    F-B   1.3333333  -3.366075  6.032742 0.9603075
    D-C   2.8333333  -1.866075  7.532742 0.4920707
    E-C   1.4166667  -3.282742  6.116075 0.9488669
    F-C  14.5833333   9.883925 19.282742 0.0000000
    E-D  -1.4166667  -6.116075  3.282742 0.9488669
    F-D  11.7500000   7.050591 16.449409 0.0000000
    F-E  13.1666667   8.467258 17.866075 0.0000000
    """
    for line in published.strip().splitlines():
        name, diff, lwr, upr, padj = line.split()
        g2, g1 = name.split("-")
        row = pair(insects.tukey, g1, g2)
        assert_published(row["diff"], diff, min_sig=1)
        assert_published(row["ci_low"], lwr)
        assert_published(row["ci_high"], upr)
        assert_published(row["p_adj"], padj, min_sig=1)  # 7 decimals as R prints them


def test_insectsprays_spread_and_choice(insects) -> None:
    # car::leveneTest(count ~ spray, InsectSprays): F = 3.8214, Pr(>F) = 0.004223
    assert_published(insects.brown_forsythe.statistic, "3.8214", min_sig=5)
    assert_published(insects.brown_forsythe.p, "0.004223", min_sig=4)
    # spray D's counts fail Shapiro–Wilk badly in a group of 12: ranks are safer
    assert insects.chosen_test == "kruskal"
    assert "far from normal" in insects.choice_reason
    assert insects.posthoc_name == "dunn"


def test_welch_is_chosen_for_unequal_variances_with_normal_groups() -> None:
    rng = np.random.default_rng(7)
    df = frame(
        {
            "local": list(rng.normal(100, 2, 40)),
            "vertex": list(rng.normal(101, 15, 40)),
            "azure": list(rng.normal(90, 30, 40)),
        },
        "duration_s",
        "backend",
    )
    m = compare(df, "duration_s").metrics["duration_s"]
    assert m.chosen_test == "welch"
    assert m.choice_reason.startswith("Welch's ANOVA was chosen: the spread differs")
    assert m.posthoc_name == "games_howell"
    assert m.conclusion.startswith("Time per trial differs between platforms (Welch's F(2, ")
    assert "Azure ML was fastest" in m.conclusion


# ----------------------------------------------------------------------------- Games–Howell


SPSS_SAME = ([24.0, 23.0, 31.0, 51.0], [34.0, 18.0, 18.0, 26.0], [17.0, 68.0, 59.0, 7.0])
SPSS_DIFF = (
    [30.0, 23.0, 51.0],
    [-81.0, 71.0, -27.0, 63.0],
    [42.0, 11.0, 29.0, 19.0, 50.0],
    [23.0, 22.0, 20.0, 18.0, 9.0],
)


@pytest.mark.parametrize(
    ("samples", "published"),
    [
        (
            SPSS_SAME,
            """
            0 1 8.25000000 -16.5492749527311 33.0492749527311 0.558733632413559
            0 2 -5.50000000 -63.6702454316458 52.6702454316458 0.941147750599221
            1 2 -13.7500000 -74.3174374251372 46.8174374251372 0.682983914946841
            """,
        ),
        (
            SPSS_DIFF,
            """
            0 1 28.16666667 -141.985416377670 198.318749711003 0.8727542747886180
            0 2 4.466666667 -37.2830676783904 46.2164010117237 0.9752628408671710
            0 3 16.26666667 -35.0933112382470 67.6266445715803 0.4262506151302880
            1 2 -23.70000000 -195.315617201249 147.915617201249 0.9148950609000590
            1 3 -11.90000000 -188.105478728519 164.305478728519 0.9861432250093960
            2 3 11.80000000 -16.2894857524254 39.8894857524254 0.4755344436335670
            """,
        ),
    ],
    ids=["equal-n", "unequal-n"],
)
def test_games_howell_matches_spss(samples, published) -> None:
    df = frame({str(i): list(s) for i, s in enumerate(samples)})
    gh = compare(df, "y", group="g").metrics["y"].games_howell
    for line in published.strip().splitlines():
        i, j, diff, low, high, sig = line.split()
        # SPSS writes mean(I) - mean(J); we write mean(group2) - mean(group1)
        row = pair(gh, i, j)
        assert -row["diff"] == pytest.approx(float(diff), rel=1e-8)
        # SPSS's studentized-range quantile agrees with SciPy's to about 7 digits
        assert -row["ci_high"] == pytest.approx(float(low), rel=1e-6)
        assert -row["ci_low"] == pytest.approx(float(high), rel=1e-6)
        assert row["p_adj"] == pytest.approx(float(sig), rel=1e-7)


def test_games_howell_matches_pmcmrplus() -> None:
    # gamesHowellTest(fit) with options(digits = 16): Pr(>|q|) for 1-0, 2-0, 3-0, 2-1, 3-1, 3-2
    df = frame({str(i): list(s) for i, s in enumerate(SPSS_DIFF)})
    gh = compare(df, "y", group="g").metrics["y"].games_howell
    published = {
        ("0", "1"): "0.87275427357438",
        ("0", "2"): "0.97526284087419",
        ("0", "3"): "0.42625067714691",
        ("1", "2"): "0.91489506061850",
        ("1", "3"): "0.98614322544695",
        ("2", "3"): "0.47553444364614",
    }
    for (g1, g2), p in published.items():
        assert pair(gh, g1, g2)["p_adj"] == pytest.approx(float(p), rel=1e-6)


def test_games_howell_two_groups_is_welchs_t_test_as_r_documents() -> None:
    # R's t.test(extra ~ group, data = sleep): t = -1.8608, df = 17.776, p-value = 0.07939,
    # 95 percent confidence interval of mean1 - mean2: -3.3654832  0.2054832
    m = compare(frame(SLEEP, "extra", "group"), "extra", group="group").metrics["extra"]
    row = pair(m.games_howell, "1", "2")  # diff = mean2 - mean1 = 1.58
    assert_published(row["ci_low"], "-0.2054832")
    assert_published(row["ci_high"], "3.3654832", min_sig=8)
    assert_published(-row["statistic"], "-1.8608", min_sig=5)
    assert_published(row["df"], "17.776", min_sig=5)
    assert_published(row["p_adj"], "0.07939", min_sig=4)
    # oneway.test(extra ~ group, data = sleep): F = 3.4626, num df = 1, denom df = 17.776
    assert_published(m.welch.f, "3.4626", min_sig=5)
    assert_published(m.welch.df_den, "17.776", min_sig=5)


def test_games_howell_cross_checks_scipy_on_insectsprays(insects) -> None:
    from scipy import stats

    res = stats.tukey_hsd(*INSECT_SPRAYS.values(), equal_var=False)
    keys = list(INSECT_SPRAYS)
    for row in insects.games_howell.itertuples():
        i, j = keys.index(row.group1), keys.index(row.group2)
        # SciPy's p is 1 - cdf, with an absolute accuracy of about 1e-12 (it is 3e-9 of the
        # 6.7e-7 p-value here); ours is within 1e-13 of it (test_range_tail_is_accurate...)
        assert row.p_adj == pytest.approx(res.pvalue[i, j], rel=1e-9, abs=1e-12)
        assert row.statistic == pytest.approx(-res.statistic[i, j] / row.se, rel=1e-12)


# ----------------------------------------------------------------------------- NIST StRD


@pytest.mark.parametrize(
    ("data", "cert"),
    [
        (
            NIST_SIRSTV,
            (4, 20, "5.11462616000000E-02", "2.16636560000000E-01", "1.27865654000000E-02",
             "1.08318280000000E-02", "1.18046237440255E+00", "1.90999039051129E-01",
             "1.04076068334656E-01"),
        ),
        (
            NIST_ATMWTAG,
            (1, 46, "3.63834187500000E-09", "1.04951729166667E-08", "3.63834187500000E-09",
             "2.28155932971014E-10", "1.59467335677930E+01", "2.57426544538321E-01",
             "1.51048314446410E-05"),
        ),
        (
            nist_smls04(),
            (8, 180, "1.68000000000000E+00", "1.80000000000000E+00", "2.10000000000000E-01",
             "1.00000000000000E-02", "2.10000000000000E+01", "4.82758620689655E-01",
             "1.00000000000000E-01"),
        ),
    ],
    ids=["SiRstv", "AtmWtAg", "SmLs04"],
)  # fmt: skip
def test_anova_matches_nist_certified_values(data, cert) -> None:
    dfb, dfw, ssb, ssw, msb, msw, f, r2, resid_sd = cert
    a = compare(frame(data), "y", group="g").metrics["y"].anova
    assert (a.df_between, a.df_within) == (dfb, dfw)
    for actual, certified in [
        (a.ss_between, ssb),
        (a.ss_within, ssw),
        (a.ms_between, msb),
        (a.ms_within, msw),
        (a.f, f),
        (a.eta_sq, r2),
        (math.sqrt(a.ms_within), resid_sd),
    ]:
        assert actual == pytest.approx(float(certified), rel=1e-8)


# ----------------------------------------------------------------------------- two factors


def test_two_way_matches_r_warpbreaks() -> None:
    cmp = compare(WARPBREAKS, "breaks", group="tension", second_factor="wool")
    tw = cmp.metrics["breaks"].two_way
    t = tw.table.set_index("term")
    # summary(aov(breaks ~ wool * tension, data = warpbreaks))
    assert t.loc["wool", "df"] == 1 and t.loc["tension", "df"] == 2
    assert t.loc["tension × wool", "df"] == 2 and t.loc["residual", "df"] == 48
    assert_published(t.loc["wool", "F"], "3.765", min_sig=4)
    assert_published(t.loc["tension", "F"], "8.498", min_sig=4)
    assert_published(t.loc["tension × wool", "F"], "4.189", min_sig=4)
    assert_published(t.loc["wool", "p"], "0.058213", min_sig=5)
    assert_published(t.loc["tension", "p"], "0.000693", min_sig=3)
    assert_published(t.loc["tension × wool", "p"], "0.021044", min_sig=5)
    assert_published(t.loc["residual", "mean_sq"], "119.7", min_sig=4)
    # balanced design: the tension sum of squares is the one-way between-group sum of squares
    one_way = cmp.metrics["breaks"].anova
    assert t.loc["tension", "sum_sq"] == pytest.approx(one_way.ss_between, rel=1e-12)
    table = cmp.table()
    assert table["Analysis"].tolist() == [
        "breaks",
        "breaks: tension",
        "breaks: wool",
        "breaks: tension × wool",
    ]
    assert table.loc[3].tolist() == [
        "breaks: tension × wool",
        "4.19 (2, 48)",
        "0.021",
        "Significant",
    ]
    assert "The tension effect on breaks depends on wool (interaction F(2, 48) = 4.19" in (
        " ".join(tw.conclusions)
    )


def test_additive_model_when_cells_lack_replicates() -> None:
    # one observation per (tension, wool) cell: no interaction can be tested
    df = WARPBREAKS.groupby(["tension", "wool"], as_index=False)["breaks"].mean()
    tw = compare(df, "breaks", group="tension", second_factor="wool").metrics["breaks"].two_way
    assert tw.formula == "y ~ C(g) + C(f)"
    assert "interaction was not tested" in tw.warnings[0]
    assert list(tw.table["term"]) == ["tension", "wool", "residual"]


def test_block_design_with_seed_as_block() -> None:
    rng = np.random.default_rng(3)
    seeds = np.repeat(np.arange(8), 3)
    backend = np.tile(["local", "vertex", "azure"], 8)
    effect = {"local": 0.0, "vertex": -30.0, "azure": 5.0}
    y = 600 + 40 * seeds + np.array([effect[b] for b in backend]) + rng.normal(0, 5, 24)
    df = pd.DataFrame({"backend": backend, "seed": seeds, "duration_s": y})
    m = compare(df, "duration_s", block="seed").metrics["duration_s"]
    t = m.two_way.table.set_index("term")
    assert t.loc["residual", "df"] == (3 - 1) * (8 - 1)
    assert t.loc["platform", "sum_sq"] == pytest.approx(m.anova.ss_between, rel=1e-10)
    assert t.loc["platform", "p"] < 1e-6 < m.anova.p  # the block removes the seed noise
    assert m.two_way.conclusions[0].startswith(
        "Time per trial differs between platforms with seed as a block (F(2, 14) = "
    )


# ----------------------------------------------------------------------------- cross-checks


def test_cross_check_statsmodels_and_scipy(insects, plant) -> None:
    import statsmodels.api as sm
    import statsmodels.formula.api as smf
    from scipy import stats
    from statsmodels.stats.multicomp import pairwise_tukeyhsd
    from statsmodels.stats.oneway import anova_oneway

    for data, m in [(INSECT_SPRAYS, insects), (PLANT_GROWTH, plant)]:
        df = frame(data)
        aov = sm.stats.anova_lm(smf.ols("y ~ C(g)", df).fit())
        assert m.anova.f == pytest.approx(aov["F"].iloc[0], rel=1e-10)
        assert m.anova.p == pytest.approx(aov["PR(>F)"].iloc[0], rel=1e-9)
        welch = anova_oneway(df["y"], df["g"], use_var="unequal")
        assert m.welch.f == pytest.approx(welch.statistic, rel=1e-10)
        assert m.welch.df_den == pytest.approx(welch.df[1], rel=1e-10)
        assert m.welch.p == pytest.approx(welch.pvalue, rel=1e-8)
        kw = stats.kruskal(*data.values())
        assert m.kruskal.h == pytest.approx(kw.statistic, rel=1e-12)
        lev = stats.levene(*data.values(), center="mean")
        assert m.levene.statistic == pytest.approx(lev.statistic, rel=1e-10)
        tk = pairwise_tukeyhsd(df["y"], df["g"])
        np.testing.assert_allclose(m.tukey["diff"], tk.meandiffs, rtol=1e-12)
        np.testing.assert_allclose(m.tukey["p_adj"], tk.pvalues, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(m.tukey["ci_low"], tk.confint[:, 0], rtol=1e-6)


# ----------------------------------------------------------------------------- study layout


def study_like(seed: int = 11) -> pd.DataFrame:
    """Three platforms x 20 trials: Vertex faster, accuracy equal (like the study)."""
    rng = np.random.default_rng(seed)
    rows = []
    for backend, hours in [("sagemaker", 4.0), ("vertex", 3.5), ("azure", 4.2)]:
        for _ in range(20):
            rows.append(
                {
                    "backend": backend,
                    "duration_s": rng.normal(hours * 3600, 900),
                    "objective": rng.normal(0.92, 0.01),
                }
            )
    return pd.DataFrame(rows)


def test_study_table_layout_and_words() -> None:
    cmp = compare(study_like(), ["duration_s", "objective"])
    table = cmp.table()
    assert list(table.columns) == TABLE_COLUMNS
    assert table["Analysis"].tolist() == ["Time per trial", "Accuracy"]
    assert table["F-statistic (df)"].str.endswith("(2, 57)").all()
    time_m = cmp.metrics["duration_s"]
    assert table.loc[0, "F-statistic (df)"] == f"{time_m.anova.f:.2f} (2, 57)"
    assert table.loc[0, "p-value"] == format_p(time_m.anova.p)
    assert table["Conclusion"].tolist() == ["Significant", "Not significant"]
    assert time_m.conclusion.startswith(
        f"Time per trial differs between platforms (F(2, 57) = {time_m.anova.f:.2f}, "
    )
    assert "; Vertex AI was fastest" in time_m.conclusion
    assert cmp.metrics["objective"].conclusion.startswith(
        "Accuracy does not differ significantly between platforms (F(2, 57) = "
    )
    csv = table.to_csv(index=False)
    assert csv.splitlines()[0] == "Analysis,F-statistic (df),p-value,Conclusion"


def test_alpha_changes_verdict_and_intervals() -> None:
    df = frame(PLANT_GROWTH, "weight", "group")
    strict = compare(df, "weight", group="group", alpha=0.01)
    assert strict.table().loc[0, "Conclusion"] == "Not significant"
    m = strict.metrics["weight"]
    assert m.conclusion.startswith("weight does not differ significantly")
    loose = compare(df, "weight", group="group").metrics["weight"]
    # 99 % intervals are wider than 95 % ones
    assert (
        m.tukey["ci_high"] - m.tukey["ci_low"] > loose.tukey["ci_high"] - loose.tukey["ci_low"]
    ).all()
    assert (m.descriptives["ci_high"] > loose.descriptives["ci_high"]).all()


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.00049, "< 0.001"),
        (0.0049, "< 0.01"),
        (0.034, "0.034"),
        (0.0496, "0.0496"),
        (0.0504, "0.0504"),
        (0.297, "0.297"),
        (0.99999, "> 0.999"),
        (float("nan"), "n/a"),
    ],
)
def test_format_p_like_the_study(p: float, text: str) -> None:
    assert format_p(p) == text


def test_p_phrase() -> None:
    assert p_phrase(0.005) == "p = 0.005"
    assert p_phrase(0.0004) == "p < 0.001"
    assert p_phrase(0.04996) == "p = 0.0500"


def test_metric_info_defaults_and_overrides() -> None:
    assert metric_info("cost_usd").best == "cheapest"
    assert metric_info("val_accuracy").direction == "higher"
    assert metric_info("loss").direction is None
    assert metric_info("loss", direction="lower").best == "lowest"
    assert metric_info("objective", name="Validation loss", direction="lower").best == "lowest"


def test_labels_names_and_directions_can_be_overridden() -> None:
    df = study_like()
    cmp = compare(
        df,
        "objective",
        labels={"vertex": "GCP"},
        names={"objective": "Loss"},
        directions={"objective": "lower"},
    )
    d = cmp.metrics["objective"].descriptives
    assert d.set_index("group").loc["vertex", "label"] == "GCP"
    assert d.set_index("group").loc["azure", "label"] == BACKEND_LABELS["azure"]
    assert cmp.table().loc[0, "Analysis"] == "Loss"


def test_to_dict_is_json_with_every_number(insects_cmp, insects) -> None:
    data = json.loads(json.dumps(insects_cmp.to_dict()))
    m = data["metrics"]["count"]
    for key in ("anova", "welch", "kruskal", "levene", "brown_forsythe"):
        assert m[key] is not None
    assert m["welch"]["f"] == pytest.approx(insects.welch.f)
    assert len(m["tukey"]) == len(m["games_howell"]) == len(m["dunn"]) == 15
    assert m["dunn"][0]["ci_low"] is None  # NaN becomes null
    assert {"n", "mean", "sd", "median", "min", "max", "ci_low", "ci_high"} <= set(
        m["descriptives"][0]
    )
    assert data["table"][0]["Analysis"] == "count (Kruskal–Wallis)"


# ----------------------------------------------------------------------------- edge cases


def test_fewer_than_two_groups_is_a_sentence() -> None:
    df = pd.DataFrame({"backend": ["local"] * 5, "duration_s": [1.0, 2, 3, 4, 5]})
    m = compare(df, "duration_s").metrics["duration_s"]
    assert m.anova is None and m.chosen_test is None
    assert m.conclusion == (
        "Time per trial cannot be compared: the tests need at least two platforms with two or "
        "more trials each, and only Local qualifies."
    )
    assert compare(df, "duration_s").table().loc[0].tolist()[1:3] == ["—", "—"]


def test_group_with_one_trial_is_left_out() -> None:
    df = frame({"local": [1.0, 2, 3], "vertex": [5.0, 6, 7], "azure": [4.0]}, "cost_usd", "backend")
    m = compare(df, "cost_usd").metrics["cost_usd"]
    assert m.anova.df_between == 1  # two groups tested
    assert any(w.startswith("Azure ML has 1 usable trial of Cost") for w in m.warnings)
    assert m.descriptives.set_index("group").loc["azure", "n"] == 1
    assert math.isnan(m.descriptives.set_index("group").loc["azure", "sd"])


def test_all_values_equal_is_a_sentence() -> None:
    df = frame({"local": [2.0] * 3, "vertex": [2.0] * 4}, "cost_usd", "backend")
    m = compare(df, "cost_usd").metrics["cost_usd"]
    assert m.conclusion == "All 7 values of Cost are equal (2); there is nothing to compare."
    assert m.anova is None


def test_zero_variance_within_groups() -> None:
    df = frame({"local": [2.0] * 3, "vertex": [3.0] * 3}, "cost_usd", "backend")
    m = compare(df, "cost_usd").metrics["cost_usd"]
    assert math.isinf(m.anova.f) and m.anova.p == 0.0
    assert m.welch is None and m.games_howell is None and m.tukey is None
    assert any("without any noise" in w for w in m.warnings)
    assert any(w.startswith("Welch's ANOVA and Games–Howell need spread") for w in m.warnings)
    assert m.conclusion.startswith("Cost differs between platforms (F(1, 4) = inf")
    assert (
        json.loads(json.dumps(compare(df, "cost_usd").to_dict()))["metrics"]["cost_usd"]["anova"][
            "f"
        ]
        == "inf"
    )


def test_one_flat_group_falls_back_from_welch() -> None:
    df = frame(
        {"local": [2.0, 2, 2, 2], "vertex": [3.0, 9, 1, 14], "azure": [5.0, 6, 4, 5]},
        "cost_usd",
        "backend",
    )
    m = compare(df, "cost_usd").metrics["cost_usd"]
    assert m.welch is None and m.anova is not None
    assert m.chosen_test in ("anova", "kruskal")
    if m.chosen_test == "kruskal":
        assert "Welch's ANOVA cannot be used" in m.choice_reason


def test_nan_and_infinite_values_are_dropped_and_counted() -> None:
    df = frame(
        {"local": [2.0, np.nan, 3.0, np.inf, 2.5], "vertex": [3.0, 4.0, -np.inf, 5.0, np.nan]},
        "cost_usd",
        "backend",
    )
    m = compare(df, "cost_usd").metrics["cost_usd"]
    assert m.dropped == {"nan": 2, "inf": 2, "non_numeric": 0, "missing_group": 0}
    assert m.anova.df_within == 6 - 2
    assert "Cost: 2 missing (NaN) and 2 infinite values left out." in m.warnings


def test_non_numeric_metric_is_a_sentence() -> None:
    df = pd.DataFrame({"backend": ["local", "vertex"] * 3, "status": ["ok", "bad", "ok"] * 2})
    cmp = compare(df, "status")
    assert cmp.metrics["status"].conclusion.startswith("Column 'status' is not numeric")
    assert cmp.table().loc[0, "Conclusion"].endswith("choose a numeric metric column.")


def test_numbers_written_as_text_are_used_and_junk_counted() -> None:
    df = pd.DataFrame(
        {"backend": ["local"] * 3 + ["vertex"] * 3, "m": ["1", "2", "x", "4", "5", "6.5"]}
    )
    m = compare(df, "m").metrics["m"]
    assert m.dropped["non_numeric"] == 1 and m.anova.df_within == 3
    assert "m: 1 non-numeric value left out." in m.warnings


def test_rows_without_group_are_counted() -> None:
    df = pd.DataFrame(
        {"backend": ["local", None, "local", "vertex", "vertex", np.nan], "m": [1.0, 2, 3, 4, 5, 6]}
    )
    cmp = compare(df, "m")
    assert cmp.metrics["m"].dropped["missing_group"] == 2
    assert "2 row(s) have no value in 'backend' and were left out." in cmp.warnings


def test_shapiro_is_skipped_for_large_groups() -> None:
    rng = np.random.default_rng(1)
    df = frame({"local": list(rng.normal(0, 1, 5001)), "vertex": list(rng.normal(0, 1, 30))})
    m = compare(df, "y", group="g").metrics["y"]
    sw = m.shapiro.set_index("group")
    assert math.isnan(sw.loc["local", "p"]) and "more than 5000" in sw.loc["local", "note"]
    assert not math.isnan(sw.loc["vertex", "p"])
    assert any("Shapiro–Wilk was skipped for local" in w for w in m.warnings)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"metrics": "nope"}, "Metric column(s) 'nope' not in the table"),
        ({"metrics": "m", "group": "zz"}, "The grouping column 'zz' is not in the table"),
        ({"metrics": "m", "alpha": 1.5}, "alpha must be between 0 and 1"),
        ({"metrics": "m", "block": "seed"}, "The block column 'seed' is not in the table"),
        ({"metrics": []}, "No metric was given"),
    ],
)
def test_bad_options_raise_a_sentence(kwargs, needle) -> None:
    df = pd.DataFrame({"backend": ["a", "b"], "m": [1.0, 2.0]})
    with pytest.raises(StatsError, match=None) as err:
        compare(df, **kwargs)
    assert isinstance(err.value, CloudTuneError)
    assert needle in str(err.value)


def test_empty_table_raises_a_sentence() -> None:
    with pytest.raises(StatsError, match="The trial table is empty"):
        compare(pd.DataFrame(), "m")


def test_kruskal_without_ties_cross_checks_scipy() -> None:
    from scipy import stats

    values = [x for v in NIST_SIRSTV.values() for x in v]
    assert len(set(values)) == len(values)  # the no-ties path
    k = compare(frame(NIST_SIRSTV), "y", group="g").metrics["y"].kruskal
    ref = stats.kruskal(*NIST_SIRSTV.values())
    assert k.h == pytest.approx(ref.statistic, rel=1e-12)
    assert k.p == pytest.approx(ref.pvalue, rel=1e-10)


@pytest.mark.parametrize("k", [3, 6])
@pytest.mark.parametrize("df", [12.5, 57.0, 2500.0, 33000.0])
def test_studentized_range_quantile_matches_scipy(k: int, df: float) -> None:
    """The fast quantile (tight bracket; 1/df interpolation past df 2000) agrees with SciPy."""
    from scipy.stats import studentized_range

    from core.analysis.posthoc import q_quantile

    expected = float(studentized_range.ppf(0.95, k, df))
    assert q_quantile(0.95, k, df) == pytest.approx(expected, rel=2e-7)


@pytest.mark.parametrize(
    ("k", "df", "q"),
    [
        (2, 2.0, 6.1),
        (3, 2.3, 30.0),
        (4, 12.5, 1.2),
        (6, 57.0, 4.17),
        (10, 190.3, 5.9),
        (40, 2000.0, 5.5),
    ],
)
def test_range_cdf_matches_scipy(k: int, df: float, q: float) -> None:
    """The product-rule cdf behind q_quantile agrees with SciPy's adaptive integral."""
    from scipy.stats import studentized_range

    from core.analysis.posthoc import range_cdf

    assert range_cdf(q, k, df) == pytest.approx(float(studentized_range.cdf(q, k, df)), abs=2e-12)


def test_range_sf_matches_scipy_and_uses_it_outside_the_rule() -> None:
    """Post-hoc p-values agree with SciPy's sf to its own accuracy (about 1e-12 absolute) and
    are SciPy's own outside the product rule's range (df under 2)."""
    import numpy as np
    from scipy.stats import studentized_range

    from core.analysis.posthoc import range_sf

    q = np.array([0.8, 2.9, 3.6, 6.5, 4.0, 7.5])
    df = np.array([57.0, 190.3, 12.5, 960.0, 1.5, 57.0])
    expected = studentized_range.sf(q, 4, df)
    got = range_sf(q, 4, df)
    assert got == pytest.approx(expected, rel=1e-8, abs=1e-12)
    assert got[4] == expected[4]  # df 1.5: SciPy's


def _tail_reference(q: float, k: int, df: float) -> float:
    """P(Q > q) by nested adaptive quadrature (relative tolerance 1e-12) of the tail integrand.

    The same integral as range_tail, evaluated adaptively instead of by a fixed rule: it checks
    the rule's nodes and panels where a p-value is small. (The integrand's identity with
    1 - cdf is checked by the SciPy comparison above, where p is large.)
    """
    from scipy import integrate
    from scipy.special import gammaln, ndtr

    n = k - 1
    log_const = 0.5 * df * math.log(df) - gammaln(0.5 * df) - (0.5 * df - 1) * math.log(2)

    def inner(s: float) -> float:
        w = q * s

        def f(z: float) -> float:
            a, c = ndtr(-z), ndtr(-(z + w))
            if a == 0.0:
                return 0.0
            gap = -(a**n) * math.expm1(n * math.log1p(-c / a)) if c < a else a**n
            return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) * gap

        cuts = [-40.0, -w / 2 - 5, -w / 2, 5.0, 40.0]
        return k * sum(
            integrate.quad(f, a, b, epsabs=0, epsrel=1e-13, limit=400)[0]
            for a, b in zip(cuts, cuts[1:], strict=False)
        )

    def outer(s: float) -> float:
        return math.exp(log_const + (df - 1) * math.log(s) - 0.5 * df * s * s) * inner(s)

    mode, sd = math.sqrt((df - 1) / df), 1 / math.sqrt(2 * df)
    cuts = sorted({1e-12, *(max(1e-12, mode + m * sd) for m in (-40, -8, 0, 8, 40))})
    return sum(
        integrate.quad(outer, a, b, epsabs=0, epsrel=1e-12, limit=400)[0]
        for a, b in zip(cuts, cuts[1:], strict=False)
    )


@pytest.mark.parametrize(
    ("k", "df", "q"),
    [(4, 57.0, 10.0), (4, 960.0, 9.5), (3, 30.0, 12.0), (10, 190.3, 7.5)],
)
def test_range_tail_is_accurate_where_one_minus_cdf_is_not(k: int, df: float, q: float) -> None:
    """Small post-hoc p-values (1e-5 to 2e-10) within 1e-8 of themselves; SciPy's 1 - cdf
    is off by up to 1e-3 of the p-value at 2e-10."""
    from core.analysis.posthoc import range_tail

    assert range_tail(q, k, df) == pytest.approx(_tail_reference(q, k, df), rel=1e-8)

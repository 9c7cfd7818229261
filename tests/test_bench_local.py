"""The local benchmark's bookkeeping: when a run reached a target, per seed, and the checks.

The benchmark itself takes many minutes (``python -m bench.bench_local``); these tests pin
down the arithmetic its README figures and target checks come from.
"""

from __future__ import annotations

import pytest

from bench import bench_local as bl


def _a(best: float, wall: float) -> dict:
    return {"best": best, "wall_s": wall}


def test_time_to_reach_takes_the_first_point_at_or_above_the_target() -> None:
    curve = [(5.0, 0.5), (8.0, 0.7), (9.0, 0.69), (12.0, 0.8)]
    assert bl.time_to_reach(curve, 0.7) == 8.0
    assert bl.time_to_reach(curve, 0.75) == 12.0
    assert bl.time_to_reach(curve, 0.81) is None


def test_reach_curve_prefers_epochs_to_trial_ends() -> None:
    run = {"curve": [(20.0, 0.8)], "epoch_curve": [(9.0, 0.75), (14.0, 0.8)]}
    assert bl.time_to_reach(bl.reach_curve(run), 0.75) == 9.0
    assert bl.time_to_reach(bl.reach_curve({"curve": [(20.0, 0.8)]}), 0.75) == 20.0


def test_reach_per_seed_pairs_each_run_with_the_same_seeds_plain_run() -> None:
    a_runs = [_a(0.7, 60.0), _a(0.8, 50.0)]
    runs = [
        {"seed": 42, "wall_s": 30.0, "best": 0.72, "epoch_curve": [(10.0, 0.6), (15.0, 0.71)]},
        {"seed": 43, "wall_s": 30.0, "best": 0.75, "epoch_curve": [(10.0, 0.75)]},
    ]
    rows = bl.reach_per_seed(runs, a_runs)
    assert [r["reach_s"] for r in rows] == [15.0, None]  # seed 43 never reached 0.8
    assert rows[0]["ratio"] == 0.25
    assert rows[1]["ratio"] is None


@pytest.mark.parametrize(
    ("ratios", "expected"),
    [([0.2, 0.3, 0.5], 0.3), ([0.2, None, None], None), ([0.1, 0.2, None], 0.2), ([], None)],
)
def test_median_ratio_counts_a_seed_that_never_reached_as_infinite(ratios, expected) -> None:
    assert bl.median_ratio([{"ratio": r} for r in ratios]) == expected


def test_paired_difference_gives_a_ci_that_holds_zero_for_a_tie() -> None:
    tie = bl.paired_difference([0.70, 0.75, 0.72, 0.80], [0.72, 0.73, 0.74, 0.78])
    assert tie["mean"] == pytest.approx(0.0, abs=1e-9)
    assert tie["ci95"][0] < 0 < tie["ci95"][1]
    better = bl.paired_difference([0.80, 0.81, 0.79, 0.82], [0.70, 0.72, 0.70, 0.71])
    assert better["ci95"][0] > 0
    assert bl.paired_difference([0.8], [0.7]) == {}


def test_summarise_checks_the_median_seed_against_the_target() -> None:
    a = {"wall_s": 60.0, "best": 0.73, "bests": [0.7, 0.76], "cpu_s": 70.0, "trials": 8}
    b = {"wall_s": 45.0, "best": 0.74, "bests": [0.71, 0.77], "cpu_s": 60.0, "trials": 8}
    fast = {"wall_s": 30.0, "best": 0.75, "trials": 8, "per_seed": [{"ratio": 0.2, "reach_s": 12.0}, {"ratio": 0.3, "reach_s": 18.0}, {"ratio": None, "reach_s": None}]}  # fmt: skip
    slow = {"wall_s": 30.0, "best": 0.70, "trials": 8, "per_seed": [{"ratio": 0.5, "reach_s": 30.0}, {"ratio": None, "reach_s": None}, {"ratio": 0.1, "reach_s": 6.0}]}  # fmt: skip
    figures = {"epoch_overhead": {"epoch_overhead": 0.06}, "rss_30_trials": {"growth_mb": 20.0}}
    out = bl.summarise(a, b, {"c_fast": fast, "c_slow": slow}, figures)
    met = out["targets_met"]
    assert met["c_fast_reaches_a_best_within_0.33"] is True
    assert met["c_slow_reaches_a_best_within_0.33"] is False
    assert out["c_fast"]["seeds_reaching_a_best_within_target"] == 2
    assert out["c_slow"]["seeds_reaching_a_best"] == 2
    assert met["b_at_least_as_accurate_as_a"] is True
    assert met["b_time_ratio_at_most_0.8"] is True
    assert met["epoch_overhead_at_most_5pct"] is False
    assert met["rss_growth_at_most_100mb"] is True
    assert out["b_minus_a_best"]["by_seed"] == [0.01, 0.01]

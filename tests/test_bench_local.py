"""The local benchmark's bookkeeping: time to target, intervals, records, run order and checks.

The benchmark itself takes about 25 minutes (``python -m bench.bench_local``, ``--quick`` for a
smoke run); these tests pin down, without training anything, the arithmetic and the run order
its figures come from.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest

from bench import bench_local as bl


def test_time_to_reach_takes_the_first_epoch_at_or_above_the_target() -> None:
    curve = [(8.0, 0.7), (5.0, 0.5), (9.0, 0.69), (12.0, 0.8)]
    assert bl.time_to_reach(curve, 0.7) == 8.0
    assert bl.time_to_reach(curve, 0.75) == 12.0
    assert bl.time_to_reach(curve, 0.81) is None
    # Keras' float32 accuracy: 585 of 750 is 0.77999997, which is 0.78
    assert bl.time_to_reach([(3.0, 0.7799999713897705)], 0.78) == 3.0
    assert bl.time_to_reach([(3.0, 0.7786666)], 0.78) is None


def test_best_at_counts_only_epochs_until_then() -> None:
    curve = [(5.0, 0.5), (8.0, 0.7), (12.0, 0.8)]
    assert bl.best_at(curve, 4.9) is None
    assert bl.best_at(curve, 8.0) == 0.7
    assert bl.best_at(curve, 100.0) == 0.8


def test_a_seed_that_never_reached_counts_as_infinite_in_the_median() -> None:
    assert bl.median_inf([3.0, None, 1.0]) == 3.0
    assert bl.median_inf([3.0, None, None]) is None
    assert bl.median_inf([]) is None


@pytest.mark.parametrize(
    ("n", "coverage", "k"),
    [(5, 0.9375, 1), (6, 0.9688, 1), (9, 0.9609, 2), (12, 0.9614, 3)],
)
def test_median_interval_takes_the_order_statistics_its_coverage_allows(
    n: int, coverage: float, k: int
) -> None:
    values = [float(i) for i in range(1, n + 1)]
    iv = bl.median_interval(values)
    assert iv["coverage"] == coverage
    assert (iv["low"], iv["high"]) == (float(k), float(n + 1 - k))
    assert bl.median_interval([1.0, 2.0, None, None, None])["high"] is None  # never: open


def test_ratio_of_medians_and_its_bootstrap_interval() -> None:
    arm, base = [10.0, 12.0, 11.0, 30.0, 9.0], [20.0, 22.0, 25.0, 21.0, 40.0]
    out = bl.ratio_of_medians(arm, base)
    assert out["ratio"] == round(11.0 / 22.0, 3)
    assert out["low"] <= out["ratio"] <= out["high"]
    assert out["low"] >= min(arm) / max(base) and out["high"] <= max(arm) / min(base)
    never = bl.ratio_of_medians([None, None, None, 5.0, 6.0], base)
    assert never["ratio"] is None  # its median seed never reached: no finite ratio
    assert bl.ratio_of_medians(arm, [None] * 5)["ratio"] is None


def _ev(t: float, ev: str, **kw: Any) -> dict[str, Any]:
    return {"t": 100.0 + t, "ev": ev, **kw}


def test_plain_record_reads_the_scripts_events_up_to_its_window() -> None:
    events = [
        _ev(3.0, "imported"),
        _ev(3.5, "data"),
        _ev(4.0, "train_begin"),
        _ev(4.0, "epoch_begin", epoch=1),
        _ev(7.0, "epoch_end", epoch=1, acc=0.5),  # 3 s: 1 s more than the later epoch
        _ev(7.0, "epoch_begin", epoch=2),
        _ev(9.0, "epoch_end", epoch=2, acc=0.7),
        _ev(9.5, "train_end"),
        _ev(10.5, "train_begin"),
        _ev(10.5, "epoch_begin", epoch=1),
        _ev(12.5, "epoch_end", epoch=1, acc=0.2),
        _ev(12.6, "pruned", trial=1),
        _ev(13.0, "train_begin"),
        _ev(13.0, "epoch_begin", epoch=1),
        _ev(16.0, "epoch_end", epoch=1, acc=0.9),  # after the window: not counted
    ]
    data = {"started": 100.0, "wall_s": 15.0, "stopped_by_window": True, "events": events}
    rec = bl.plain_record(data, epochs=2)
    assert rec["curve"] == [(7.0, 0.5), (9.0, 0.7), (12.5, 0.2)]
    assert (rec["trials"], rec["trials_started"], rec["trials_cut"]) == (2, 3, 1)
    parts = rec["breakdown"]
    assert parts["imports_s"] == 3.0 and parts["data_s"] == 0.5 and parts["startup_s"] == 4.0
    assert parts["epochs_s"] == 7.0 and parts["first_epoch_extra_s"] == 1.0
    assert parts["between_trials_s"] == 1.4  # 9.5 -> 10.5 and 12.6 -> 13.0


def _trial(number: int, params: dict[str, Any], **metrics: Any) -> SimpleNamespace:
    return SimpleNamespace(
        id=number,
        number=number,
        params=params,
        status="completed",
        metrics=metrics,
        started_at=100.0 + 10 * number,
        ended_at=100.0 + 10 * number + 8,
        duration_s=8.0,
    )


def test_trials_cut_counts_the_median_rule_and_hyperbands_short_configurations() -> None:
    median = SimpleNamespace(strategy="random", budget=SimpleNamespace(epochs=3))
    done = [_trial(0, {"lr": 1}), _trial(1, {"lr": 2}, early_stopped=1.0)]
    assert bl.trials_cut(median, done) == 1
    hyperband = SimpleNamespace(strategy="hyperband", budget=SimpleNamespace(epochs=3))
    rounds = [
        _trial(0, {"lr": 1}, epochs_planned=1),
        _trial(1, {"lr": 2}, epochs_planned=1),
        _trial(2, {"lr": 1}, epochs_planned=3),  # lr 1 went on to the full 3 epochs
    ]
    assert bl.trials_cut(hyperband, rounds) == 1


def test_backend_breakdown_splits_a_runs_time() -> None:
    trials = [_trial(0, {}), _trial(1, {})]  # 100-108 and 110-118
    epochs = {0: [{"wall_s": 3.0}, {"wall_s": 2.0}], 1: [{"wall_s": 2.5}, {"wall_s": 2.0}]}
    parts = bl.backend_breakdown(trials, epochs, started=96.0, end=118.5)
    assert parts["startup_s"] == 4.0 and parts["epochs_s"] == 9.5
    assert parts["first_epoch_extra_s"] == 1.5  # 1.0 + 0.5 over the typical 2.0
    assert parts["in_trial_outside_epochs_s"] == 6.5 and parts["between_trials_s"] == 2.0
    assert parts["end_s"] == 0.5


def test_arms_run_interleaved_with_a_first_and_its_time_setting_the_window() -> None:
    calls: list[tuple[str, int, float | None, int]] = []

    def runner(arm: bl.Arm, spec: dict[str, Any], window: float | None) -> dict[str, Any]:
        calls.append((arm.name, spec["seed"], window, spec["budget"]["max_trials"]))
        wall = 40.0 if arm.name == "a_kerastuner" else (window or 30.0)
        return {"wall_s": wall, "curve": [(wall, 0.8)], "trials": 8}

    base = bl.make_spec_data("digits", None, 8, 3)
    runs = bl.run_arms(base, [42, 43], 0.5, runner)
    assert [c[0] for c in calls[:1]] == ["a_kerastuner"]
    first, second = calls[: len(bl.ARMS)], calls[len(bl.ARMS) :]
    assert [c[0] for c in first[:2]] == [c[0] for c in second[:2]] == ["a_kerastuner", "b_random"]
    assert [c[0] for c in first[2:]] != [c[0] for c in second[2:]]  # the others rotate
    assert sorted(c[0] for c in second) == sorted(a.name for a in bl.ARMS)
    for name, _seed, window, max_trials in calls:
        arm = next(a for a in bl.ARMS if a.name == name)
        assert window == (20.0 if arm.windowed else None)
        assert max_trials == (bl.WINDOW_MAX_TRIALS if arm.windowed else 8)
    assert [r["seed"] for r in runs["c_hyperband"]] == [42, 43]


def test_no_window_no_unlimited_search_when_a_fails() -> None:
    ran: list[str] = []

    def runner(arm: bl.Arm, spec: dict[str, Any], window: float | None) -> dict[str, Any]:
        ran.append(arm.name)
        if arm.name == "a_kerastuner":
            raise RuntimeError("no TensorFlow")
        return {"wall_s": 1.0, "curve": []}

    runs = bl.run_arms(bl.make_spec_data("digits", None, 8, 3), [42], 0.5, runner)
    assert ran == ["a_kerastuner", "b_random"]  # the only other arm with a trial limit
    assert "error" in runs["c_median"][0]


def test_arm_specs_keep_the_base_and_change_what_the_arm_names() -> None:
    base = bl.make_spec_data("digits", None, 8, 3)
    assert {p["name"]: p.get("value") for p in base["space"]}["optimizer"] == "sgd"  # the preset
    spec = bl.arm_spec(next(a for a in bl.ARMS if a.name == "c_median_p2"), base, 44)
    assert spec["budget"] == {
        "max_trials": bl.WINDOW_MAX_TRIALS,
        "parallel_trials": 2,
        "epochs": 3,
        "early_stopping": "median",
    }
    assert spec["seed"] == 44 and spec["strategy"] == "random" and base["budget"]["max_trials"] == 8


def _run(seed: int, wall: float, reach: float | None, best: float = 0.8) -> dict[str, Any]:
    curve = [(1.0, 0.1)] + ([] if reach is None else [(reach, best)])
    return {"seed": seed, "wall_s": wall, "curve": curve, "trials": 8, "trials_cut": 2}


def test_summarise_checks_the_targets_on_medians_over_seeds() -> None:
    a = [_run(42, 50.0, 30.0), _run(43, 60.0, 40.0), _run(44, 55.0, None)]
    runs = {
        "a_kerastuner": a,
        "a_optuna": [_run(s, 25.0, r) for s, r in ((42, 20.0), (43, None), (44, 22.0))],
        "b_random": [_run(42, 28.0, 20.0), _run(43, 33.0, 25.0), _run(44, 30.0, None)],
        "c_median": [_run(s, 25.0, r) for s, r in ((42, 10.0), (43, 12.0), (44, None))],
        "c_hyperband": [_run(s, 25.0, r) for s, r in ((42, 15.0), (43, None), (44, None))],
    }
    figures = {"epoch_overhead": {"epoch_overhead": 0.06}, "rss_30_trials": {"growth_mb": 20.0}}
    out = bl.summarise(runs, 0.8, figures, 0.5)
    arms = out["arms"]
    assert arms["a_kerastuner"]["time_to_target_median_s"] == 40.0
    assert arms["c_median"]["time_to_target_ratio_to_a"]["ratio"] == 0.3
    assert arms["c_hyperband"]["time_to_target_median_s"] is None
    assert out["best_c"] == "c_median"
    same = out["b_over_a_same_work"]
    assert same["by_seed"] == [0.56, 0.55, round(30 / 55, 3)]
    assert same["paired_median"] == 0.55 and same["ratio_of_medians"]["ratio"] == round(30 / 55, 3)
    # equal wall time is half of (a)'s time with the seed: 25, 30, 27.5 s
    assert arms["b_random"]["best_at_equal_wall_time"] == [0.8, 0.8, 0.1]
    met = out["targets_met"]
    assert met["b_time_ratio_at_most_0.6"] is True
    assert met["best_c_time_to_target_at_most_0.33_of_a"] is True
    assert met["best_c_faster_to_target_than_a_optuna"] is True  # 12 s against 22 s
    assert met["epoch_overhead_at_most_5pct"] is False
    assert met["rss_growth_at_most_100mb"] is True
    assert arms["c_median"]["trials_cut_total"] == 6
    assert math.isclose(arms["c_median"]["trials_per_hour_median"], 8 / 25 * 3600)


def test_the_target_is_what_the_plain_script_reaches_in_four_pilot_seeds_of_five() -> None:
    out = bl.target_from_pilots([0.7933, 0.8267, 0.7827, 0.808, 0.8053])
    assert out["suggested_target"] == 0.79 == bl.TARGET_VAL_ACCURACY
    assert out["pilot_median_best"] == 0.8053
    assert bl.target_from_pilots([0.80])["suggested_target"] == 0.8


def test_without_optuna_the_benchmark_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bl, "optuna_missing", lambda: True)
    monkeypatch.setattr(bl, "run_all", lambda args: pytest.fail("must not run"))
    assert bl.main(["--quick"]) == 2
    assert "pip install -r requirements-bench.txt" in capsys.readouterr().err

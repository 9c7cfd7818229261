"""Comparing chosen runs: selection, spec differences, colours, labels, readable details, CSV."""

from __future__ import annotations

import inspect
import io
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.analysis import charts
from core.analysis.comparison import compare_view
from core.analysis.report import build_report, load_report
from core.analysis.report.tables import detail_sections, setup_items, shapiro_frame
from core.analysis.selection import (
    bayesian_warmup,
    default_run_ids,
    default_study_name,
    newest_study_with_trials,
    selectable_runs,
    spec_differences,
    warmup_warning,
)
from core.analysis.stats import compare, group_words
from core.analysis.views import FREE_COST_NOTE, export_csv, runs_overview
from core.costs.pricing import recost_local_runs
from core.store import Store
from tests.seed import SEED_SPEC, seed_store


def _local_run(
    store: Store, study: int, strategy: str, *, n: int = 5, shift: float = 0.0, **spec: Any
) -> int:
    """A completed local run of ``n`` trials at $0/h."""
    full = {**SEED_SPEC, "strategy": strategy, "budget": {"max_trials": n, "epochs": 1}, **spec}
    run = store.create_run(study, "local", spec=full, settings={"rate_per_hour": 0.0})
    store.set_run_status(run, "running")
    rng = np.random.default_rng(len(strategy))
    for i in range(n):
        store.upsert_trial(
            run,
            f"t{i}",
            number=i,
            params={"learning_rate": 0.01 * (i + 1), "batch_size": 32, "dropout_rate": 0.3},
            status="completed",
            objective=float(0.8 + shift + rng.normal(0, 0.01)),
            duration_s=float(20 + 5 * shift + rng.normal(0, 1)),
            cost_usd=0.0,
            started_at=1_000.0 + 30 * i,
            ended_at=1_020.0 + 30 * i,
        )
    store.set_run_status(run, "completed")
    return run


@pytest.fixture()
def two_strategies(store: Store) -> tuple[Store, int, list[int]]:
    study = store.create_study({**SEED_SPEC, "name": "strategies"})
    runs = [_local_run(store, study, "random"), _local_run(store, study, "hyperband", shift=0.1)]
    return store, study, runs


# ----------------------------------------------------------------------------- selection


def test_default_runs_come_from_the_newest_study_with_trials(store: Store) -> None:
    with_trials = store.create_study({**SEED_SPEC, "name": "done"})
    run = _local_run(store, with_trials, "random")
    empty = store.create_study({**SEED_SPEC, "name": "newer but empty"})
    store.create_run(empty, "local", spec=SEED_SPEC)
    assert newest_study_with_trials(store) == with_trials
    assert default_run_ids(store) == [run]
    assert [r.id for r in selectable_runs(store)] == [run]  # the empty run is not offered


def test_spec_differences_say_what_differs_and_when_runs_are_not_comparable(
    two_strategies: tuple[Store, int, list[int]],
) -> None:
    store, study, (random_run, hyper_run) = two_strategies
    diff = spec_differences([store.get_run(random_run), store.get_run(hyper_run)])
    assert diff.comparable
    assert diff.lines == [f"Strategy: random (run {random_run}); hyperband (run {hyper_run})."]
    assert ("Dataset", "digits, 20% validation") in diff.same
    other = _local_run(
        store,
        study,
        "random",
        dataset={"name": "fashion_mnist"},
        objective={"metric": "val_loss", "goal": "min"},
    )
    diff = spec_differences([store.get_run(random_run), store.get_run(other)])
    assert not diff.comparable
    assert [w.split(" (")[0] for w in diff.warnings] == [
        "Not comparable: the runs use a different dataset",
        "Not comparable: the runs use a different objective",
    ]
    assert "Objective: maximise val_accuracy" in " ".join(diff.lines)


def test_a_new_study_name_is_readable_and_unique() -> None:
    day = date(2025, 1, 31)
    assert default_study_name("published-study", [], day) == "published-study 2025-01-31 #1"
    taken = ["published-study 2025-01-31 #1", "published-study 2025-01-31 #2"]
    assert default_study_name("published-study", taken, day) == "published-study 2025-01-31 #3"
    # a name made this way does not grow a second date
    assert default_study_name(taken[0], taken, day) == "published-study 2025-01-31 #3"


def test_bayesian_warmup_matches_the_installed_keras_tuner() -> None:
    import keras_tuner

    source = inspect.getsource(keras_tuner.oracles.BayesianOptimizationOracle.populate_space)
    assert "self.num_initial_points or max(3 * dimensions, 3)" in source
    assert "dimensions = len(self.hyperparameters.space)" in source
    spec = {
        **SEED_SPEC,
        "space": [
            *SEED_SPEC["space"],
            {"name": "optimizer", "type": "choice", "values": ["adam", "sgd"]},
        ],
    }
    assert bayesian_warmup(spec) == 12
    spec["budget"] = {"max_trials": 12}
    text = warmup_warning(spec)
    assert text is not None and text.startswith("Bayesian optimisation starts with 12 random")
    assert warmup_warning({**spec, "budget": {"max_trials": 13}}) is None
    assert warmup_warning({**spec, "strategy": "random"}) is None


# ----------------------------------------------------------------------------- the view


def test_one_group_keeps_its_colour_in_every_chart(
    two_strategies: tuple[Store, int, list[int]],
) -> None:
    store, _study, runs = two_strategies
    view = compare_view(store, runs, "strategy")
    assert view.domain == ["hyperband", "random"]
    seen = {}
    for name, chart in view.charts.items():
        spec = chart.to_dict()
        for layer in spec.get("layer", [spec]):
            colour = layer.get("encoding", {}).get("color", {})
            scale = colour.get("scale", {})
            if "domain" in scale:
                seen[name] = dict(zip(scale["domain"], scale["range"], strict=True))
                assert colour["title"] == "Strategy"
    assert {"time-to-completion", "trial-time", "history"} <= set(seen)
    assert all(m == seen["trial-time"] for m in seen.values()), seen
    assert seen["trial-time"]["hyperband"] == charts.FIXED_COLOURS["hyperband"]


def test_free_local_runs_say_why_cost_is_missing_and_recost_fills_it(
    two_strategies: tuple[Store, int, list[int]],
) -> None:
    store, _study, runs = two_strategies
    view = compare_view(store, runs, "strategy")
    assert view.cost_note == FREE_COST_NOTE and "Settings" in FREE_COST_NOTE
    assert not {"total-cost", "trial-cost", "objective-vs-cost", "dollars-to-accuracy"} & set(
        view.charts
    )
    assert "cost_usd" not in view.comparison.metrics
    assert sorted(recost_local_runs(store, 3.6)) == sorted(runs)  # $0.001 a second
    trial = store.list_trials(runs[0])[0]
    assert trial.cost_usd == pytest.approx(trial.duration_s * 0.001, rel=1e-3)
    assert store.get_run(runs[0]).settings["rate_per_hour"] == 3.6
    view = compare_view(store, runs, "strategy")
    assert view.cost_note is None and "total-cost" in view.charts
    assert "cost_usd" in view.comparison.metrics


def test_time_is_named_per_trial_and_per_run(two_strategies: tuple[Store, int, list[int]]) -> None:
    store, _study, runs = two_strategies
    view = compare_view(store, runs, "strategy")
    assert view.comparison.table()["Analysis"].iloc[0].startswith("Time per trial")
    bar = view.charts["time-to-completion"].to_dict()
    assert bar["encoding"]["x"]["title"] == "Time to completion per run (h)"
    # one run per strategy: the per-run total is one measurement, and the page says so
    assert any("single measurement" in n for n in view.notes)


def test_compare_warns_of_runs_inside_the_bayesian_warmup(store: Store) -> None:
    study = store.create_study({**SEED_SPEC, "name": "short"})
    runs = [_local_run(store, study, "bayesian", n=4), _local_run(store, study, "random", n=4)]
    view = compare_view(store, runs, "strategy")
    assert [n for n in view.notes if "Bayesian" in n] == [
        f"Run {runs[0]}: " + str(warmup_warning(store.get_run(runs[0]).spec, 4))
    ]


def test_home_overview_has_study_strategy_and_platform(
    two_strategies: tuple[Store, int, list[int]],
) -> None:
    store, study, _runs = two_strategies
    frame = runs_overview(store)
    assert {"Study id", "Strategy", "Platform"} <= set(frame.columns)
    assert set(frame["Study id"]) == {study}
    assert set(frame["Strategy"]) == {"random", "hyperband"}


# ----------------------------------------------------------------------------- words


def test_labels_and_plurals_are_readable() -> None:
    assert charts.title_for("p_optimizer") == "Optimizer"
    assert charts.title_for("instance_type") == "Instance type"
    assert group_words("p_optimizer") == ("optimizer", "optimizers")
    assert group_words("strategy") == ("strategy", "strategies")
    assert group_words("p_batch_size") == ("batch size", "batch sizes")
    df = pd.DataFrame(
        {
            "p_optimizer": ["adam"] * 6 + ["sgd"] * 6,
            "objective": np.r_[np.arange(6), np.arange(6) + 9.0],
        }
    )
    m = compare(df, "objective", group="p_optimizer").metrics["objective"]
    assert "between optimizers" in m.conclusion and "p optimizer" not in m.conclusion
    legend = charts.metric_distribution(df, "objective", "p_optimizer").to_dict()
    assert legend["layer"][0]["encoding"]["color"]["title"] == "Optimizer"


def test_the_test_choice_agrees_with_the_normality_checks_it_cites() -> None:
    # a mildly skewed group: Shapiro p between 0.01 and 0.05
    for seed in range(200):
        rng = np.random.default_rng(seed)
        skewed = rng.exponential(1.0, 25) ** 0.5 * 2
        from scipy.stats import shapiro

        if 0.01 < shapiro(skewed).pvalue < 0.05:
            break
    else:
        pytest.fail("no mildly skewed sample found")
    normal = rng.normal(skewed.mean(), skewed.std(), 25)
    df = pd.DataFrame({"g": ["a"] * 25 + ["b"] * 25, "y": np.r_[skewed, normal]})
    m = compare(df, "y", group="g").metrics["y"]
    p = float(m.shapiro.set_index("group").loc["a", "p"])
    assert 0.01 < p < 0.05
    assert m.chosen_test == "anova"
    assert "look normal" not in m.choice_reason
    assert "mild departure from normal in a (p = " in m.choice_reason
    reading = shapiro_frame(m).set_index("Group").loc["a", "Reading"]
    assert reading == "mild departure from normal"


def test_shapiro_reading_is_never_nan() -> None:
    df = pd.DataFrame(
        {"g": ["a"] * 6 + ["b"] * 2 + ["c"] * 5, "y": [1, 2, 3, 4, 5, 7, 1, 2, 3, 3, 3, 3, 3.0]}
    )
    m = compare(df, "y", group="g").metrics["y"]
    readings = shapiro_frame(m)["Reading"].tolist()
    assert "nan" not in readings and all(isinstance(r, str) and r for r in readings)
    assert readings[1] == "not run: fewer than 3 trials"


# ----------------------------------------------------------------------------- the shared details


def test_detail_tables_are_readable_everywhere(store: Store) -> None:
    study = seed_store(store, n_trials=8)
    report = load_report(store, study)
    sections = detail_sections(report.comparison, report.group, report.alpha)
    titles = [s.title for s in sections]
    assert titles[0] == "Descriptive statistics"
    assert "Normality within each group (Shapiro–Wilk)" in titles and "Tests" in titles
    raw = ("df_between", "ss_within", "ms_within", "eta_sq", "label1", "group2", "None", "nan")
    for section in sections:
        if section.table is None:
            continue
        cells = [str(c) for c in section.table.columns] + [
            str(v) for v in section.table.to_numpy().ravel()
        ]
        assert not [c for c in cells if any(r in c for r in raw)], section.title
    tests = next(s.table for s in sections if s.title == "Tests")
    assert tests["Test"].str.contains(r"\(used\)").sum() == 1
    # the report shows the very same tables
    page = build_report(store, study)
    assert "Normality within each group (Shapiro–Wilk)" in page and "Effect size" in page


def test_report_setup_describes_every_run(two_strategies: tuple[Store, int, list[int]]) -> None:
    store, study, (random_run, hyper_run) = two_strategies
    items = dict(setup_items(load_report(store, study, group="strategy")))
    assert items["Strategy"] == f"random (run {random_run}); hyperband (run {hyper_run})"
    assert items["Runs"] == f"{random_run}, {hyper_run}"
    page = build_report(store, run_ids=[random_run, hyper_run], group="strategy")
    assert f"hyperband (run {hyper_run})" in page and f"random (run {random_run})" in page


def test_report_on_runs_from_two_studies(store: Store) -> None:
    first = store.create_study({**SEED_SPEC, "name": "monday"})
    second = store.create_study({**SEED_SPEC, "name": "tuesday"})
    runs = [_local_run(store, first, "random"), _local_run(store, second, "random", shift=0.1)]
    report = load_report(store, run_ids=runs, group="study_id")
    assert report.title == f"2 runs from studies {first}, {second}"
    assert report.comparison is not None and "between studies" in " ".join(
        report.comparison.conclusions()
    )


def test_csv_exports_iso_timestamps_with_a_byte_order_mark() -> None:
    frame = pd.DataFrame(
        {"trial": [1, 2], "started_at": [1_714_554_000.0, None], "note": ["—", "x"]}
    )
    data = export_csv(frame)
    assert data.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", keep_default_na=False)
    assert back["started_at"].tolist() == ["2024-05-01T09:00:00Z", ""]
    assert back["note"].tolist() == ["—", "x"]

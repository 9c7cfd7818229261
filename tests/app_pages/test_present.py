"""The Present page: every slide in AppTest, an empty store, and the study picker."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.store import Store
from tests.seed import seed_store

APP = str(Path(__file__).resolve().parents[2] / "app.py")
SLIDE_TITLES = ["Time", "Cost", "Accuracy", "Statistics", "Best configurations"]


def _present() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("app_pages/present.py")
    at.run()
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _button(at: AppTest, label: str) -> object:
    return next(b for b in at.button if b.label == label)


def test_empty_store_says_how_to_get_something_to_present(home: Path) -> None:
    at = _present()
    _ok(at)
    assert "Nothing to present yet" in at.info[0].value
    assert not at.button and not at.selectbox


def test_steps_through_every_slide_without_an_exception(store: Store) -> None:
    study_id = seed_store(store)
    at = _present()
    _ok(at)
    assert at.title[0].value.replace("\\", "") == store.get_study(study_id).name
    assert len(at.selectbox) == 1 and _button(at, "Previous").disabled
    seen = []
    while not _button(at, "Next").disabled:
        _button(at, "Next").click().run()
        _ok(at)
        seen.append(at.title[0].value)
        assert not at.selectbox and not at.toggle  # the picker lives on the first screen only
        assert not at.text_input and not at.number_input and not at.slider
    assert seen == SLIDE_TITLES
    assert at.session_state["present_slide"] == 5
    assert at.markdown[0].value.replace("\\", "").startswith("6 / 6")
    # the chart slides carry PNG and SVG downloads; back from the last screen works
    _button(at, "Previous").click().run()
    _button(at, "Previous").click().run()
    _ok(at)
    assert at.title[0].value == "Accuracy"
    downloads = [b.proto.label for b in at.get("download_button")]
    assert downloads == ["PNG", "SVG"]


def test_picker_changes_the_runs_and_reference_is_labelled(store: Store) -> None:
    seed_store(store, n_trials=4)
    other = seed_store(store, n_trials=4, name="second-study")
    first = [r.id for r in store.list_runs() if r.study_id != other]
    at = _present()
    # the newest study with trials is picked; the picker lists the runs of every study
    assert sorted(at.multiselect[0].value) == sorted(r.id for r in store.list_runs(other))
    assert at.title[0].value.replace("\\", "") == "second-study"
    at.multiselect[0].set_value(first).run()
    _ok(at)
    assert at.title[0].value.replace("\\", "") == "seeded-study"
    at.toggle[0].set_value(True).run()
    _button(at, "Next").click().run()
    _ok(at)
    assert at.title[0].value == "Time"
    captions = " ".join(c.value.replace("\\", "") for c in at.caption)
    assert "reference figures, not measured here" in captions
    assert sorted(at.session_state["present_runs"]) == sorted(first)
    # back on the first screen the choice is still there
    _button(at, "Previous").click().run()
    assert sorted(at.multiselect[0].value) == sorted(first)


def _local_strategy_study(store: Store) -> int:
    """One study, two local runs (random and hyperband) at $0/h, 4 trials each."""
    from tests.seed import SEED_SPEC

    study = store.create_study({**SEED_SPEC, "name": "local-strategies"})
    for i, strategy in enumerate(("random", "hyperband")):
        spec = {**SEED_SPEC, "strategy": strategy, "budget": {"max_trials": 4, "epochs": 1}}
        run = store.create_run(study, "local", spec=spec, settings={"rate_per_hour": 0.0})
        store.set_run_status(run, "running")
        for n in range(4):
            store.upsert_trial(
                run,
                f"t{n}",
                number=n,
                params={"learning_rate": 0.01 * (n + 1), "batch_size": 32, "dropout_rate": 0.3},
                status="completed",
                objective=0.80 + 0.03 * n + 0.05 * i,
                duration_s=10.0 + n + 4 * i,
                cost_usd=0.0,
                started_at=1000.0 + 20 * n,
                ended_at=1010.0 + 20 * n + n,
            )
        store.set_run_status(run, "completed")
    return study


def test_local_study_grouped_by_strategy_has_findings(store: Store) -> None:
    _local_strategy_study(store)
    at = _present()
    _ok(at)
    group = next(s for s in at.selectbox if s.label == "Group by")
    assert "Strategy" in group.options and "Instance type" in group.options
    group.set_value("strategy").run()
    _ok(at)
    findings = {}
    while not _button(at, "Next").disabled:
        _button(at, "Next").click().run()
        _ok(at)
        title = at.title[0].value
        findings[title] = " ".join(m.value.replace("\\", "") for m in at.markdown)
        if title in ("Time", "Accuracy"):
            what = "best accuracy" if title == "Accuracy" else "time to completion per run"
            assert sorted(m.label for m in at.metric) == [f"hyperband: {what}", f"random: {what}"]
            unit = "%" if title == "Accuracy" else "s"
            assert all(unit in m.value for m in at.metric), [m.value for m in at.metric]
    assert "between strategies" in findings["Time"]
    assert "between strategies" in findings["Accuracy"]
    assert "Settings" in findings["Cost"]  # free local runs: it says why there is no cost
    assert "Strategies compared" in findings["Statistics"]
    assert "strategys" not in " ".join(findings.values())
    assert at.table, "the statistics slide shows its table"

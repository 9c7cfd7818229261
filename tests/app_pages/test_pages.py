"""Every page through Streamlit's AppTest: empty and populated stores, validation, downloads."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from core.backends.records import EpochRecord
from core.spec import StudySpec
from core.store import Store

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = [
    "app_pages/home.py",
    "app_pages/search_space.py",
    "app_pages/launch.py",
    "app_pages/monitor.py",
    "app_pages/compare.py",
    "app_pages/present.py",
    "app_pages/settings.py",
]


class _RecordingStorage(MemoryMediaFileStorage):
    """Keeps every media storage AppTest makes, so a test can read a download's bytes."""

    made: list[_RecordingStorage] = []

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        _RecordingStorage.made.append(self)


@pytest.fixture()
def app(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    """An AppTest of the whole app on a fresh store, its media files kept for the test."""
    import streamlit.testing.v1.app_test as app_test

    _RecordingStorage.made = []
    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", _RecordingStorage)
    at = AppTest.from_file(APP, default_timeout=120)
    yield at


def download_bytes(button: object) -> bytes:
    """Return the bytes a download button serves in AppTest."""
    url = button.proto.url  # type: ignore[attr-defined]
    name = url.rsplit("/", 1)[-1]
    for storage in reversed(_RecordingStorage.made):
        try:
            return bytes(storage.get_file(name).content)
        except Exception:  # noqa: BLE001 - not in this storage
            continue
    raise AssertionError(f"no media file {url}")


def seed(store: Store, spec: StudySpec, n: int = 12) -> int:
    """A study run on three platforms with n completed trials each."""
    rng = np.random.default_rng(1)
    study = store.create_study(spec)
    for backend, mean_s in (("sagemaker", 700.0), ("vertex", 600.0), ("azure", 760.0)):
        run = store.create_run(study, backend, instance_type="ml.m5.xlarge", spec=spec)
        store.set_run_status(run, "running")
        start = 1_000.0
        for i in range(n):
            seconds = float(rng.normal(mean_s, 60))
            trial = store.upsert_trial(
                run,
                f"{backend}-{i}",
                params={"learning_rate": float(rng.uniform(0.001, 0.1)), "batch_size": 64},
                status="completed",
                objective=float(rng.normal(0.92, 0.01)),
                duration_s=seconds,
                cost_usd=seconds / 3600 * 0.23,
                started_at=start,
                ended_at=start + seconds,
            )
            store.add_epoch(trial, EpochRecord(0, {"val_accuracy": 0.9, "loss": 0.3}))
            start += seconds
        store.set_run_status(run, "completed")
    return study


def visit(at: AppTest, page: str) -> AppTest:
    at.switch_page(page)
    at.run()
    assert not at.exception, f"{page}: {[e.value for e in at.exception]}"
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_an_empty_store(app: AppTest, page: str) -> None:
    app.run()
    assert not app.exception
    visit(app, page)
    assert "Traceback" not in " ".join(str(e.value) for e in app.error)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_a_populated_store(
    app: AppTest, store: Store, published_spec, page: str
) -> None:
    seed(store, published_spec)
    app.run()
    visit(app, page)


def test_search_space_shows_the_sentence_beside_a_bad_range(app: AppTest) -> None:
    app.run()
    visit(app, "app_pages/search_space.py")
    assert not app.error
    minimum = next(n for n in app.number_input if n.label == "Min")
    minimum.set_value(0.5).run()
    messages = [e.value for e in app.error]
    assert messages == [
        "learning_rate: min (0.5) must be less than max (0.1); swap them or widen the range."
    ]
    # the draft survives a page switch (it lives in the store)
    visit(app, "app_pages/home.py")
    visit(app, "app_pages/search_space.py")
    assert next(n for n in app.number_input if n.label == "Min").value == 0.5


def test_search_space_advises_a_log_scale_for_a_range_over_two_decades(app: AppTest) -> None:
    app.run()
    visit(app, "app_pages/search_space.py")  # the published study: learning_rate 0.001-0.1, linear
    tips = [i.value for i in app.info]
    assert len(tips) == 1 and tips[0].startswith("learning_rate spans 0.001 to 0.1")
    scale = next(s for s in app.selectbox if s.label == "Scale")
    scale.set_value("log").run()
    assert not [i.value for i in app.info if "linear scale" in i.value]
    assert not app.error


def test_search_space_add_and_remove_parameters(app: AppTest) -> None:
    app.run()
    visit(app, "app_pages/search_space.py")
    before = len([s for s in app.selectbox if s.label == "Parameter"])
    app.selectbox(key="0-add").set_value("conv_blocks")
    next(b for b in app.button if b.label == "Add").click().run()
    names = [s.value for s in app.selectbox if s.label == "Parameter"]
    assert len(names) == before + 1 and names[-1] == "conv_blocks"
    app.button(key="1-0-remove").click().run()
    names = [s.value for s in app.selectbox if s.label == "Parameter"]
    # the published preset fixes optimizer (sgd) and momentum
    assert names == ["batch_size", "dropout_rate", "optimizer", "momentum", "conv_blocks"]


def test_compare_shows_the_statistics_table_and_its_csv(
    app: AppTest, store: Store, published_spec
) -> None:
    seed(store, published_spec)
    app.run()
    visit(app, "app_pages/compare.py")
    tables = [d.value for d in app.dataframe]
    stats = next(t for t in tables if "Analysis" in t.columns)
    assert list(stats.columns) == ["Analysis", "F-statistic (df)", "p-value", "Conclusion"]
    assert len(stats) == 3
    button = next(
        b for b in app.get("download_button") if b.proto.label == "Statistics table (CSV)"
    )
    csv = pd.read_csv(io.BytesIO(download_bytes(button)))
    assert list(csv.columns) == list(stats.columns)
    assert csv["F-statistic (df)"].tolist() == stats["F-statistic (df)"].tolist()
    trials_button = next(
        b for b in app.get("download_button") if b.proto.label == "Per-trial table (CSV)"
    )
    # made on click (it can be large); the browser test downloads and checks it
    assert trials_button.proto.deferred_file_id


def test_compare_draws_the_charts_st_altair_chart_would(
    app: AppTest, store: Store, published_spec
) -> None:
    """Compare draws only the open chart tab's charts (Totals at first), converting each chart
    once per view (skipping Altair's schema check) and drawing it with st.vega_lite_chart on a
    canvas: tab by tab, the elements must be exactly what st.altair_chart sends for the same
    charts with the same renderer, and st.altair_chart checks the schema."""
    from app_pages._shared import CHART_TABS

    seed(store, published_spec)
    app.run()
    visit(app, "app_pages/compare.py")
    assert [t.label for t in app.tabs] == list(CHART_TABS)
    shown = []
    for label in CHART_TABS:
        app.session_state["cmp_charts"] = label
        app.run()
        assert not app.exception
        drawn = [chart.proto for chart in app.get("vega_lite_chart")]
        names = [n for row in CHART_TABS[label] for n in row]
        assert len(drawn) == len(names), label  # the other tabs' charts are not sent
        shown += drawn

    def draw_with_altair_chart() -> None:
        import streamlit as st

        from app_pages._shared import CHART_TABS
        from core.analysis.comparison import compare_view
        from core.store import Store

        store = Store()
        runs = sorted(r.id for r in store.list_runs())
        charts = compare_view(store, runs, "platform").charts
        for rows in CHART_TABS.values():
            for name in (n for row in rows for n in row):
                canvas = {"embedOptions": {"renderer": "canvas"}}
                st.altair_chart(charts[name].properties(usermeta=canvas), width="stretch")

    expected = AppTest.from_function(draw_with_altair_chart, default_timeout=120).run()
    assert not expected.exception
    wanted = [chart.proto for chart in expected.get("vega_lite_chart")]
    assert len(shown) == len(wanted) == 11
    assert [_parsed(c) for c in shown] == [_parsed(c) for c in wanted]
    for chart in shown:
        assert json.loads(chart.spec)["usermeta"] == {"embedOptions": {"renderer": "canvas"}}


def _parsed(proto: Any) -> tuple[Any, Any]:
    """A chart element as (its spec parsed, every other field): the same spec may order its
    keys differently."""
    rest = type(proto)()
    rest.CopyFrom(proto)
    rest.spec = ""
    return json.loads(proto.spec), rest


def test_compare_published_overlay_is_labelled(app: AppTest, store: Store, published_spec) -> None:
    seed(store, published_spec)
    app.run()
    visit(app, "app_pages/compare.py")
    app.toggle(key="cmp_ref").set_value(True).run()
    assert not app.exception
    captions = " ".join(c.value for c in app.caption)
    assert "Published study (reference figures, not measured here" in captions


def test_launch_times_this_machine_only_when_asked(
    app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.costs.forecasting as forecasting

    timed: list[str] = []
    real = forecasting.calibrate_local

    def counting(spec: StudySpec, **kw: object) -> object:
        timed.append(spec.dataset.name)
        return real(spec, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(forecasting, "calibrate_local", counting)
    app.run()
    visit(app, "app_pages/launch.py")
    expected = [m for m in app.metric if m.label == "Expected time"]
    assert timed == [] and expected and expected[0].value == "–"  # the page did not block
    button = next(b for b in app.button if b.label == "Time this machine")
    button.click().run()
    assert not app.exception and len(timed) == 1
    expected = [m for m in app.metric if m.label == "Expected time"]
    assert expected[0].value != "–"
    assert not [b for b in app.button if b.label == "Time this machine"]


def test_compare_opens_the_newest_study_with_trials_and_reads_plainly(
    app: AppTest, store: Store, published_spec
) -> None:
    study = seed(store, published_spec, n=5)
    store.create_study(published_spec)  # newer, but nothing ran yet
    app.run()
    visit(app, "app_pages/compare.py")
    picked = app.multiselect(key="cmp_runs").value
    assert sorted(picked) == sorted(r.id for r in store.list_runs(study))
    # the details expander holds the report's readable tables, not raw result fields; they
    # are built only while it is open
    assert "Shapiro" not in " ".join(m.value for m in app.markdown)
    app.session_state["cmp_details"] = True
    app.run()
    cells = " ".join(
        " ".join(map(str, d.value.columns)) + " " + " ".join(map(str, d.value.to_numpy().ravel()))
        for d in app.dataframe
    )
    for raw in ("df_between", "ss_within", "None", "ci_low", "label1"):
        assert raw not in cells
    assert "Shapiro" in " ".join(m.value for m in app.markdown)
    # the CSV opens in Excel with its dashes: a byte order mark, ISO 8601 times
    button = next(
        b for b in app.get("download_button") if b.proto.label == "Comparison table (CSV)"
    )
    assert download_bytes(button).startswith(b"\xef\xbb\xbf")


def test_compare_runs_of_two_studies_says_what_differs(
    app: AppTest, store: Store, published_spec
) -> None:
    first = seed(store, published_spec, n=5)
    other = published_spec.to_dict() | {"strategy": "random", "dataset": {"name": "fashion_mnist"}}
    second = store.create_study(other)
    run = store.create_run(second, "local", spec=other)
    for i in range(4):
        store.upsert_trial(
            run, f"t{i}", status="completed", objective=0.8, duration_s=10.0 + i, cost_usd=0.0
        )
    store.set_run_status(run, "running")
    store.set_run_status(run, "completed")
    app.run()
    visit(app, "app_pages/compare.py")
    assert app.multiselect(key="cmp_runs").value == [run]
    app.multiselect(key="cmp_runs").set_value([run, *[r.id for r in store.list_runs(first)]]).run()
    assert not app.exception
    warnings = " ".join(w.value for w in app.warning)
    assert "Not comparable: the runs use a different dataset" in warnings
    text = " ".join(m.value for m in app.markdown)
    assert "What differs between these runs" in text and "Strategy: bayesian (runs" in text
    group = app.selectbox(key="cmp_group")
    group.set_value("strategy").run()
    assert not app.exception
    conclusions = " ".join(m.value for m in app.markdown)
    assert "between strategies" in conclusions and "strategys" not in conclusions


def test_compare_of_free_local_runs_points_to_settings(app: AppTest, store: Store) -> None:
    from tests.seed import SEED_SPEC

    study = store.create_study(SEED_SPEC)
    for strategy in ("random", "hyperband"):
        run = store.create_run(study, "local", spec={**SEED_SPEC, "strategy": strategy})
        for i in range(4):
            store.upsert_trial(
                run, f"t{i}", status="completed", objective=0.8 + i / 50, duration_s=10.0 + i
            )
    app.run()
    visit(app, "app_pages/compare.py")
    infos = " ".join(i.value for i in app.info)
    assert "local runs cost $0/h by default" in infos and "Settings" in infos
    assert [p for p in app.get("page_link") if p.proto.label == "Open Settings"]


def test_launch_adds_runs_to_an_existing_study_or_names_a_new_one(
    app: AppTest, store: Store, published_spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.runs

    launched: list[int | None] = []

    def fake_start(store_: Store, spec: StudySpec, name: str, **kw: object) -> int:
        launched.append(kw["study_id"])  # type: ignore[arg-type]
        return store_.create_run(int(kw["study_id"]), name, spec=spec)  # type: ignore[arg-type]

    monkeypatch.setattr(core.runs, "start_run", fake_start)
    existing = store.create_study(published_spec)
    app.run()
    visit(app, "app_pages/launch.py")
    name = app.text_input(key="launch_study_name").value
    assert name.startswith("published-study 20") and name.endswith(" #1")
    app.selectbox(key="launch_study").set_value(existing).run()
    assert not [t for t in app.text_input if t.key == "launch_study_name"]  # joins that study
    next(b for b in app.button if b.label == "Launch").click().run()
    assert launched == [existing]
    assert {r.study_id for r in store.list_runs()} == {existing}


def test_launch_warns_when_a_bayesian_budget_is_all_warm_up(app: AppTest) -> None:
    app.run()
    visit(app, "app_pages/launch.py")
    assert not [w for w in app.warning if "random trials" in w.value]
    app.number_input(key="b_trials").set_value(5).run()
    warning = [w.value for w in app.warning if "random trials" in w.value]
    assert warning and warning[0].startswith(
        "Bayesian optimisation starts with 15 random trials"
    )  # 5 parameters, fixed ones too


def test_saving_the_local_rate_recosts_ended_local_runs(app: AppTest, store: Store) -> None:
    from tests.seed import SEED_SPEC

    study = store.create_study(SEED_SPEC)
    run = store.create_run(study, "local", spec=SEED_SPEC, settings={"rate_per_hour": 0.0})
    store.set_run_status(run, "running")
    store.upsert_trial(run, "t0", status="completed", objective=0.9, duration_s=100.0, cost_usd=0.0)
    store.set_run_status(run, "completed")
    app.run()
    visit(app, "app_pages/settings.py")
    app.number_input(key="set_local_rate_per_hour").set_value(3.6)
    next(b for b in app.button if b.label == "Save").click().run()
    assert not app.exception
    assert "1 ended local run(s) re-costed" in " ".join(c.value for c in app.caption)
    assert store.list_trials(run)[0].cost_usd == pytest.approx(0.1)

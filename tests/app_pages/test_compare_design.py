"""Compare on a same-configurations study: the blocked comparison appears, and only then."""

from __future__ import annotations

import numpy as np
from streamlit.testing.v1 import AppTest

from core.spec import StudySpec
from core.spec.design import CONFIG_INDEX, same_configurations
from core.store import Store
from tests.app_pages.test_pages import app, visit  # noqa: F401 - the fixture

__all__ = ["app"]


def seed_design(store: Store, spec: StudySpec, shifts: dict[str, float]) -> int:
    """One run a platform, each training the design's configurations once."""
    rng = np.random.default_rng(5)
    base = rng.uniform(0.3, 0.95, len(spec.configurations))
    study = store.create_study(spec)
    for backend, shift in shifts.items():
        run = store.create_run(study, backend, instance_type="ml.m5.xlarge", spec=spec)
        store.set_run_status(run, "running")
        for i, config in enumerate(spec.configurations):
            seconds = float(rng.normal(600, 30))
            store.upsert_trial(
                run,
                f"{backend}-{i}",
                params={CONFIG_INDEX: i, **config},
                status="completed",
                objective=float(base[i] + shift + rng.normal(0, 0.002)),
                duration_s=seconds,
                cost_usd=seconds / 3600 * 0.23,
                started_at=1000.0 + 700 * i,
                ended_at=1000.0 + 700 * i + seconds,
                seed=spec.seed + i,
            )
        store.set_run_status(run, "completed")
    return study


def test_compare_shows_the_blocked_comparison_of_a_design(
    app: AppTest,  # noqa: F811 - the fixture
    store: Store,
    published_spec,
) -> None:
    design = same_configurations(published_spec, 6)
    seed_design(store, design, {"sagemaker": 0.0, "vertex": -0.03, "azure": 0.0})
    app.run()
    visit(app, "app_pages/compare.py")
    headers = [h.value for h in app.subheader]
    assert "Same configurations on every run: the blocked comparison" in headers
    text = " ".join(m.value for m in app.markdown)
    assert "The configuration effect is separated from the platform effect" in text
    assert "Accuracy differs between platforms" in text
    tables = [d.value for d in app.dataframe]
    blocked = [t for t in tables if list(t.columns)[:2] == ["Analysis", "Statistic (df)"]]
    assert len(blocked) == 3  # time, cost and accuracy
    assert "Friedman rank test" in " ".join(blocked[-1]["Analysis"])
    assert blocked[-1]["Conclusion"].tolist() == ["Significant", "Significant"]
    # the paired tables are built only when their expander opens
    assert not [t for t in tables if list(t.columns)[:1] == ["Comparison"]]
    suffix = ": paired comparisons (Holm-adjusted)"
    names = [e.label.removesuffix(suffix) for e in app.expander if e.label.endswith(suffix)]
    assert len(names) == 3
    for name in names:
        app.session_state[f"cmp_paired_{name}"] = True
    app.run()
    tables = [d.value for d in app.dataframe]
    paired = [t for t in tables if list(t.columns)[:1] == ["Comparison"]]
    assert len(paired) == 3 and "p (Wilcoxon, Holm)" in paired[-1].columns
    assert not any("p_t_holm" in t.columns for t in tables)  # no raw column names


def test_compare_of_an_ordinary_study_has_no_blocked_section(
    app: AppTest,  # noqa: F811 - the fixture
    store: Store,
    published_spec,
) -> None:
    from tests.app_pages.test_pages import seed

    seed(store, published_spec)
    app.run()
    visit(app, "app_pages/compare.py")
    assert not any("blocked" in h.value for h in app.subheader)


def test_launch_same_configurations_launches_the_design(
    app: AppTest,  # noqa: F811 - the fixture
    store: Store,
    monkeypatch,
) -> None:
    import core.runs

    launched: list[StudySpec] = []

    def fake_start(store_: Store, spec: StudySpec, name: str, **kw: object) -> int:
        launched.append(spec)
        return store_.create_run(int(kw["study_id"]), name, spec=spec)  # type: ignore[arg-type]

    monkeypatch.setattr(core.runs, "start_run", fake_start)
    app.run()
    visit(app, "app_pages/launch.py")
    app.toggle(key="launch_same_configs").set_value(True).run()
    app.number_input(key="launch_n_configs").set_value(4).run()
    captions = " ".join(c.value for c in app.caption)
    assert "Every chosen platform trains the same 4 configurations" in captions
    next(b for b in app.button if b.label == "Launch").click().run()
    assert len(launched) == 1 and len(launched[0].configurations) == 4
    assert launched[0].strategy == "grid" and launched[0].budget.max_trials == 4


def test_report_of_a_design_has_the_blocked_section(store: Store, published_spec) -> None:
    from core.analysis.report import build_report

    design = same_configurations(published_spec, 6)
    study = seed_design(store, design, {"local": 0.0, "vertex": -0.03})
    html = build_report(store, study_id=study)
    assert "Same configurations: the blocked comparison" in html
    assert "Friedman rank test" in html and "separated from the platform effect" in html
    assert "paired comparisons (Holm-adjusted)" in html and "p (Wilcoxon, Holm)" in html

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


def test_picker_changes_the_study_and_reference_is_labelled(store: Store) -> None:
    seed_store(store, n_trials=4)
    other = seed_store(store, n_trials=4, name="second-study")
    at = _present()
    at.selectbox[0].select(other).run()
    _ok(at)
    assert at.title[0].value.replace("\\", "") == "second-study"
    at.toggle[0].set_value(True).run()
    _button(at, "Next").click().run()
    _ok(at)
    assert at.title[0].value == "Time"
    captions = " ".join(c.value.replace("\\", "") for c in at.caption)
    assert "reference figures, not measured here" in captions
    assert at.session_state["present_study"] == other

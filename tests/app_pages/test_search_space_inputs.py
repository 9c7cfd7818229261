"""Search space page: uploads the editor cannot show are refused, and drafts download as they are."""

from __future__ import annotations

import json

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from core.spec import KNOWN_PARAMS, StudySpec
from core.spec.drafts import DRAFT_KEY
from core.store import Store
from tests.app_pages.test_pages import app as app_fixture  # noqa: F401 - a fixture
from tests.app_pages.test_pages import download_bytes, visit

PAGE = "app_pages/search_space.py"


@pytest.fixture()
def page(app_fixture: AppTest) -> AppTest:  # noqa: F811 - the imported fixture
    """The whole app on a fresh store, showing the Search space page."""
    app_fixture.run()
    return visit(app_fixture, PAGE)


def upload(at: AppTest, name: str, content: bytes) -> AppTest:
    at.file_uploader[0].set_value((name, content, "application/octet-stream")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rows(at: AppTest) -> list[str]:
    return [s.value for s in at.selectbox if s.label == "Parameter"]


def test_an_unknown_parameter_is_refused_and_the_draft_kept(page: AppTest, store: Store) -> None:
    next(n for n in page.number_input if n.label == "Min").set_value(0.002).run()
    before, draft = rows(page), store.get_setting(DRAFT_KEY)
    assert draft["space"][0]["min"] == 0.002  # work in progress, in the store
    spec = {
        "name": "colours",
        "space": [
            {"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1e-2},
            {"name": "colour", "type": "choice", "values": ["red", "blue"]},
        ],
    }
    upload(page, "colours.json", json.dumps(spec).encode())
    errors = [e.value for e in page.error]
    choices = ", ".join(KNOWN_PARAMS)
    assert errors == [
        "colours.json was not loaded, so the draft is unchanged:\n\n"
        f"- colour is not a tunable parameter (choose from {choices})."
    ]
    assert rows(page) == before  # no second learning_rate row
    assert store.get_setting(DRAFT_KEY) == draft
    assert page.text_input(key="0-name").value == "published-study"
    assert next(n for n in page.number_input if n.label == "Min").value == 0.002
    page.run()  # the sentence stays while the file is in the uploader
    assert len(page.error) == 1


def test_uploads_that_cannot_be_read_are_sentences(page: AppTest) -> None:
    before = rows(page)
    for name, content, expected in [
        ("latin1.json", '{"name": "café"}'.encode("latin-1"), "latin1.json is not UTF-8 text"),
        (
            "bad-type.yaml",
            b"name: x\nspace:\n  - {name: dropout_rate, type: gaussian}\n",
            "dropout_rate: type 'gaussian' is unknown (choose from float, int, choice, fixed)",
        ),
        (
            "deep.json",
            b'{"space": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
            "nests lists and mappings more than 32 levels deep",
        ),
        ("big.json", b" " * 1_000_001, "big.json is 1,000,001 bytes, larger than the"),
        ("list.yaml", b"- a\n- b\n", "list.yaml is not a spec: it must hold a mapping"),
    ]:
        upload(page, name, content)
        assert [e.value for e in page.error if expected in e.value], (name, page.error)
        assert rows(page) == before


def test_an_exponent_upload_loads_with_types_filled_in(page: AppTest, store: Store) -> None:
    text = (
        "name: exp\nspace:\n  - {name: learning_rate, min: 1e-4, max: 1E-1, scale: log}\n"
        "  - {name: batch_size, values: [32, 64]}\n  - {name: filters, value: 16}\n"
        "budget: {max_trials: 1e1, epochs: 2}\n"
    )
    upload(page, "exp.yaml", text.encode())
    assert not page.error
    assert rows(page) == ["learning_rate", "batch_size", "filters"]
    assert [s.value for s in page.selectbox if s.label == "Type"] == ["float", "choice", "fixed"]
    assert [n.value for n in page.number_input if n.label in ("Min", "Max")] == [1e-4, 0.1]
    assert StudySpec.from_dict(store.get_setting(DRAFT_KEY)).budget.max_trials == 10


def test_an_invalid_draft_downloads_as_a_draft(page: AppTest) -> None:
    valid = [b.label for b in page.get("download_button")]
    assert valid == ["Download JSON", "Download YAML"]
    next(n for n in page.number_input if n.label == "Min").set_value(0.5).run()
    assert page.error  # min above max: the draft does not validate
    buttons = {b.label: b for b in page.get("download_button")}
    assert set(buttons) == {
        "Download draft JSON (does not validate yet)",
        "Download draft YAML (does not validate yet)",
    }
    as_json = json.loads(download_bytes(buttons["Download draft JSON (does not validate yet)"]))
    as_yaml = yaml.safe_load(download_bytes(buttons["Download draft YAML (does not validate yet)"]))
    assert as_json == as_yaml
    assert as_json["space"][0] == {
        "name": "learning_rate",
        "type": "float",
        "min": 0.5,
        "max": 0.1,
        "scale": "linear",
    }
    assert not [b for b in page.button if b.label == "Continue to Launch"]
    # the saved draft loads back as the same work in progress
    next(b for b in page.button if b.label == "Load preset").click().run()
    assert next(n for n in page.number_input if n.label == "Min").value == 0.001
    upload(page, "published-study.json", json.dumps(as_json).encode())
    assert next(n for n in page.number_input if n.label == "Min").value == 0.5
    assert [e.value for e in page.error] == [
        "learning_rate: min (0.5) must be less than max (0.1); swap them or widen the range."
    ]

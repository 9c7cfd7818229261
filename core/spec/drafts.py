"""The spec being edited in the app, kept in the store so a refresh or a second tab loses nothing."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from core.paths import ASSETS
from core.spec import StudySpec, load_text
from core.store import Store

log = logging.getLogger(__name__)

PRESETS: dict[str, Path] = {
    "Published study (learning rate, batch size, dropout)": ASSETS
    / "specs"
    / "published_study.json",
    "Wider architecture search": ASSETS / "specs" / "architecture_search.yaml",
    "Published study on CIFAR-10 (needs the CIFAR-10 file)": ASSETS
    / "specs"
    / "published_study_cifar10.yaml",
}
PUBLISHED_OPTIMIZER_NOTE = (
    "The paper gives the ranges but not the optimizer. Learning rates of 0.001-0.1 are an SGD "
    "range, so this preset assumes SGD with momentum 0.9 (with Adam, most of that range "
    "diverges and trials end at chance); an assumption you can change below."
)
PRESET_NOTES: dict[str, str] = {
    name: PUBLISHED_OPTIMIZER_NOTE for name in PRESETS if name.startswith("Published study")
}
"""What a preset assumes beyond its source, shown where the preset is offered."""
DRAFT_KEY = "draft.spec"


def preset(name: str) -> dict[str, Any]:
    """Return a preset spec as raw data (a dict)."""
    return dict(load_text(PRESETS[name].read_text(encoding="utf-8")))


def load_draft(store: Store) -> dict[str, Any]:
    """Return the spec being edited (the published study the first time)."""
    draft = store.get_setting(DRAFT_KEY)
    if not isinstance(draft, dict):
        draft = preset(next(iter(PRESETS)))
    return copy.deepcopy(draft)


def save_draft(store: Store, data: dict[str, Any]) -> None:
    """Store the spec being edited (valid or not: it is a draft)."""
    store.set_setting(DRAFT_KEY, data)


def draft_from_upload(text: str) -> dict[str, Any]:
    """Parse an uploaded JSON or YAML spec; raise SpecError when it is not a mapping."""
    data = load_text(text)
    if not isinstance(data, dict):
        from core.errors import SpecError

        raise SpecError(["The uploaded file is not a spec: it must hold a mapping of fields."])
    return data


def downloads(spec: StudySpec) -> dict[str, str]:
    """Return the spec as JSON and YAML texts for download."""
    return {"json": spec.to_json(), "yaml": spec.to_yaml()}

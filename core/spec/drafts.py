"""The spec being edited in the app, kept in the store so a refresh or a second tab loses nothing."""

from __future__ import annotations

import copy
import json
import logging
import re
from pathlib import Path
from typing import Any

from core.errors import SpecError
from core.paths import ASSETS
from core.spec import (
    KNOWN_PARAMS,
    MAX_NAME_CHARS,
    PARAM_TYPES,
    StudySpec,
    load_bytes,
    load_text,
)
from core.spec.parse import param_type
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


def draft_from_upload(content: bytes, name: str) -> dict[str, Any]:
    """Parse an uploaded JSON or YAML spec into a draft the editor can show as it is.

    The draft may still have problems the editor shows and lets the user fix (a min above
    its max, say); what the editor cannot show is refused, so nothing is silently changed:
    a parameter it does not know, a type it does not know, a space that is not a list.

    Args:
        content: the file's bytes (at most :data:`core.spec.MAX_SPEC_BYTES`).
        name: the file's name; its extension picks JSON or YAML.

    Returns:
        The draft, each parameter's type written out.

    Raises:
        SpecError: the file cannot be read, is not a mapping, or the editor cannot show it.
    """
    data = load_bytes(content, name)
    if not isinstance(data, dict):
        raise SpecError([f"{name} is not a spec: it must hold a mapping of fields."])
    space = data.get("space")
    if space is None:
        return data
    if not isinstance(space, list):
        raise SpecError([f"{name}: space must be a list of parameters."])
    problems: list[str] = []
    for i, item in enumerate(space):
        if not isinstance(item, dict):
            problems.append(f"space[{i}] must be a mapping with a name and a type.")
            continue
        pname = item.get("name")
        if not isinstance(pname, str) or pname not in KNOWN_PARAMS:
            shown = pname if isinstance(pname, str) else repr(pname)
            problems.append(
                f"{shown[:60]} is not a tunable parameter (choose from {', '.join(KNOWN_PARAMS)})."
            )
            continue
        ptype = param_type(item, KNOWN_PARAMS[pname])
        if ptype not in PARAM_TYPES:
            problems.append(
                f"{pname}: type {str(ptype)[:60]!r} is unknown (choose from "
                f"{', '.join(PARAM_TYPES)})."
            )
            continue
        item["type"] = ptype
    if problems:
        raise SpecError(problems)
    return data


def downloads(draft: dict[str, Any], spec: StudySpec | None) -> dict[str, str]:
    """Return the spec (``spec``: validated) or else the draft as it stands, as JSON and YAML."""
    if spec is not None:
        return {"json": spec.to_json(), "yaml": spec.to_yaml()}
    import yaml

    return {
        "json": json.dumps(draft, indent=2, ensure_ascii=False, default=str),
        "yaml": yaml.safe_dump(draft, sort_keys=False, allow_unicode=True),
    }


def file_stem(draft: dict[str, Any]) -> str:
    """A file name for the draft's downloads: its study name, made safe (or 'spec')."""
    stem = re.sub(r"[^\w.-]+", "-", str(draft.get("name") or "")).strip("-.")
    return stem[:MAX_NAME_CHARS] or "spec"

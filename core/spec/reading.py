"""Reading spec text and files: JSON as JSON, YAML with YAML 1.2 numbers, within size and depth.

JSON is read by the json module, refusing repeated keys and NaN or Infinity. YAML is read with
the YAML 1.2 core schema, so ``1e-4``, ``1E5`` and ``+1.5e-3`` are numbers (YAML 1.1, PyYAML's
default, reads exponents without a dot as text), ``010`` is ten and ``yes`` is text. Anchors
and aliases are refused (a spec never needs them, and they can multiply a small file into a
huge one). Every refusal is a :class:`SpecError` whose sentence names the file.

Example:
    >>> load_text('{"min": 1e-4}')
    {'min': 0.0001}
    >>> load_text("min: 1e-4", fmt="yaml")
    {'min': 0.0001}
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from core.errors import SpecError

log = logging.getLogger(__name__)

MAX_SPEC_BYTES = 1_000_000
"""The largest spec file read (1 MB); the published study's spec is under 1 KB."""
MAX_NESTING = 32
"""The deepest nesting of lists and mappings a spec may have; a real spec needs 4."""

Format = Literal["json", "yaml"]
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")
_YAML_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_YAML_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_YAML_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_YAML_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_JSON_TYPES = (str, int, float, bool, type(None))


class _Refused(Exception):
    """A reason to refuse the text, already a clause ("gives the field 'x' twice")."""


def format_of(name: str | os.PathLike[str] | None) -> Format | None:
    """Return the format a file name's extension says (None: unknown, so sniff the text)."""
    suffix = Path(str(name or "")).suffix.lower()
    return "json" if suffix == ".json" else "yaml" if suffix in (".yaml", ".yml") else None


def read_spec_file(path: str | os.PathLike[str]) -> Any:
    """Read a spec file into Python data, checking its size before reading it.

    Args:
        path: a .json, .yaml or .yml file (another extension: the text decides).

    Returns:
        The parsed data (validate it with :func:`core.spec.parse_spec`).

    Raises:
        SpecError: the file is missing, too large, not UTF-8, or not valid JSON or YAML.
    """
    p = Path(path)
    try:
        check_size(str(p), p.stat().st_size)
        with open(p, "rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)  # a pipe or device has no size: read at most this
    except OSError as err:
        raise SpecError([f"Cannot read the spec file {p}: {err.strerror or err}."]) from err
    return load_bytes(data, str(p))


def load_bytes(data: bytes, name: str) -> Any:
    """Parse a spec file's bytes (an upload, say) as UTF-8 JSON or YAML, by ``name``'s extension.

    Raises:
        SpecError: too large, not UTF-8 or not valid JSON or YAML; the sentence names ``name``.
    """
    check_size(name, len(data))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise SpecError(
            [
                f"{name} is not UTF-8 text (byte 0x{data[err.start]:02x} at position "
                f"{err.start}); save it as UTF-8, the encoding of JSON and YAML specs."
            ]
        ) from err
    return load_text(text, fmt=format_of(name), source=name)


def load_text(text: str, fmt: Format | None = None, *, source: str = "The spec") -> Any:
    """Parse JSON or YAML text into Python data; raise SpecError with a sentence on any problem.

    Args:
        text: the spec's text.
        fmt: "json" or "yaml"; None reads text that starts with ``{`` or ``[`` as JSON when it
            is valid JSON, else as YAML.
        source: how sentences name the text (a file name, or "The spec").

    Returns:
        The parsed data: mappings, lists, text, numbers, true/false and null only.

    Raises:
        SpecError: too large, too deeply nested, repeated keys, NaN in JSON, an alias, a
            syntax error, or a value that is not plain data.
    """
    if len(text) > MAX_SPEC_BYTES:  # characters: at least as many bytes
        check_size(source, len(text.encode("utf-8", "surrogatepass")))
    depth = _bracket_depth(text)
    if depth > MAX_NESTING:
        raise _too_deep(source, f"more than {MAX_NESTING}")
    looks_json = text.lstrip().startswith(("{", "["))
    try:
        if fmt == "json" or (fmt is None and looks_json):
            try:
                data = _load_json(text)
            except json.JSONDecodeError as err:
                if fmt == "json":
                    raise _syntax(source, "JSON", err.lineno, err.colno, err.msg) from err
                data = _load_yaml(text, source, fallback_of=err)
        else:
            data = _load_yaml(text, source)
    except _Refused as err:
        raise SpecError([f"{source} {err}"]) from err
    except RecursionError as err:
        raise _too_deep(source, "too many") from err
    except ValueError as err:  # Python reads integers of at most 4,300 digits
        why = (
            f"a number of more than {sys.get_int_max_str_digits():,} digits, longer than any "
            "field takes"
            if "integer string conversion" in str(err)
            else f"a value that cannot be read ({err})"
        )
        raise SpecError([f"{source} holds {why}; write a shorter number."]) from err
    problem = plain_data_problem(data)
    if problem:
        raise SpecError([f"{source} {problem}"])
    return data


def plain_data_problem(data: Any, limit: int = MAX_NESTING) -> str | None:
    """Say what keeps ``data`` from being a plain spec (too deep, or not JSON's types); else None.

    Walks without recursion and visits each object once, so a self-referring or very deep
    structure handed to the API costs no more than its size.
    """
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    seen: set[int] = set()
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, Mapping | list | tuple):
            if depth > limit:
                return _deep_clause(f"more than {limit}")
            if id(value) in seen:
                continue
            seen.add(id(value))
            items = value.items() if isinstance(value, Mapping) else enumerate(value)
            for key, item in items:
                stack.append((item, depth + 1, f"{where}.{key}" if where else str(key)))
        elif not isinstance(value, _JSON_TYPES):
            return (
                f"holds a {type(value).__name__} at {where or 'the top'}; a spec holds only "
                "text, numbers, true/false, null, lists and mappings."
            )
    return None


# ----------------------------------------------------------------------------- JSON


def _load_json(text: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise _Refused(f"gives the field {key!r} twice in one object; keep one.")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise _Refused(f"holds {name}, which is not a number JSON allows; write a finite number.")

    return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)


# ----------------------------------------------------------------------------- YAML 1.2


def _load_yaml(text: str, source: str, fallback_of: json.JSONDecodeError | None = None) -> Any:
    import yaml  # lazy: the spec also ships inside cloud training containers

    try:
        return yaml.load(text, Loader=_yaml12_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        if fallback_of is not None:  # it looked like JSON: say where JSON failed
            raise _syntax(
                source, "JSON or YAML", fallback_of.lineno, fallback_of.colno, fallback_of.msg
            ) from err
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or err
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise _syntax(source, "YAML", line, column, str(problem)) from err


_LOADER: Any = None


def _yaml12_loader() -> Any:
    """A SafeLoader with YAML 1.2's core schema, refusing aliases and repeated keys."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    class Yaml12Loader(yaml.SafeLoader):
        yaml_implicit_resolvers: dict[Any, Any] = {}

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise _Refused(
                    f"uses the YAML alias *{event.anchor} at line {event.start_mark.line + 1}; "
                    "write the value out in full (a spec takes no anchors or aliases)."
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[tuple[str, str]] = set()
            for key_node, _ in node.value:
                key = (key_node.tag, str(key_node.value))
                if isinstance(key_node, yaml.ScalarNode) and key in seen:
                    raise _Refused(
                        f"gives the field {key_node.value!r} twice in one mapping (line "
                        f"{key_node.start_mark.line + 1}); keep one."
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    for tag, pattern, first in (
        ("bool", _YAML_BOOL, "tTfF"),
        ("int", _YAML_INT, "-+0123456789"),
        ("float", _YAML_FLOAT, "-+.0123456789"),
        ("null", _YAML_NULL, ["~", "n", "N", ""]),
    ):
        Yaml12Loader.add_implicit_resolver(f"tag:yaml.org,2002:{tag}", pattern, list(first))
    Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _yaml_int)
    Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _yaml_float)
    _LOADER = Yaml12Loader
    return _LOADER


def _yaml_int(loader: Any, node: Any) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")
    return int(text, 0) if text[:2] in ("0o", "0x") else int(text)  # 010 is ten in YAML 1.2


def _yaml_float(loader: Any, node: Any) -> float:
    text = str(loader.construct_scalar(node)).replace("_", "").lower()
    if text.lstrip("+-") == ".inf":
        return -math.inf if text.startswith("-") else math.inf
    return math.nan if text == ".nan" else float(text)


# ----------------------------------------------------------------------------- sentences


def _bracket_depth(text: str) -> int:
    """The deepest nesting of [ ] and { } outside double-quoted strings (stops past the limit)."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRINGS.sub('""', text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_NESTING:
                break
    return deepest


def _deep_clause(levels: str) -> str:
    return (
        f"nests lists and mappings {levels} levels deep; a spec needs 4 "
        f"(spec, space, parameter, values) and may have at most {MAX_NESTING}."
    )


def _too_deep(source: str, levels: str) -> SpecError:
    return SpecError([f"{source} {_deep_clause(levels)}"])


def check_size(source: str, size: int) -> None:
    """Raise SpecError when a spec of ``size`` bytes is over :data:`MAX_SPEC_BYTES`."""
    if size > MAX_SPEC_BYTES:
        raise SpecError(
            [
                f"{source} is {size:,} bytes, larger than the {MAX_SPEC_BYTES:,} bytes a spec "
                "may have; a spec is a few hundred bytes: check that this is the right file."
            ]
        )


def _syntax(source: str, kind: str, line: int | None, column: int | None, why: str) -> SpecError:
    where = f" at line {line}, column {column}" if line is not None else ""
    return SpecError([f"{source} is not valid {kind}{where}: {why.rstrip('.')}."])

"""Answer keys (``answers/<chapter>.yml``) read strictly and validated before any use.

A key that YAML would silently accept but the book would misread is refused with one
sentence naming the file and line: malformed YAML, a duplicate exercise id or field (YAML
keeps the last of two equal keys, which dropped an exercise's checks), an unknown field, a
wrong type, a quantity with neither ``range`` nor ``expect``, the same quantity key twice.
The format is described in CONTRIBUTING.md ("Answer key format").
"""
from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

from livro.integrity import BookError

# The verdict of an answer check (livro.book.Row.verdict) in the reader's words, the one place
# that names them: the provenance page (scripts/build.py) and the editions page
# (scripts/editions.py) both write these.
VERDICT_WORDS = {"inside": "dentro", "deviation": "desvio registrado", "outside": "fora da faixa",
                 "no-data": "sem dados", "missing": "sem valor"}


def verdict_text(verdict: str) -> str:
    """A verdict as the reader reads it (an unknown one is shown as it is)."""
    return VERDICT_WORDS.get(verdict, verdict)

QUANTITY = {
    "type": "object",
    "properties": {
        "key": {"type": "string", "pattern": "^[A-Za-z0-9_]+$"},
        "label": {"type": "string"},
        "documented": {},
        "range": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "expect": {},
        "deterministic": {"type": "boolean"},
        "needs_data": {"type": "string", "minLength": 1},
    },
    "required": ["key"],
    "additionalProperties": False,
}
EXERCISE = {
    "type": "object",
    "properties": {
        "answer": {"enum": ["a", "b", "c", "d", "e"]},
        "quantities": {"type": "array", "items": QUANTITY},
    },
    "additionalProperties": False,
}
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "chapter": {"type": "string"},
        "exercises": {"type": "object", "minProperties": 1,
                      "propertyNames": {"pattern": "^[A-Za-z0-9_]+$"},
                      "additionalProperties": EXERCISE},
    },
    "required": ["chapter", "exercises"],
    "additionalProperties": False,
}


def _rel(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def load_yaml(path: Path) -> tuple[object, dict]:
    """The document and, for each path of keys/indices in it, its line (1-based).
    Malformed YAML and duplicate keys raise BookError naming the file and line."""
    name = _rel(path)
    try:
        loader = yaml.SafeLoader(path.read_text())
        try:
            node = loader.get_single_node()
            lines: dict[tuple, int] = {}
            _walk(node, (), lines, name)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f", line {mark.line + 1}" if mark else ""
        raise BookError(f"{name}{line}: malformed YAML ({error.problem or error.context})") from None
    except yaml.YAMLError as error:
        raise BookError(f"{name}: malformed YAML ({error})") from None
    return data, lines


def _walk(node, path: tuple, lines: dict, name: str) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for key, value in node.value:
            label = key.value if isinstance(key, yaml.ScalarNode) else str(key.start_mark)
            if label in seen:
                raise BookError(f"{name}, line {key.start_mark.line + 1}: duplicate key {label!r} (first at line "
                                f"{seen[label]}); YAML would keep only the last one and drop the first's checks")
            seen[label] = key.start_mark.line + 1
            _walk(value, (*path, label), lines, name)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, name)


def _line(lines: dict, path) -> int:
    path = tuple(path)
    while path not in lines:
        path = path[:-1]
    return lines[path]


def _where(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the document"


def load(path: Path, chapter: str) -> dict:
    """An answer key, validated; BookError (one sentence: file, line, what) otherwise."""
    name = _rel(path)
    if not path.exists():
        raise BookError(f"{name} does not exist: every chapter needs an answer key")
    data, lines = load_yaml(path)
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data),
                    key=lambda e: _line(lines, e.absolute_path))
    if errors:
        error, path = errors[0], tuple(errors[0].absolute_path)
        if error.validator == "additionalProperties":  # point at the unknown field itself
            path += tuple(k for k in error.instance if k not in error.schema.get("properties", {}))[:1]
        raise BookError(f"{name}, line {_line(lines, path)}: {_where(error.absolute_path)}: {error.message}")
    if data["chapter"] != chapter:
        raise BookError(f"{name}, line {lines[('chapter',)]}: chapter is {data['chapter']!r}, not {chapter!r}")
    seen: dict[str, int] = {}
    for ex_name, exercise in data["exercises"].items():
        for index, q in enumerate(exercise.get("quantities") or []):
            at = _line(lines, ("exercises", ex_name, "quantities", index))
            if ("range" in q) == ("expect" in q):
                raise BookError(f"{name}, line {at}: quantity {q['key']} needs exactly one of range "
                                f"(a numeric check) or expect (an equality)")
            if "range" in q and q["range"][0] > q["range"][1]:
                raise BookError(f"{name}, line {at}: quantity {q['key']} has range {q['range']}, "
                                f"whose lower end is above the upper")
            if q["key"] in seen:
                raise BookError(f"{name}, line {at}: quantity key {q['key']} is already checked at line "
                                f"{seen[q['key']]}")
            seen[q["key"]] = at
    return data


def quantity_line(path: Path, key: str) -> int | None:
    """The line of the quantity named `key` in an answer key (for messages), or None."""
    try:
        data, lines = load_yaml(path)
        for ex_name, exercise in data["exercises"].items():
            for index, q in enumerate(exercise.get("quantities") or []):
                if q.get("key") == key:
                    return _line(lines, ("exercises", ex_name, "quantities", index))
    except (BookError, KeyError, TypeError, AttributeError):
        pass
    return None


def deviation_reason(entry) -> str:
    """An answers/deviations.yml entry's explanation: the sentence itself, or the `reason` of a
    mapping entry (``{reason: ..., value: ..., tolerance: ...}``)."""
    if isinstance(entry, dict):
        return str(entry.get("reason", ""))
    return str(entry)

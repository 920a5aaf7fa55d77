"""The files made from the registered policies: the policy table in docs/expectations.md (between
markers) and the registry's JSON Schema (xentcheck/expectations.schema.json). ``python -m
xentcheck.policies --write`` writes them; ``--check`` (and tests/test_policies.py) fails on drift."""

from __future__ import annotations

import json
from pathlib import Path

from . import markdown_table

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "expectations.md"
SCHEMA_FILE = ROOT / "xentcheck" / "expectations.schema.json"
BEGIN = "<!-- policy table: generated from xentcheck/policies by `python -m xentcheck.policies --write` -->"
END = "<!-- end of the policy table -->"


class DriftError(ValueError):
    """A generated file is missing its markers; the message is one line naming the file."""


def docs_text(current: str) -> str:
    """``current`` (docs/expectations.md) with the policy table between the markers regenerated."""
    if current.count(BEGIN) != 1 or current.count(END) != 1 or current.index(BEGIN) > current.index(END):
        raise DriftError(f"{DOCS}: needs one {BEGIN!r} line followed by one {END!r} line")
    head, rest = current.split(BEGIN)
    tail = rest.split(END)[1]
    return f"{head}{BEGIN}\n{markdown_table()}{END}{tail}"


def schema_text() -> str:
    """The JSON Schema of a registry file (a list of ``[[expectation]]`` tables), for editors."""
    from ..expectations import SCHEMA  # the entry schema, whose expect part comes from the policies

    entry = {k: v for k, v in SCHEMA.items() if k != "$schema"}
    doc = {
        "$schema": SCHEMA["$schema"],
        "title": "xentcheck expectations registry",
        "type": "object",
        "properties": {"expectation": {"type": "array", "items": entry}},
    }
    return json.dumps(doc, indent=2) + "\n"


def drifted() -> list[str]:
    """One line per generated file that differs from what the registered policies make."""
    out = []
    if DOCS.read_text() != docs_text(DOCS.read_text()):
        out.append(f"{DOCS.relative_to(ROOT)}: the policy table differs from xentcheck/policies")
    if not SCHEMA_FILE.exists() or SCHEMA_FILE.read_text() != schema_text():
        out.append(f"{SCHEMA_FILE.relative_to(ROOT)}: differs from the schema the policies make")
    return out


def write() -> list[Path]:
    """Regenerate both files; the paths written."""
    DOCS.write_text(docs_text(DOCS.read_text()))
    SCHEMA_FILE.write_text(schema_text())
    return [DOCS, SCHEMA_FILE]

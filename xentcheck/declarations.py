"""Reading declaration files (cases, expectations): TOML arrays of tables, each located for errors and
validated against a JSON Schema, every problem reported in one line naming the file, table and key."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema

from .json_safety import non_finite


@dataclass(frozen=True)
class TableKind:
    """A kind of declaration table: its array's ``key`` (``[[key]]``), the ``name_key`` that names a
    table in messages, the ``error`` raised on bad input, ``what`` the files are called in messages,
    and whether an explicit ``values`` array may hold an infinity or a NaN (``arrays_may_hold_inf``)."""

    key: str
    name_key: str
    error: type[Exception]
    what: str
    arrays_may_hold_inf: bool = False


def tables(paths: list[Path], kind: TableKind) -> Iterator[tuple[str, dict]]:
    """Yield ``(where, table)`` for every ``[[kind.key]]`` table; ``where`` names the file, index and name.

    A NaN or infinity is refused (the strict-JSON results could not hold it), except, with
    ``kind.arrays_may_hold_inf``, inside an explicit ``values`` array (a case's inputs, which are never
    written).

    An unreadable or malformed file raises ``kind.error`` with one line naming it and the fix.
    """
    key, name_key, error, what = kind.key, kind.name_key, kind.error, kind.what
    arrays_may_hold_inf = kind.arrays_may_hold_inf
    for path in paths:
        if Path(path).exists() and not Path(path).is_file():  # a fifo or a device would block the read
            raise error(f"{path}: not a regular file; pass a {what} .toml file")
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise error(f"{path}: cannot read {what} file ({e}); fix the TOML syntax") from None
        for i, raw in enumerate(data.get(key, [])):
            name = raw.get(name_key, "?") if isinstance(raw, dict) else "?"
            where = f"{Path(path).name}: {key} #{i + 1} {name!r}"
            bad = non_finite(
                {k: v for k, v in raw.items() if not isinstance(v, dict) or "values" not in v}
                if arrays_may_hold_inf and isinstance(raw, dict)
                else raw
            )
            if bad:  # TOML has nan and inf; the results file (strict JSON) cannot hold them
                raise error(
                    f"{where}: {bad} is not a finite number (nan or inf); JSON results cannot hold it: "
                    f'write a finite number (or, where the key takes one, the string "nan"/"inf")'
                )
            yield where, raw


#: JSON Schema counts 4.0 as an integer; code that indexes, seeds or shapes with it does not, so an
#: integer here is an int (TOML writes 4 and 4.0 differently)
_STRICT = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


def check(table: dict, schema: dict, where: str, error: type[Exception]) -> None:
    """Raise ``error`` with one line for the first way ``table`` breaks ``schema``: an unknown key
    first (a misspelt key is also a missing one, and the misspelling is the news), then the most
    specific problem jsonschema finds."""
    errors = list(_STRICT(schema).iter_errors(table))
    unknown = [e for e in errors if e.validator == "additionalProperties"]
    best = unknown[0] if unknown else jsonschema.exceptions.best_match(errors)
    if best is not None:
        raise error(f"{where}: {describe(best)}")


def _words(schema: dict) -> str:
    """What a subschema expects, for a message: its ``title``'s kind, else its type(s)."""
    if "x-expects" in schema:
        return schema["x-expects"]
    kinds = schema.get("type")
    if isinstance(kinds, list):
        return " or ".join(kinds)
    if kinds:
        return {
            "array": "a list",
            "object": "a table",
            "integer": "an integer",
            "number": "a number",
            "string": "a string",
            "boolean": "true or false",
        }.get(kinds, kinds)
    return "another value"


def describe(e: jsonschema.ValidationError) -> str:
    """One line for a schema violation, in the declaration's own words (key paths as ``a.b``)."""
    path = ".".join(str(p) for p in e.absolute_path)
    label = e.schema.get("title") or path or "the table"
    if e.validator == "additionalProperties":
        unknown = sorted(set(e.instance) - set(e.schema.get("properties", {})))[0]
        known = ", ".join(sorted(e.schema.get("properties", {})))
        if "x-unknown" in e.schema:
            return f"{path + '.' if path else ''}{unknown} {e.schema['x-unknown']}; use one of {known}"
        return f"unknown key {unknown!r}{' in ' + path if path else ''}; known keys: {known}"
    if e.validator == "required":
        missing = next(k for k in e.validator_value if k not in e.instance)
        return (
            f"missing required key {missing!r}{' in ' + path if path else ''} "
            f"(every entry needs {', '.join(e.validator_value)})"
        )
    if e.validator == "enum":
        return f"{label} {e.instance!r} is not one of: {', '.join(map(str, e.validator_value))}"
    if e.validator == "pattern":
        return f"{label} {e.instance!r}: {e.schema.get('x-message', 'does not match ' + e.validator_value)}"
    if e.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{label} = {e.instance!r} is out of range: {e.message}"
    if e.validator in ("minItems", "maxItems", "uniqueItems"):
        return f"{label}: {e.message}"
    if e.validator in ("anyOf", "oneOf") and "x-message" in e.schema:
        return f"{label}: {e.schema['x-message']}"
    return f"{label} = {e.instance!r}: expected {_words(e.schema)}"

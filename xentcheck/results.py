"""The results document: a versioned JSON file per run, validated against ``results.schema.json``.

Everything downstream (HTML report, diffs) is computed from these files alone. ``load`` accepts the
current schema version and rejects others with one line saying what to do; it returns the typed
document of :mod:`xentcheck.records`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from .records import BenchSection, CheckRecord, FuzzSection, Results, StabilityRecord, summarize
from .safe_output import write_atomic  # re-exported: every output file is written through it

__all__ = [
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "Results",
    "ResultsError",
    "document",
    "load",
    "schema",
    "summarize",
    "validate",
    "validate_fuzz",
    "write_atomic",
]

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")


class ResultsError(ValueError):
    """An unreadable or invalid results file; the message is one line naming the file and the fix."""


def schema() -> dict:
    """The JSON Schema of the results document."""
    return json.loads(SCHEMA_PATH.read_text())


@functools.cache
def _validator():
    """The schema compiled to Python by fastjsonschema: a results file holds ten thousand records, which
    an interpreting validator takes seconds over, at the end of every run and in every report build."""
    import fastjsonschema

    return fastjsonschema.compile(schema())


def validate(doc: dict, where: str = "results") -> None:
    """Raise ResultsError (one line) unless ``doc`` is a valid results document of this schema version."""
    import fastjsonschema

    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if version != SCHEMA_VERSION:
        raise ResultsError(
            f"{where}: schema_version {version!r} is not supported (this xentcheck reads "
            f"version {SCHEMA_VERSION}); re-run the suite with this version to regenerate it"
        )
    try:
        _validator()(doc)
    except fastjsonschema.JsonSchemaValueException as e:
        path = "/".join(str(p) for p in (e.path or [])[1:]) or "(top level)"
        message = e.message.removeprefix(e.name or "").strip()
        raise ResultsError(f"{where}: invalid results document at {path}: {message}") from None


@functools.cache
def _fuzz_validator():
    import fastjsonschema

    return fastjsonschema.compile(schema()["properties"]["fuzz"])


def validate_fuzz(section: dict, where: str) -> None:
    """Raise ResultsError (one line) unless ``section`` is a valid fuzz section (a campaign's tally file)."""
    import fastjsonschema

    try:
        _fuzz_validator()(section)
    except fastjsonschema.JsonSchemaValueException as e:
        path = "/".join(str(p) for p in (e.path or [])[1:]) or "(top level)"
        raise ResultsError(
            f"{where}: invalid fuzz tally at {path}: {e.message.removeprefix(e.name or '').strip()}"
        ) from None


def _not_json(token: str) -> float:
    raise ValueError(f"the token {token} is not JSON")


def load(path: str | Path) -> Results:
    """Read, validate and parse a results file."""
    p = Path(path)
    if p.exists() and not p.is_file():  # a fifo or a device would block the read or never end
        raise ResultsError(f"{p}: not a regular file; pass the path of a results JSON written by a run")
    try:
        doc = json.loads(p.read_text(), parse_constant=_not_json)
    except FileNotFoundError:
        raise ResultsError(f"{p}: no such results file; pass the path of a results JSON written by a run") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ResultsError(f"{p}: cannot read ({e}); check the path and permissions") from None
    except json.JSONDecodeError as e:
        raise ResultsError(f"{p}: not JSON ({e.msg} at line {e.lineno}); is this a results file?") from None
    except RecursionError:  # nested beyond what the parser follows: no results file is
        raise ResultsError(
            f"{p}: nested too deeply to be a results file; pass a results JSON written by a run"
        ) from None
    except ValueError as e:  # a NaN/Infinity token
        raise ResultsError(
            f"{p}: {e}; a results file is strict JSON (xentcheck writes non-finite numbers as "
            f"strings), so this one was not written by xentcheck or was edited"
        ) from None
    validate(doc, str(p))
    return Results.from_json(doc)


#: top-level lists written one item per line (the bulk of a results file)
_ONE_PER_LINE = ("records", "stability")


def dumps(doc: Results) -> str:
    """The document as JSON text: the small sections indented, every record and stability sweep on a
    line of its own (diffable and greppable; indenting ten megabytes of nesting takes seconds)."""
    d = doc.to_json()
    lists = {k: d.pop(k) for k in _ONE_PER_LINE if k in d}
    head = json.dumps(d, indent=1, allow_nan=False)
    parts = [head[:-2]] if lists else [head]
    for k, items in lists.items():
        body = ",\n".join(json.dumps(item, allow_nan=False) for item in items)
        parts.append(f',\n "{k}": [' + (f"\n{body}\n ]" if items else "]"))
    return "".join(parts) + ("\n}" if lists else "")


def document(
    environment: dict,
    records: list[CheckRecord],
    expectations: dict,
    benchmarks: BenchSection | None = None,
    stability: list[StabilityRecord] | None = None,
    incomplete: dict | None = None,
    harness: dict | None = None,
    fuzz: FuzzSection | None = None,
) -> Results:
    """Assemble a results document (its JSON validated before it is returned); ``benchmarks`` when
    timed, ``stability`` when the stability sweep ran; ``incomplete`` (reason, recorded, expected)
    when the run stopped early."""
    records = sorted(records, key=lambda r: r.id)
    doc = Results(
        environment=environment,
        summary=summarize(records),
        expectations=expectations,
        records=records,
        benchmarks=benchmarks,
        stability=sorted(stability or [], key=lambda r: r.id),
        schema_version=SCHEMA_VERSION,
        complete=incomplete is None,
        incomplete=incomplete,
        harness=harness,
        fuzz=fuzz,
    )
    validate(doc.to_json())
    return doc

"""The results document: schema, validation messages, atomic writes."""

import json

import pytest

from xentcheck.records import Results
from xentcheck.results import SCHEMA_VERSION, ResultsError, document, load, validate, write_atomic

from .fake_adapter import fake_environment
from .test_checks import CASES, HONEST, _run


def _doc():
    recs = [_run(HONEST, "random_index", check=c) for c in ("value", "grad")]
    env = fake_environment()
    return document(env, recs, {"entries": [], "stale": [], "unused": []}).to_json()


def test_a_real_document_validates_and_round_trips(tmp_path):
    doc = _doc()
    assert doc["schema_version"] == SCHEMA_VERSION and doc["summary"] == {"pass": 2}
    path = write_atomic(tmp_path / "sub" / "r.json", json.dumps(doc, allow_nan=False))
    assert load(path) == Results.from_json(doc)
    assert load(path).to_json() == doc  # one serialisation, one parser: a round trip loses nothing
    assert not list((tmp_path / "sub").glob(".r.json.*"))  # no temp file left behind


def test_missing_field_is_one_line_naming_the_place():
    doc = _doc()
    del doc["records"][0]["outcome"]
    with pytest.raises(ResultsError) as e:
        validate(doc, "r.json")
    assert "records/0" in str(e.value) and "outcome" in str(e.value) and "\n" not in str(e.value)


def test_bad_outcome_value_is_rejected():
    doc = _doc()
    doc["records"][0]["outcome"] = "kinda"
    with pytest.raises(ResultsError):
        validate(doc)


def test_other_schema_version_is_rejected_with_the_fix():
    doc = _doc()
    doc["schema_version"] = 99
    with pytest.raises(ResultsError, match="re-run the suite"):
        validate(doc, "old.json")


@pytest.mark.parametrize("content, message", [(None, "no such results file"), ("{nope", "not JSON")])
def test_unreadable_files(tmp_path, content, message):
    p = tmp_path / "r.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(ResultsError, match=message):
        load(p)


def test_cases_are_declarations():
    assert {"extreme logits", "soft targets", "index vs one-hot", "multi-label", "zero probabilities", "ordinary"} <= {
        c.category for c in CASES.values()
    }


@pytest.mark.parametrize(
    "path, cls",
    [
        (("records", "items"), "CheckRecord"),
        (("stability", "items"), "StabilityRecord"),
        (("stability", "items", "points", "items"), "StabilityPoint"),
        (("benchmarks", "records", "items"), "BenchRecord"),
    ],
)
def test_the_schema_and_the_record_classes_name_the_same_fields(path, cls):
    """One serialisation: a record class writes exactly the fields the schema describes."""
    from dataclasses import fields

    from xentcheck import records
    from xentcheck.results import schema

    node = schema()
    for key in path:
        node = node["properties"][key] if key != "items" else node["items"]
    klass = getattr(records, cls)
    written = {f.metadata.get("key", f.name) for f in fields(klass) if f.metadata.get("json", True)}
    if cls == "CheckRecord":
        written |= {f.name for f in fields(records.RelationRecord)}  # relation records share the item schema
        written -= {"run"}
    assert set(node["properties"]) == written
    assert set(node.get("required", [])) <= written


def test_the_schema_and_the_interaction_coverage_classes_name_the_same_fields():
    """environment.interactions: what InteractionCoverage and StrengthCoverage write is what the schema
    describes (it also describes the older pair form, which the classes read)."""
    from dataclasses import fields

    from xentcheck.records import InteractionCoverage, StrengthCoverage
    from xentcheck.results import schema

    node = schema()["properties"]["environment"]["properties"]["interactions"]["additionalProperties"]
    written = {f.name for f in fields(InteractionCoverage)}
    assert written <= set(node["properties"]) and set(node["required"]) <= written
    by = node["properties"]["by_strength"]["items"]
    assert set(by["properties"]) == {f.name for f in fields(StrengthCoverage)} == set(by["required"])

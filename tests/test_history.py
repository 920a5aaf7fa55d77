"""Several results files in one report: run labels, the changes section and the history view."""

import copy

from reports import history
from xentcheck.records import Results

from .test_report import render
from .test_results import _doc


def _typed(docs: list[dict]) -> list[Results]:
    return [Results.from_json(d) for d in docs]


def run_labels(docs: list[dict]) -> list[str]:
    return history.run_labels(_typed(docs))


def changes(docs: list[dict], labels: list[str]) -> list[dict]:
    return history.changes(_typed(docs), labels)


def trends(docs: list[dict], labels: list[str]) -> dict:
    return history.trends(_typed(docs), labels)


def _versions():
    """The same checks run on fake 0.0 and fake 0.1, where 0.1 changed two records."""
    old = _doc()
    new = copy.deepcopy(old)
    new["environment"]["frameworks"]["fake"]["fake"] = "0.1"
    new["records"][0].update(outcome="fail", reason="got 3, expected 2")
    new["records"][1]["errors"] = {**new["records"][1]["errors"], "tol_units": 7.5}
    return old, new


def test_runs_are_labelled_by_the_versions_that_differ():
    old, new = _versions()
    assert run_labels([old, new]) == ["fake 0.0", "fake 0.1"]
    rerun = copy.deepcopy(old)
    rerun["environment"]["date"] = "2026-11-23T10:00"
    assert run_labels([old, rerun])[1].startswith("2026-11-23")  # same versions: the date tells them apart


def test_the_changes_section_lists_every_record_that_differs():
    old, new = _versions()
    labels = run_labels([old, new])
    (c,) = changes([old, new], labels)
    assert [o["id"] for o in c["diff"].outcomes] == [new["records"][0]["id"]] and c["regressions"]
    assert [n["id"] for n in c["diff"].numbers] == [new["records"][1]["id"]]
    html = render([old, new])
    assert 'id="changes"' in html and "fake 0.0 &rarr; fake 0.1" in html
    for r in new["records"]:
        assert html.count(r["id"]) >= 2  # in the changes and in the history


def test_the_history_shows_each_changed_check_per_run():
    old, new = _versions()
    third = copy.deepcopy(new)
    third["environment"]["frameworks"]["fake"]["fake"] = "0.2"
    third["records"][0].update(outcome="pass", reason="")  # fixed again in 0.2
    t = trends([old, new, third], run_labels([old, new, third]))
    rows = {r["id"]: [s["outcome"] for s in r["states"]] for r in t["rows"]}
    assert rows[old["records"][0]["id"]] == ["pass", "fail", "pass"]
    assert t["labels"] == ["fake 0.0", "fake 0.1", "fake 0.2"]


def test_identical_runs_have_no_changes_and_no_history_rows():
    old = _doc()
    html = render([old, copy.deepcopy(old)])
    assert "no change" in html and "every check is the same in every run" in html


def test_runs_of_different_frameworks_are_not_compared():
    a = _doc()
    b = copy.deepcopy(a)
    b["environment"]["frameworks"] = {"other": {"other": "1.0"}}
    for r in b["records"]:
        r.update(framework="other", id="other" + r["id"][4:])
    assert changes([a, b], run_labels([a, b])) == []


def test_stability_points_that_changed_status_are_listed():
    from reports.diff import diff, lines
    from xentcheck import stability
    from xentcheck.checks import Judge
    from xentcheck.expectations import Registry

    from .fake_adapter import HONEST, FakeAdapter

    old, new = _versions()
    binding = HONEST.bindings()[0]
    for doc, adapter in ((old, HONEST), (new, FakeAdapter("fake", shift=False))):
        doc["stability"] = [
            Judge(Registry([]), {}).sweep(adapter, binding, stability.BY_NAME["logit_magnitude"], "float32").to_json()
        ]
    d = diff(*_typed([old, new]))
    assert d.stability and all(c["old"] == "ok" and c["new"] in ("inf", "nan", "inaccurate") for c in d.stability)
    assert min(c["x"] for c in d.stability) > 10  # nothing changes below the overflow
    assert any(line.startswith("stability ") for line in lines(d))
    assert "stability points changed" in render([old, new])

"""The journal of a run: records survive an interruption and become a results file marked incomplete."""

import json

import pytest

from xentcheck.journal import Journal, JournalError, recover, recover_lines
from xentcheck.results import validate

from .fake_adapter import fake_environment
from .test_checks import HONEST, _run


def _journal(tmp_path):
    j = Journal(tmp_path / "r.json.x.partial.jsonl")
    env = fake_environment()
    for check in ("value", "grad"):
        j.write(_run(HONEST, "random_index", check=check), lambda: {"environment": env, "expected": 5})
    return j


def test_a_journal_becomes_a_valid_results_file_marked_incomplete(tmp_path):
    j = _journal(tmp_path)
    j.close(remove=False)
    doc = recover(j.path)
    assert doc.complete is False and doc.incomplete == {
        "reason": "recovered from the journal of a run that did not finish",
        "recorded": 2,
        "expected": 5,
    }
    assert doc.summary == {"pass": 2}
    validate(doc.to_json())


def test_a_torn_last_line_is_dropped_a_damaged_one_skipped_and_a_non_journal_is_one_line(tmp_path):
    j = _journal(tmp_path)
    j.close(remove=False)
    text = j.path.read_text()
    j.path.write_text(text[:-40])  # killed in the middle of writing the last record
    assert len(recover(j.path).records) == 1
    lines = text.splitlines()
    j.path.write_text("\n".join([lines[0], "{oops", lines[2]]) + "\n")
    doc, skipped = recover_lines(j.path)  # a damaged line costs itself, never its neighbours
    assert len(doc.records) == 1 and skipped == ["line 2: not JSON"]
    j.path.write_text(json.dumps({"kind": "check"}) + "\n")
    with pytest.raises(JournalError, match="not a xentcheck journal"):
        recover(j.path)


def test_benchmark_records_recover_with_the_sweeps_settings(tmp_path):
    from xentcheck.records import BenchRecord

    j = Journal(tmp_path / "b.json.x.partial.jsonl")
    env = {
        "python": "3",
        "platform": "p",
        "cpu": "c",
        "cpu_count": 2,
        "date": "d",
        "command": "pytest",
        "device": "cpu",
        "frameworks": {"timed": {"timed": "0"}},
        "skipped": {},
        "bindings": {},
    }
    settings = {
        "threads": {"threads": 2},
        "sizes": [[32, 10]],
        "modes": ["eager"],
        "passes": ["forward"],
        "dtypes": ["float32"],
        "budget_s": 0.5,
        "floor": None,
    }  # the floor comes with the first benchmark
    rec = BenchRecord(
        id="timed-t.0-32x10-float32-eager-forward",
        framework="timed",
        binding="t.0",
        api="a",
        op="softmax_ce",
        mode="eager",
        dtype="float32",
        pass_="forward",
        batch=32,
        classes=10,
        outcome="unsupported",
        reason="no compiler",
    )
    j.write(rec, lambda: {"environment": env, "bench": settings, "expected": 1})
    j.close(remove=False)
    doc = recover(j.path)
    assert doc.benchmarks.records == [rec] and doc.records == []
    validate(doc.to_json())

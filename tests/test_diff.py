"""``python -m reports diff``: outcome changes, numeric changes and regressions between two results."""

import copy
import json
import subprocess
import sys

from reports.diff import lines
from xentcheck.records import Results

from .runs import ROOT
from .test_results import _doc


def diff(old: dict, new: dict):
    from reports.diff import diff as typed_diff

    return typed_diff(Results.from_json(old), Results.from_json(new))


def _pair():
    old = _doc()
    return old, copy.deepcopy(old)


def test_identical_results_have_no_changes():
    old, new = _pair()
    d = diff(old, new)
    assert d.outcomes == [] and d.numbers == [] and d.regressions == [] and d.speed == []
    assert lines(d)[-1].startswith("0 outcome changes (0 regressions), 0 numeric changes")


def test_a_new_fail_is_a_regression_and_a_fix_is_not():
    old, new = _pair()
    new["records"][0].update(outcome="fail", reason="boom")
    d = diff(old, new)
    assert len(d.regressions) == 1 and "pass -> fail" in d.regressions[0]
    d = diff(new, old)  # the other way round: fail -> pass is a change, not a regression
    assert d.regressions == [] and len(d.outcomes) == 1


def test_a_deviation_that_changes_or_stops_is_a_regression():
    old, new = _pair()
    old["records"][0].update(outcome="deviation", expectation="torch-bce-log-clamp")
    new["records"][0].update(outcome="deviation", expectation="another-entry")
    assert len(diff(old, new).regressions) == 1
    new["records"][0].update(outcome="pass", expectation=None)
    assert "deviation [torch-bce-log-clamp] -> pass" in diff(old, new).regressions[0]


def test_numbers_moving_by_more_than_a_tolerance_unit_are_listed():
    old, new = _pair()
    new["records"][1]["errors"]["tol_units"] = old["records"][1]["errors"]["tol_units"] + 1.5
    d = diff(old, new)
    assert len(d.numbers) == 1 and d.regressions == []


def test_added_and_removed_checks_are_counted():
    old, new = _pair()
    new["records"].pop()
    d = diff(old, new)
    assert len(d.removed) == 1 and d.added == []


def test_cli_exit_status(tmp_path):
    old, new = _pair()
    new["records"][0].update(outcome="error", reason="raised")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(old))
    b.write_text(json.dumps(new))
    run = [sys.executable, "-m", "reports", "diff"]
    same = subprocess.run([*run, str(a), str(a)], cwd=ROOT, capture_output=True, text=True)
    worse = subprocess.run([*run, str(a), str(b)], cwd=ROOT, capture_output=True, text=True)
    missing = subprocess.run([*run, str(a), str(tmp_path / "nope.json")], cwd=ROOT, capture_output=True, text=True)
    assert same.returncode == 0 and worse.returncode == 1 and missing.returncode == 2
    assert worse.stdout.startswith("REGRESSION ") and "pass -> error" in worse.stdout
    assert missing.stderr.count("\n") == 1 and "no such results file" in missing.stderr


def test_vanished_checks_bindings_and_frameworks_gate_unless_accepted():
    from reports.diff import diff as typed_diff

    old, new = _pair()
    new["records"].pop()  # one check of a binding that still has others
    d = diff(old, new)
    assert len(d.regressions) == 1 and "1 checks of fake::fake.softmax_ce vanished" in d.regressions[0]
    new["records"] = []  # the whole framework is gone
    new["environment"]["skipped"] = {"fake": "not installed"}
    (line,) = diff(old, new).regressions
    assert line.startswith("framework fake vanished (2 checks): not installed")
    accepted = typed_diff(Results.from_json(old), Results.from_json(new), accept=frozenset({"removed"}))
    assert accepted.regressions == [] and accepted.accepted and lines(accepted)[0].startswith("accepted ")


def test_a_vanished_binding_is_named():
    old, new = _pair()
    other = copy.deepcopy(old["records"][0])
    other.update(binding="fake.other", id="fake-fake.other-x")
    old["records"].append(other)
    assert any(r.startswith("binding fake::fake.other vanished (1 checks)") for r in diff(old, new).regressions)


def test_an_incomplete_run_on_either_side_gates_and_an_unmarked_one_is_noted():
    old, new = _pair()
    new.update(complete=False, incomplete={"reason": "interrupted by SIGINT", "recorded": 2, "expected": 9})
    (line,) = diff(old, new).regressions
    assert "the new run is incomplete (interrupted by SIGINT)" in line
    (line,) = diff(new, old).regressions
    assert "the baseline run is incomplete" in line
    del new["complete"], new["incomplete"]  # a file written before completeness was recorded
    d = diff(old, new)
    assert d.regressions == [] and any(x.startswith("note ") for x in lines(d))


def test_cli_accept_options(tmp_path):
    old, new = _pair()
    new["records"].pop()
    new.update(complete=False, incomplete={"reason": "stopped early", "recorded": 1, "expected": 2})
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(old))
    b.write_text(json.dumps(new))
    run = [sys.executable, "-m", "reports", "diff", str(a), str(b)]
    gated = subprocess.run(run, cwd=ROOT, capture_output=True, text=True)
    half = subprocess.run([*run, "--accept-removed"], cwd=ROOT, capture_output=True, text=True)
    both = subprocess.run([*run, "--accept-removed", "--accept-incomplete"], cwd=ROOT, capture_output=True, text=True)
    assert (gated.returncode, half.returncode, both.returncode) == (1, 1, 0)
    assert gated.stdout.count("REGRESSION") == 2 and both.stdout.count("accepted ") == 2


def test_the_harness_own_speed_shows_in_the_diff_without_gating():
    old, new = _pair()
    old["harness"] = {
        "time_to_first_check_s": 3.0,
        "wall_s": 50.0,
        "peak_rss_bytes": 2**30,
        "frameworks": {"fake": {"checks": 100, "seconds": 1.0, "checks_per_s": 100.0}},
    }
    new["harness"] = {
        **old["harness"],
        "wall_s": 52.0,  # within 10%: not listed
        "frameworks": {"fake": {"checks": 100, "seconds": 2.0, "checks_per_s": 50.0}},
    }
    d = diff(old, new)
    assert d.harness == ["fake checks/s: 100 -> 50 (0.50x)"] and d.regressions == []
    assert "harness    fake checks/s: 100 -> 50 (0.50x)" in lines(d)


def test_a_change_of_exception_type_shows_in_the_diff():
    old, new = _pair()
    old["records"][0].update(raised={"type": "IndexError", "at": "torch/nn/functional.py:3555"})
    new["records"][0].update(raised={"type": "RuntimeError", "at": "torch/nn/functional.py:3560"})
    d = diff(old, new)
    assert d.raised == [
        {"id": old["records"][0]["id"], "old": "IndexError", "new": "RuntimeError", "at": "torch/nn/functional.py:3560"}
    ]
    assert any(line.startswith("exception") and "IndexError -> RuntimeError" in line for line in lines(d))

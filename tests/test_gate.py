"""The upgrade gate never passes because checking stopped: pass -> unsupported is a regression in
``python -m reports diff`` and ``--baseline``, and a ``-k`` slice accepts only checks it left out."""

import copy
import json
import subprocess
import sys

from reports.diff import diff, keyword_left_out
from xentcheck.records import Results

from .runs import ROOT
from .test_results import _doc


def test_pass_to_unsupported_is_a_regression(tmp_path):
    old = _doc()
    new = copy.deepcopy(old)
    rec = next(r for r in new["records"] if r["outcome"] == "pass")
    rec.update(outcome="unsupported", reason="float64 not among the declared dtypes")
    d = diff(Results.from_json(old), Results.from_json(new))
    assert len(d.regressions) == 1 and "no longer checked: float64 not among" in d.regressions[0]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(old))
    b.write_text(json.dumps(new))
    r = subprocess.run(
        [sys.executable, "-m", "reports", "diff", str(a), str(b)], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 1 and "REGRESSION" in r.stdout and "no longer checked" in r.stdout


def test_unsupported_to_pass_is_not_a_regression():
    old = _doc()
    new = copy.deepcopy(old)
    next(r for r in old["records"] if r["outcome"] == "pass").update(outcome="unsupported", reason="x")
    assert diff(Results.from_json(old), Results.from_json(new)).regressions == []


def test_the_keyword_judges_a_check_id_as_pytest_judges_its_test():
    left_out = keyword_left_out("float64 and not grad")
    assert not left_out("numpy-scipy.softmax-tutorial_logits-float64-eager-none-value")
    assert left_out("numpy-scipy.softmax-tutorial_logits-float32-eager-none-value")
    assert left_out("numpy-scipy.softmax-tutorial_logits-float64-eager-none-grad")
    assert not keyword_left_out("FLOAT64")("x-y-c-float64-eager-none-value")  # case-insensitive, as pytest


def _run(tmp_path, name, *args):
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:randomly",
        "suites/test_conformance.py",
        "--frameworks=",
        f"--results={tmp_path / name}",
        *args,
    ]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_keyword_slice_with_a_baseline_fails_when_a_binding_it_selects_vanished(tmp_path):
    two = ("--adapter=tests.fake_adapter:HONEST", "--adapter=tests.hostile_adapter:ODD_ENVIRONMENT")
    base = _run(tmp_path, "base.json", *two, "-k", "random_index and float64 and value")
    assert base.returncode == 0, base.stdout[-2000:]
    baseline = f"--baseline={tmp_path / 'base.json'}"
    gone = _run(
        tmp_path,
        "gone.json",
        "--adapter=tests.fake_adapter:HONEST",
        "-k",
        "random_index and float64 and value",
        baseline,
    )
    assert gone.returncode == 1 and "REGRESSION framework oddenv vanished" in gone.stdout, gone.stdout[-2000:]
    left = _run(
        tmp_path,
        "left.json",
        "--adapter=tests.fake_adapter:HONEST",
        "-k",
        "fake- and random_index and float64 and value",
        baseline,
    )
    assert left.returncode == 0, left.stdout[-2000:]  # the slice itself leaves oddenv's checks out
    doc = json.loads((tmp_path / "left.json").read_text())
    assert doc["environment"]["slice"] == "-k 'fake- and random_index and float64 and value'"

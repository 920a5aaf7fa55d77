"""``python -m reports show`` and :func:`reports.show.show`: every number behind one check, rebuilt."""

import subprocess
import sys

import numpy as np
import pytest

from reports.show import Coordinates, ShowError, Sources, parse_check_id, show

from .runs import ROOT

HONEST = Sources(adapters=("tests.fake_adapter:HONEST",))


def test_a_passing_check_is_rebuilt_with_its_inputs_and_three_expected_values():
    s = show("class_weights", "fake.softmax_ce", "fake", at=Coordinates(reduction="mean"), sources=HONEST)
    assert s.record.outcome == "pass" and s.inputs["class_weight"] is not None
    assert np.allclose(s.got, s.expected, rtol=1e-5)
    # the binding's mean divides by the weight sum; the plain mathematics by the element count
    assert not np.isclose(s.expected, s.expected_math)
    text = s.text()
    for part in (
        "inputs (rebuilt from the case",
        "under the binding's own convention (mean_by='weight_sum')",
        "under the plain mathematics",
        "what fake.softmax_ce returned",
    ):
        assert part in text


def test_a_failing_check_shows_its_worst_elements():
    s = show(
        "large_logits",
        "fake.softmax_ce",
        "fake",
        at=Coordinates(reduction="none"),
        sources=Sources(adapters=("tests.fake_adapter:UNSHIFTED",)),
    )
    assert s.record.outcome == "fail" and s.record.worst
    assert "worst elements against the mathematics" in s.text()


def test_the_cli_shows_a_check_by_its_id_and_names_a_bad_one_in_one_line(tmp_path):
    check_id = "fake-fake.softmax_ce-random_index-float64-eager-mean-grad"
    r = subprocess.run(
        [sys.executable, "-m", "reports", "show", check_id, "--adapter", HONEST.adapters[0]],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"check {check_id}\n") and "outcome: pass" in r.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "reports", "show", "nonsense"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "is not a check id" in bad.stderr


def test_unknown_names_are_one_line_errors():
    with pytest.raises(ShowError, match="has no binding 'nope'"):
        show("random_index", "nope", "fake", sources=HONEST)
    with pytest.raises(ShowError, match="no case 'nope'"):
        show("nope", "fake.softmax_ce", "fake", sources=HONEST)
    with pytest.raises(ShowError, match="is not a check id"):
        parse_check_id("a-b", ROOT / "no-such-results.json")

"""Hostile and careless input to the loaders and the writers (docs/faults.md): each is refused with one
line naming the problem and the fix, or handled so that nothing is lost and nothing runs that is data."""

import errno
import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from cases import CaseError, load_catalog
from reports.diff import diff
from xentcheck import safe_output
from xentcheck.expectations import ExpectationError, load_registry
from xentcheck.journal import Journal, JournalError, recover_lines
from xentcheck.records import Results
from xentcheck.results import ResultsError, load

from .fake_adapter import fake_environment
from .runs import ROOT
from .test_cases import BASE
from .test_checks import HONEST, _run
from .test_results import _doc


def _case_error(tmp_path, text: str, **kw) -> str:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(CaseError) as e:
        load_catalog([], external=[f], **kw) if kw else load_catalog([f])
    message = str(e.value)
    assert "\n" not in message and "bad.toml" in message
    return message


@pytest.mark.parametrize(
    "edit, message",
    [
        (("shape = [2, 3]", "shape = [2, 3.0]"), "expected an integer"),
        (("seed = 1", "seed = 1.0"), "seed = 1.0: expected an integer"),
        (("seed = 1", "seed = true"), "expected an integer"),
        (("seed = 1", "seed = 1\nmask = { rows = [1.0] }"), "expected"),
        (("seed = 1", "seed = 1\nmask = { rows = [5] }"), "mask.rows names row 5, but shape [2, 3] has 2 rows"),
        (("seed = 1", "seed = 1\nwhere = { rows = [2] }"), "where.rows names row 2"),
        (("seed = 1", 'seed = 1\npoison = { value = "nan", rows = [0], column = 3 }'), "poison.column 3 is outside"),
        (("seed = 1", 'seed = 1\npoison = { value = "nan", rows = [7] }'), "poison.rows names row 7"),
        (("seed = 1", "seed = 1\ninvalid = { value = 9, rows = [4] }"), "invalid.rows names row 4"),
        (
            ('logits = { dist = "normal" }', 'logits = { dist = "uniform", low = 2.0, high = 1.0 }'),
            "logits.low = 2.0 is above logits.high = 1.0",
        ),
        (("seed = 1", "seed = 1\nclass_weight = { low = 3.0, high = 1.0 }"), "class_weight.low = 3.0 is above"),
        (("shape = [2, 3]", "shape = [2, 0]"), "has no classes"),
        (("shape = [2, 3]", "shape = [1000000, 1000000]"), "more than 50,000,000"),
        (
            ('targets = { kind = "index" }', 'targets = { kind = "index", values = [0, 3] }'),
            "holds label 3, outside the 3 classes",
        ),
        (('targets = { kind = "index" }', 'targets = { kind = "index", values = [0, -1] }'), "holds label -1"),
        (("seed = 1", "seed = 1\nignore_fraction = nan"), "ignore_fraction is not a finite number"),
        (("seed = 1", "seed = 1\nsample_weight = inf"), "sample_weight is not a finite number"),
    ],
)
def test_a_case_the_code_cannot_build_is_one_line_at_load(tmp_path, edit, message):
    assert message in _case_error(tmp_path, BASE.replace(*edit))


def test_an_ignored_label_is_not_out_of_range(tmp_path):
    f = tmp_path / "ok.toml"
    f.write_text(
        BASE.replace('targets = { kind = "index" }', 'targets = { kind = "index", values = [0, -100] }').replace(
            "seed = 1", "seed = 1\nignore_index = -100"
        )
    )
    assert load_catalog([f])[0].name == "c"


def _values_case(tmp_path, ref: str) -> str:
    return BASE.replace('logits = { dist = "normal" }', f'logits = {{ values_file = "{ref}" }}')


@pytest.mark.parametrize("where", ["parent", "absolute", "symlink"])
def test_a_values_file_outside_its_folder_is_refused_unless_allowed(tmp_path, where):
    outside = tmp_path / "secret.npy"
    np.save(outside, np.zeros((2, 3)))
    folder = tmp_path / "cases"
    folder.mkdir()
    ref = {"parent": "../secret.npy", "absolute": str(outside), "symlink": "link.npy"}[where]
    if where == "symlink":
        (folder / "link.npy").symlink_to(outside)
    f = folder / "bad.toml"
    f.write_text(_values_case(tmp_path, ref))
    with pytest.raises(CaseError) as e:
        load_catalog([], external=[f])
    assert "outside the declaration's folder" in str(e.value) and "--values-outside" in str(e.value)
    assert load_catalog([], external=[f], confine=False)[0].name == "c"  # the option allows it


def test_an_object_array_in_an_npz_is_one_line_and_never_unpickled(tmp_path):
    np.savez(tmp_path / "v.npz", z=np.array([[1, "a", None]] * 2, dtype=object))
    message = _case_error(tmp_path, _values_case(tmp_path, "v.npz:z"))
    assert "cannot be read without pickle" in message


def test_a_fifo_as_a_values_file_or_declaration_is_refused_not_read(tmp_path):
    os.mkfifo(tmp_path / "v.npy")
    assert "not a regular file" in _case_error(tmp_path, _values_case(tmp_path, "v.npy"))
    os.mkfifo(tmp_path / "fifo.toml")
    with pytest.raises(ExpectationError, match="not a regular file"):
        load_registry([tmp_path / "fifo.toml"])


ENTRY = """
[[expectation]]
id = "x-entry"
framework = "numpy"
bindings = ["scipy.softmax"]
when = { target_kind = "index" }
expect = { raises = "ValueError", message = "MESSAGE" }
reason = "why"
source = "https://example.org/issue/1"
"""


def test_an_invalid_message_regex_is_the_registrys_error_at_load(tmp_path):
    f = tmp_path / "reg.toml"
    f.write_text(ENTRY.replace("MESSAGE", "bad (regex"))
    with pytest.raises(ExpectationError) as e:
        load_registry([f])
    assert "is not a regular expression" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_non_finite_number_in_the_registry_is_one_line_at_load(tmp_path, value):
    f = tmp_path / "reg.toml"
    f.write_text(ENTRY.replace('reason = "why"', f'reason = "why"\nrtol = {value}'))
    with pytest.raises(ExpectationError) as e:
        load_registry([f])
    assert "not a finite number" in str(e.value) and "\n" not in str(e.value)


def _journal_lines(tmp_path) -> tuple[Journal, list[str]]:
    j = Journal(tmp_path / "r.json.x.partial.jsonl")
    env = fake_environment()
    for check in ("value", "grad"):
        j.write(_run(HONEST, "random_index", check=check), lambda: {"environment": env, "expected": 2})
    j.close(remove=False)
    return j, j.path.read_text().splitlines()


@pytest.mark.parametrize(
    "bad, why",
    [
        ('{"kind": "check", "record": 3}', "not a record"),
        ("[1, 2]", "not a record"),
        ('{"kind": "virus", "record": {}}', "not a record"),
        ('{"kind": "check", "record": {"id": "x"}}', "not a record"),
        ("{oops", "not JSON"),
    ],
)
def test_recover_keeps_every_good_record_around_a_bad_line(tmp_path, bad, why):
    j, lines = _journal_lines(tmp_path)
    j.path.write_text("\n".join([lines[0], lines[1], bad, lines[2]]) + "\n")
    doc, skipped = recover_lines(j.path)
    assert len(doc.records) == 2 and len(skipped) == 1 and skipped[0].startswith(f"line 3: {why}")


def test_recover_keeps_the_first_of_two_records_with_one_id(tmp_path):
    j, lines = _journal_lines(tmp_path)
    j.path.write_text("\n".join([lines[0], lines[1], lines[1], lines[2]]) + "\n")
    doc, skipped = recover_lines(j.path)
    assert len(doc.records) == 2 and len(skipped) == 1 and skipped[0].startswith("line 3: a second record for ")


def test_recover_lists_what_it_skipped_on_the_command_line(tmp_path):
    j, lines = _journal_lines(tmp_path)
    j.path.write_text("\n".join([lines[0], "[]", lines[1]]) + "\n")
    r = subprocess.run(
        [sys.executable, "-m", "reports", "recover", str(j.path), "-o", str(tmp_path / "o.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "skipped line 2: not a record" in r.stderr
    assert len(json.loads((tmp_path / "o.json").read_text())["records"]) == 1


def test_a_journal_whose_header_is_not_one_is_one_line(tmp_path):
    j, lines = _journal_lines(tmp_path)
    j.path.write_text('{"journal": 1, "environment": []}\n' + lines[1])
    with pytest.raises(JournalError, match="not a xentcheck journal"):
        recover_lines(j.path)


def test_a_results_file_nested_too_deeply_is_one_line_and_not_a_regression(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ResultsError, match="nested too deeply"):
        load(deep)
    r = subprocess.run(
        [sys.executable, "-m", "reports", "diff", str(deep), str(deep)], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 2 and "nested too deeply" in r.stderr  # an input error, not the regression code 1


def test_a_fifo_as_a_results_file_is_refused_not_read(tmp_path):
    os.mkfifo(tmp_path / "r.json")
    with pytest.raises(ResultsError, match="not a regular file"):
        load(tmp_path / "r.json")


def test_output_goes_only_to_regular_files(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(safe_output.OutputError, match="not a regular file"):
        safe_output.write_atomic(tmp_path / "fifo", "x")
    with pytest.raises(safe_output.OutputError, match="a device or special file"):
        safe_output.target("/dev/null")
    with pytest.raises(safe_output.OutputError, match="a folder"):
        safe_output.target(tmp_path)


def test_a_symlinked_results_path_writes_its_target_and_keeps_the_link(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    (tmp_path / "link.json").symlink_to(real)
    safe_output.write_atomic(tmp_path / "link.json", "new")
    assert (tmp_path / "link.json").is_symlink() and real.read_text() == "new"


def test_a_planted_link_at_the_lock_or_journal_name_is_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "r.json.lock").symlink_to(victim)
    with pytest.raises(safe_output.OutputError):
        safe_output.open_lock(tmp_path / "r.json.lock")
    (tmp_path / "j.partial.jsonl").symlink_to(victim)
    with pytest.raises(FileExistsError):
        safe_output.open_new(tmp_path / "j.partial.jsonl")
    assert victim.read_text() == "precious"


def test_disk_full_while_writing_keeps_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    path.write_text("previous")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        safe_output.write_atomic(path, "new" * 1000)
    assert path.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_reports_refuse_to_write_a_device(tmp_path):
    res = tmp_path / "r.json"
    res.write_text(json.dumps(_doc()))
    r = subprocess.run(
        [sys.executable, "-m", "reports", "build", str(res), "-o", "/dev/null"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "not a regular file" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("old_outcome", ["fail", "deviation"])
def test_a_failing_or_deviating_check_that_stops_being_checked_is_a_regression(old_outcome):
    old = _doc()
    new = json.loads(json.dumps(old))
    old["records"][0].update(outcome=old_outcome, reason="r", expectation="e" if old_outcome == "deviation" else None)
    if old_outcome == "fail":
        old["records"][0].pop("expectation")
    new["records"][0].update(outcome="unsupported", reason="dtype dropped")
    d = diff(Results.from_json(old), Results.from_json(new))
    assert len(d.regressions) == 1


def test_a_report_escapes_what_a_binding_says():
    from reports.html import render

    doc = _doc()
    doc["records"][0].update(outcome="fail", reason="<script>alert(1)</script>")
    html = render([Results.from_json(doc)])
    assert "<script>alert(1)</script>" not in html


def test_paths_passed_to_run_resolve_against_the_callers_folder(monkeypatch, tmp_path):
    from suites.plugin.options import user_path

    monkeypatch.setenv("XENTCHECK_CALLER_DIR", str(tmp_path))
    assert user_path("x/cases.toml") == tmp_path / "x" / "cases.toml"
    assert user_path("/abs/r.json") == type(tmp_path)("/abs/r.json")
    monkeypatch.delenv("XENTCHECK_CALLER_DIR")
    assert user_path("r.json").is_absolute()


def test_an_external_cases_records_carry_no_snippet_of_its_arrays(tmp_path):
    from suites.plugin.writer import Writer

    w = Writer(tmp_path / "r.json", tmp_path / "r.html", redact_cases=frozenset({"private_case"}))
    mine = replace(_run(HONEST, "random_index"), case="private_case", repro="x = np.array([[0.1, 0.2]])")
    builtin = replace(_run(HONEST, "random_index", check="grad"), repro="x = np.array([[0.3]])")
    w.add(mine)
    w.add(builtin)
    w.journal.close(remove=True)
    kept = {r.case: r for r in w.records}
    assert kept["private_case"].repro is None and kept["random_index"].repro is not None

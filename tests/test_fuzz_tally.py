"""The fuzzer's records (xentcheck/fuzz_tally.py, FuzzRecord/FuzzSection in xentcheck/records.py): a
process counts draws and findings by key, keeps the smallest draw of each finding, writes its file; the
report merges several processes' and machines' files into one section."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from xentcheck.fuzz_tally import FORMAT, FuzzTally, TallyError, is_tally, read_tally
from xentcheck.records import FuzzRecord, FuzzSection, Results
from xentcheck.results import validate

from .test_report import render
from .test_results import _doc

ROOT = Path(__file__).resolve().parent.parent
KEY = ("softmax", "grad", "float32", "index", ("has_nan",))


def _tally(path=None, machine="a") -> tuple[FuzzTally, FuzzRecord]:
    t = FuzzTally(path, machine=machine, versions={"torch": "2.13.0"})
    return t, t.binding("torch", "softmax", "softmax_ce")


def test_draws_seconds_and_wall_seconds_add_up():
    t, r = _tally()
    t.draw(r, 10.0, 10.5)  # first draw: wall = its own half second
    t.draw(r, 11.0, 11.25)  # consecutive with the first: wall from 10.5 (the engine's 0.5 s counts)
    other = t.binding("torch", "nll", "nll")
    t.draw(other, 12.0, 12.5)
    t.draw(r, 13.0, 13.5)  # the previous draw was another binding's: only its own time
    assert r.draws == 3 and r.seconds == pytest.approx(1.25) and r.wall_seconds == pytest.approx(0.5 + 0.75 + 0.5)
    assert r.draws_per_s == pytest.approx(round(3 / 1.25, 2)) and r.draws_per_wall_s == pytest.approx(
        round(3 / 1.75, 2)
    )


def test_one_finding_per_key_with_its_smallest_draw():
    t, r = _tally()
    assert t.find(r, KEY, "grad", "fail", "big", "x=[1, 2, 3, 4]", 4) is True
    assert t.find(r, list(KEY), "grad", "fail", "small", "x=[1]", 1) is False  # the JSON form is the same key
    assert t.find(r, KEY[:-1] + (("has_inf",),), "grad", "error", "other", "x=[2]", 1) is True
    assert [(f.count, f.repro, f.reason) for f in r.findings] == [(2, "x=[1]", "small"), (1, "x=[2]", "other")]


def test_outcomes_and_the_registry_entries_that_fired_are_counted():
    _, r = _tally()
    r.add("pass", None)
    r.add("deviation", "entry-a+entry-b")
    r.add("deviation", "entry-a")
    assert r.outcomes == {"pass": 1, "deviation": 2} and r.fired == {"entry-a": 2, "entry-b": 1}


def test_the_file_is_written_and_read_back(tmp_path):
    path = tmp_path / "fuzz" / "a-1.json"
    t, r = _tally(path)
    t.draw(r, 0.0, 0.1)
    t.find(r, KEY, "grad", "fail", "why", "x=[0]", 1)
    t.flush()  # the first flush writes; later ones wait FLUSH_EVERY_S unless forced
    assert json.loads(path.read_text())["format"] == FORMAT and is_tally(path) and is_tally(path.parent)
    section = read_tally(path)
    assert [(x.binding, x.draws, len(x.findings)) for x in section.records] == [("softmax", 1, 1)]
    assert section.versions == {"torch": "2.13.0"} and section.sources[0]["machine"] == "a"


def test_several_machines_merge_into_one_section(tmp_path):
    for machine, draws in (("a", 3), ("b", 5)):
        t, r = _tally(tmp_path / f"{machine}.json", machine)
        for i in range(draws):
            t.draw(r, i, i + 0.5)
        t.find(r, KEY, "grad", "fail", machine, f"x={[0] * draws}", draws)
        t.flush(force=True)
    merged = read_tally(tmp_path)  # a folder: every file in it
    (r,) = merged.records
    assert r.draws == 8 and r.seconds == pytest.approx(4.0) and len(r.findings) == 1
    assert r.findings[0].count == 2 and r.findings[0].reason == "a"  # the smaller draw (3 elements) is kept
    assert sorted(s["machine"] for s in merged.sources) == ["a", "b"]


def test_one_process_attached_per_item_is_one_source():
    t, r = _tally()
    t.draw(r, 0.0, 1.0)
    merged = FuzzSection.merged([t.section(), t.section()])
    assert len(merged.sources) == 1 and merged.records[0].draws == 2


def test_a_bad_tally_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": FORMAT, "records": [{"framework": "torch"}], "sources": [], "versions": {}}))
    with pytest.raises(TallyError, match=r"bad.json: invalid fuzz tally at records/0"):
        read_tally(bad)
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(TallyError, match="not a fuzz tally"):
        read_tally(tmp_path / "other.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TallyError, match="no fuzz tally files"):
        read_tally(tmp_path / "empty")


def test_the_results_document_carries_the_section_and_the_report_shows_it():
    t, r = _tally()
    t.draw(r, 0.0, 0.25)
    t.find(r, KEY, "grad", "fail", "got nan <b>", "x=np.array([nan])", 1)
    doc = _doc()
    doc["fuzz"] = t.section().to_json()
    validate(doc)
    back = Results.from_json(doc)
    assert back.fuzz.records[0].findings[0].repro == "x=np.array([nan])" and back.to_json()["fuzz"] == doc["fuzz"]
    html = render([doc])
    assert 'id="fuzz"' in html and "x=np.array([nan])" in html and "got nan &lt;b&gt;" in html


def test_reports_build_merges_campaign_files_into_the_report(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_doc()))
    for machine in ("a", "b"):
        t, r = _tally(tmp_path / "fuzz" / f"{machine}.json", machine)
        t.draw(r, 0.0, 0.5)
        t.flush(force=True)
    out = tmp_path / "r.html"
    cmd = [sys.executable, "-m", "reports", "build", str(results), str(tmp_path / "fuzz"), "-o", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    from reports.html import expand

    assert 'id="fuzz"' in expand(out.read_text())  # the page's sections are compressed
    alone = subprocess.run(cmd[:4] + [str(tmp_path / "fuzz"), "-o", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert alone.returncode == 2 and alone.stderr.count("\n") == 1 and "no results file" in alone.stderr

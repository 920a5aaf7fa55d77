"""The HTML report: content follows the results, strings are escaped, the CLI fails cleanly."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from reports.html import measured_capabilities, summary_matrix
from xentcheck.records import CheckRecord, Results

from .test_results import _doc

ROOT = Path(__file__).resolve().parent.parent


def render(docs: list[dict]) -> str:
    """The page as the browser shows it (every compressed section unpacked)."""
    from reports.html import expand
    from reports.html import render as typed_render

    return expand(typed_render([Results.from_json(d) for d in docs]))


def records(recs: list[dict]) -> list[CheckRecord]:
    return [CheckRecord.from_json(r) for r in recs]


def test_report_contains_environment_and_matrix():
    doc = _doc()
    html = render([doc])
    assert "fake.softmax_ce" in html and "ordinary" in html and "2 pass" in html
    cats, rows = summary_matrix(records(doc["records"]))
    assert cats == ["ordinary"] and rows[0]["cells"]["ordinary"]["counts"] == {"pass": 2}


def test_failures_come_first_and_strings_are_escaped():
    doc = _doc()
    bad = copy.deepcopy(doc["records"][0])
    bad.update(binding="<script>alert(1)</script>", outcome="fail", reason="<b>boom</b>", id="x<y")
    doc["records"].append(bad)
    html = render([doc])
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert "<b>boom" not in html
    _, rows = summary_matrix(records(doc["records"]))
    assert rows[0]["worst"] == "fail"


def test_report_is_self_contained():
    html = render([_doc()])
    assert "<script src" not in html and "<link" not in html and "http://" not in html


def test_report_cli_rejects_a_bad_results_file_with_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": 0}))
    r = subprocess.run(
        [sys.executable, "-m", "reports", "build", str(bad), "-o", str(tmp_path / "o.html")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "schema_version 0 is not supported" in r.stderr


def test_coverage_marks_every_cell_run_ruled_out_or_a_gap():
    from reports.coverage import coverage_view

    doc = _doc()
    caps = {
        "op": "softmax_ce",
        "targets": ["index"],
        "reductions": ["mean"],
        "options": [],
        "dtypes": ["float32", "float64"],
        "grad": True,
        "modes": ["eager", "compiled"],
        "devices": ["cpu"],
    }
    doc["environment"]["bindings"] = {
        f"fake::{r['binding']}": {
            "framework": "fake",
            "binding": r["binding"],
            "api": r["api"],
            "doc": "",
            "capabilities": caps,
        }
        for r in doc["records"]
    }
    view = coverage_view([Results.from_json(doc)])
    eager, compiled = view["tables"]
    assert eager["mode"] == "eager" and eager["run"] and not compiled["run"]
    marks = {m["dtype"]: m for m in eager["rows"][0]["cells"]["ordinary"]}
    assert marks["32"]["status"] == "pass"
    assert marks["64"]["status"] == "no case"  # the case ran in float32 only: a listed gap
    assert all(m["status"] == "not run" for m in compiled["rows"][0]["cells"]["ordinary"])
    assert {(g["mode"], g["dtype"]) for g in view["gaps"]} == {
        ("eager", "float64"),
        ("compiled", "float32"),
        ("compiled", "float64"),
    }
    assert "Coverage" in render([doc])


def test_the_capability_matrix_is_measured_not_claimed():
    doc = _doc()
    caps = {
        "op": "softmax_ce",
        "targets": ["index", "soft"],
        "reductions": ["none", "mean"],
        "options": [],
        "dtypes": ["float32", "float64"],
        "grad": True,
        "modes": ["eager"],
        "devices": ["cpu"],
    }
    r0 = doc["records"][0]
    declared = {"fake::b": {"framework": "fake", "binding": r0["binding"], "api": "a", "doc": "", "capabilities": caps}}
    bad = copy.deepcopy(r0)
    bad.update(outcome="fail", dtype="float64", id="other", check="value")
    (row,) = measured_capabilities(records(doc["records"] + [bad]), declared)
    f = dict(row["facets"]["dtypes"])
    assert f == {"float32": "ok", "float64": "bad"}
    assert dict(row["facets"]["targets"]) == {"index": "bad", "soft": "untested"}  # worst seen; declared, never ran
    assert row["facets"]["grad"] == [("grad", "ok")]


def test_a_cpu_run_and_a_gpu_run_merge_without_overwriting_each_other():
    """The report logic of a merged CPU+GPU report (fixture records: no GPU result is claimed)."""
    from reports.history import run_labels
    from reports.speed import speed_view
    from xentcheck.records import BenchRecord, BenchSection

    def run(device: str, cache: int, median: float) -> Results:
        doc = Results.from_json(_doc())
        doc.environment = {**doc.environment, "device": device}
        rec = BenchRecord(
            id=f"torch-F.cross_entropy-4096x32000-float32-eager-forward-{device}",
            framework="torch",
            binding="F.cross_entropy",
            api="a",
            op="softmax_ce",
            mode="eager",
            dtype="float32",
            pass_="forward",
            batch=4096,
            classes=32000,
            device=device,
            stats={"median_s": median, "iqr_s": 0.0, "rounds": 5},
            floor_multiple=2.0,
            gbps=1.0,
            overhead={"ratio": 1.01, "adapter_median_s": median, "bare_median_s": median},
        )
        doc.benchmarks = BenchSection(
            threads={},
            sizes=[[4096, 32000]],
            modes=["eager"],
            passes=["forward"],
            dtypes=["float32"],
            budget_s=0.5,
            records=[rec],
            floor={"device": device, "last_level_cache_bytes": cache},
        )
        return doc

    cpu, gpu = run("cpu", 32 * 2**20, 0.5), run("cuda", 1 << 40, 0.001)
    view = speed_view([cpu, gpu])
    assert [(r["device"], r["cells"]["4096x32000"]["median_s"]) for r in view["rows"]] == [
        ("cpu", 0.5),
        ("cuda", 0.001),
    ]
    # each device's own cache decides what is memory-bound: 500 MB of logits fit the (fixture) device cache
    assert [(o["device"], o["memory_bound"]) for o in view["overhead"]] == [("cpu", True), ("cuda", False)]
    assert run_labels([cpu, gpu])[1].endswith("on cuda")


def test_only_http_links_become_links(tmp_path):
    from reports.html import safe_url

    doc = _doc()
    doc["records"][0].update(outcome="deviation", expectation="e")
    doc["expectations"]["entries"] = [
        {
            "id": "e",
            "framework": "fake",
            "bindings": ["b"],
            "expect": {},
            "reason": "r",
            "source": "javascript:alert(1)",
            "checks": ["value"],
        }
    ]
    html = render([doc])
    assert 'href="javascript' not in html and "javascript:alert(1)" in html  # shown as text
    assert safe_url("https://github.com/x/y/issues/1") and not safe_url("data:text/html,x")
    assert not safe_url('https://x" onmouseover="alert(1)')


def test_a_results_file_with_nan_tokens_is_rejected_in_one_line(tmp_path):
    from xentcheck.results import ResultsError, load

    bad = tmp_path / "r.json"
    doc = _doc()
    doc["records"][0]["errors"]["max_abs"] = float("nan")
    bad.write_text(json.dumps(doc))  # Python's json writes the NaN token; strict JSON has none
    with pytest.raises(ResultsError, match="the token NaN is not JSON") as e:
        load(bad)
    assert "\n" not in str(e.value)


def test_an_incomplete_run_is_marked_in_the_header():
    doc = _doc()
    doc.update(complete=False, incomplete={"reason": "interrupted by SIGTERM", "recorded": 2, "expected": 40})
    assert "INCOMPLETE run: interrupted by SIGTERM; 2 records of 40 collected" in render([doc])


def test_the_report_opens_with_findings_most_severe_first():
    from reports.findings import findings

    doc = _doc()
    by_check = {r["check"]: r for r in doc["records"]}
    nan_dev, grad_fail = by_check["value"], by_check["grad"]
    nan_dev.update(
        outcome="deviation",
        expectation="e1",
        reason="documented (as documented: {}); vs mathematics: 1 of 4 elements differ; "
        "at [1]: got nan, expected 0.5 (bound 1e-07)",
        repro="import numpy as np\nloss = 0",
    )
    grad_fail.update(outcome="fail", reason="1 of 4 elements differ; at [0, 2]: got 2.0, expected 1.0 (bound 1e-07)")
    doc["expectations"]["entries"] = [
        {
            "id": "e1",
            "framework": "fake",
            "bindings": [nan_dev["binding"]],
            "expect": {"inf_logit_nan": "row"},
            "reason": "inf - inf is NaN",
            "source": "https://example.org/docs",
            "tracker": "fake/fake#12 (open)",
        }
    ]
    cards = findings([Results.from_json(doc)])
    assert [(c["severity_text"], c["title"]) for c in cards] == [
        ("NaN or inf where the answer is finite", "e1"),
        ("a wrong gradient", f"{grad_fail['binding']} (fake): grad checks fail"),
    ]
    assert cards[0]["example"]["expected"] == "0.5" and cards[0]["example"]["got"] == "nan"
    assert cards[0]["sources"] == ["https://example.org/docs"] and cards[0]["repro"].startswith("import numpy")
    assert cards[0]["versions"] == ["fake 0.0"]
    html = render([doc])
    assert html.index('id="findings"') < html.index('id="summary"')  # before any table
    assert "the mathematics says <b>0.5</b>; the binding returned <b>nan</b>" in html
    assert cards[0]["trackers"] == ["e1: fake/fake#12 (open)"] and "Upstream: e1: fake/fake#12 (open)" in html


def _combined_doc() -> dict:
    """Two entries: e1 alone on the value check, e1 and e2 together on the gradient check."""
    doc = _doc()
    by_check = {r["check"]: r for r in doc["records"]}
    by_check["value"].update(
        outcome="deviation", expectation="e1", reason="documented; at [1]: got nan, expected 0.5 (bound 1e-07)"
    )
    by_check["grad"].update(
        outcome="deviation", expectation="e1+e2", reason="documented; at [0, 1]: got 0.25, expected 0.5 (bound 1e-07)"
    )
    doc["expectations"]["entries"] = [
        {
            "id": f"e{i}",
            "framework": "fake",
            "bindings": ["fake.softmax_ce"],
            "expect": expect,
            "reason": reason,
            "source": f"https://example.org/e{i}",
        }
        for i, expect, reason in (
            (1, {"inf_logit_nan": "row"}, "reason one: inf - inf"),
            (2, {"prob_clip": 1e-7}, "reason two: clipping"),
        )
    ]
    doc["expectations"]["unused"] = ["expectation 'e3' covered none of the 2 checks this run selected"]
    return doc


def test_one_card_per_entry_each_leading_with_its_own_reason():
    from reports.findings import findings

    cards = {c["title"]: c for c in findings([Results.from_json(_combined_doc())])}
    assert set(cards) == {"e1", "e2"}  # no card for the combination e1+e2
    assert cards["e1"]["count"] == 2 and cards["e2"]["count"] == 1
    assert cards["e1"]["reason"] == "reason one: inf - inf" and cards["e2"]["reason"] == "reason two: clipping"
    assert cards["e1"]["kind_text"] == "NaN or inf where the answer is finite"  # its own check (alone) shows NaN
    assert cards["e2"]["kind_text"] == "a documented convention that differs"
    assert cards["e2"]["together"] == ["e1"] and cards["e2"]["sources"] == ["https://example.org/e2"]


def test_the_first_screen_is_the_verdict_then_the_matrix_then_the_cards_and_housekeeping_comes_last():
    from reports.findings import findings, overview

    doc = _combined_doc()
    o = overview(findings([Results.from_json(doc)]))
    assert [r["family"] for r in o["rows"]] == ["fake: fake"]
    nonfinite, convention = o["rows"][0]["cells"][0], o["rows"][0]["cells"][3]
    assert nonfinite["cards"] == ["card-e1"] and convention["cards"] == ["card-e2"] and o["rows"][0]["cells"][1] is None
    html = render([doc])
    at = [
        html.index(s)
        for s in (
            'id="verdict"',
            'id="overview"',
            'id="findings"',
            'id="card-e1"',
            'id="summary"',
            'id="audit"',
            "covered none of the 2 checks",
        )
    ]
    assert at == sorted(at)
    assert "PASS: no check fails." in html and 'href="#kind-0" data-family="fake: fake"' in html


def test_the_page_stores_its_sections_compressed_and_loses_nothing():
    from reports.html import expand
    from reports.html import render as typed_render

    doc = _combined_doc()
    page = typed_render([Results.from_json(doc)])
    assert 'class="lazy"' in page and 'id="summary"' not in page  # below the first screen: compressed
    full = expand(page)
    assert 'class="lazy"' not in full and 'id="summary"' in full and 'id="capabilities"' in full


def test_the_speed_charts_do_not_depend_on_the_order_of_the_chart_groups(monkeypatch):
    """The speed charts are found by their id, not by being the last chart group (a new group after them
    must not drop them)."""
    import reports.html as html_mod
    from reports.html import expand
    from reports.html import render as typed_render

    speed = [
        {
            "id": "speed-1",
            "tab": "float32",
            "title": "t",
            "x_label": "x",
            "y_label": "y",
            "x": [1],
            "series": [],
            "bound": None,
        }
    ]
    monkeypatch.setattr(html_mod, "speed_charts", lambda view: speed)
    monkeypatch.setattr(
        html_mod,
        "speed_view",
        lambda docs: {
            "runs": [],
            "counts": {},
            "stops": {},
            "overhead": [],
            "sizes": [],
            "rows": [],
            "once": [],
            "unsupported": [],
            "llc": 0,
            "limit": 1.05,
        },
    )
    new_group = {"id": "zzz-a-new-group", "charts": []}
    monkeypatch.setattr(
        html_mod, "chart_groups", lambda stability, timing: [{"id": "speed", "charts": timing}, new_group]
    )
    page = expand(typed_render([Results.from_json(_doc())]))
    assert '<div class="tabs" data-group="speed"><button type="button" data-chart="speed-1">' in page


def test_a_clean_run_says_it_found_nothing():
    assert "Nothing found: every check passed." in render([_doc()])


def test_the_error_input_table_names_what_each_binding_raises():
    import copy

    from reports.errors import error_table
    from xentcheck.records import Results

    from .test_results import _doc

    doc = _doc()
    a, b = copy.deepcopy(doc["records"][0]), copy.deepcopy(doc["records"][0])
    a.update(
        id="a",
        category="invalid targets",
        case="label_out_of_range",
        outcome="pass",
        reason="rejects it",
        raised={"type": "IndexError", "at": "torch/nn/functional.py:3555"},
    )
    b.update(id="b", category="invalid targets", case="label_negative", outcome="fail", reason="silent garbage")
    doc["records"] = [a, b]
    t = error_table([Results.from_json(doc)])
    assert t["cases"] == ["label_out_of_range", "label_negative"]
    cells = t["rows"][0]["cells"]
    assert cells["label_out_of_range"]["text"] == "IndexError" and cells["label_negative"]["text"] == "returns"
    assert cells["label_negative"]["outcome"] == "fail"

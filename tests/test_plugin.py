"""The pytest plugin end to end, in child processes (pytester): selection, bad input, results, report,
external adapters. Only the NumPy/SciPy adapter (core dependencies) and the fake adapter run here: no
framework needed.
"""

import json
import subprocess
import sys

import pytest

from reports.html import expand
from xentcheck.protocol import WorkerGroup

from .runs import ROOT


def _err(r: pytest.RunResult) -> list[str]:
    return [line for line in r.errlines if line.strip()]


def _out(r: pytest.RunResult) -> str:
    return r.stdout.str()


def test_unknown_framework_fails_at_once_with_one_line(run_suite):
    r = run_suite("suites", "--frameworks=nope")
    assert r.ret == 4
    err = _err(r)
    assert err == [
        "ERROR: --frameworks: unknown framework 'nope'; known: numpy, torch, tensorflow, jax, keras[jax], "
        "keras[torch], keras[numpy]"
    ]


def test_numpy_only_run_writes_results_and_report(run_suite, tmp_path):
    res, rep = tmp_path / "r.json", tmp_path / "r.html"
    r = run_suite("suites", "--frameworks=numpy", f"--results={res}", f"--report={rep}")
    assert r.ret == 0, _out(r)[-3000:]
    doc = json.loads(res.read_text())
    assert set(doc["environment"]["frameworks"]) == {"numpy"}
    assert {rec["framework"] for rec in doc["records"]} == {"numpy"}
    assert doc["summary"].get("fail", 0) == 0 and doc["summary"]["pass"] > 0
    assert f"results written to {res}" in _out(r) and f"report written to {rep}" in _out(r)
    assert "log_softmax" in expand(rep.read_text())
    assert not list(tmp_path.glob("*.partial.jsonl"))  # the crash journal is removed after a clean finish
    # the report command rebuilds the page from the results file alone
    out = tmp_path / "rebuilt.html"
    b = subprocess.run(
        [sys.executable, "-m", "reports", "build", str(res), "-o", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert b.returncode == 0 and expand(out.read_text()).count("<tr>") == expand(rep.read_text()).count("<tr>")


def test_external_adapter_is_tested_like_a_builtin(run_suite, tmp_path):
    r = run_suite(
        "suites",
        "--frameworks=",
        "--adapter=tests.fake_adapter:HONEST",
        "-k",
        "random_index",
        f"--results={tmp_path / 'r.json'}",
        f"--report={tmp_path / 'r.html'}",
        "-rA",
    )
    assert r.ret == 0, _out(r)[-3000:]
    assert "test_conformance[fake-fake.softmax_ce-random_index-float32-eager]" in _out(r)  # one test: its checks
    doc = json.loads((tmp_path / "r.json").read_text())
    assert {rec["framework"] for rec in doc["records"]} == {"fake"}
    assert "fake-fake.softmax_ce-random_index-float32-eager-mean-grad" in {rec["id"] for rec in doc["records"]}


def test_k_selects_checks_by_their_own_ids(run_suite, tmp_path):
    # a test runs a bundle (every reduction and kind of a binding on a case in a dtype and mode); -k judges
    # each check by its id, as if it were a test of its own, so a bundle runs only the checks it selects
    r = run_suite(
        "suites/test_conformance.py",
        "--frameworks=",
        "--adapter=tests.fake_adapter:HONEST",
        "-k",
        "random_index and float64 and (grad or not mean)",
        f"--results={tmp_path / 'r.json'}",
        f"--report={tmp_path / 'r.html'}",
    )
    assert r.ret == 0, _out(r)[-3000:]
    ran = {rec["id"] for rec in json.loads((tmp_path / "r.json").read_text())["records"]}
    base = "fake-fake.softmax_ce-random_index-float64-eager"
    assert {f"{base}-mean-grad", f"{base}-none-value", f"{base}-none-grad", f"{base}-sum-value"} <= ran
    assert f"{base}-mean-value" not in ran and not any("float32" in i or "random_index" not in i for i in ran)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nomodule_xyz:A", "module not found"),
        ("tests.fake_adapter:NOPE", "has no attribute 'NOPE'"),
        ("tests.fake_adapter", "expected MODULE:ATTR"),
        ("tests.fake_adapter:raising_factory", "the factory raising_factory() raised RuntimeError: the kernel library"),
    ],
)
def test_bad_adapter_is_one_line(run_suite, spec, message):
    r = run_suite("suites", "--frameworks=numpy", f"--adapter={spec}")
    assert r.ret != 0
    assert message in r.stderr.str() and len(_err(r)) == 1


def test_malformed_expectations_file_is_one_line(run_suite, tmp_path):
    bad = tmp_path / "e.toml"
    bad.write_text("[[expectation]]\nid = 'x'\n")
    r = run_suite("suites", "--frameworks=numpy", f"--expectations={bad}")
    assert r.ret == 4 and "missing required key" in r.stderr.str()


_ENTRY = (
    "[[expectation]]\nid = 'x'\nframework = '{fw}'\nbindings = ['{b}']\nexpect = {{ raises = 'ValueError' }}\n"
    "reason = 'r'\nsource = 'https://example.org/x'\n"
)


@pytest.mark.parametrize(
    "fw, binding, said, workers",
    [
        ("nunpy", "log_softmax", "names framework 'nunpy', which no adapter declares", "0"),
        ("numpy", "log_softmx", "names binding 'log_softmx', which numpy does not declare", "0"),
        ("numpy", "log_softmx", "names binding 'log_softmx', which numpy does not declare", "2"),
        # a framework that is not installed (or not selected) is fine: its bindings are not judged
        ("torch", "F.no_such_binding", None, "0"),
    ],
)
def test_a_registry_name_no_adapter_declares_is_one_line_at_start_up(run_suite, tmp_path, fw, binding, said, workers):
    f = tmp_path / "e.toml"
    f.write_text(_ENTRY.format(fw=fw, b=binding))
    r = run_suite(
        "suites/test_conformance.py",
        "--frameworks=numpy",
        f"--expectations={f}",
        "-n",
        workers,
        "-k",
        "random_index and float32 and mean",
        f"--results={tmp_path / 'r.json'}",
    )
    if said is None:  # (without the default registry some numpy checks fail: what matters is that it ran)
        assert r.ret in (0, 1) and "ERROR: expectation" not in _out(r) + r.stderr.str(), _out(r)
        return
    assert r.ret == 4, _out(r)
    lines = [line for line in (r.errlines + r.outlines) if said in line]
    assert len(lines) == 1 and lines[0].startswith("ERROR: expectation 'x'"), _out(r)
    assert not (tmp_path / "r.json").exists()


def test_unwritable_report_path_is_reported_and_fails(run_suite, tmp_path):
    (tmp_path / "dir.html").mkdir()
    r = run_suite("suites", "--frameworks=numpy", f"--report={tmp_path / 'dir.html'}")
    assert r.ret == 4 and "is a folder" in r.stderr.str() and len(_err(r)) == 1
    r = run_suite("suites", "--frameworks=numpy", "--results=/proc/no/r.json")
    assert r.ret == 4 and "--results=/proc/no/r.json: cannot create its folder" in r.stderr.str()


def test_a_crash_loses_no_other_result_under_xdist(run_suite, tmp_path):
    res = tmp_path / "r.json"
    r = run_suite(
        "suites",
        "-n",
        "1",
        "--frameworks=",
        "--adapter=tests.fake_adapter:HONEST",
        "--adapter=tests.fake_adapter:CRASHING",
        "-k",
        "float64 and none and value and (random_index or tutorial_logits)",
        f"--results={res}",
        f"--report={tmp_path / 'r.html'}",
    )
    assert r.ret == 1, _out(r)[-3000:]
    doc = json.loads(res.read_text())
    by_id = {rec["id"]: rec for rec in doc["records"]}
    crashed = by_id["crashy-fake.softmax_ce-tutorial_logits-float64-eager-none-value"]
    assert crashed["outcome"] == "error" and crashed["reason"].startswith("did not complete")
    assert by_id["crashy-fake.softmax_ce-random_index-float64-eager-none-value"]["outcome"] == "pass"
    assert by_id["fake-fake.softmax_ce-tutorial_logits-float64-eager-none-value"]["outcome"] == "pass"
    assert set(doc["environment"]["frameworks"]) == {"fake", "crashy"}


def test_a_hang_is_cut_by_the_timeout_and_the_run_goes_on(run_suite, tmp_path):
    res = tmp_path / "r.json"
    r = run_suite(
        "suites",
        "--timeout=5",
        "--frameworks=",
        "--adapter=tests.fake_adapter:HANGING",
        "-k",
        "float64 and none and value and (random_index or tutorial_logits or soft_dirichlet)",
        f"--results={res}",
        f"--report={tmp_path / 'r.html'}",
    )
    assert r.ret == 1, _out(r)[-3000:]
    by_id = {rec["id"]: rec for rec in json.loads(res.read_text())["records"]}
    hung = by_id["hangs-fake.softmax_ce-tutorial_logits-float64-eager-none-value"]
    assert hung["outcome"] == "error" and "Timeout" in hung["reason"]
    assert by_id["hangs-fake.softmax_ce-soft_dirichlet-float64-eager-none-value"]["outcome"] == "pass"


def test_baseline_reports_changes_and_fails_on_a_regression(run_suite, tmp_path):
    base = tmp_path / "base.json"
    common = (
        "suites",
        "--frameworks=",
        "--adapter=tests.fake_adapter:HONEST",
        "-k",
        "random",
        f"--report={tmp_path / 'r.html'}",
    )
    assert run_suite(*common, f"--results={base}").ret == 0
    same = run_suite(*common, f"--results={tmp_path / 'same.json'}", f"--baseline={base}")
    assert same.ret == 0 and "xentcheck: baseline: 0 outcome changes (0 regressions)" in _out(same)
    doc = json.loads(base.read_text())  # pretend a documented deviation used to fire on one check
    rec = next(r for r in doc["records"] if r["outcome"] == "pass")
    rec.update(outcome="deviation", expectation="some-entry")
    base.write_text(json.dumps(doc))
    changed = run_suite(*common, f"--results={tmp_path / 'new.json'}", f"--baseline={base}")
    assert changed.ret == 1
    assert f"xentcheck: baseline: REGRESSION {rec['id']}: deviation [some-entry] -> pass" in _out(changed)


def test_unreadable_baseline_fails_at_once_with_one_line(run_suite, tmp_path):
    r = run_suite("suites", "--frameworks=", f"--baseline={tmp_path / 'nope.json'}")
    assert r.ret == 4
    err = _err(r)
    assert len(err) == 1 and "--baseline:" in err[0] and "no such results file" in err[0]


def test_a_device_no_framework_has_is_refused_at_start_up(run_suite, tmp_path):
    res = tmp_path / "r.json"
    r = run_suite(
        "suites", "--device=cuda", "--frameworks=numpy", "--adapter=tests.fake_adapter:HONEST", f"--results={res}"
    )
    assert r.ret == 4 and len(_err(r)) == 1
    assert "--device=cuda: no installed framework can run there" in _err(r)[0]
    assert "numpy: no cuda device here" in _err(r)[0] and "fake: no cuda device here" in _err(r)[0]
    assert not res.exists() and not list(tmp_path.glob("*.partial.jsonl"))  # no record for a device that did not run


def test_the_gpu_check_says_in_one_line_that_no_gpu_was_found(tmp_path):
    import os

    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}  # no GPU, wherever this runs
    r = subprocess.run(
        ["bash", "scripts/gpu-check.sh", str(tmp_path / "gpu")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "gpu-check: no GPU found: neither PyTorch, JAX nor TensorFlow sees a CUDA device; nothing was run"
    ]


@pytest.mark.parametrize(
    "adapter, reason",
    [("SIGNALLED", "interrupted by SIGTERM"), ("INTERRUPTING", "KeyboardInterrupt raised during a check")],
)
def test_an_interrupted_run_writes_results_marked_incomplete_and_keeps_its_journal(
    run_suite, tmp_path, adapter, reason
):
    res = tmp_path / "r.json"
    r = run_suite(
        "suites/test_conformance.py",
        "--frameworks=",
        f"--adapter=tests.fake_adapter:{adapter}",
        "-k",
        "float64 and none and value and (random_index or tutorial_logits)",
        f"--results={res}",
    )
    assert r.ret == pytest.ExitCode.INTERRUPTED
    doc = json.loads(res.read_text())
    assert doc["complete"] is False and reason in doc["incomplete"]["reason"]
    assert doc["incomplete"]["recorded"] == len(doc["records"]) and doc["incomplete"]["expected"] >= 2
    assert doc["expectations"]["unused"] == []  # no "matched no check" warnings for a cut-short run
    (journal,) = tmp_path.glob("r.json.*.partial.jsonl")
    assert f"xentcheck: INCOMPLETE: {doc['incomplete']['reason']}" in _out(r) and str(journal) in _out(r)
    # the journal becomes a results file marked incomplete; the upgrade gate refuses incomplete runs
    rec = subprocess.run(
        [sys.executable, "-m", "reports", "recover", str(journal), "-o", str(tmp_path / "rec.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert rec.returncode == 0 and json.loads((tmp_path / "rec.json").read_text())["complete"] is False
    gate = subprocess.run(
        [sys.executable, "-m", "reports", "diff", str(res), str(res)], cwd=ROOT, capture_output=True, text=True
    )
    assert gate.returncode == 1 and "REGRESSION the new run is incomplete" in gate.stdout


def test_an_adapter_that_breaks_the_protocol_is_an_error_with_the_cause(run_suite, tmp_path):
    res = tmp_path / "r.json"
    r = run_suite(
        "suites/test_conformance.py",
        "--frameworks=",
        "--adapter=tests.fake_adapter:LIST_RETURNING",
        "-k",
        "random_index and float64",
        f"--results={res}",
    )
    assert r.ret == 1
    recs = json.loads(res.read_text())["records"]
    ran = [x for x in recs if x["outcome"] != "unsupported"]
    assert ran and all(x["outcome"] == "error" and "returned list" in x["reason"] for x in ran)


def test_one_writer_per_results_path(run_suite, tmp_path):
    from suites.plugin.writer import lock

    res = tmp_path / "r.json"
    held = lock(res)  # another run is writing it
    try:
        r = run_suite("suites", "--frameworks=numpy", f"--results={res}")
    finally:
        held.close()
    assert r.ret == 4 and len(_err(r)) == 1
    assert "another xentcheck run is writing it (pid " in _err(r)[0] and not res.exists()


def test_results_and_report_paths(run_suite, tmp_path):
    same = run_suite("suites", "--frameworks=numpy", f"--results={tmp_path / 'x'}", f"--report={tmp_path / 'x'}")
    assert same.ret == 4 and len(_err(same)) == 1 and "are the same file" in _err(same)[0]
    r = run_suite("suites", "--frameworks=numpy", "-k", "random_index", f"--results={tmp_path / 'd' / 'x.json'}")
    assert r.ret == 0 and (tmp_path / "d" / "x.html").exists()  # the report goes beside the results
    assert f"report written to {tmp_path / 'd' / 'x.html'}" in _out(r)


def test_a_broken_adapter_fails_the_run_and_the_others_still_run(run_suite, tmp_path, monkeypatch):
    monkeypatch.setenv("XC_BREAK", "import")
    res = tmp_path / "r.json"
    r = run_suite(
        "-p",
        "tests.break_adapter",
        "suites/test_conformance.py",
        "--frameworks=numpy",
        "--adapter=tests.fake_adapter:HONEST",
        "-k",
        "random_index",
        f"--results={res}",
    )
    assert r.ret == 1
    assert "xentcheck: ERROR numpy: importing its adapter failed: ImportError: planted" in _out(r)
    doc = json.loads(res.read_text())
    assert doc["environment"]["broken"]["numpy"].startswith("numpy: importing its adapter failed")
    assert {x["framework"] for x in doc["records"]} == {"fake"} and doc["summary"].get("pass")


def test_a_named_framework_that_is_not_installed_fails_at_start_up(run_suite, monkeypatch):
    monkeypatch.setenv("XC_BREAK", "missing")
    r = run_suite("-p", "tests.break_adapter", "suites", "--frameworks=numpy")
    assert r.ret == 4 and len(_err(r)) == 1
    assert "--frameworks names numpy, which is not installed (missing numpy)" in _err(r)[0]
    unnamed = run_suite("-p", "tests.break_adapter", "suites/test_conformance.py", "--collect-only")
    assert unnamed.ret == 0 and "xentcheck: skipping numpy: not installed" in _out(unnamed)


@pytest.mark.parametrize(
    "option, message",
    [
        ("--modes=jit", "--modes=jit: give eager, compiled or eager,compiled"),
        ("--relation-examples=0", "--relation-examples: give a positive number"),
    ],
)
def test_bad_run_options_are_one_line(run_suite, option, message):
    r = run_suite("suites", "--frameworks=numpy", option)
    assert r.ret == 4 and len(_err(r)) == 1 and message in _err(r)[0]


def test_the_example_kernel_passes_the_whole_suite_out_of_the_box(run_suite, tmp_path):
    res = tmp_path / "r.json"
    r = run_suite("suites", "--frameworks=", "--adapter=examples.numpy_kernel:ADAPTER", f"--results={res}")
    assert r.ret == 0, _out(r)[-3000:]
    doc = json.loads(res.read_text())
    assert doc["summary"].get("fail", 0) == 0 and doc["summary"].get("error", 0) == 0
    assert doc["summary"]["pass"] >= 150 and {x["check"] for x in doc["records"]} >= {"value", "grad", "relation"}
    assert all(s["outcome"] == "ok" for s in doc["stability"])


def test_an_external_case_folder_and_an_external_kernel_in_one_report(run_suite, tmp_path):
    from .test_cases import _external

    d = _external(tmp_path)
    res = tmp_path / "r.json"
    r = run_suite(
        "suites",
        "--frameworks=",
        "--adapter=examples.numpy_kernel:ADAPTER",
        f"--cases={d}",
        "-k",
        "imported_vectors",
        f"--results={res}",
    )
    assert r.ret == 0, _out(r)[-2000:]
    recs = json.loads(res.read_text())["records"]
    assert {(x["case"], x["category"], x["outcome"]) for x in recs} == {
        ("imported_vectors", "vectors from my kernel's tests", "pass")
    }
    assert "vectors from my kernel" in expand((tmp_path / "r.html").read_text())
    missing = run_suite("suites", "--frameworks=numpy", f"--cases={tmp_path / 'nowhere'}")
    assert missing.ret == 4 and len(_err(missing)) == 1 and "no such file or folder" in _err(missing)[0]


def test_each_run_records_the_harness_own_speed(run_suite, tmp_path):
    res = tmp_path / "r.json"
    r = run_suite("suites/test_conformance.py", "--frameworks=numpy", "-k", "random_index", f"--results={res}")
    assert r.ret == 0
    h = json.loads(res.read_text())["harness"]
    assert h["frameworks"]["numpy"]["checks"] > 0 and h["frameworks"]["numpy"]["checks_per_s"] > 0
    assert 0 < h["time_to_first_check_s"] <= h["wall_s"] and h["peak_rss_bytes"] > 0
    assert "first check after" in expand((tmp_path / "r.html").read_text())


def test_probing_capabilities_reports_what_undeclared_values_do_and_never_fails(run_suite, tmp_path):
    # the fake binding declares every target kind, class weights and spatial input in float32/float64;
    # the probes try the other options and dtypes
    res = tmp_path / "r.json"
    r = run_suite(
        "suites/test_probes.py",
        "--frameworks=",
        "--adapter=tests.fake_adapter:HONEST",
        "--probe-capabilities",
        f"--results={res}",
        f"--report={tmp_path / 'r.html'}",
    )
    assert r.ret == 0, _out(r)[-3000:]
    probes = json.loads(res.read_text())["environment"]["probes"]["fake::fake.softmax_ce"]
    found = {(p["facet"], p["value"]): p["result"] for p in probes}
    assert ("option", "class_weight") not in found  # declared: not probed
    assert found[("option", "sample_weight")] == "wrong"  # the fake ignores sample weights: not as the option means
    assert {("dtype", "float16"), ("dtype", "bfloat16"), ("option", "label_smoothing")} <= set(found)
    assert "undeclared, probed" in expand((tmp_path / "r.html").read_text())


def test_interaction_cases_run_and_their_coverage_per_strength_is_in_the_results(run_suite, tmp_path):
    res = tmp_path / "r.json"
    r = run_suite(
        "suites/test_conformance.py",
        "--frameworks=",
        "--adapter=tests.fake_adapter:HONEST",
        "-k",
        "ix-",
        f"--results={res}",
        f"--report={tmp_path / 'r.html'}",
    )
    assert r.ret == 0, _out(r)[-3000:]
    doc = json.loads(res.read_text())
    cov = doc["environment"]["interactions"]["fake::fake.softmax_ce"]
    assert cov["strength"] == "mixed" and cov["cases"] >= 4
    assert [c["strength"] for c in cov["by_strength"]] == [3, 2]
    for c in cov["by_strength"]:
        assert c["missing"] == [] and c["covered"] + len(c["ruled_out"]) == c["tuples"] > 0
    assert "dtype" not in cov["by_strength"][0]["factors"] and "dtype" in cov["by_strength"][1]["factors"]
    assert {r["category"] for r in doc["records"]} == {"interactions"}
    html = expand((tmp_path / "r.html").read_text())
    assert "Interactions: coverage per strength" in html and "3-way" in html and "2-way" in html
    bad = run_suite("suites", "--frameworks=numpy", "--interactions=5")
    assert bad.ret == 4 and _err(bad)[-1].startswith("ERROR: --interactions=5: the generator builds strength 2")


class _Declaring:
    """An adapter's worker-group declaration, as JAX's splits its checks (no framework imported)."""

    name = "jax"
    worker_groups = (
        *WorkerGroup.compiled_by_dtype("jax", 8),
        WorkerGroup("jax-f64", 16, frozenset({"value", "grad"}), frozenset({"float64"})),
        WorkerGroup("jax-half", 15, frozenset({"value", "grad"}), frozenset({"float16", "bfloat16"})),
        WorkerGroup("jax", 12, frozenset({"value", "grad"})),
        WorkerGroup("jax-relations", 17, frozenset({"relation"})),
        WorkerGroup("jax-more", 18),
    )


class _Plain:
    name = "mine"


@pytest.mark.parametrize(
    "adapter, kind, dtype, mode, group",
    [
        (_Declaring, "value", "float32", "eager", "jax"),
        (_Declaring, "grad", "float64", "eager", "jax-f64"),
        (_Declaring, "value", "bfloat16", "eager", "jax-half"),
        (_Declaring, "grad", "float16", "compiled", "jax-compiled-float16"),
        (_Declaring, "relation", "float32", "eager", "jax-relations"),
        (_Declaring, "stability", "float32", "eager", "jax-more"),
        (_Declaring, "snippet", "", "eager", "jax-more"),
        (_Plain, "value", "float32", "compiled", "mine"),  # no declaration: one group per framework
    ],
)
def test_worker_groups_come_from_what_the_adapter_declares(adapter, kind, dtype, mode, group):
    from suites.plugin.scheduling import group_for

    assert group_for(adapter, kind, dtype, mode) == group


def test_the_test_id_is_built_once_from_the_check():
    from xentcheck.check import Check

    c = Check("jax", "optax.softmax_cross_entropy", "ix-softmaxce-soft-cf-mask", "float64", "eager", "none", "grad")
    assert c.test_id == c.id == "jax-optax.softmax_cross_entropy-ix-softmaxce-soft-cf-mask-float64-eager-none-grad"
    r = Check("torch", "F.cross_entropy", "shift_invariance", "float32", "eager", "all", "relation")
    assert r.test_id == "torch-F.cross_entropy-shift_invariance-float32"
    assert r.id == "torch-F.cross_entropy-shift_invariance-float32-eager-all-relation"
    assert (
        Check("numpy", "log_softmax", "logit_magnitude", "float16", kind="stability").test_id
        == "numpy-log_softmax-logit_magnitude-float16"
    )
    probe = Check("numpy", "log_softmax", "dtype", kind="probe", value="float16")
    assert probe.test_id == "numpy-log_softmax-dtype-float16"
    assert Check("numpy", "log_softmax", "random_index", kind="snippet").test_id == "numpy-log_softmax-random_index"
    assert Check.from_json(c.to_json()) == c


def test_keras_backends_run_by_default_in_their_float32_slice_and_fully_when_named(run_suite):
    pytest.importorskip("keras")

    def keras_ids(*args):
        r = run_suite("suites/test_conformance.py", "--collect-only", "-k", "keras and numpy", *args)
        assert r.ret == 0, _out(r)
        return [line for line in r.outlines if "test_conformance[keras[numpy]-" in line]

    sliced = keras_ids()
    assert sliced and all("-float32-" in i for i in sliced) and not any("-ix-" in i for i in sliced)
    named = keras_ids("--frameworks=keras[numpy]")
    assert any("-float64-" in i for i in named) and any("-ix-" in i for i in named)


def test_case_and_binding_select_by_exact_name(run_suite, tmp_path):
    res = tmp_path / "r.json"
    r = run_suite(
        "suites",
        "--frameworks=",
        "--adapter=tests.fake_adapter:HONEST",
        "--case=random_index",
        "--binding=fake.softmax_ce",
        f"--results={res}",
    )
    assert r.ret == 0, _out(r)[-3000:]
    doc = json.loads(res.read_text())
    assert {rec["case"] for rec in doc["records"]} == {"random_index"}  # not random_index_* nor a sweep
    assert not doc.get("stability")  # no stability axis has that name
    assert "expectations audit skipped: the run was a slice" in _out(r)


@pytest.mark.parametrize(
    "option, message",
    [
        (
            "--case=random_indx",
            "--case=random_indx: no case, relation or stability axis has this name; did you mean random_index",
        ),
        (
            "--binding=fake.sofmax_ce",
            "--binding=fake.sofmax_ce: no binding of the frameworks in this run has this name; "
            "did you mean fake.softmax_ce?",
        ),
    ],
)
def test_a_case_or_binding_that_does_not_exist_is_named_in_one_line(run_suite, option, message):
    r = run_suite("suites", "--frameworks=", "--adapter=tests.fake_adapter:HONEST", option, "--collect-only")
    said = _out(r) + "\n".join(_err(r))
    # a usage error (exit 4) in one line, not a collection error with a traceback
    assert r.ret == pytest.ExitCode.USAGE_ERROR and f"ERROR: {message}" in said and "ERROR collecting" not in said


def test_an_adapter_given_as_a_file_path_is_found(run_suite, tmp_path):
    kernel = tmp_path / "elsewhere" / "my_kernel.py"
    kernel.parent.mkdir()
    kernel.write_text((ROOT / "examples" / "numpy_kernel.py").read_text())
    r = run_suite("suites", "--frameworks=", f"--adapter={kernel}:ADAPTER", "--case=random_index", "--collect-only")
    assert r.ret == 0, _out(r)[-3000:]
    assert "suites/test_conformance.py" in _out(r)

"""Imported ground truth (cases/imported/, scripts/import_onnx_vectors.py): the oracle agrees with
every outside source's expected values within the source's rounding, and a corpus with expected
values of the wrong shape is one line naming the file and the case."""

import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cases import CaseError, load_catalog
from xentcheck.ground_truth import oracle_vs_expected

IMPORTED = [c for c in load_catalog() if c.expected is not None]


def test_the_onnx_corpus_is_in_the_catalog():
    names = {c.name for c in IMPORTED}
    assert len([n for n in names if n.startswith("onnx_sce")]) == 17
    assert len([n for n in names if n.startswith("onnx_nllloss")]) == 18
    assert all(c.category == "imported" and c.expected["source"].startswith("https://") for c in IMPORTED)


@pytest.mark.parametrize("case", IMPORTED, ids=lambda c: c.name)
def test_the_oracle_agrees_with_the_imported_expected_values(case):
    for op in case.ops:
        p = case.problem(op, case.dtypes[0], case.reductions[0])
        c = oracle_vs_expected(p, case.expected)
        assert c.ok, f"{case.name}: the oracle disagrees with {case.expected['source']}: {c.detail}"


def test_a_wrong_expected_value_fails_the_oracle_check():
    case = next(c for c in IMPORTED if c.name == "onnx_sce_mean_weight")
    wrong = {**case.expected, "value": {"values": np.asarray(case.expected["value"]["values"]) * (1 + 1e-4)}}
    assert not oracle_vs_expected(case.problem("softmax_ce", "float32", "mean"), wrong).ok
    # the source's mean divisor matters: ONNX divides a weighted mean by the weight sum
    count = {**case.expected, "mean_by": "count"}
    assert not oracle_vs_expected(replace(case.problem("softmax_ce", "float32", "mean")), count).ok


def test_expected_values_of_the_wrong_shape_are_one_line(tmp_path):
    np.savez(tmp_path / "v.npz", x=np.zeros((2, 3)), t=np.array([0, 1]), loss=np.zeros(3))
    (tmp_path / "c.toml").write_text(
        '[[case]]\nname = "mine"\ncategory = "my vectors"\nops = ["softmax_ce"]\nshape = [2, 3]\nseed = 0\n'
        'reductions = ["none"]\nlogits = { values_file = "v.npz:x" }\n'
        'targets = { kind = "index", values_file = "v.npz:t" }\n'
        'expected = { value = { values_file = "v.npz:loss" }, source = "https://example.invalid" }\n'
    )
    with pytest.raises(CaseError) as e:
        load_catalog([], external=[tmp_path])
    msg = str(e.value)
    assert "c.toml" in msg and "'mine'" in msg and "expected.value has shape (3,), expected (2,)" in msg
    assert "\n" not in msg


FRAMEWORKS = [c for c in IMPORTED if not c.name.startswith("onnx_")]
MORE = Path(__file__).resolve().parent.parent / "cases" / "imported" / "more"


def test_the_framework_corpus_names_its_test_line_and_licence():
    by_source = Counter(c.name.split("_")[0] for c in FRAMEWORKS)
    assert by_source == {"keras": 15, "optax": 5, "sklearn": 3, "tf": 1}
    for c in FRAMEWORKS:
        e = c.expected
        assert c.category == "imported" and e["test"] and e["literal"] and e["licence"]
        # pinned to a commit or a release, and to the line of the literal
        assert re.search(r"/blob/([0-9a-f]{40}|\d+\.\d+\.\d+)/.+#L\d+$", e["source"]), e["source"]


def test_the_repeats_outside_the_default_run_agree_too():
    more = load_catalog([], external=[MORE])
    extra = [c for c in more if c.name not in {d.name for d in IMPORTED} and c.expected is not None]
    assert len(extra) == 11
    for c in extra:
        assert oracle_vs_expected(c.problem(c.ops[0], c.dtypes[0], c.reductions[0]), c.expected).ok, c.name


def _case(name):
    return next(c for c in FRAMEWORKS if c.name == name)


def _judge(case, **changes):
    problem = case.problem(case.ops[0], case.dtypes[0], case.reductions[0])
    return oracle_vs_expected(problem, {**case.expected, **changes})


def test_a_printed_literal_is_held_to_its_last_printed_place():
    # sklearn prints 0.6904911 (7 places, rounded): half a unit of the 7th place, not more
    case = _case("sklearn_log_loss_multiclass")
    assert _judge(case).ok
    assert not _judge(case, value={"values": 0.6904912}).ok  # exact 0.69049112: 0.88 units off
    assert _judge(case, value={"values": 0.6904912}, rounding="truncated").ok
    # Keras cuts 0.3239681 to 0.3239: one unit of the 4th place, and only under its renormalisation
    keras = _case("keras_cce_probs_unweighted")
    assert _judge(keras).ok
    assert not _judge(keras, rounding="nearest").ok
    assert not _judge(keras, value={"values": 0.3237}).ok
    assert not _judge(keras, policies={}).ok  # -mean log p without dividing the second row by its sum


def test_a_per_example_binary_mean_is_the_source_convention():
    case = _case("keras_bce_logits_none")  # Keras averages the last axis: one loss per row
    assert case.expected["mean_last_axis"] and np.shape(case.expected["value"]["values"]) == (2,)
    assert _judge(case).ok


def _write(tmp_path, expected_extra):
    (tmp_path / "c.toml").write_text(
        '[[case]]\nname = "mine"\ncategory = "my vectors"\nops = ["softmax_ce"]\nshape = [2, 3]\nseed = 0\n'
        'reductions = ["none"]\nlogits = { values = [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]] }\n'
        'targets = { kind = "index", values = [0, 1] }\n'
        "expected = { value = { values = [2.4076, 1.0986] }, "
        f'source = "https://example.invalid"{expected_extra} }}\n'
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (", policies = { prob_clamp = 1e-7 }", "expected.policies names ['prob_clamp'], not oracle policies"),
        (", decimals = [4, 4, 4]", "expected.decimals has 3 entries for 2 values"),
        (', rounding = "up"', "expected.rounding"),
    ],
)
def test_a_wrong_source_convention_is_one_line(tmp_path, extra, message):
    _write(tmp_path, extra)
    with pytest.raises(CaseError) as e:
        load_catalog([], external=[tmp_path])
    assert message in str(e.value) and "'mine'" in str(e.value) and "\n" not in str(e.value)


def test_printed_decimals_per_value(tmp_path):
    _write(tmp_path, ", decimals = [4, 4]")
    (case,) = [c for c in load_catalog([], external=[tmp_path]) if c.name == "mine"]
    assert _judge(case).ok  # 2.4076059, 1.0986123 rounded to 4 places

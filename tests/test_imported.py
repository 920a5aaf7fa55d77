"""Imported ground truth (cases/imported/, scripts/import_onnx_vectors.py): the oracle agrees with
every outside source's expected values within the source's rounding, and a corpus with expected
values of the wrong shape is one line naming the file and the case."""

from dataclasses import replace

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

"""The case catalog: declarations load, malformed ones fail with one line."""
import numpy as np
import pytest

from cases import CaseError, load_catalog


def test_index_and_onehot_cases_are_the_same_problem():
    cases = {c.name: c for c in load_catalog()}
    a = cases["random_index"].problem("softmax_ce", "float32", "none")
    b = cases["onehot_same_problem"].problem("softmax_ce", "float32", "none")
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.dense_target(), b.target)


def test_inputs_are_rounded_to_the_dtype():
    case = load_catalog()[0]
    p = case.problem(case.ops[0], "float32", "none")
    np.testing.assert_array_equal(p.x, p.x.astype(np.float32).astype(np.float64))


def test_problems_are_reproducible():
    case = load_catalog()[0]
    a, b = (case.problem(case.ops[0], "float64", "none") for _ in range(2))
    np.testing.assert_array_equal(a.x, b.x)


BASE = """
[[case]]
name = "c"
category = "ordinary"
ops = ["softmax_ce"]
shape = [2, 3]
seed = 1
logits = { dist = "normal" }
targets = { kind = "index" }
"""


@pytest.mark.parametrize("edit, message", [
    (("seed = 1", "sead = 1"), "unknown key 'sead'"),
    (('category = "ordinary"', 'category = "misc"'), "category 'misc' is not one of"),
    (('ops = ["softmax_ce"]', 'ops = ["softmax"]'), "op 'softmax' is not one of"),
    (('targets = { kind = "index" }', 'targets = { kind = "binary" }'), "needs binary ops only"),
    (('logits = { dist = "normal" }', 'logits = { values = [[1.0, 2.0]] }'), "expected shape (2, 3)"),
    (("[[case]]", "[[case]"), "fix the TOML syntax"),
    (("seed = 1", "seed = 1\nchannels_first = true"), "channels_first needs categorical ops and a spatial shape"),
    (("seed = 1", 'seed = 1\ninvalid = { form = "float_labels", value = 3 }'), "invalid needs either value"),
    # types and ranges come from the schema (cases/schema.py), each one line naming the key
    (("shape = [2, 3]", 'shape = "4x3"'), "shape = '4x3': expected a list of sizes like [4, 3]"),
    (("seed = 1", "seed = 1.5"), "seed = 1.5: expected an integer"),
    (("seed = 1", "seed = 1\nlabel_smoothing = 1.5"), "label_smoothing = 1.5 is out of range"),
    (('targets = { kind = "index" }', 'targets = { kind = "index", values = [0, 1, 2] }'),
     "targets.values has shape (3,), expected (2,)"),
    (('logits = { dist = "normal" }', 'logits = { dist = "cauchy" }'), "logits.dist 'cauchy' is not one of"),
])
def test_malformed_case_is_one_line(tmp_path, edit, message):
    f = tmp_path / "bad.toml"
    f.write_text(BASE.replace(*edit))
    with pytest.raises(CaseError) as e:
        load_catalog([f])
    assert message in str(e.value) and "bad.toml" in str(e.value) and "\n" not in str(e.value)


def test_duplicate_names_are_rejected(tmp_path):
    f = tmp_path / "dup.toml"
    f.write_text(BASE + BASE)
    with pytest.raises(CaseError, match="duplicate case name"):
        load_catalog([f])


def test_masks_spare_the_target_unless_asked():
    cases = {c.name: c for c in load_catalog()}
    p = cases["masked_logits_index"].problem("softmax_ce", "float64", "none")
    assert np.isneginf(p.x).any()
    assert np.all(np.isfinite(np.take_along_axis(p.x, p.target[:, None], axis=1)))
    soft = cases["masked_logits_soft"].problem("softmax_ce", "float64", "none")
    assert np.all(soft.target[np.isneginf(soft.x)] == 0)
    np.testing.assert_allclose(soft.target.sum(axis=1), 1.0)
    on = cases["masked_target"].problem("softmax_ce", "float64", "none")
    assert np.isneginf(on.x[0, on.target[0]]) and np.all(np.isfinite(on.x[1:][np.arange(3), on.target[1:]]))


def test_the_new_corner_cases_materialise_as_declared():
    cases = {c.name: c for c in load_catalog()}
    row = cases["masked_row"].problem("softmax_ce", "float64", "none")
    assert np.all(np.isneginf(row.x[2])) and np.all(np.isfinite(row.x[[0, 1, 3]]))
    inf = cases["inf_logit"].problem("softmax_ce", "float64", "none")
    assert inf.x[1, 0] == np.inf and np.isfinite(np.delete(inf.x, 1, axis=0)).all()
    soft = cases["soft_unnormalized"].problem("softmax_ce", "float64", "none")
    sums = soft.target.sum(axis=1)
    assert sums.min() >= 0.3 and sums.max() <= 1.7 and np.ptp(sums) > 0.3
    everything = cases["ignore_all_rows"].problem("softmax_ce", "float64", "mean")
    assert not everything.valid_mask().any()
    cf = cases["channels_first_index"].problem("softmax_ce", "float32", "none")
    assert cf.channels_first and "channels_first" in cf.options_used() and cf.x.shape[-1] == 5


def test_explicit_labels_are_never_rewritten_by_ignore_fraction(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text(BASE.replace('targets = { kind = "index" }', 'targets = { kind = "index", values = [2, -100] }')
                 + "ignore_index = -100\n")
    (case,) = load_catalog([f])
    p = case.problem("softmax_ce", "float64", "none")
    assert p.target.tolist() == [2, -100] and p.ignore_index == -100  # as written, none dropped at random

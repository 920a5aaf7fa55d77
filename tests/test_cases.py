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


@pytest.mark.parametrize(
    "edit, message",
    [
        (("seed = 1", "sead = 1"), "unknown key 'sead'"),
        (('category = "ordinary"', 'category = "misc"'), "category 'misc' is not one of"),
        (('ops = ["softmax_ce"]', 'ops = ["softmax"]'), "op 'softmax' is not one of"),
        (('targets = { kind = "index" }', 'targets = { kind = "binary" }'), "needs binary ops only"),
        (('logits = { dist = "normal" }', "logits = { values = [[1.0, 2.0]] }"), "expected shape (2, 3)"),
        (("[[case]]", "[[case]"), "fix the TOML syntax"),
        (("seed = 1", "seed = 1\nchannels_first = true"), "channels_first needs categorical ops and a spatial shape"),
        (("seed = 1", 'seed = 1\ninvalid = { form = "float_labels", value = 3 }'), "invalid needs either value"),
        # types and ranges come from the schema (cases/schema.py), each one line naming the key
        (("shape = [2, 3]", 'shape = "4x3"'), "shape = '4x3': expected a list of sizes like [4, 3]"),
        (("seed = 1", "seed = 1.5"), "seed = 1.5: expected an integer"),
        (("seed = 1", "seed = 1\nlabel_smoothing = 1.5"), "label_smoothing = 1.5 is out of range"),
        (
            ('targets = { kind = "index" }', 'targets = { kind = "index", values = [0, 1, 2] }'),
            "targets.values has shape (3,), expected (2,)",
        ),
        (('logits = { dist = "normal" }', 'logits = { dist = "cauchy" }'), "logits.dist 'cauchy' is not one of"),
    ],
)
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


def test_where_masks_keep_the_logits_and_say_which_classes_take_part():
    cases = {c.name: c for c in load_catalog()}
    p = cases["where_classes"].problem("softmax_ce", "float64", "none")
    assert np.all(np.isfinite(p.x)) and not p.where.all() and "where" in p.options_used()
    assert np.all(np.take_along_axis(p.where, p.target[:, None], axis=1))  # targets stay included
    on = cases["where_on_target_onehot"].problem("softmax_ce", "float64", "none")
    assert np.all(on.target[~on.where & ~np.isin(np.arange(4), [0, 2])[:, None]] == 0)
    assert on.target[0][~on.where[0]].sum() == 1.0  # row 0 keeps its mass on the excluded target
    rows = cases["where_rows"].problem("softmax_ce", "float64", "none")
    assert not rows.where[[1, 3]].any() and rows.where[[0, 2]].any(axis=1).all()


def test_where_applies_to_softmax_ce_only(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text(
        BASE.replace("seed = 1", "seed = 1\nwhere = { fraction = 0.5 }").replace(
            'ops = ["softmax_ce"]', 'ops = ["softmax_ce", "categorical_ce"]'
        )
    )
    with pytest.raises(CaseError, match="where .* applies to op softmax_ce only"):
        load_catalog([f])


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
    f.write_text(
        BASE.replace('targets = { kind = "index" }', 'targets = { kind = "index", values = [2, -100] }')
        + "ignore_index = -100\n"
    )
    (case,) = load_catalog([f])
    p = case.problem("softmax_ce", "float64", "none")
    assert p.target.tolist() == [2, -100] and p.ignore_index == -100  # as written, none dropped at random


EXTERNAL = """
[[case]]
name = "imported_vectors"
category = "vectors from my kernel's tests"
description = "test vectors kept exact in .npy/.npz files beside this declaration"
ops = ["softmax_ce"]
shape = [3, 4]
seed = 0
logits = { values_file = "logits.npy" }
targets = { kind = "index", values_file = "vectors.npz:labels" }
"""


def _external(tmp_path, text=EXTERNAL):
    import numpy as np

    d = tmp_path / "mycases"
    d.mkdir(exist_ok=True)
    (d / "cases.toml").write_text(text)
    np.save(d / "logits.npy", np.arange(12.0).reshape(3, 4) / 7)
    np.savez(d / "vectors.npz", labels=np.array([0, 3, 1]))
    return d


def test_cases_from_outside_the_repository_with_values_files_and_their_own_category(tmp_path):
    import numpy as np

    d = _external(tmp_path)
    cases = {c.name: c for c in load_catalog(external=[d])}
    case = cases["imported_vectors"]
    assert case.category == "vectors from my kernel's tests" and len(cases) > 40  # the built-in ones too
    p = case.problem("softmax_ce", "float64", "none")
    assert np.array_equal(p.x, np.arange(12.0).reshape(3, 4) / 7) and p.target.tolist() == [0, 3, 1]
    assert load_catalog([], external=[d / "cases.toml"])[0].name == "imported_vectors"  # a file works too


def test_channels_first_explicit_values_are_taken_as_the_binding_receives_them(tmp_path):
    import numpy as np

    d = tmp_path / "cf"
    d.mkdir()
    cf = np.random.default_rng(0).normal(size=(2, 4, 3))  # (N, C, d1): how a channels-first caller holds it
    np.save(d / "z.npy", cf)
    (d / "c.toml").write_text(
        '[[case]]\nname = "cf"\ncategory = "mine"\nops = ["softmax_ce"]\nshape = [2, 3, 4]\n'
        'seed = 0\nchannels_first = true\nlogits = { values_file = "z.npy" }\n'
        'targets = { kind = "index" }\n'
    )
    (case,) = load_catalog([], external=[d])
    assert np.array_equal(case.problem("softmax_ce", "float64", "none").x, np.moveaxis(cf, 1, -1))


@pytest.mark.parametrize(
    "edit, message",
    [
        (("logits.npy", "nope.npy"), "logits.values_file: no file"),
        (("vectors.npz:labels", "vectors.npz:lables"), "name one of the arrays of vectors.npz as vectors.npz:KEY"),
        (("vectors.npz:labels", "vectors.npz"), "name one of the arrays"),
        (("logits.npy", "logits.csv"), "values_file is the name of a .npy file"),
        (("shape = [3, 4]", "shape = [3, 5]"), "has shape (3, 4), expected shape (3, 5)"),
    ],
)
def test_a_bad_values_file_is_one_line_naming_the_file_and_the_fix(tmp_path, edit, message):
    d = _external(tmp_path, EXTERNAL.replace(*edit))
    with pytest.raises(CaseError) as e:
        load_catalog([], external=[d])
    assert message in str(e.value) and "cases.toml" in str(e.value) and "\n" not in str(e.value)


def test_values_of_the_wrong_kind_and_missing_paths_are_one_line(tmp_path):
    import numpy as np

    d = _external(tmp_path)
    np.save(d / "logits.npy", np.array(["a", "b", "c", "d"] * 3).reshape(3, 4))
    with pytest.raises(CaseError, match="holds <U1; expected real numbers"):
        load_catalog([], external=[d])
    np.save(d / "logits.npy", np.zeros((3, 4)))
    np.savez(d / "vectors.npz", labels=np.array([0.0, 3.0, 1.0]))
    with pytest.raises(CaseError, match="index targets must be integers"):
        load_catalog([], external=[d])
    with pytest.raises(CaseError, match="--cases=.*nowhere: no such file or folder"):
        load_catalog([], external=[tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CaseError, match="the folder holds no .toml file"):
        load_catalog([], external=[tmp_path / "empty"])

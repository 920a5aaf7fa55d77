"""The case format's explicit arrays: weights from a values_file, per-element sample weights, an
explicit ``where`` mask and an explicit cotangent; the oracle and the adapters honour them."""

import numpy as np
import pytest

from cases import CaseError, load_catalog
from xentcheck import reference
from xentcheck.checks import cotangent_for
from xentcheck.reference import MATH

SPATIAL = """
[[case]]
name = "c"
category = "weights"
ops = ["softmax_ce"]
shape = [2, 3, 4]
seed = 7
logits = { dist = "normal" }
targets = { kind = "index" }
"""


def _load(tmp_path, text: str):
    f = tmp_path / "c.toml"
    f.write_text(text)
    return load_catalog([], external=[f])[0]


def _math_loss(p) -> np.ndarray:
    """The unreduced loss from the definition, per element: -log softmax(z)[y]."""
    z = p.x
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(logp, p.target[..., None], axis=-1)[..., 0]


def test_class_sample_and_pos_weights_come_from_values_files(tmp_path):
    np.save(tmp_path / "cw.npy", np.array([1.0, 2.0, 0.5, 4.0]))
    np.savez(tmp_path / "w.npz", sw=np.array([0.25, 3.0]))
    case = _load(
        tmp_path,
        SPATIAL.replace(
            "seed = 7",
            'seed = 7\nclass_weight = { values_file = "cw.npy" }\nsample_weight = { values_file = "w.npz:sw" }',
        ),
    )
    p = case.problem("softmax_ce", "float64", "sum")
    np.testing.assert_array_equal(p.class_weight, [1.0, 2.0, 0.5, 4.0])
    np.testing.assert_array_equal(p.sample_weight, [0.25, 3.0])
    want = (_math_loss(p) * p.class_weight[p.target] * np.array([0.25, 3.0])[:, None]).sum()
    assert reference.evaluate(p).value == pytest.approx(want, rel=1e-12)


def test_a_values_file_of_the_wrong_shape_is_one_line(tmp_path):
    np.save(tmp_path / "cw.npy", np.ones(5))
    f = tmp_path / "c.toml"
    f.write_text(SPATIAL.replace("seed = 7", 'seed = 7\nclass_weight = { values_file = "cw.npy" }'))
    with pytest.raises(CaseError, match=r"weights have shape \(5,\), expected \(4,\)"):
        load_catalog([], external=[f])


def test_per_element_sample_weights_weigh_each_element(tmp_path):
    w = [[1.0, 0.0, 2.0], [0.5, 1.0, 3.0]]
    case = _load(tmp_path, SPATIAL.replace("seed = 7", f"seed = 7\nsample_weight = {{ values = {w} }}"))
    p = case.problem("softmax_ce", "float64", "none")
    assert p.sample_weight.shape == (2, 3)
    np.testing.assert_allclose(reference.evaluate(p).value, _math_loss(p) * np.array(w), rtol=1e-12)
    drawn = _load(
        tmp_path, SPATIAL.replace("seed = 7", "seed = 7\nsample_weight = { low = 0.5, high = 2.0, per_element = true }")
    )
    assert drawn.problem("softmax_ce", "float32", "none").sample_weight.shape == (2, 3)


def test_the_numpy_adapter_honours_per_element_sample_weights(tmp_path):
    from adapters.numpy_scipy import NumpyAdapter  # numpy and scipy are the core's own dependencies

    w = [[1.0, 0.0, 2.0], [0.5, 1.0, 3.0]]
    case = _load(tmp_path, SPATIAL.replace("seed = 7", f"seed = 7\nsample_weight = {{ values = {w} }}"))
    adapter = NumpyAdapter()
    binding = next(
        b
        for b in adapter.bindings()
        if b.caps.op == "softmax_ce" and "spatial" in b.caps.options and "sample_weight" in b.caps.options
    )
    for reduction in ("none", "sum", "mean"):
        p = case.problem("softmax_ce", "float64", reduction)
        got = adapter.run(binding, p, grad=False, cotangent=None).value
        want = reference.evaluate(
            p, binding.convention if isinstance(binding.convention, reference.Convention) else binding.convention(p)
        ).value
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_an_explicit_where_mask_is_used_as_declared(tmp_path):
    mask = [[[True, True, False, True]] * 3, [[True, False, True, True]] * 3]
    labels = 'targets = { kind = "index", values = [[0, 1, 3], [0, 2, 3]] }'
    case = _load(
        tmp_path,
        SPATIAL.replace("seed = 7", f"seed = 7\nwhere = {{ values = {str(mask).lower()} }}").replace(
            'targets = { kind = "index" }', labels
        ),
    )
    p = case.problem("softmax_ce", "float64", "none")
    np.testing.assert_array_equal(p.where, np.array(mask))
    z = np.where(p.where, p.x, -np.inf)  # optax's where=: an excluded class is as a -inf logit
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    want = -np.take_along_axis(logp, p.target[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(reference.evaluate(p).value, want, rtol=1e-12)


def test_an_explicit_where_with_a_fraction_or_the_wrong_shape_is_one_line(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text(SPATIAL.replace("seed = 7", "seed = 7\nwhere = { values = [[true]], fraction = 0.5 }"))
    with pytest.raises(CaseError, match="keep one way of giving it"):
        load_catalog([], external=[f])
    f.write_text(SPATIAL.replace("seed = 7", "seed = 7\nwhere = { values = [[true]] }"))
    with pytest.raises(CaseError, match="where.values has shape"):
        load_catalog([], external=[f])


def test_an_explicit_cotangent_is_the_vjp_the_unreduced_check_uses(tmp_path):
    cot = [[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]
    case = _load(tmp_path, SPATIAL.replace("seed = 7", f"seed = 7\ncotangent = {{ values = {cot} }}"))
    p = case.problem("softmax_ce", "float64", "none")
    got = cotangent_for(p, MATH)
    np.testing.assert_array_equal(got, cot)
    grad = reference.evaluate(p, MATH, got).grad
    sm = np.exp(p.x) / np.exp(p.x).sum(axis=-1, keepdims=True)
    onehot = np.eye(4)[p.target]
    np.testing.assert_allclose(grad, np.array(cot)[..., None] * (sm - onehot), rtol=1e-12, atol=1e-15)
    assert cotangent_for(case.problem("softmax_ce", "float64", "mean"), MATH) is None


@pytest.mark.parametrize(
    "edit, message",
    [
        ("cotangent = { values = [1.0, 2.0] }", r"expected the unreduced output's \(2, 3\)"),
        (
            'cotangent = { values = [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]] }\nreductions = ["mean"]',
            "needs reduction 'none'",
        ),
    ],
)
def test_a_cotangent_that_cannot_be_used_is_one_line(tmp_path, edit, message):
    f = tmp_path / "c.toml"
    f.write_text(SPATIAL.replace("seed = 7", f"seed = 7\n{edit}"))
    with pytest.raises(CaseError, match=message):
        load_catalog([], external=[f])

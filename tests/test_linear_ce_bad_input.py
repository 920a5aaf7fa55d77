"""Bad input of op linear_ce (issue 28): the malformed forms that have no loss (X and W of different D,
a bias of the wrong shape, class weights of the wrong length, a target of the wrong length), the two
documented behaviours a binding may show instead of raising (``first_entries``, ``out_of_bounds_read``),
and the real vocabularies kept out of the default run. Framework-free: the mutants' honest implementation."""

from dataclasses import replace

import numpy as np
import pytest

from cases import CaseError, load_catalog
from xentcheck.checks import Judge
from xentcheck.expectations import Registry, load_registry

from .mutants import MutantAdapter
from .test_errors_layer import Lenient

CASES = {c.name: c for c in load_catalog()}
HONEST = MutantAdapter()


class Strict(MutantAdapter):
    """Checks the class weights' length, as a binding should."""

    def _compute(self, p, cotangent):
        cw = p.handed_class_weight()
        if cw is not None and len(cw) != p.num_classes:
            raise ValueError(f"class weights of length {len(cw)} for {p.num_classes} classes")
        return super()._compute(p, cotangent)


def _registry(tmp_path, binding: str, malformed: str, expect: str) -> Registry:
    f = tmp_path / "e.toml"
    f.write_text(
        f'[[expectation]]\nid = "e"\nframework = "honest"\nbindings = ["{binding}"]\n'
        f'when = {{ malformed = "{malformed}" }}\nexpect = {expect}\nreason = "r"\nsource = "https://example.invalid"\n'
    )
    return load_registry([f])


def _judge(adapter, p, registry=None):
    binding = next(b for b in adapter.bindings() if b.caps.op == p.op)
    return Judge(registry or Registry(), adapter.environment()).check(adapter, binding, p, "value")


def test_linear_errors_cases_hand_over_the_malformed_arrays():
    p = CASES["linear_hidden_mismatch"].problem("linear_ce", "float32", "mean")
    w, b = p.handed_linear()
    assert w.shape == (37, 17) and p.x.shape == (8, 16) and b is None and not p.has_loss
    p = CASES["linear_bias_shape"].problem("linear_ce", "float32", "mean")
    w, b = p.handed_linear()
    assert w.shape == (37, 16) and b.shape == (38,) and np.array_equal(b[:37], p.bias) and not p.has_loss
    p = CASES["linear_class_weight_length"].problem("linear_ce", "float32", "mean")
    assert p.handed_class_weight().shape == (38,) and np.array_equal(p.handed_class_weight()[:37], p.class_weight)
    p = CASES["linear_missing_row"].problem("linear_ce", "float32", "mean")
    assert p.handed_target()[0].shape == (7,) and p.x.shape == (8, 16) and not p.has_loss
    well_formed = CASES["linear_random"].problem("linear_ce", "float32", "mean")
    assert well_formed.handed_linear() == (well_formed.weight_matrix, well_formed.bias)


@pytest.mark.parametrize(
    "body, message",
    [
        ('invalid = { form = "hidden_mismatch" }\n', "needs op linear_ce"),
        ('invalid = { form = "class_weight_length" }\n', "class_weight"),
    ],
)
def test_malformed_linear_forms_need_what_they_break(tmp_path, body, message):
    path = tmp_path / "c.toml"
    path.write_text(
        '[[case]]\nname = "bad"\ncategory = "invalid targets"\nshape = [4, 5]\nseed = 0\n'
        'targets = { kind = "index" }\nops = ["softmax_ce"]\nlogits = { scale = 1.0 }\n' + body
    )
    with pytest.raises(CaseError, match=message):
        load_catalog([path])


def test_class_weights_of_the_wrong_length_first_entries(tmp_path):
    """Using the first V weights (PyTorch's chunked path) is garbage unless registered as
    ``first_entries``; then it must be exactly the well-formed loss. Raising passes."""
    p = replace(CASES["class_weights"].problem("softmax_ce", "float32", "none"), malformed="class_weight_length")
    assert p.handed_class_weight().shape == (6,) and not p.has_loss
    assert _judge(HONEST, p).outcome == "fail"  # the honest mutant ignores the extra weight: silent garbage
    reg = _registry(tmp_path, "np.softmax_ce", "class_weight_length", '{ invalid_targets = "first_entries" }')
    assert _judge(HONEST, p, reg).outcome == "deviation"
    assert _judge(MutantAdapter("class_weight_squared"), p, reg).outcome == "fail"  # not the first entries' loss
    assert _judge(Strict(), p).outcome == "pass"
    assert _judge(Strict(), p, reg).outcome == "fail"  # documented as returning, now raises: the entry is stale


def test_a_target_read_out_of_bounds_is_registered_not_judged_by_value(tmp_path):
    """``out_of_bounds_read`` (Liger's unchecked target length): returning is the documented behaviour,
    whatever the value; raising means the entry no longer holds."""
    p = CASES["targets_missing_row"].problem("softmax_ce", "float32", "mean")
    reg = _registry(tmp_path, "np.softmax_ce", "missing_row", '{ invalid_targets = "out_of_bounds_read" }')
    assert _judge(Lenient(), p).outcome == "fail"
    assert _judge(Lenient(), p, reg).outcome == "deviation"
    assert _judge(HONEST, p).outcome == "pass"  # raises
    assert _judge(HONEST, p, reg).outcome == "fail"


def test_real_vocabularies_are_behind_large_vocab():
    large = {c.name for c in CASES.values() if (c.linear or {}).get("large")}
    assert {f"linear_vocab_{v}" for v in (32000, 65537, 128256, 151936, 256000)} <= large
    assert all(CASES[n].shape[-1] >= 32000 for n in large)
    assert "linear_vocab_4099" not in large and "linear_random" not in large

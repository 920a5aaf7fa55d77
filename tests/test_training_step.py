"""A binding that is a training step (``Binding.step``, e.g. keras.Model.train_on_batch) computes its own
loss and gradient: the adapter calls it instead of differentiating ``fn``, and its result is judged like
any other binding's. Framework-free: NumPy."""

from dataclasses import replace

import numpy as np
import scipy.special as sp

from adapters.framework import FrameworkAdapter
from adapters.numpy_scipy import NumpyAdapter
from cases import load_catalog
from xentcheck.checks import Judge
from xentcheck.expectations import Registry
from xentcheck.protocol import Binding, Capabilities

CASES = {c.name: c for c in load_catalog()}


class Stepping(NumpyAdapter):
    """The NumPy adapter with gradients allowed (a step brings its own)."""

    run = FrameworkAdapter.run


def _step(x, i, compiled):
    """One mean softmax cross-entropy step on index targets: (loss, d loss / d x)."""
    y = np.eye(x.shape[-1])[i.target]
    logp = sp.log_softmax(x, axis=-1)
    n = x.shape[0]
    return -np.sum(y * logp) / n, (np.exp(logp) - y) / n


STEP = Binding(
    "step",
    "test.train_step",
    Capabilities("softmax_ce", frozenset({"index"}), frozenset({"mean"})),
    fn=None,
    step=_step,
)


def test_a_training_step_is_judged_on_its_own_loss_and_gradient():
    p = CASES["random_index"].problem("softmax_ce", "float64", "mean")
    for check in ("value", "grad"):
        rec = Judge(Registry(), {}).check(Stepping(), STEP, p, check)
        assert rec.outcome == "pass", rec.reason


def test_a_step_whose_gradient_is_off_fails():
    def doubled(x, i, compiled):
        loss, g = _step(x, i, compiled)
        return loss, 2 * g

    p = CASES["random_index"].problem("softmax_ce", "float64", "mean")
    rec = Judge(Registry(), {}).check(Stepping(), replace(STEP, step=doubled), p, "grad")
    assert rec.outcome == "fail"
    assert Judge(Registry(), {}).check(Stepping(), replace(STEP, step=doubled), p, "value").outcome == "pass"

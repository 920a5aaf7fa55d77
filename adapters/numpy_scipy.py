"""NumPy/SciPy adapter: the stable formulations written with scipy.special, and sklearn's log_loss.

No autodiff here, so bindings declare ``grad=False``. The reductions of the SciPy bindings are
NumPy code written in this module; their documented convention is the weighted average
(``mean`` divides by the sum of the per-example weights, as ``np.average`` does).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

import numpy as np
import scipy
import scipy.special as sp

from xentcheck.problem import Problem, numpy_dtype
from xentcheck.reference import Convention

from . import ALL_REDUCTIONS, FLOATS, Binding, Capabilities, Inputs, WorkerGroup
from .framework import FrameworkAdapter

CATEGORICAL = frozenset({"index", "onehot", "soft"})
BINARY = frozenset({"binary", "soft"})
OPTS = frozenset({"sample_weight", "spatial"})
#: bfloat16 is not a NumPy dtype (only the ml_dtypes extension adds it), so it is not offered
DTYPES = FLOATS | {"float16"}
WEIGHTED_MEAN = Convention(mean_by="weight_sum")


def _dense(x: np.ndarray, inp: Inputs) -> np.ndarray:
    """Index labels scattered to one-hot rows as NumPy does it: an adapter never validates input on the
    framework's behalf, so what NumPy indexing does with a bad label (raise, or wrap -1) is what is judged."""
    if inp.problem.target_kind != "index":
        return inp.target
    y = np.zeros(x.shape, dtype=x.dtype)
    np.put_along_axis(y, inp.target[..., None], 1, axis=-1)
    return y


def _reduce(loss: np.ndarray, inp: Inputs) -> np.ndarray:
    w = None
    if inp.sample_weight is not None:
        # one weight per row, or per element of a spatial input (N, d1, ...): trailing axes broadcast
        w = inp.sample_weight.reshape(inp.sample_weight.shape + (1,) * (loss.ndim - inp.sample_weight.ndim))
        loss = loss * w
    if inp.reduction == "none":
        return loss
    total = np.sum(loss)
    if inp.reduction == "sum":
        return total
    # the divisor in the loss's own dtype: a float64 scalar would promote a float32 mean to float64
    divisor = np.sum(np.broadcast_to(w, loss.shape)) if w is not None else loss.dtype.type(loss.size)
    with np.errstate(invalid="ignore"):  # the mean of nothing is 0/0 = NaN, as it should be
        return total / divisor


def _log_softmax_ce(z, inp):
    logp = sp.log_softmax(z, axis=-1)
    if inp.problem.target_kind == "index":
        loss = -np.take_along_axis(logp, inp.target[..., None], axis=-1)[..., 0]
    else:  # where=: a class with no target mass contributes 0, even at a -inf logit
        y = inp.target
        with np.errstate(invalid="ignore"):  # the 0 * -inf products are computed, then left out
            loss = -np.sum(y * logp, axis=-1, where=y != 0)
    return _reduce(loss, inp)


def _logsumexp_ce(z, inp):
    y = _dense(z, inp)
    lse = sp.logsumexp(z, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):  # 0 * (lse - (-inf)) is computed, then left out of the sum
        loss = np.sum(y * (lse - z), axis=-1, where=y != 0)
    return _reduce(loss, inp)


def _xlogy_categorical(p, inp):
    return _reduce(-np.sum(sp.xlogy(_dense(p, inp), p), axis=-1), inp)


def _xlogy_binary(p, inp):
    t = inp.target
    return _reduce(-(sp.xlogy(t, p) + sp.xlogy(1 - t, 1 - p)), inp)


def _log_expit_binary(z, inp):
    t = inp.target
    pw = inp.pos_weight if inp.pos_weight is not None else 1
    return _reduce(-(pw * t * sp.log_expit(z) + (1 - t) * sp.log_expit(-z)), inp)


def _sklearn_log_loss(p, inp):
    from sklearn.metrics import log_loss

    c = p.shape[-1]
    return np.asarray(
        log_loss(
            inp.target, p, normalize=inp.reduction == "mean", sample_weight=inp.sample_weight, labels=list(range(c))
        )
    )


def _bindings() -> list[Binding]:
    out = [
        Binding(
            "log_softmax",
            "scipy.special.log_softmax",
            Capabilities("softmax_ce", CATEGORICAL, options=OPTS, dtypes=DTYPES, grad=False),
            _log_softmax_ce,
            WEIGHTED_MEAN,
            "-sum(y * log_softmax(z)) (take_along_axis for index targets)",
        ),
        Binding(
            "logsumexp",
            "scipy.special.logsumexp",
            Capabilities("softmax_ce", CATEGORICAL, options=OPTS, dtypes=DTYPES, grad=False),
            _logsumexp_ce,
            WEIGHTED_MEAN,
            "sum(y * (logsumexp(z) - z)) over classes with target mass",
        ),
        Binding(
            "xlogy_categorical",
            "scipy.special.xlogy",
            Capabilities("categorical_ce", CATEGORICAL, options=OPTS, dtypes=DTYPES, grad=False),
            _xlogy_categorical,
            WEIGHTED_MEAN,
            "-sum(xlogy(y, p))",
        ),
        Binding(
            "xlogy_binary",
            "scipy.special.xlogy",
            Capabilities("bce", BINARY, options=OPTS, dtypes=DTYPES, grad=False),
            _xlogy_binary,
            WEIGHTED_MEAN,
            "-(xlogy(t, p) + xlogy(1 - t, 1 - p))",
        ),
        Binding(
            "log_expit",
            "scipy.special.log_expit",
            Capabilities("sigmoid_bce", BINARY, options=OPTS | {"pos_weight"}, dtypes=DTYPES, grad=False),
            _log_expit_binary,
            WEIGHTED_MEAN,
            "-(pw * t * log_expit(z) + (1 - t) * log_expit(-z))",
        ),
    ]
    if importlib.util.find_spec("sklearn") is not None:
        out.append(
            Binding(
                "sklearn.log_loss",
                "sklearn.metrics.log_loss",
                Capabilities(
                    "categorical_ce",
                    frozenset({"index"}),
                    reductions=ALL_REDUCTIONS - {"none"},
                    options=frozenset({"sample_weight"}),
                    dtypes=DTYPES,
                    grad=False,
                    min_classes=(2, "log_loss raises 'The labels array needs to contain at least two labels'"),
                ),
                _sklearn_log_loss,
                WEIGHTED_MEAN,
                "mean (normalize=True) or sum (normalize=False), weighted average",
            )
        )
    return out


class NumpyAdapter(FrameworkAdapter):
    name = "numpy"
    #: the xdist worker group (xentcheck.protocol.WorkerGroup): after the longer frameworks' groups
    worker_groups = (WorkerGroup("numpy", 19),)

    def environment(self) -> dict:
        env = {"numpy": np.__version__, "scipy": scipy.__version__}
        if importlib.util.find_spec("sklearn") is not None:
            # from its metadata: importing scikit-learn (about a second) waits for its binding's first call,
            # which a worker that runs no NumPy check never makes
            env["scikit-learn"] = importlib.metadata.version("scikit-learn")
        return env

    def bindings(self) -> list[Binding]:
        return _bindings()

    def asarray(self, a, dtype):
        return np.asarray(a).astype(numpy_dtype(dtype))

    def asindex(self, a):
        return np.asarray(a, dtype=np.int64)

    def to_numpy(self, t):
        t = np.asarray(t)
        return t.astype(np.float64), t.dtype.name

    def bare(self, binding_name, problem, *, grad):
        """Hand-written ``scipy.special.log_softmax`` on index targets (the adapter-overhead baseline)."""
        if binding_name != "log_softmax" or grad or problem.target_kind != "index" or problem.x.ndim != 2:
            return None
        x, t = self.asarray(problem.x, problem.dtype), problem.target
        total = {"none": lambda v: v, "sum": np.sum, "mean": np.mean}[problem.reduction]
        return lambda: total(-np.take_along_axis(sp.log_softmax(x, axis=-1), t[:, None], axis=-1)[:, 0])

    def run(self, binding: Binding, problem: Problem, *, grad, cotangent, mode="eager"):
        return super().run(binding, problem, grad=False, cotangent=None, mode=mode)


ADAPTER = NumpyAdapter()

"""The vocabulary shared by cases, adapters and the oracle: ops, target kinds and one concrete problem.

A :class:`Problem` is one fully materialised input: arrays already rounded to the dtype under test
(stored as float64 so the oracle sees exactly what the framework sees), in the canonical layout
with the class axis last. Adapters translate it to their own conventions (e.g. channels-first).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CATEGORICAL_OPS",
    "DTYPES",
    "LOGIT_OPS",
    "MALFORMED",
    "NO_LOSS",
    "OPS",
    "OPTIONS",
    "REDUCTIONS",
    "SMALLEST_NORMAL",
    "Problem",
    "numpy_dtype",
    "overflowed",
    "round_to",
    "sequential_sum",
    "unit_roundoff",
]

#: The ops: the cells of the classic taxonomy (input space x output kind); the docs' list is generated from
#: this one (xentcheck.oplist)
OPS = ("softmax_ce", "categorical_ce", "sigmoid_bce", "bce", "nll", "linear_ce")
#: nll: the negative log-likelihood of given log-probabilities (which need not normalise), -w_t x_t
#: linear_ce: softmax CE of the logits X W^T + b (hidden states X, classifier W [V, D]); see xentcheck.linear_ce
CATEGORICAL_OPS = frozenset({"softmax_ce", "categorical_ce", "nll", "linear_ce"})
LOGIT_OPS = frozenset({"softmax_ce", "sigmoid_bce"})

REDUCTIONS = ("none", "sum", "mean")

#: Options a case may use; a binding lists the ones it maps in its capabilities.
OPTIONS = (
    "class_weight",
    "sample_weight",
    "pos_weight",
    "ignore_index",
    "label_smoothing",
    "spatial",
    "channels_first",
    "where",
    "bias",
    "softcap",
    "z_loss",
)
#: the options of op linear_ce alone: a classifier bias, logit soft-capping, the z-loss (lse_square_scale)
LINEAR_OPTIONS = frozenset({"bias", "softcap", "z_loss"})

DTYPES = ("float16", "bfloat16", "float32", "float64")

#: How the errors layer hands a binding a malformed input (the problem keeps the well-formed one,
#: so the oracle knows the answer where one exists): class indices as floats, dense targets as
#: integers, one axis too many (index) or too few (dense, last axis 1), one example missing, a dense
#: target with one class more than the input, integer logits (integer-valued, so their loss exists).
MALFORMED = (
    "float_labels",
    "int_targets",
    "target_rank",
    "missing_row",
    "class_mismatch",
    "int_logits",
    # op linear_ce: the classifier W with one hidden unit more than X (D + 1), the bias with one class more
    # than W, and (any op with class weights) class weights with one class more than there are
    "hidden_mismatch",
    "bias_shape",
    "class_weight_length",
)
#: the malformed forms for which no loss exists (raising is the only right answer)
NO_LOSS = ("missing_row", "class_mismatch", "hidden_mismatch", "bias_shape", "class_weight_length")


#: the smallest normal number of each dtype (below it: subnormals, which CPU kernels may flush to zero)
SMALLEST_NORMAL = {"float16": 2.0**-14, "bfloat16": 2.0**-126, "float32": 2.0**-126, "float64": 2.0**-1022}


def unit_roundoff(dtype: str) -> float:
    """u = eps / 2 of a floating dtype, the bound on one correctly rounded operation's relative error."""
    bits = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}[dtype]
    return 2.0**-bits


def numpy_dtype(dtype: str) -> np.dtype:
    """The NumPy dtype for a dtype name (bfloat16 through ml_dtypes, which the frameworks ship)."""
    if dtype == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def round_to(a: np.ndarray, dtype: str) -> np.ndarray:
    """Round float64 values to ``dtype`` and back, so the oracle evaluates exactly the framework's inputs.
    A value beyond the dtype's range becomes +-inf, as correct rounding says (on purpose: no warning)."""
    with np.errstate(over="ignore"):
        return np.asarray(a, dtype=np.float64).astype(numpy_dtype(dtype)).astype(np.float64)


def overflowed(a: np.ndarray, dtype: str) -> np.ndarray:
    """``a`` with every finite value beyond ``dtype``'s range as the +-inf that correct rounding gives
    there, every other value as it is (only the overflow of a value the dtype holds, not its rounding)."""
    r = round_to(a, dtype)
    return np.where(np.isinf(r) & np.isfinite(a), r, a)


def sequential_sum(v: np.ndarray, dtype: str, axis: int | None = None) -> np.ndarray:
    """The sum of ``v`` rounded to ``dtype`` and accumulated one element at a time in it, each partial
    sum rounded (along ``axis``; None: every element, in C order)."""
    v = round_to(v, dtype)
    if axis is None:
        v, axis = v.reshape(-1), 0
    v = np.moveaxis(v, axis, 0)
    total = np.zeros(v.shape[1:])
    for k in range(v.shape[0]):  # sequential on purpose: that is the policy
        total = round_to(total + v[k], dtype)
    return total


@dataclass(frozen=True)
class Problem:
    """One materialised input for one op.

    ``x`` holds logits (softmax_ce, sigmoid_bce) or probabilities (categorical_ce, bce), class axis last.
    ``target`` is an int64 array of shape ``x.shape[:-1]`` for index targets, otherwise a float64
    array shaped like ``x``.
    """

    case: str
    op: str
    dtype: str
    x: np.ndarray
    target: np.ndarray
    target_kind: str
    reduction: str = "none"
    class_weight: np.ndarray | None = None
    sample_weight: np.ndarray | None = None
    pos_weight: np.ndarray | None = None
    ignore_index: int | None = None
    label_smoothing: float = 0.0
    category: str = ""
    invalid_target: int | None = None  # a planted out-of-range label (index targets): no mathematical value
    malformed: str | None = None  # one of MALFORMED: the target is handed over in that wrong form
    #: the binding gets the class axis second, (N, C, d1, ...), and is told so (axis=1); the problem
    #: itself stays class-last, the adapter moves the axis inside the differentiated function
    channels_first: bool = False
    #: softmax_ce: the classes that take part (a boolean array shaped like ``x``, optax's ``where=``):
    #: an excluded class is as a -inf logit, and a row with no class included contributes nothing
    where: np.ndarray | None = None
    #: the upstream gradient a case declares for its unreduced checks (shaped like the unreduced
    #: output), else None: the checks then draw a seeded one
    cotangent: np.ndarray | None = None
    #: linear_ce: ``x`` holds the hidden states X [N, D] (or [B, T, D]); the classifier W [V, D], its
    #: optional bias [V], the soft-cap c of the logits (c tanh(z / c), None: none) and the z-loss scale
    #: (lse_square_scale: s lse^2 added per non-ignored row), all rounded to ``dtype`` but the scalars
    weight_matrix: np.ndarray | None = None
    bias: np.ndarray | None = None
    softcap: float | None = None
    z_loss: float = 0.0

    def handed_target(self) -> tuple[np.ndarray, bool]:
        """The target as the binding receives it, and whether it goes as integers (else as floats)."""
        t, as_index = self.target, self.target_kind == "index"
        if self.malformed == "float_labels":
            as_index = False
        elif self.malformed == "int_targets":
            t, as_index = t.astype(np.int64), True
        elif self.malformed == "target_rank":
            t = t[..., None] if self.target_kind == "index" else t[..., 0]
        elif self.malformed == "missing_row":
            t = t[:-1]
        elif self.malformed == "class_mismatch":  # one class more than the input has
            t = np.concatenate([t, np.zeros(t.shape[:-1] + (1,))], axis=-1)
        return t, as_index

    def handed_linear(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """linear_ce: the classifier W and the bias as the binding receives them (``hidden_mismatch``: W
        with a column of zeros more than X has; ``bias_shape``: the bias with one class more than W)."""
        w, b = self.weight_matrix, self.bias
        if self.malformed == "hidden_mismatch" and w is not None:
            w = np.concatenate([w, np.zeros((w.shape[0], 1))], axis=1)
        if self.malformed == "bias_shape":
            b = np.concatenate([np.zeros(self.num_classes) if b is None else b, [0.0]])
        return w, b

    def handed_class_weight(self) -> np.ndarray | None:
        """The class weights as the binding receives them (``class_weight_length``: one weight more)."""
        if self.malformed == "class_weight_length" and self.class_weight is not None:
            return np.concatenate([self.class_weight, [1.0]])
        return self.class_weight

    def handed_x(self) -> tuple[np.ndarray, bool]:
        """The input as the binding receives it, and whether it goes as integers (``int_logits``)."""
        if self.malformed == "int_logits":
            return np.rint(self.x).astype(np.int64), True
        return self.x, False

    @property
    def invalid_input(self) -> bool:
        """True for the errors layer's problems: an out-of-range label or a malformed target."""
        return self.invalid_target is not None or self.malformed is not None

    @contextmanager
    def expected_noise(self) -> Iterator[None]:
        """Silence the warnings this input provokes on purpose, and only those: floating-point warnings
        (NumPy's and what computes through it) where the input holds inf or NaN, and the "num_classes > 1"
        warning of a one-class problem, and the cast warning of integer logits. A warning on finite input is
        real and still shows."""
        with warnings.catch_warnings():
            if self.num_classes == 1:
                warnings.filterwarnings("ignore", message=r".*num_classes > 1")
            if self.malformed == "int_logits":  # JAX casts its -inf sentinel to the integer dtype
                warnings.filterwarnings("ignore", message=r"invalid value encountered in cast")
            if np.all(np.isfinite(self.x)):
                yield
            else:
                with np.errstate(all="ignore"):
                    yield

    @property
    def has_loss(self) -> bool:
        """False when no loss exists (an out-of-range label, a missing example): raising is the only right answer
        for the invalid part; a malformed but unambiguous target still has the loss of the well-formed one."""
        return self.invalid_target is None and self.malformed not in NO_LOSS

    @property
    def num_classes(self) -> int:
        if self.weight_matrix is not None:  # linear_ce: the classifier's rows are the classes
            return int(self.weight_matrix.shape[0])
        return int(self.x.shape[-1])

    @property
    def categorical(self) -> bool:
        return self.op in CATEGORICAL_OPS

    @property
    def spatial(self) -> bool:
        """True when there are extra dimensions between the batch and the class axis (N, d1, ..., C)."""
        return self.x.ndim > 2

    def options_used(self) -> frozenset[str]:
        """The options this problem exercises, matched against a binding's capabilities."""
        used = set()
        if self.class_weight is not None:
            used.add("class_weight")
        if self.sample_weight is not None:
            used.add("sample_weight")
        if self.pos_weight is not None:
            used.add("pos_weight")
        if self.ignore_index is not None:
            used.add("ignore_index")
        if self.label_smoothing:
            used.add("label_smoothing")
        if self.spatial and self.op != "linear_ce":  # linear_ce's [B, T, D] is a batch of tokens
            used.add("spatial")
        if self.channels_first:
            used.add("channels_first")
        if self.where is not None:
            used.add("where")
        if self.bias is not None:
            used.add("bias")
        if self.softcap is not None:
            used.add("softcap")
        if self.z_loss:
            used.add("z_loss")
        return frozenset(used)

    def dense_target(self) -> np.ndarray:
        """The target as a dense float64 array shaped like ``x`` (ignored index rows become all zeros)."""
        if self.target_kind != "index":
            return self.target
        t = self.target
        valid = self.valid_mask()
        dense = np.zeros(self.x.shape[:-1] + (self.num_classes,), dtype=np.float64)
        idx = np.where(valid, t, 0)
        np.put_along_axis(dense, idx[..., None], 1.0, axis=-1)
        return dense * valid[..., None]

    def valid_mask(self) -> np.ndarray:
        """Per-example mask of rows with a usable label: not ``ignore_index``, not the planted invalid one."""
        shape = self.x.shape[:-1] if self.categorical else self.x.shape
        if self.target_kind != "index":
            return np.ones(shape, dtype=bool)
        return ~self.ignored_rows() & ~self.invalid_rows()

    def ignored_rows(self) -> np.ndarray:
        if self.ignore_index is None or self.target_kind != "index":
            return np.zeros(self.target.shape, dtype=bool)
        return self.target == self.ignore_index

    def invalid_rows(self) -> np.ndarray:
        """Rows whose label is the planted invalid one (the oracle treats them as having no loss)."""
        if self.invalid_target is None or self.target_kind != "index":
            return np.zeros(self.target.shape, dtype=bool)
        return self.target == self.invalid_target

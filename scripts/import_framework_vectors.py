"""Regenerate cases/imported/frameworks.toml: test vectors from the frameworks' own unit tests, where the
test states its expected loss as a literal (a number a person worked out, or an arithmetic expression
of literals), never where the test computes it by calling the framework or a NumPy re-implementation.

Sources, each pinned to the commit (or release) the vectors were read from, and their licences:

* Keras, keras/src/losses/losses_test.py at keras-team/keras@3422977a (Apache-2.0)
* optax, optax/losses/_classification_test.py at google-deepmind/optax@2edbcbe2 (Apache-2.0)
* scikit-learn 1.9.1, sklearn/metrics/tests/test_classification.py and the log_loss docstring in
  sklearn/metrics/_classification.py (BSD-3-Clause)
* TensorFlow, tensorflow/python/kernel_tests/nn_ops/xent_op_test_base.py at tensorflow/tensorflow@673e6e51
  (Apache-2.0)

The numbers below are transcribed by hand; each vector names its test and the exact text of the line that
states the expected value (``literal``). With the source files at hand the script checks that every
literal occurs in its test and writes the line into the source link:

    .venv/bin/python scripts/import_framework_vectors.py \\
        keras=PATH/keras/src/losses/losses_test.py optax=PATH/optax/losses/_classification_test.py \\
        sklearn=PATH/sklearn/metrics/tests/test_classification.py \\
        sklearn_doc=PATH/sklearn/metrics/_classification.py \\
        tensorflow=PATH/tensorflow/python/kernel_tests/nn_ops/xent_op_test_base.py

(TensorFlow's repository is too large to fetch whole; its one vector records the line, read from the file
at the pinned commit, and the script checks it when the file is given.)

A literal printed to few digits carries ``decimals`` (the places printed): the oracle check allows half
a unit in the last place (``rounding = "nearest"``), or one unit where the source cuts digits off
(``rounding = "truncated"``). Keras's literals are cut as often as rounded (0.3239 for 0.3239681,
0.0573 for 0.0573756, 3.3333 for 3.3333787, but 0.000459 for 0.000458767), so all of them are held to one
unit in the last printed place; so is TensorFlow's worked example, whose own comment cuts
(-log(0.25) = 1.386, then 1.3862 for 1.3862944). A literal that is an expression
(``400.0 * label_smoothing / 3.0``) is the author's idealisation; it is held to the places its assertion
names (``assertAlmostEqual``'s ``decimal=3`` in Keras). The source's mean divisor, last-axis averaging
and documented numerical policies (Keras's probability clip and renormalisation, as the expectations
registry names them) say how it computed the value (xentcheck/ground_truth.py).

What is left out, and why: tests whose expected value is computed by the framework or by NumPy in the test
(Keras's test_label_smoothing_with_axis, optax's integer-label and axis tests, TensorFlow's _npXent
comparisons, scikit-learn's ``bernoulli.logpmf`` comparison); exact-zero "all correct" tests of clipped
probabilities (``assertAlmostEqual(loss, 0.0)`` for p = 1 is 1e-7 off by the clip, within decimal=3
only); the sum doubling of scikit-learn's multiclass vector (``0.6904911 * 6``, the same literal again);
losses xentcheck does not cover (focal, poly, hinge, CTC). Two Keras literals are wrong beyond their
printed digits and are not imported: CategoricalCrossentropyTest.test_scalar_weighted states 0.7449 and
0.1317 for sample_weight = 2.3, but the losses are 2.3 x 0.3239681 = 0.7451267 and 2.3 x 0.0573756 =
0.1319640; the literals are 2.3 x the already-cut unweighted literals (2.3 x 0.3239 = 0.74497,
2.3 x 0.0573 = 0.13179), cut again, so they are off by 2.3e-4 and 2.6e-4, over two units of their
fourth place (Keras's assertAlmostEqual(decimal=3) accepts up to 1.5e-3). The sparse test repeats them.
PyTorch's test/test_nn.py states no cross-entropy value as a literal (its tests compare with reference
functions or between devices), so it contributes none.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "cases" / "imported" / "frameworks.toml"
#: vectors that repeat what a default-run vector already judges (the same inputs under another reduction
#: or target form, a mirror image, a weaker literal): written to more/, run with --cases=cases/imported/more,
#: so that the default run stays inside its time budget
MORE = OUT.parent / "more" / "frameworks_more.toml"
REPEATS = {
    "keras_bce_logits_scalar_weight",  # scalar weight: keras_bce_probs_scalar_weight
    "keras_bce_logits_sample_weight",  # 10.0, one decimal; keras_bce_probs_sample_weight
    "keras_cce_logits_unweighted",  # the inputs of keras_cce_logits_none, averaged
    "keras_scce_logits_sample_weight",  # keras_cce_logits_sample_weight with index labels
    "optax_softmax_ce",  # the first two rows of optax_safe_softmax_ce
    *(f"optax_sigmoid_bce_{i}" for i in (2, 3, 5, 6, 7, 9)),  # mirror images (z, t) -> (-z, 1 - t)
}
#: arrays holding an infinity (TOML declarations take finite numbers only) are kept here, bit-exact
NPZ = OUT.with_suffix(".npz")

KERAS = (
    "https://github.com/keras-team/keras/blob/3422977a5e38fb2f7709aaa9a08e47f0c43d0f60/keras/src/losses/losses_test.py"
)
OPTAX = (
    "https://github.com/google-deepmind/optax/blob/2edbcbe2390da13983b92cbef94ac0460ecde1c5/"
    "optax/losses/_classification_test.py"
)
SKLEARN = "https://github.com/scikit-learn/scikit-learn/blob/1.9.1/sklearn/metrics/tests/test_classification.py"
SKLEARN_DOC = "https://github.com/scikit-learn/scikit-learn/blob/1.9.1/sklearn/metrics/_classification.py"
TENSORFLOW = (
    "https://github.com/tensorflow/tensorflow/blob/673e6e51fb828d9d0acaa12c3a2652140097dd32/"
    "tensorflow/python/kernel_tests/nn_ops/xent_op_test_base.py"
)
SOURCES = {
    "keras": (KERAS, "Apache-2.0 (Keras authors)"),
    "optax": (OPTAX, "Apache-2.0 (DeepMind Technologies Limited)"),
    "sklearn": (SKLEARN, "BSD-3-Clause (scikit-learn developers)"),
    "sklearn_doc": (SKLEARN_DOC, "BSD-3-Clause (scikit-learn developers)"),
    "tensorflow": (TENSORFLOW, "Apache-2.0 (The TensorFlow Authors)"),
}

# Keras's from-probabilities paths (the registry's keras-categorical-renormalize-clip,
# keras-sparse-clip-renormalize, keras-binary-clip), as the source computes
KERAS_CATEGORICAL = {"renormalize": "before_clip", "prob_clip": 1e-7}
KERAS_SPARSE = {"prob_clip": 1e-7, "renormalize": "after_clip"}
KERAS_BINARY = {"prob_clip": 1e-7}

EYE3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
K_PROBS = [[0.9, 0.05, 0.05], [0.5, 0.89, 0.6], [0.05, 0.01, 0.94]]
K_LOGITS = [[8.0, 1.0, 1.0], [0.0, 9.0, 1.0], [2.0, 3.0, 5.0]]
K_SW = [1.2, 3.4, 5.6]
KB_PROBS = [[0.9, 0.1, 0.2], [0.3, 0.8, 0.1], [0.1, 0.2, 0.7]]
KB_TRUE = [[1.0, 0.0], [1.0, 0.0]]
KB_PRED = [[1.0, 1.0], [1.0, 0.0]]
KB_LTRUE = [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]
KB_LOGITS = [[10.0, -10.0, 10.0], [10.0, 10.0, -10.0]]


def _keras(name, cls, test, literal, op, x, targets, value, decimals, **kw):
    return {"name": f"keras_{name}", "src": "keras", "cls": cls, "test": test, "literal": literal, "op": op,
            "x": x, "targets": targets, "value": value, "decimals": decimals, "dtype": "float32",
            "mean_by": "count", "rounding": "truncated", **kw}  # fmt: skip


BCE, CCE, SCCE = "BinaryCrossentropyTest", "CategoricalCrossentropyTest", "SparseCategoricalCrossentropyTest"
OH3 = ("onehot", EYE3)
IDX3 = ("index", [0, 1, 2])
VECTORS = [
    # --- Keras: BinaryCrossentropy (per-example loss = mean over the last axis) ---------------------
    _keras("bce_probs_unweighted", BCE, "test_unweighted", "self.assertAllClose(loss, 0.20046903)", "bce",
           KB_PROBS, ("binary", EYE3), 0.20046903, 8, policies=KERAS_BINARY),
    _keras("bce_probs_saturated", BCE, "test_unweighted", "self.assertAlmostEqual(loss, 3.98559)", "bce",
           KB_PRED, ("binary", KB_TRUE), 3.98559, 5, policies=KERAS_BINARY,
           note="p = 1 with target 0 is clipped to 1 - 1e-7 (in float32): -log(1.1920929e-07) = 15.942385"),
    _keras("bce_logits_unweighted", BCE, "test_unweighted", "self.assertAlmostEqual(loss, 3.3333)",
           "sigmoid_bce", KB_LOGITS, ("binary", KB_LTRUE), 3.3333, 4,
           note="10/3 cut to 4 places: the exact loss is 3.3333787 (each logit of 10 adds log(1 + e^-10) = "
           "4.54e-5), so the last digit is truncated, not rounded"),
    _keras("bce_probs_scalar_weight", BCE, "test_scalar_weighted", "self.assertAlmostEqual(loss, 9.1668)", "bce",
           KB_PRED, ("binary", KB_TRUE), 9.1668, 4, sample_weight=2.3, policies=KERAS_BINARY,
           note="2.3 x 3.98559...: the exact 9.166848 is cut to 4 places"),
    _keras("bce_logits_scalar_weight", BCE, "test_scalar_weighted", "self.assertAlmostEqual(loss, 7.666)",
           "sigmoid_bce", KB_LOGITS, ("binary", KB_LTRUE), 7.666, 3, sample_weight=2.3,
           note="2.3 x 10/3 cut to 3 places (exact 7.666771)"),
    _keras("bce_probs_sample_weight", BCE, "test_sample_weighted", "self.assertAlmostEqual(loss, 4.7827)", "bce",
           KB_PRED, ("binary", KB_TRUE), 4.7827, 4, sample_weight=[1.2, 3.4], policies=KERAS_BINARY),
    _keras("bce_logits_sample_weight", BCE, "test_sample_weighted", "self.assertAlmostEqual(loss, 10.0)",
           "sigmoid_bce", KB_LOGITS, ("binary", KB_LTRUE), 10.0, 1, sample_weight=[4.0, 3.0]),
    _keras("bce_logits_none", BCE, "test_no_reduction", "self.assertAllClose(loss, [0.0, 6.666], atol=1e-3)",
           "sigmoid_bce", KB_LOGITS, ("binary", KB_LTRUE), [0.0, 6.666], [1, 3], reduction="none",
           mean_last_axis=True, note="20/3 cut to 3 places (exact 6.6667121)"),
    _keras("bce_logits_label_smoothing", BCE, "test_label_smoothing",
           "expected_value = (10.0 + 5.0 * label_smoothing) / 3.0", "sigmoid_bce", [[10.0, -10.0, -10.0]],
           ("binary", [[1.0, 0.0, 1.0]]), 3.5, 3, label_smoothing=0.1,
           note="an expression, held to its assertAlmostEqual's decimal=3 (exact 3.5000454)"),
    # --- Keras: CategoricalCrossentropy --------------------------------------------------------------
    _keras("cce_probs_unweighted", CCE, "test_unweighted", "self.assertAlmostEqual(loss, 0.3239)",
           "categorical_ce", K_PROBS, OH3, 0.3239, 4, policies=KERAS_CATEGORICAL,
           note="the second row sums to 1.99: Keras divides it by its sum, -log(0.89 / 1.99)"),
    _keras("cce_logits_unweighted", CCE, "test_unweighted", "self.assertAlmostEqual(loss, 0.0573)", "softmax_ce",
           K_LOGITS, OH3, 0.0573, 4),
    _keras("cce_probs_sample_weight", CCE, "test_sample_weighted", "self.assertAlmostEqual(loss, 1.0696)",
           "categorical_ce", K_PROBS, OH3, 1.0696, 4, sample_weight=K_SW, policies=KERAS_CATEGORICAL),
    _keras("cce_logits_sample_weight", CCE, "test_sample_weighted", "self.assertAlmostEqual(loss, 0.31829)",
           "softmax_ce", K_LOGITS, OH3, 0.31829, 5, sample_weight=K_SW),
    _keras("cce_logits_none", CCE, "test_no_reduction",
           "self.assertAllClose(loss, (0.001822, 0.000459, 0.169846))", "softmax_ce", K_LOGITS, OH3,
           [0.001822, 0.000459, 0.169846], 6, reduction="none"),
    _keras("cce_logits_label_smoothing", CCE, "test_label_smoothing", "expected_value = 400.0 * label_smoothing / 3.0",
           "softmax_ce", [[100.0, -100.0, -100.0]], ("onehot", [[1.0, 0.0, 0.0]]), 40.0 / 3.0, 3,
           label_smoothing=0.1, note="an expression, held to its assertAlmostEqual's decimal=3"),
    # --- Keras: SparseCategoricalCrossentropy -------------------------------------------------------
    _keras("scce_probs_unweighted", SCCE, "test_unweighted", "self.assertAlmostEqual(loss, 0.3239, 3)",
           "categorical_ce", K_PROBS, IDX3, 0.3239, 4, policies=KERAS_SPARSE),
    _keras("scce_logits_sample_weight", SCCE, "test_sample_weighted", "self.assertAlmostEqual(loss, 0.31829, 3)",
           "softmax_ce", K_LOGITS, IDX3, 0.31829, 5, sample_weight=K_SW),
    _keras("scce_logits_none", SCCE, "test_no_reduction", "self.assertAllClose(loss, (0.001822, 0.000459, 0.169846))",
           "softmax_ce", K_LOGITS, IDX3, [0.001822, 0.000459, 0.169846], 6, reduction="none"),
    _keras("scce_ignore_class", SCCE, "test_ignore_class", "self.assertAllClose(loss, [[0.0, 1.480129]])",
           "softmax_ce", [[[0.854, 0.698, 0.598], [0.088, 0.86, 0.018]]], ("index", [[-1, 2]]), [[0.0, 1.480129]],
           [1, 6], reduction="none", ignore_index=-1),
    # --- optax -------------------------------------------------------------------------------------
    {"name": "optax_softmax_ce", "src": "optax", "cls": "SoftmaxCrossEntropyTest", "test": "setUp",
     "literal": "self.exp = np.array([9.00013, 3.0696733], dtype=np.float32)", "op": "softmax_ce",
     "x": [[10.0, 1.0, -2.0], [1.0, 4.0, 0.2]], "targets": ("onehot", [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
     "value": [9.00013, 3.0696733], "decimals": [5, 7], "reduction": "none", "dtype": "float32"},
    {"name": "optax_safe_softmax_ce", "src": "optax", "cls": "SafeSoftmaxCrossEntropyTest", "test": "setUp",
     "literal": "np.inf,", "op": "softmax_ce",
     "x": [[10.0, 1.0, -2.0], [1.0, 4.0, 0.2], [-math.inf, 0.0, 0.0], [-math.inf, 0.0, 0.0],
           [-math.inf, 0.0, -math.inf]],
     "targets": ("soft", [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.4, 0.3, 0.3], [0.0, 1.0, 0.0]]),
     "value": [9.00013, 3.0696733, 0.693147, math.inf, 0.0], "decimals": [5, 7, 6, 0, 1], "reduction": "none",
     "dtype": "float32", "note": "-inf logits: a class the target puts no mass on contributes nothing (0 log 0 = 0); "
     "mass on a -inf logit is an infinite loss"},
    *[
        {"name": f"optax_sigmoid_bce_{i}", "src": "optax", "cls": "SigmoidCrossEntropyTest",
         "test": "test_sigmoid_cross_entropy", "literal": f"'expected': {lit},", "op": "sigmoid_bce",
         "x": [[z0], [z1]], "targets": ("binary", [[t0], [t1]]), "value": value, "decimals": dec,
         "dtype": "float32", "mean_by": "count"}
        for i, (z0, z1, t0, t1, lit, value, dec) in enumerate([
            (-1e09, -1e-09, 1.0, 0.0, "5e08", 5e08, None),
            (-1e09, -1e-09, 0.0, 1.0, "0.3465736", 0.3465736, 7),
            (1e09, 1e-09, 1.0, 0.0, "0.3465736", 0.3465736, 7),
            (1e09, 1e-09, 0.0, 1.0, "5e08", 5e08, None),
            (-1e09, 1e-09, 1.0, 0.0, "5e08", 5e08, None),
            (-1e09, 1e-09, 0.0, 1.0, "0.3465736", 0.3465736, 7),
            (1e09, -1e-09, 1.0, 0.0, "0.3465736", 0.3465736, 7),
            (1e09, -1e-09, 0.0, 1.0, "5e08", 5e08, None),
            (0.0, 0.0, 1.0, 0.0, "0.6931472", 0.6931472, 7),
            (0.0, 0.0, 0.0, 1.0, "0.6931472", 0.6931472, 7),
        ])
    ],
    # --- scikit-learn: log_loss (probabilities, labels sorted: "ham" = 0, "spam" = 1) --------------------
    {"name": "sklearn_log_loss_multiclass", "src": "sklearn", "cls": None, "test": "test_log_loss",
     "literal": "assert_allclose(loss, 0.6904911)", "op": "categorical_ce",
     "x": [[0.2, 0.7, 0.1], [0.6, 0.2, 0.2], [0.6, 0.1, 0.3]], "targets": ("index", [1, 0, 2]),
     "value": 0.6904911, "decimals": 7, "dtype": "float64", "mean_by": "count"},
    {"name": "sklearn_log_loss_string_labels", "src": "sklearn", "cls": None, "test": "test_log_loss",
     "literal": "assert_allclose(loss, 0.7469410)", "op": "categorical_ce",
     "x": [[0.3, 0.7], [0.6, 0.4], [0.4, 0.6], [0.7, 0.3]], "targets": ("index", [0, 1, 1, 0]),
     "value": 0.7469410, "decimals": 7, "dtype": "float64", "mean_by": "count"},
    {"name": "sklearn_log_loss_docstring", "src": "sklearn_doc", "cls": None, "test": "log_loss",
     "literal": "0.21616", "op": "categorical_ce",
     "x": [[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]], "targets": ("index", [1, 0, 0, 1]),
     "value": 0.21616, "decimals": 5, "dtype": "float64", "mean_by": "count"},
    # --- TensorFlow: the worked example in testNpXent's comment --------------------------------------
    {"name": "tf_xent_worked_example", "src": "tensorflow", "cls": "XentOpTestBase", "test": "testNpXent",
     "literal": "np.array([1.3862, 1.9401]), np_loss, rtol=1.e-3, atol=1.e-3)", "op": "softmax_ce",
     "x": [[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]],
     "targets": ("soft", [[0.0, 0.0, 0.0, 1.0], [0.0, 0.5, 0.5, 0.0]]),
     "line": 136, "value": [1.3862, 1.9401], "decimals": 4, "rounding": "truncated", "reduction": "none",
     "dtype": "float64",
     "note": "ln 4 = 1.3862944 and 1.9401897 cut to 4 places (the comment's own '-log(0.25) = 1.386' truncates)"},
]  # fmt: skip


def locate(text: str, cls: str | None, test: str, literal: str) -> int:
    """The line (1-based) of ``literal`` in ``test`` (of class ``cls``) in the source ``text``: in its
    body, or for a parameterised test in the decorator between the class and the test."""
    lines = text.splitlines()
    top = next(i for i, s in enumerate(lines) if s.startswith(f"class {cls}(")) if cls else 0
    start = next(i for i in range(top, len(lines)) if f"def {test}(" in lines[i])
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith(("def ", "class "))), len(lines)
    )
    for i in [*range(start, end), *range(top, start)]:
        if literal in lines[i]:
            return i + 1
    raise LookupError(f"{literal!r} is not in {cls or ''}.{test}")


def _toml(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v)


def _shape(x) -> list[int]:
    out = []
    while isinstance(x, list):
        out.append(len(x))
        x = x[0]
    return out


def _array(values, key: str, arrays: dict) -> str:
    """``{ values = ... }``, or a ``values_file`` into frameworks.npz where a value is not finite."""
    a = np.asarray(values, dtype=np.float64)
    if np.all(np.isfinite(a)):
        return f"{{ values = {_toml(values)} }}"
    arrays[key] = a
    return f'{{ values_file = "{NPZ.name}:{key}" }}'


def case_lines(v: dict, line: int, arrays: dict) -> list[str]:
    url, licence = SOURCES[v["src"]]
    where = f"{v['cls']}.{v['test']}" if v["cls"] else v["test"]
    kind, tvals = v["targets"]
    probs = v["op"] in ("bce", "categorical_ce")
    reduction = v.get("reduction", "mean")
    kind_of = "docstring example of" if v["src"].endswith("_doc") else "unit test"
    description = f"{v['src'].split('_')[0]} {kind_of} {where}: {v['literal']}"
    out = [
        "[[case]]",
        f"name = {_toml(v['name'])}",
        'category = "imported"',
        f"description = {_toml(description)}",
        f"ops = [{_toml(v['op'])}]",
        f"shape = {_shape(v['x'])}",
        "seed = 0",
        f"dtypes = [{_toml(v['dtype'])}]",
        f"reductions = [{_toml(reduction)}]",
        f"{'probs' if probs else 'logits'} = {_array(v['x'], v['name'] + '_x', arrays)}",
        f"targets = {{ kind = {_toml(kind)}, values = {_toml(tvals)} }}",
    ]
    for key in ("sample_weight", "label_smoothing", "ignore_index"):
        if key in v:
            out.append(f"{key} = {_toml(v[key])}")
    exp = [f"value = {_array(v['value'], v['name'] + '_loss', arrays)}", f"source = {_toml(f'{url}#L{line}')}"]
    if "mean_by" in v:
        exp.append(f"mean_by = {_toml(v['mean_by'])}")
    exp.append(f"dtype = {_toml(v['dtype'])}")
    if v.get("mean_last_axis"):
        exp.append("mean_last_axis = true")
    if v.get("policies"):
        exp.append("policies = { " + ", ".join(f"{k} = {_toml(p)}" for k, p in v["policies"].items()) + " }")
    if v.get("decimals") is not None:
        exp.append(f"decimals = {_toml(v['decimals'])}")
    if "rounding" in v:
        exp.append(f"rounding = {_toml(v['rounding'])}")
    exp += [f"test = {_toml(where)}", f"literal = {_toml(v['literal'])}", f"licence = {_toml(licence)}"]
    if "note" in v:
        out.insert(0, f"# {v['note']}")
    out.append("expected = { " + ", ".join(exp) + " }")
    return [*out, ""]


def main(argv: list[str]) -> None:
    paths = dict(a.split("=", 1) for a in argv)
    texts = {k: Path(p).read_text() for k, p in paths.items()}
    arrays: dict[str, np.ndarray] = {}
    header = [
        "# Test vectors from the frameworks' own unit tests, with the expected losses their tests state as",
        "# literals (Keras, optax, scikit-learn, TensorFlow; each case names its test, the line of the",
        "# literal and the licence). Generated by scripts/import_framework_vectors.py; do not edit.",
        "",
    ]
    default, more = list(header), list(header)
    for v in VECTORS:
        if v["src"] in texts:
            line = locate(texts[v["src"]], v["cls"], v["test"], v["literal"])
            if v.get("line", line) != line:
                sys.exit(f"{v['name']}: the literal is on line {line}, not on the recorded line {v['line']}")
        elif "line" in v:  # a source too large to fetch here: the line as read from the pinned commit
            line = v["line"]
        else:
            sys.exit(f"{v['name']}: give the source file of {v['src']} as {v['src']}=PATH (see the docstring)")
        (more if v["name"] in REPEATS else default).extend(case_lines(v, line, arrays))
    OUT.write_text("\n".join(default))
    MORE.parent.mkdir(exist_ok=True)
    MORE.write_text("\n".join(more))
    np.savez_compressed(NPZ, **arrays)
    print(f"wrote {OUT} and {MORE} ({len(VECTORS) - len(REPEATS)} + {len(REPEATS)} cases)", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])

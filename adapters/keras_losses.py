"""The Keras 3 loss bindings, written once for every Keras backend.

``keras.losses`` classes and functions, each ``from_logits`` both ways, with the class axis moved by
``keras.ops`` (so the same code runs on the TensorFlow, JAX, PyTorch and NumPy backends). The
TensorFlow adapter binds them in-process (Keras's default backend); ``adapters.keras_backends`` binds
them in a worker process per other backend, since a Keras backend is fixed when Keras is imported.

The class form gets ``dtype=`` the case dtype so float64 inputs are computed in float64 (without it
Keras casts to its float32 default). Class axis last, except for channels-first problems, which move
it to axis 1 and say ``axis=1`` where the API takes it.
"""

from __future__ import annotations

import functools
import inspect

from xentcheck.problem import Problem
from xentcheck.reference import MATH, Convention

from . import ALL_FLOATS, ALL_REDUCTIONS, Binding, Capabilities, Inputs

# Keras is imported inside the functions: the parent process of a Keras worker (adapters.keras_backends)
# reads this module's conventions without importing Keras, whose backend is fixed at import.
NONE_ONLY = frozenset({"none"})
#: the output-layer paths are checked as training uses them: the default sum_over_batch_size (the
#: loss classes' reductions are checked on their own bindings)
MEAN_ONLY = frozenset({"mean"})
DENSE = frozenset({"onehot", "soft"})
INDEX = frozenset({"index"})
BINARY = frozenset({"binary", "soft"})


@functools.cache
def _keras2() -> bool:
    """Keras 2 (TensorFlow <= 2.15) spells "no reduction" "none" and its losses take no dtype argument."""
    import keras

    return int(keras.__version__.split(".")[0]) < 3


def reduction_arg(name: str):
    return {"none": "none" if _keras2() else None, "sum": "sum", "mean": "sum_over_batch_size"}[name]


def reduction_snippet() -> str:
    """The reduction mapping as reproduction snippets spell it (a format string: braces doubled)."""
    return "{{'none': " + repr(reduction_arg("none")) + ", 'sum': 'sum', 'mean': 'sum_over_batch_size'}}[{reduction}]"


def class_axis(x, i: Inputs, dense_target: bool) -> tuple:
    """(x, target, axis) as a channels-first problem hands them over: the class axis moved to 1."""
    import keras

    if not i.problem.channels_first:
        return x, i.target, -1
    rank = len(x.shape)
    perm = [0, rank - 1, *range(1, rank - 1)]
    return (keras.ops.transpose(x, perm), keras.ops.transpose(i.target, perm) if dense_target else i.target, 1)


def _takes_axis(f) -> bool:
    return "axis" in inspect.signature(f).parameters


def _keras_class(cls, from_logits: bool, inp: Inputs, **kw):
    p = inp.problem
    if p.channels_first:
        kw["axis"] = 1
    if p.label_smoothing:
        kw["label_smoothing"] = p.label_smoothing
    if p.ignore_index is not None:
        kw["ignore_class"] = p.ignore_index
    if not _keras2():
        kw["dtype"] = p.dtype
    return cls(from_logits=from_logits, reduction=reduction_arg(p.reduction), **kw)


def class_convention(problem: Problem, last_axis: bool = False) -> Convention:
    """Keras "sum_over_batch_size" divides by the element count; an ignore_class mask turns that into
    the count of non-ignored elements."""
    return Convention(mean_by="valid_count" if problem.ignore_index is not None else "count", mean_last_axis=last_axis)


def binary_class_convention(problem: Problem) -> Convention:
    return class_convention(problem, last_axis=True)


def bindings(grad: bool = True) -> list[Binding]:
    """Every Keras loss binding (``grad``: whether the backend has autodiff)."""
    import keras

    L = keras.losses
    reduction_call = reduction_snippet()
    dtype_call = "" if _keras2() else ", dtype=x.dtype.name"
    out = []
    specs = [  # (class, function, op from logits, op from probabilities, targets, options, mean_last_axis)
        (L.BinaryCrossentropy, L.binary_crossentropy, "sigmoid_bce", "bce", BINARY, {"label_smoothing"}, True),
        (
            L.CategoricalCrossentropy,
            L.categorical_crossentropy,
            "softmax_ce",
            "categorical_ce",
            DENSE,
            {"label_smoothing", "spatial"},
            False,
        ),
        (
            L.SparseCategoricalCrossentropy,
            L.sparse_categorical_crossentropy,
            "softmax_ce",
            "categorical_ce",
            INDEX,
            {"ignore_index", "spatial"},
            False,
        ),
    ]
    for cls, fn, op_logits, op_probs, targets, options, last_axis in specs:
        for from_logits in (True, False):
            op = op_logits if from_logits else op_probs
            suffix = ".from_logits" if from_logits else ".from_probs"  # test-id friendly: no '=' or '('
            dense = targets != INDEX

            def call_class(x, i, cls=cls, fl=from_logits, dense=dense):
                loss = _keras_class(cls, fl, i)
                x, t, _ = class_axis(x, i, dense)
                return loss(t, x, sample_weight=i.sample_weight)

            def call_fn(x, i, fn=fn, fl=from_logits, dense=dense):
                x, t, axis = class_axis(x, i, dense)
                kw = {"axis": axis} if i.problem.channels_first else {}
                if i.problem.label_smoothing:
                    kw["label_smoothing"] = i.problem.label_smoothing
                if i.problem.ignore_index is not None:
                    kw["ignore_class"] = i.problem.ignore_index
                return fn(t, x, from_logits=fl, **kw)

            name = cls.__name__
            # The class axis can move where the API takes axis=. Not the sparse losses: their docs offer
            # axis=1 (channels_first), but the TensorFlow backend raises "Only axis=-1 is currently
            # supported" (keras/src/backend/tensorflow/nn.py, Keras 3.15.1; --probe-capabilities shows it).
            movable = "spatial" in options and dense
            cls_opts = options | ({"channels_first"} if movable and _takes_axis(cls) else set())
            fn_opts = options | ({"channels_first"} if movable and _takes_axis(fn) else set())
            out.append(
                Binding(
                    f"keras.{name}{suffix}",
                    f"keras.losses.{name}",
                    Capabilities(
                        op, targets, ALL_REDUCTIONS, frozenset(cls_opts | {"sample_weight"}), ALL_FLOATS, grad=grad
                    ),
                    call_class,
                    binary_class_convention if last_axis else class_convention,
                    call=f"keras.losses.{name}(from_logits={from_logits}, reduction={reduction_call}"
                    f"{dtype_call}{{opts}})({{t}}, {{x}}, sample_weight=sample_weight)",
                )
            )
            out.append(
                Binding(
                    f"keras.{fn.__name__}{suffix}",
                    f"keras.losses.{fn.__name__}",
                    Capabilities(op, targets, NONE_ONLY, frozenset(fn_opts), ALL_FLOATS, grad=grad),
                    call_fn,
                    Convention(mean_last_axis=last_axis) if last_axis else MATH,
                    call=f"keras.losses.{fn.__name__}({{t}}, {{x}}, from_logits={from_logits}{{opts}})",
                )
            )
    out += _ops_bindings(keras, grad)
    out += _metric_bindings(keras)
    if grad and not _keras2():
        out += _training_bindings(keras)
    return out


def _training_bindings(keras) -> list[Binding]:
    """The loss as a training step sees it: a model whose last layer is a softmax (or sigmoid)
    ``Activation``, compiled with ``loss=keras.losses.*Crossentropy()`` (from_logits=False) and trained
    one step with ``train_on_batch``. Its input ``x`` is the layer's input, the logits, held as the
    weight of the layer before it; the loss is what ``train_on_batch`` reports and the gradient is what
    the optimizer receives for that weight. Keras's TensorFlow backend takes the logits back from the
    activation's output (``_keras_logits``, keras/src/backend/tensorflow/nn.py ``_get_logits``), so the
    loss is the exact from-logits one there; other backends take the from-probabilities path.

    float32 only: ``train_on_batch`` reports the loss through a float32 ``Mean`` tracker."""
    L = keras.losses
    specs = [
        ("softmax", L.CategoricalCrossentropy, "softmax_ce", DENSE),
        ("softmax", L.SparseCategoricalCrossentropy, "softmax_ce", INDEX),
        ("sigmoid", L.BinaryCrossentropy, "sigmoid_bce", BINARY),
    ]
    out = []
    for activation, cls, op, targets in specs:

        def step(x, i, compiled, activation=activation, cls=cls):
            return _train_one_step(keras, activation, cls, x, i, compiled)

        def call(x, i, activation=activation, cls=cls):  # the same loss outside a model (repro, probing)
            act = getattr(keras.activations, activation)
            return cls(reduction=reduction_arg(i.problem.reduction))(i.target, act(x))

        name = cls.__name__
        out.append(
            Binding(
                f"keras.Model.train_on_batch.{activation}.{name}",
                f"keras.Model.train_on_batch(loss=keras.losses.{name})",
                Capabilities(
                    op, targets, MEAN_ONLY, frozenset({"spatial"} if targets != BINARY else ()), frozenset({"float32"})
                ),
                call,
                binary_class_convention if targets == BINARY else class_convention,
                step=step,
                call=f"keras.losses.{name}(reduction={reduction_snippet()})"
                f"({{t}}, keras.activations.{activation}({{x}}))  "
                f"# as model.compile(loss=...) on an Activation('{activation}') output",
            )
        )
    return out


def _train_one_step(keras, activation: str, cls, x, i: Inputs, compiled: bool):
    """(loss, d loss / d logits) of one ``train_on_batch`` on a model Logits -> Activation(activation)."""
    import numpy as np

    z0 = keras.ops.convert_to_numpy(x)

    class Logits(keras.layers.Layer):
        """Outputs its weight, the logits, whatever the (dummy) input: the gradient the optimizer gets
        for it is the loss's gradient with respect to the activation's input."""

        def build(self, input_shape):
            self.z = self.add_weight(shape=z0.shape, initializer="zeros", name="z")

        def call(self, inputs):
            return keras.ops.convert_to_tensor(self.z)

        def compute_output_shape(self, input_shape):
            return z0.shape

    class Capture(keras.optimizers.SGD):
        """SGD that keeps the gradient it is handed instead of applying it."""

        def build(self, variables):
            super().build(variables)
            self.grad = self.add_variable(shape=variables[0].shape, dtype=variables[0].dtype, name="grad")

        def update_step(self, gradient, variable, learning_rate):
            self.grad.assign(gradient)

    logits = Logits()
    model = keras.Sequential([logits, keras.layers.Activation(activation)])
    dummy = np.zeros((z0.shape[0], 1), dtype=z0.dtype)
    model.build(dummy.shape)
    logits.z.assign(z0)
    optimizer = Capture()
    model.compile(
        optimizer=optimizer,
        loss=cls(reduction=reduction_arg(i.problem.reduction)),
        run_eagerly=not compiled,
        jit_compile=compiled,
    )
    t = keras.ops.convert_to_numpy(i.target)
    logs = model.train_on_batch(dummy, t, return_dict=True)
    # a Python float read from the float32 Mean tracker that train_on_batch reports through
    loss = keras.ops.convert_to_tensor(np.asarray(logs["loss"], dtype=np.float32))
    return loss, keras.ops.convert_to_tensor(optimizer.grad)


def _metric_bindings(keras) -> list[Binding]:
    """``keras.metrics.BinaryCrossentropy``, ``CategoricalCrossentropy`` and
    ``SparseCategoricalCrossentropy``: what training logs show. Each is a ``MeanMetricWrapper`` around the
    loss function: ``update_state`` computes the per-example losses and ``result()`` is their mean
    weighted by ``sample_weight`` (sum of w * loss over the sum of w), where the loss classes divide
    by the count. A metric holds state in variables: no gradient. The metric's ``dtype`` is the case
    dtype (its totals accumulate in it)."""
    M = keras.metrics
    dtype_call = "" if _keras2() else ", dtype=x.dtype.name"
    specs = [
        (M.BinaryCrossentropy, "sigmoid_bce", "bce", BINARY, {"label_smoothing", "spatial"}, True),
        (
            M.CategoricalCrossentropy,
            "softmax_ce",
            "categorical_ce",
            DENSE,
            {"label_smoothing", "spatial", "channels_first"},
            False,
        ),
        # axis=1 is documented, but the TensorFlow backend raises "Only axis=-1 is currently supported"
        (M.SparseCategoricalCrossentropy, "softmax_ce", "categorical_ce", INDEX, {"spatial"}, False),
    ]
    out = []
    for cls, op_logits, op_probs, targets, options, last_axis in specs:
        for from_logits in (True, False):
            dense = targets != INDEX

            def call(x, i, cls=cls, fl=from_logits, dense=dense):
                x, t, axis = class_axis(x, i, dense)
                kw = {"axis": axis} if i.problem.channels_first else {}
                if i.problem.label_smoothing:
                    kw["label_smoothing"] = i.problem.label_smoothing
                if not _keras2():
                    kw["dtype"] = i.problem.dtype
                m = cls(from_logits=fl, **kw)
                m.update_state(t, x, sample_weight=i.sample_weight)
                return m.result()

            name = cls.__name__
            suffix = ".from_logits" if from_logits else ".from_probs"
            out.append(
                Binding(
                    f"keras.metrics.{name}{suffix}",
                    f"keras.metrics.{name}",
                    Capabilities(
                        op_logits if from_logits else op_probs,
                        targets,
                        frozenset({"mean"}),
                        frozenset(options | {"sample_weight"}),
                        ALL_FLOATS,
                        grad=False,
                        eager_only="a metric creates its state variables when built, which a compiled "
                        "function may not do on every call",
                    ),
                    call,
                    Convention(mean_by="weight_sum", mean_last_axis=last_axis),
                    call=f"(lambda m: (m.update_state({{t}}, {{x}}, sample_weight=sample_weight), m.result())[1])("
                    f"keras.metrics.{name}(from_logits={from_logits}{dtype_call}{{opts}}))",
                )
            )
    return out


def _ops_bindings(keras, grad: bool) -> list[Binding]:
    """``keras.ops.binary_crossentropy``, ``categorical_crossentropy`` and
    ``sparse_categorical_crossentropy``: the backend's kernels the loss functions call, without label
    smoothing, masking or reduction (the binary one elementwise: no mean over the last axis)."""
    ops = keras.ops
    out = []
    specs = [
        (ops.binary_crossentropy, "sigmoid_bce", "bce", BINARY, frozenset({"spatial"})),
        (ops.categorical_crossentropy, "softmax_ce", "categorical_ce", DENSE, frozenset({"spatial", "channels_first"})),
        # axis=1 is documented, but the TensorFlow backend raises "Only axis=-1 is currently supported"
        (ops.sparse_categorical_crossentropy, "softmax_ce", "categorical_ce", INDEX, frozenset({"spatial"})),
    ]
    for fn, op_logits, op_probs, targets, options in specs:
        for from_logits in (True, False):
            dense = targets != INDEX

            def call(x, i, fn=fn, fl=from_logits, dense=dense):
                x, t, axis = class_axis(x, i, dense)
                return fn(t, x, from_logits=fl, **({"axis": axis} if i.problem.channels_first else {}))

            suffix = ".from_logits" if from_logits else ".from_probs"
            out.append(
                Binding(
                    f"keras.ops.{fn.__name__}{suffix}",
                    f"keras.ops.{fn.__name__}",
                    Capabilities(
                        op_logits if from_logits else op_probs, targets, NONE_ONLY, options, ALL_FLOATS, grad=grad
                    ),
                    call,
                    MATH,
                    call=f"keras.ops.{fn.__name__}({{t}}, {{x}}, from_logits={from_logits}{{opts}})",
                )
            )
    return out

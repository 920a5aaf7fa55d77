"""TensorFlow adapter: tf.nn, TF1 tf.compat.v1.losses and Keras 3 losses on Keras's TensorFlow backend
(``adapters.keras_losses``), differentiated by GradientTape.

Class axis last, except for channels-first problems, which move it to axis 1 and say axis=1 where the
API takes it. Keras on its other backends: ``adapters.keras_backends``.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up chatter out of the report

from . import load_triton_first  # noqa: E402

load_triton_first()  # Triton's LLVM before TensorFlow's, or a later torch.compile aborts the process

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from xentcheck.reference import Convention  # noqa: E402

from . import (  # noqa: E402
    ALL_FLOATS,
    ALL_REDUCTIONS,
    Binding,
    Capabilities,
    Inputs,
    WorkerGroup,
    keras_losses,
)
from .framework import FrameworkAdapter, lines_up  # noqa: E402
from .repro import Dialect  # noqa: E402

DTYPES = ALL_FLOATS
NONE_ONLY, DENSE, INDEX, BINARY = keras_losses.NONE_ONLY, keras_losses.DENSE, keras_losses.INDEX, keras_losses.BINARY

_V1 = tf.compat.v1.losses
_V1_REDUCTION = {"none": _V1.Reduction.NONE, "sum": _V1.Reduction.SUM, "mean": _V1.Reduction.SUM_BY_NONZERO_WEIGHTS}
# TF1 losses' default reduction divides the weighted sum by the number of non-zero weights.
V1_MEAN = Convention(mean_by="nonzero_weight_count")
# the TF1 reduction mapping, spelled in reproduction snippets (a format string: doubled braces)
_V1_CALL = (
    "{{'none': tf.compat.v1.losses.Reduction.NONE, 'sum': tf.compat.v1.losses.Reduction.SUM, "
    "'mean': tf.compat.v1.losses.Reduction.SUM_BY_NONZERO_WEIGHTS}}[{reduction}]"
)


def _v1_weights(inp: Inputs, ndim: int):
    w = inp.sample_weight
    if w is None:
        return 1.0
    # one weight per row, or per element of a spatial input (N, d1, ...): trailing axes broadcast
    return tf.reshape(w, tf.concat([tf.shape(w), tf.ones([ndim - len(w.shape)], tf.int32)], 0))


def _on_activation_output() -> list[Binding]:
    """A Keras loss (from_logits=False) called on the output of ``tf.nn.softmax`` / ``tf.nn.sigmoid``, as
    custom training loops do. Keras looks for the logits behind its input
    (keras/src/backend/tensorflow/nn.py ``_get_logits``): inside ``tf.function`` the producing op is a
    Softmax/Sigmoid and the loss is computed from its logits; an eager tensor has no op, so eagerly
    the loss clips the rounded probabilities instead. Logits in, so both modes are judged on one op.
    (The sparse loss is left out: its eager path, clip then renormalise through a softmax of log q, on
    rounded probabilities over a large vocabulary is beyond the oracle's error model today.)"""
    L = keras.losses
    specs = [
        (L.CategoricalCrossentropy, "softmax", "softmax_ce", keras_losses.DENSE),
        (L.BinaryCrossentropy, "sigmoid", "sigmoid_bce", keras_losses.BINARY),
    ]
    out = []
    for cls, activation, op, targets in specs:
        act = getattr(tf.nn, activation)

        def call(x, i, cls=cls, act=act):
            loss = cls(reduction=keras_losses.reduction_arg(i.problem.reduction), dtype=i.problem.dtype)
            return loss(i.target, act(x))

        name = f"keras.{cls.__name__}.on_tf_nn_{activation}"
        out.append(
            Binding(
                name,
                f"keras.losses.{cls.__name__}(tf.nn.{activation}(x))",
                Capabilities(op, targets, keras_losses.MEAN_ONLY, frozenset(), ALL_FLOATS),
                call,
                keras_losses.binary_class_convention
                if targets == keras_losses.BINARY
                else keras_losses.class_convention,
                call=f"keras.losses.{cls.__name__}(reduction={keras_losses.reduction_snippet()}, "
                f"dtype=x.dtype.name)({{t}}, tf.nn.{activation}({{x}}))",
            )
        )
    return out


def _tf_nn() -> list[Binding]:
    return [
        Binding(
            "tf.nn.softmax_cross_entropy_with_logits",
            "tf.nn.softmax_cross_entropy_with_logits",
            Capabilities("softmax_ce", DENSE, NONE_ONLY, frozenset({"spatial", "channels_first"}), DTYPES),
            lambda x, i: (lambda x, t, axis: tf.nn.softmax_cross_entropy_with_logits(labels=t, logits=x, axis=axis))(
                *keras_losses.class_axis(x, i, True)
            ),
            call="tf.nn.softmax_cross_entropy_with_logits(labels={t}, logits={x}{opts})",
        ),
        Binding(
            "tf.nn.sparse_softmax_cross_entropy_with_logits",
            "tf.nn.sparse_softmax_cross_entropy_with_logits",
            Capabilities("softmax_ce", INDEX, NONE_ONLY, frozenset({"spatial"}), DTYPES),
            lambda x, i: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=i.target, logits=x),
            call="tf.nn.sparse_softmax_cross_entropy_with_logits(labels={t}, logits={x})",
        ),
        Binding(
            "tf.nn.sigmoid_cross_entropy_with_logits",
            "tf.nn.sigmoid_cross_entropy_with_logits",
            Capabilities("sigmoid_bce", BINARY, NONE_ONLY, frozenset(), DTYPES),
            lambda x, i: tf.nn.sigmoid_cross_entropy_with_logits(labels=i.target, logits=x),
            call="tf.nn.sigmoid_cross_entropy_with_logits(labels={t}, logits={x})",
        ),
        Binding(
            "tf.nn.weighted_cross_entropy_with_logits",
            "tf.nn.weighted_cross_entropy_with_logits",
            Capabilities("sigmoid_bce", BINARY, NONE_ONLY, frozenset({"pos_weight"}), DTYPES),
            lambda x, i: tf.nn.weighted_cross_entropy_with_logits(
                labels=i.target, logits=x, pos_weight=i.pos_weight if i.pos_weight is not None else 1.0
            ),
            call="tf.nn.weighted_cross_entropy_with_logits(labels={t}, logits={x}, "
            "pos_weight=1.0 if pos_weight is None else pos_weight)",
        ),
        Binding(
            "tf.compat.v1.losses.softmax_cross_entropy",
            "tf.compat.v1.losses.softmax_cross_entropy",
            Capabilities("softmax_ce", DENSE, ALL_REDUCTIONS, frozenset({"sample_weight", "label_smoothing"}), DTYPES),
            lambda x, i: _V1.softmax_cross_entropy(
                i.target,
                x,
                weights=_v1_weights(i, 1),
                label_smoothing=i.problem.label_smoothing,
                reduction=_V1_REDUCTION[i.reduction],
            ),
            V1_MEAN,
            call="tf.compat.v1.losses.softmax_cross_entropy({t}, {x}, weights=1.0 if sample_weight is None "
            "else sample_weight, label_smoothing=label_smoothing, reduction=" + _V1_CALL + ")",
        ),
        Binding(
            "tf.compat.v1.losses.sparse_softmax_cross_entropy",
            "tf.compat.v1.losses.sparse_softmax_cross_entropy",
            Capabilities("softmax_ce", INDEX, ALL_REDUCTIONS, frozenset({"sample_weight"}), DTYPES),
            lambda x, i: _V1.sparse_softmax_cross_entropy(
                i.target, x, weights=_v1_weights(i, 1), reduction=_V1_REDUCTION[i.reduction]
            ),
            V1_MEAN,
            call="tf.compat.v1.losses.sparse_softmax_cross_entropy({t}, {x}, weights=1.0 if sample_weight is "
            "None else sample_weight, reduction=" + _V1_CALL + ")",
        ),
        Binding(
            "tf.compat.v1.losses.sigmoid_cross_entropy",
            "tf.compat.v1.losses.sigmoid_cross_entropy",
            Capabilities(
                "sigmoid_bce", BINARY, ALL_REDUCTIONS, frozenset({"sample_weight", "label_smoothing"}), DTYPES
            ),
            lambda x, i: _V1.sigmoid_cross_entropy(
                i.target,
                x,
                weights=_v1_weights(i, 2),
                label_smoothing=i.problem.label_smoothing,
                reduction=_V1_REDUCTION[i.reduction],
            ),
            V1_MEAN,
            call="tf.compat.v1.losses.sigmoid_cross_entropy({t}, {x}, weights=1.0 if sample_weight is None "
            "else sample_weight[:, None], label_smoothing=label_smoothing, reduction=" + _V1_CALL + ")",
        ),
    ]


class TensorflowAdapter(FrameworkAdapter):
    name = "tensorflow"
    #: the xdist worker groups (xentcheck.protocol.WorkerGroup); the ranks order all adapters' groups as
    #: they are handed out: the compiled checks first (1-3 s of compiling per graph), then the longest
    #: eager groups (docs/performance.md)
    worker_groups = (*WorkerGroup.compiled_by_dtype("tensorflow", 4), WorkerGroup("tensorflow", 14))
    dialect = Dialect(
        imports="import tensorflow as tf\nimport keras",
        array=lambda lit, dt: f"tf.constant({lit}, dtype=tf.{dt})",
        index=lambda lit: f"tf.constant({lit}, dtype=tf.int64)",
        grad="with tf.GradientTape() as tape:\n    tape.watch(x)\n    loss = loss_fn(x)\n"
        "grad = tape.gradient(loss, x, output_gradients=cot)",
        options={
            "label_smoothing": "label_smoothing=label_smoothing",
            "ignore_index": "ignore_class=ignore_index",
            "channels_first": "axis=1",
        },
        channels_first=lambda name: (
            f"tf.transpose({name}, [0, {name}.shape.rank - 1, *range(1, {name}.shape.rank - 1)])"
        ),
        compile="loss_fn = tf.function(loss_fn, jit_compile=True)",
    )

    def environment(self) -> dict:
        return {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keras.backend": keras.backend.backend(),
            "tensorflow.threads.intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "tensorflow.gpus": len(tf.config.list_physical_devices("GPU")),
        }

    def bindings(self) -> list[Binding]:
        devices = frozenset({"cpu", "cuda"}) if tf.config.list_physical_devices("GPU") else frozenset({"cpu"})
        return self.declare(_tf_nn() + keras_losses.bindings() + _on_activation_output(), devices, self.environment())

    def _device(self) -> str:
        return "/GPU:0" if self.device == "cuda" else "/CPU:0"

    def asarray(self, a, dtype):
        # cast by NumPy first: tf.constant's own float64 -> float32 conversion is four times slower
        # (1.3 s against 0.3 s for a 4096x32000 input)
        a = np.asarray(a).astype(tf.as_dtype(dtype).as_numpy_dtype, copy=False)
        with tf.device(self._device()):
            return tf.constant(a)

    def asindex(self, a):
        with tf.device(self._device()):
            return tf.constant(np.asarray(a), dtype=tf.int64)

    def value_and_vjp(self, f, x, cotangent):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = f(x)
        if cotangent is not None and y.shape.rank and cotangent.shape != y.shape and lines_up(cotangent.shape, y.shape):
            cotangent = tf.reshape(cotangent, y.shape)  # an output with a singleton axis squeezed or added
        g = tape.gradient(y, x, output_gradients=cotangent if y.shape.rank else None)
        return y, (tf.zeros_like(x) if g is None else g)

    def to_numpy(self, t):
        t = tf.convert_to_tensor(t)
        return t.numpy().astype(np.float64), t.dtype.name

    def compile(self, f):
        return tf.function(f, jit_compile=True)

    def block(self, out):
        if tf.config.list_logical_devices("GPU"):
            tf.test.experimental.sync_devices()

    def set_threads(self, n):
        try:  # only possible before TensorFlow's runtime starts; TF_NUM_INTRAOP_THREADS covers the rest
            tf.config.threading.set_intra_op_parallelism_threads(n)
        except RuntimeError:
            pass

    def prepare(self, binding, problem, *, grad, cotangent=None, mode="eager"):
        with tf.device(self._device()):
            call = super().prepare(binding, problem, grad=grad, cotangent=cotangent, mode=mode)

        def on_device():
            with tf.device(self._device()):
                return call()

        return on_device

    def bare(self, binding_name, problem, *, grad):
        """Hand-written native tf.nn call on integer labels (the adapter-overhead baseline)."""
        if binding_name != "tf.nn.sparse_softmax_cross_entropy_with_logits" or problem.x.ndim != 2:
            return None
        x = self.asarray(problem.x, problem.dtype)
        t = self.asindex(problem.target)

        def forward():
            return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x)

        def forward_backward():
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x)
            return y, tape.gradient(y, x)

        return forward_backward if grad else forward

    def exp_kernels(self):
        """Candidates for the floor's exp throughput (name -> factory(n, dtype))."""

        def eager(n, dtype):
            a = self.asarray(np.random.default_rng(0).random(n), dtype)
            return lambda: self.block(tf.exp(a))

        def xla(n, dtype):
            a = self.asarray(np.random.default_rng(0).random(n), dtype)
            f = tf.function(tf.exp, jit_compile=True)
            return lambda: self.block(f(a))

        return {"tf.exp": eager, "tf.function(tf.exp, jit_compile=True)": xla}

    def device_peak_bytes(self, call):
        tf.config.experimental.reset_memory_stats("GPU:0")
        before = tf.config.experimental.get_memory_info("GPU:0")["current"]
        out = call()
        self.block(out)
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] - before


ADAPTER = TensorflowAdapter()

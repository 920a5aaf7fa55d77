"""JAX adapter: optax losses and the idiomatic jax.nn.log_softmax formulation, differentiated by jax.vjp.

JAX's settings (float64, the persistent compilation cache) are applied when this adapter loads
(``adapters.jax_config``). optax losses return per-example values only.
"""

from __future__ import annotations

import jax

from .jax_config import configure, host_array, mlir_context, ones_like

configure()

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from xentcheck.bench.floor import EXP_CHAIN  # noqa: E402
from xentcheck.problem import numpy_dtype  # noqa: E402

from . import ALL_FLOATS, ALL_REDUCTIONS, Binding, Capabilities, Inputs, WorkerGroup  # noqa: E402
from . import jax_linear_ce as linear_ce  # noqa: E402
from .framework import FrameworkAdapter  # noqa: E402
from .repro import Dialect  # noqa: E402

DTYPES = ALL_FLOATS
NONE_ONLY = frozenset({"none"})
DENSE = frozenset({"onehot", "soft"})
SPATIAL = frozenset({"spatial"})
AXIS = frozenset({"spatial", "channels_first"})  # the API takes axis=
#: optax's cross-entropy functions take a class mask, where= (0.2.4 and later)
AXIS_WHERE = AXIS | {"where"}


#: optax added axis= and where= to its cross-entropy functions in 0.2.4 (an older optax raises TypeError)
AXIS_SINCE = (("channels_first", "optax", ">=0.2.4"), ("where", "optax", ">=0.2.4"))


def _optax_axis(fn):
    """``fn(z, t)`` on the class-last problem, ``fn(z, t, axis=1)`` on a channels-first one and
    ``where=`` with a class mask: each keyword only where it is needed, so an optax without them still
    runs every other check."""

    def call(z, inp):
        z, t, axis = _class_axis(z, inp)
        kw = {} if axis == -1 else {"axis": axis}
        if inp.where is not None:
            kw["where"] = jnp.moveaxis(inp.where, -1, 1) if axis == 1 else inp.where
        return fn(z, t, **kw)

    return call


def _class_axis(z, inp: Inputs) -> tuple:
    """(z, target, axis) as a channels-first problem hands them over: the class axis moved to 1."""
    if not inp.problem.channels_first:
        return z, inp.target, -1
    t = inp.target if inp.problem.target_kind == "index" else jnp.moveaxis(inp.target, -1, 1)
    return jnp.moveaxis(z, -1, 1), t, 1


def _idiomatic(z, inp: Inputs):
    z, t, axis = _class_axis(z, inp)
    logp = jax.nn.log_softmax(z, axis=axis)
    if inp.problem.target_kind == "index":
        loss = -jnp.squeeze(jnp.take_along_axis(logp, jnp.expand_dims(t, axis), axis=axis), axis)
    else:
        loss = -jnp.sum(t * logp, axis=axis)
    return {"none": loss, "sum": jnp.sum(loss), "mean": jnp.mean(loss)}[inp.reduction]


def _idiomatic_call(problem) -> str:
    """_idiomatic, spelled for a reproduction snippet."""
    axis = 1 if problem.channels_first else -1
    logp = f"jax.nn.log_softmax({{x}}, axis={axis})"
    loss = (
        f"-jnp.squeeze(jnp.take_along_axis({logp}, jnp.expand_dims({{t}}, {axis}), axis={axis}), {axis})"
        if problem.target_kind == "index"
        else f"-jnp.sum({{t}} * {logp}, axis={axis})"
    )
    return "{{'none': lambda l: l, 'sum': jnp.sum, 'mean': jnp.mean}}[{reduction}](" + loss + ")"


def _bindings() -> list[Binding]:
    out = [
        Binding(
            "optax.softmax_cross_entropy",
            "optax.softmax_cross_entropy",
            Capabilities("softmax_ce", DENSE, NONE_ONLY, AXIS_WHERE, DTYPES, requires=AXIS_SINCE),
            _optax_axis(lambda z, t, **kw: optax.softmax_cross_entropy(z, t, **kw)),
            call="optax.softmax_cross_entropy({x}, {t}{opts})",
        ),
        Binding(
            "optax.softmax_cross_entropy_with_integer_labels",
            "optax.softmax_cross_entropy_with_integer_labels",
            Capabilities("softmax_ce", frozenset({"index"}), NONE_ONLY, AXIS_WHERE, DTYPES, requires=AXIS_SINCE),
            _optax_axis(lambda z, t, **kw: optax.softmax_cross_entropy_with_integer_labels(z, t, **kw)),
            call="optax.softmax_cross_entropy_with_integer_labels({x}, {t}{opts})",
        ),
        Binding(
            "optax.sigmoid_binary_cross_entropy",
            "optax.sigmoid_binary_cross_entropy",
            Capabilities("sigmoid_bce", frozenset({"binary", "soft"}), NONE_ONLY, frozenset(), DTYPES),
            lambda z, i: optax.sigmoid_binary_cross_entropy(z, i.target),
            call="optax.sigmoid_binary_cross_entropy({x}, {t})",
        ),
        Binding(
            "jax.nn.log_softmax",
            "jax.nn.log_softmax",
            Capabilities("softmax_ce", frozenset({"index", "onehot", "soft"}), ALL_REDUCTIONS, AXIS, DTYPES),
            _idiomatic,
            doc="-sum(y * jax.nn.log_softmax(z)), then jnp.mean / jnp.sum",
            call=_idiomatic_call,
        ),
    ]
    if hasattr(optax, "safe_softmax_cross_entropy"):  # added in optax 0.2.3
        out.insert(
            2,
            Binding(
                "optax.safe_softmax_cross_entropy",
                "optax.safe_softmax_cross_entropy",
                Capabilities("softmax_ce", DENSE, NONE_ONLY, SPATIAL, DTYPES),
                lambda z, i: optax.safe_softmax_cross_entropy(z, i.target),
                call="optax.safe_softmax_cross_entropy({x}, {t})",
            ),
        )
    return out


class JaxAdapter(FrameworkAdapter):
    name = "jax"
    #: the xdist worker groups (xentcheck.protocol.WorkerGroup); the ranks order all adapters' groups as
    #: they are handed out: the compiled checks first (1-3 s of compiling per graph), then the longest
    #: eager groups (docs/performance.md)
    #: JAX's eager dispatch compiles every primitive per shape and dtype (most of a cold default run), so
    #: its eager checks split into five groups of similar length: conformance by dtype, the relations,
    #: and the sweeps, snippets and probes
    worker_groups = (
        *WorkerGroup.compiled_by_dtype("jax", 8),
        WorkerGroup("jax-f64", 16, frozenset({"value", "grad"}), frozenset({"float64"})),
        WorkerGroup("jax-half", 15, frozenset({"value", "grad"}), frozenset({"float16", "bfloat16"})),
        WorkerGroup("jax", 12, frozenset({"value", "grad"})),
        WorkerGroup("jax-relations", 17, frozenset({"relation"})),
        WorkerGroup("jax-more", 18),
    )
    dialect = Dialect(
        imports="import jax\nimport jax.numpy as jnp\nimport optax\n\njax.config.update('jax_enable_x64', True)",
        array=lambda lit, dt: f"jnp.asarray({lit}, dtype=jnp.{dt})",
        index=lambda lit: f"jnp.asarray({lit}, dtype=jnp.int64)",
        grad="loss, vjp = jax.vjp(loss_fn, x)\n(grad,) = vjp(jnp.ones_like(loss) if cot is None else cot)",
        options={"channels_first": "axis=1", "where": "where=where"},
        channels_first=lambda name: f"jnp.moveaxis({name}, -1, 1)",
        compile="loss_fn = jax.jit(loss_fn)",
    )

    def environment(self) -> dict:
        import jaxlib

        return {
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "optax": optax.__version__,
            "jax.backend": jax.default_backend(),
            "jax.devices": [str(d) for d in jax.devices()],
            "jax.mlir_context": mlir_context(),
            **linear_ce.environment(),
        }

    def bindings(self) -> list[Binding]:
        has_gpu = any(d.platform == "gpu" for d in jax.devices())
        devices = frozenset({"cpu", "cuda"}) if has_gpu else frozenset({"cpu"})
        return self.declare(_bindings() + linear_ce.bindings(), devices, self.environment())

    def _device(self):
        return jax.devices("gpu" if self.device == "cuda" else "cpu")[0]

    # Inputs are cast on the host and put on the device as they are: jnp.asarray(a, dtype) casts on the
    # device, which compiles a convert_element_type for every shape (44 of a cold default run's 3,110 JAX
    # compilations were the adapter's own casts and cotangents). The problem's arrays already hold values
    # of the dtype (xentcheck.problem.round_to), so either cast gives the same array.
    def asarray(self, a, dtype):
        return jax.device_put(host_array(a, numpy_dtype(dtype)), self._device())

    def asindex(self, a):
        return jax.device_put(host_array(a, np.int64), self._device())

    def asmask(self, a):
        return jax.device_put(host_array(a, np.bool_), self._device())

    def value_and_vjp(self, f, x, cotangent):
        y, pullback = jax.vjp(f, x)
        (g,) = pullback(cotangent if cotangent is not None else ones_like(y))
        return y, g

    def compile(self, f):
        return jax.jit(f)

    def block(self, out):
        jax.block_until_ready(out)

    def bare(self, binding_name, problem, *, grad):
        """Hand-written native optax call on integer labels (the adapter-overhead baseline)."""
        if binding_name != "optax.softmax_cross_entropy_with_integer_labels" or problem.x.ndim != 2:
            return None
        x = self.asarray(problem.x, problem.dtype)
        t = self.asindex(problem.target)

        def loss(z):
            return optax.softmax_cross_entropy_with_integer_labels(z, t)

        def forward():
            return jax.block_until_ready(loss(x))

        def forward_backward():
            y, pullback = jax.vjp(loss, x)
            return jax.block_until_ready((y, pullback(jnp.ones_like(y))[0]))

        return forward_backward if grad else forward

    def exp_kernels(self):
        """Candidates for the floor's exp throughput (name -> factory(n, dtype)). On a device, a fused
        chain of EXP_CHAIN exps per loaded element (one XLA kernel), so that it measures the exp units
        rather than memory bandwidth (see xentcheck.bench.floor)."""
        if self.device != "cpu":

            def chain(n, dtype):
                a = self.asarray(np.random.default_rng(0).random(max(1, n // EXP_CHAIN)), dtype)
                f = jax.jit(_exp_chain)
                return lambda: f(a).block_until_ready()

            return {f"jax.jit(exp chain of {EXP_CHAIN}) on the device": chain}

        def jitted(n, dtype):
            a = self.asarray(np.random.default_rng(0).random(n), dtype)
            f = jax.jit(jnp.exp)
            return lambda: f(a).block_until_ready()

        return {"jax.jit(jnp.exp)": jitted}

    def read_kernels(self):
        """Candidates for the floor's read bandwidth on the device (name -> factory(nbytes))."""
        if self.device == "cpu":
            return {}  # NumPy's kernels measure the host

        def total(nbytes):
            a = jax.device_put(jnp.ones(nbytes // 4, dtype=jnp.float32), self._device())
            f = jax.jit(jnp.sum)
            return lambda: f(a).block_until_ready()

        return {"jax.jit(jnp.sum) on the device": total}

    def device_peak_bytes(self, call):
        return None  # XLA's allocator keeps a run-long peak that cannot be reset between calls

    def to_numpy(self, t):
        t = jax.block_until_ready(t)
        return np.asarray(t).astype(np.float64), str(t.dtype)


def _exp_chain(a):
    """EXP_CHAIN dependent exps per element (exp(-y) stays in (0, 1]); jitted into one kernel."""
    for _ in range(EXP_CHAIN):
        a = jnp.exp(-a)
    return a


ADAPTER = JaxAdapter()

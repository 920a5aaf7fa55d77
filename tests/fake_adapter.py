"""A framework-free fake adapter (pure NumPy, hand-written gradients) for the harness self-tests.

``HONEST`` computes softmax cross-entropy correctly (stable, weighted mean by weight sum, float32
arithmetic); ``BUGGY`` variants plant bugs of the kinds real libraries have had. Usable as an
external adapter: ``--adapter=tests.fake_adapter:HONEST``.
"""

from __future__ import annotations

import numpy as np

from adapters import Binding, Capabilities, Output
from xentcheck.reference import Convention

CAPS = Capabilities(
    "softmax_ce", frozenset({"index", "onehot", "soft"}), options=frozenset({"class_weight", "spatial"})
)
MEAN_BY_WEIGHT = Convention(mean_by="weight_sum")


def _softmax_ce(z, y, w, reduction, *, shift=True, weighted_mean=True, grad_scale=1.0, index=True):
    """Per-row loss and gradient in z's dtype; y dense, w per-class weights (or None)."""
    m = z.max(axis=-1, keepdims=True) if shift else np.zeros_like(z[..., :1])
    e = np.exp(z - m)
    s = e.sum(axis=-1, keepdims=True)
    logp = (z - m) - np.log(s)
    sm = e / s
    pinf = z == np.inf  # the limit: +inf logits share all the mass
    k = pinf.sum(axis=-1, keepdims=True)
    logp = np.where(k > 0, np.where(pinf, -np.log(np.maximum(k, 1)), -np.inf), logp)
    sm = np.where(k > 0, pinf / np.maximum(k, 1), sm)
    a = y * (w if w is not None else 1)
    loss = -(a * logp).sum(axis=-1, where=a != 0)  # 0 log 0 = 0, also at a -inf logit
    grad = a.sum(axis=-1, keepdims=True) * sm - a
    if reduction == "none":
        return loss, grad
    # the weight-sum convention as PyTorch documents it: class weights count in the divisor for index
    # targets only (a dense target's mean divides by the example count)
    n = (y * (w if w is not None else 1)).sum() if weighted_mean and index else loss.size
    d = 1 if reduction == "sum" else n
    return loss.sum() / d, grad / d * grad_scale


class FakeAdapter:
    """Implements the adapters.Adapter protocol without any framework."""

    def __init__(self, name: str, **bug):
        self.name = name
        self.bug = bug

    def environment(self) -> dict:
        return {self.name: "0.0"}

    def bindings(self) -> list[Binding]:
        return [Binding("fake.softmax_ce", "fake.softmax_ce", CAPS, fn=None, convention=MEAN_BY_WEIGHT)]

    def run(self, binding, problem, *, grad, cotangent, mode="eager") -> Output:
        dt = np.float32 if problem.dtype == "float32" else np.float64
        z = problem.x.astype(dt)
        y = problem.dense_target().astype(dt)
        w = None if problem.class_weight is None else problem.class_weight.astype(dt)
        with np.errstate(all="ignore"):  # planted bugs overflow on purpose
            value, g = _softmax_ce(z, y, w, problem.reduction, index=problem.target_kind == "index", **self.bug)
        if problem.reduction == "none" and cotangent is not None:
            g = g * cotangent.astype(dt)[..., None]
        value = np.asarray(value, dtype=dt)
        return Output(value.astype(np.float64), g.astype(np.float64) if grad else None, value.dtype.name)


HONEST = FakeAdapter("fake")
#: a softmax without the max shift: overflows on large logits (for tests that need a failing check)
UNSHIFTED = FakeAdapter("fake", shift=False)


class CrashingAdapter(FakeAdapter):
    """Kills its own process on one case, like a segfaulting kernel."""

    def run(self, binding, problem, **kw):
        if problem.case == "tutorial_logits":
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return super().run(binding, problem, **kw)


CRASHING = CrashingAdapter("crashy")


class HangingAdapter(FakeAdapter):
    """Never returns on one case, like a deadlocked kernel."""

    def run(self, binding, problem, **kw):
        if problem.case == "tutorial_logits":
            import time

            time.sleep(600)
        return super().run(binding, problem, **kw)


HANGING = HangingAdapter("hangs")


_VIRTUAL_NOW = [0.0]


def virtual_time() -> float:
    """A virtual clock (``--benchmark-timer=tests.fake_adapter.virtual_time``): it moves only when a
    timed fake call says how long it took, so the benchmark harness and the run-vs-run statistics are
    tested on controlled samples, whatever the machine's load."""
    return _VIRTUAL_NOW[0]


class TimedAdapter(FakeAdapter):
    """A benchmarkable fake: each binding's call takes a fixed modelled time (``slowdown`` scales it)
    with seeded lognormal jitter (5%), on the virtual clock, so the benchmark harness and the
    run-vs-run comparison are tested end to end without a framework and without depending on how busy
    the machine's CPU is. Runs with different ``seed`` are an A/A pair."""

    DELAYS_S = (0.0015, 0.002, 0.0025, 0.003)

    def __init__(self, name: str, slowdown: float = 1.0, seed: int = 0):
        super().__init__(name)
        self.slowdown, self.seed = slowdown, seed

    def bindings(self) -> list[Binding]:
        return [
            Binding(f"timed.{i}", f"fake.timed.{i}", CAPS, fn=None, convention=MEAN_BY_WEIGHT)
            for i in range(len(self.DELAYS_S))
        ]

    def prepare(self, binding, problem, *, grad, mode="eager"):
        i = int(binding.name.rsplit(".", 1)[1])
        delay = self.DELAYS_S[i] * self.slowdown * (2 if grad else 1)
        rng = np.random.default_rng([self.seed, i, grad, problem.x.size])

        def call():
            _VIRTUAL_NOW[0] += delay * rng.lognormal(0.0, 0.05)

        return call


class TimedFailingAdapter(TimedAdapter):
    """Like TimedAdapter, but its third binding raises when called."""

    def prepare(self, binding, problem, *, grad, mode="eager"):
        call = super().prepare(binding, problem, grad=grad, mode=mode)
        if binding.name != "timed.2":
            return call

        def broken():
            raise RuntimeError("kernel launch failed")

        return broken


class TimedLinearAdapter(TimedAdapter):
    """A fake with one fused linear + cross-entropy binding (op ``linear_ce``) beside the timed ones: its
    call takes a modelled time on the virtual clock, its matmul kernel is NumPy's, and its host allocator
    reports a modelled peak (the N x V logits three times over, as an unfused implementation holds them)
    so that the floor arithmetic and the memory plumbing are tested end to end."""

    LINEAR_DELAY_S = 0.004

    def bindings(self) -> list[Binding]:
        caps = Capabilities("linear_ce", frozenset({"index"}), eager_only="fake")
        step = lambda x, inp, compiled: (None, None)  # noqa: E731  (a step binding, as the real ones are)
        return [*super().bindings(), Binding("linear.fused", "fake.linear", caps, fn=None, step=step)]

    def prepare(self, binding, problem, *, grad, mode="eager"):
        if binding.caps.op != "linear_ce":
            return super().prepare(binding, problem, grad=grad, mode=mode)
        assert problem.weight_matrix.shape[0] == problem.num_classes  # a linear_ce input: W [V, D]
        assert (binding.step is not None) == grad  # the forward alone runs the binding's fn, not its step
        rng = np.random.default_rng([self.seed, grad, problem.x.size])
        delay = self.LINEAR_DELAY_S * (3 if grad else 1)

        def call():
            _VIRTUAL_NOW[0] += delay * rng.lognormal(0.0, 0.05)

        call.logits_bytes = problem.x.shape[0] * problem.num_classes * 4
        return call

    def matmul_kernels(self):
        def mm(n, dtype):
            a = np.ones((n, n), dtype=dtype)
            return lambda: a @ a

        return {"numpy.matmul": mm}

    def host_allocator_peak_bytes(self, call):
        return 3 * call.logits_bytes


TIMED = TimedAdapter("timed")
TIMED_LINEAR = TimedLinearAdapter("timed")
TIMED_AGAIN = TimedAdapter("timed", seed=1)  # the same timings, other noise: an A/A pair with TIMED
TIMED_SLOWER = TimedAdapter("timed", slowdown=1.25, seed=2)  # a planted 25% slowdown
TIMED_FAILING = TimedFailingAdapter("timed")


class SignalledAdapter(FakeAdapter):
    """Sends its own process SIGTERM on one case, as a CI runner cancelling the job would."""

    def run(self, binding, problem, **kw):
        if problem.case == "tutorial_logits":
            import os
            import signal

            os.kill(os.getpid(), signal.SIGTERM)
        return super().run(binding, problem, **kw)


class InterruptingAdapter(FakeAdapter):
    """Raises KeyboardInterrupt from inside a binding on one case."""

    def run(self, binding, problem, **kw):
        if problem.case == "tutorial_logits":
            raise KeyboardInterrupt
        return super().run(binding, problem, **kw)


class ListReturningAdapter(FakeAdapter):
    """Breaks the protocol: run() returns a list instead of an Output."""

    def run(self, binding, problem, **kw):
        out = super().run(binding, problem, **kw)
        return [out.value, out.grad]


SIGNALLED = SignalledAdapter("signalled")
INTERRUPTING = InterruptingAdapter("interrupts")
LIST_RETURNING = ListReturningAdapter("lists")


def raising_factory():
    """An adapter factory that fails (``--adapter=tests.fake_adapter:raising_factory``)."""
    raise RuntimeError("the kernel library is not loaded")


def fake_environment() -> dict:
    """A minimal run environment naming the fake framework (for results documents and journals)."""
    return {
        "python": "3",
        "platform": "p",
        "cpu": "c",
        "cpu_count": 2,
        "date": "d",
        "command": "pytest",
        "device": "cpu",
        "frameworks": {"fake": {"fake": "0.0"}},
        "skipped": {},
        "bindings": {},
    }

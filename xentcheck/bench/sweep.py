"""What the benchmark sweep times: sizes, passes, and one canonical problem per op and size.

A size is batch x classes. Named sweeps run from dispatch-bound (32x10) through cache-resident to
memory-bound sizes; ``llm`` adds LLM-scale vocabularies. Each binding is timed on its op's
canonical problem: index targets where the binding takes them (else one-hot) for the categorical
ops, hard 0/1 multi-label targets for the binary ops, the ``mean`` reduction where offered.

The fused linear + cross-entropy bindings (op ``linear_ce``) are timed at sizes of their own, N x D x
V (hidden states X [N, D], classifier W [V, D]), against a floor of their own: the matmuls they
cannot avoid (:func:`linear_flops`) at the matmul rate measured in the same run, and the memory any
implementation must hold (:func:`linear_memory_floor`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from xentcheck.problem import CATEGORICAL_OPS, Problem, numpy_dtype, round_to

#: named size sweeps (batch x classes). ``quick``'s memory-bound size is a 32000-class vocabulary at 512
#: rows: 65 MB a float32 array, twice this machine's last-level cache, and a forward+backward touches
#: three such arrays at least. At 4096 rows one configuration alone (TensorFlow's eager tape over a Keras
#: binary loss) holds 5.6 GB above its inputs, 8.4 GB in all, and the sweep took 24 min here; at 1024
#: rows 10 min 43 s (docs/performance.md, stop 39). 4096x32000 and up are in ``full`` and ``llm``
SWEEPS: dict[str, tuple[tuple[int, int], ...]] = {
    "quick": ((32, 10), (1024, 1000), (512, 32000)),
    "full": ((32, 10), (256, 1000), (1024, 8000), (4096, 32000), (8192, 32000)),
    "llm": ((32, 10), (1024, 8000), (4096, 32000), (8192, 32000), (2048, 128256), (4096, 128256)),
}
#: linear_ce sizes (N x D x V) of each named sweep. The quick ones are small: torch's chunked bindings
#: (4 rows a chunk, declared so for the conformance checks) take 13 s per forward at 256 x 128 x 32000
#: on 2 busy CPU cores, their time grows with N / 4 chunks, and the whole quick sweep must stay within
#: ten minutes; ``full`` holds the CPU sizes of issue 28 (4096 x 1024 x 32000, 1024 x 1024 x 128256),
#: ``llm`` adds the GPU check's (8192 x 4096 x 128256 and 256000)
LINEAR_SWEEPS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "quick": ((64, 64, 32000), (16, 64, 128256)),
    "full": ((4096, 1024, 32000), (1024, 1024, 128256)),
    "llm": ((4096, 1024, 32000), (1024, 1024, 128256), (8192, 4096, 128256), (8192, 4096, 256000)),
    "none": (),
}
LINEAR_OP = "linear_ce"
PASSES = ("forward", "forward+backward")
MODES = ("eager", "compiled")


class SweepError(ValueError):
    """A malformed benchmark option; the message is one line saying what to pass instead."""


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """``quick`` / ``full`` / ``llm`` or a comma-separated list like ``32x10,4096x32000``."""
    if text in SWEEPS:
        return SWEEPS[text]
    sizes = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", part)
        if not m or int(m[1]) < 1 or int(m[2]) < 2:
            raise SweepError(
                f"--bench-sizes: {part.strip()!r} is not BATCHxCLASSES (e.g. 4096x32000, classes >= 2) "
                f"nor one of {', '.join(SWEEPS)}"
            )
        sizes.append((int(m[1]), int(m[2])))
    return tuple(sizes)


def parse_linear_sizes(text: str, sizes: str = "quick") -> tuple[tuple[int, int, int], ...]:
    """The linear_ce sizes: ``auto`` (the named sweep ``sizes`` names, none for an explicit list of
    sizes), ``quick`` / ``full`` / ``llm`` / ``none``, or a list like ``1024x256x32000,256x256x128256``
    (N x D x V)."""
    if text == "auto":
        return LINEAR_SWEEPS.get(sizes, ())
    if text in LINEAR_SWEEPS:
        return LINEAR_SWEEPS[text]
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*", part)
        if not m or min(int(m[1]), int(m[2])) < 1 or int(m[3]) < 2:
            raise SweepError(
                f"--bench-linear-sizes: {part.strip()!r} is not NxDxV (e.g. 1024x256x32000, V >= 2) "
                f"nor one of auto, {', '.join(LINEAR_SWEEPS)}"
            )
        out.append((int(m[1]), int(m[2]), int(m[3])))
    return tuple(out)


def parse_list(flag: str, text: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated subset of ``allowed``."""
    items = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in items if p not in allowed]
    if bad or not items:
        raise SweepError(f"{flag}: {bad[0] if bad else text!r} is not one of {', '.join(allowed)}")
    return items


@dataclass(frozen=True)
class BenchSpec:
    """One timed configuration."""

    framework: str
    binding: str
    op: str
    batch: int
    classes: int
    dtype: str
    mode: str
    pass_: str
    #: linear_ce: the hidden size D (``batch`` is N, ``classes`` is V); None for the other ops
    hidden: int | None = None

    @property
    def grad(self) -> bool:
        return self.pass_ == "forward+backward"

    @property
    def size(self) -> str:
        """``BATCHxCLASSES``, or ``NxDxV`` for linear_ce."""
        if self.hidden is None:
            return f"{self.batch}x{self.classes}"
        return f"{self.batch}x{self.hidden}x{self.classes}"

    @property
    def id(self) -> str:
        return "-".join(
            (
                self.framework,
                self.binding,
                self.size,
                self.dtype,
                self.mode,
                "fwdbwd" if self.grad else "fwd",
            )
        )


def canonical_target(op: str, accepted: frozenset[str]) -> str:
    """The target kind a binding is timed with."""
    if op in CATEGORICAL_OPS:
        return "index" if "index" in accepted else "onehot"
    return "binary"


def problem(op: str, target_kind: str, reduction: str, batch: int, classes: int, dtype: str, seed: int = 0) -> Problem:
    """A seeded benchmark input: standard-normal logits (or their softmax / sigmoid for the
    probability ops, their log-softmax for ``nll``), with the targets named."""
    rng = np.random.default_rng(seed)
    shape = (batch, classes)
    # computed in float32 below float64 (the values are rounded to the dtype anyway): at 4096x32000
    # float64 work would double the seconds each input takes to build
    z = rng.standard_normal(shape, dtype=np.float32)
    if dtype == "float64":
        z = z.astype(np.float64)
    if op in ("categorical_ce", "nll"):
        shifted = z - z.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        total = e.sum(axis=-1, keepdims=True)
        x = e / total if op == "categorical_ce" else shifted - np.log(total)
        del e, shifted
    elif op == "bce":
        x = 1.0 / (1.0 + np.exp(-z))
    else:
        x = z
    # held in float32 below float64: every value of float32, bfloat16 and float16 is exact in float32, so
    # nothing changes but the memory (4096x32000: 0.5 GB an array, not 1 GB; a part's peak was 10 GB)
    held = np.float64 if dtype == "float64" else np.float32
    x = round_to(x, dtype).astype(held, copy=False)
    if target_kind == "index":
        target = rng.integers(0, classes, size=batch)
    elif target_kind == "onehot":
        target = np.zeros(shape, dtype=held)
        target[np.arange(batch), rng.integers(0, classes, size=batch)] = 1.0
    else:
        target = (rng.random(shape, dtype=np.float32) < 0.5).astype(held)
    return Problem(
        case=f"bench-{batch}x{classes}",
        op=op,
        dtype=dtype,
        x=x,
        target=target,
        target_kind=target_kind,
        reduction=reduction,
        category="benchmark",
    )


def bytes_moved(batch: int, classes: int, dtype: str, grad: bool) -> int:
    """The least memory traffic of one call: the forward reads the inputs once; the backward reads
    them once more and writes the gradient."""
    logits = batch * classes * numpy_dtype(dtype).itemsize
    return logits * (3 if grad else 1)


def exps_needed(batch: int, classes: int) -> int:
    """One exponential per logit (the backward can reuse them)."""
    return batch * classes


def linear_problem(batch: int, hidden: int, classes: int, dtype: str, seed: int = 0) -> Problem:
    """A seeded linear_ce benchmark input: X [N, D] standard normal, W [V, D] normal with variance 1 / D
    (logits of unit scale, as a trained classifier's), index targets, the ``mean`` reduction. The arrays
    are held in float32 (the values rounded to ``dtype``), which torch takes without a copy in float32."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, hidden), dtype=np.float32)
    w = rng.standard_normal((classes, hidden), dtype=np.float32)
    w *= np.float32(1 / np.sqrt(hidden))
    if dtype != "float32":
        x, w = (round_to(a, dtype).astype(np.float32) for a in (x, w))
    return Problem(
        case=f"bench-{batch}x{hidden}x{classes}",
        op=LINEAR_OP,
        dtype=dtype,
        x=x,
        target=rng.integers(0, classes, size=batch),
        target_kind="index",
        reduction="mean",
        category="benchmark",
        weight_matrix=w,
    )


def linear_flops(batch: int, hidden: int, classes: int, grad: bool) -> int:
    """The floating-point operations no fused linear + cross-entropy can avoid: the logits X W^T
    (2 N D V: a multiply and an add per term), and with the backward dX = G W and dW = G^T X
    (2 N D V each): 6 N D V for forward+backward, 2 N D V for the forward."""
    return 2 * batch * hidden * classes * (3 if grad else 1)


def linear_memory_floor(batch: int, hidden: int, classes: int, dtype: str, grad: bool) -> dict[str, int]:
    """The memory any implementation must hold, in bytes: the inputs (X [N, D] and W [V, D] in
    ``dtype``, the int64 targets) and, with the backward, their gradients dX and dW in ``dtype``;
    without the N x V logits (``logits``, for comparison: what an unfused implementation materialises
    at least once)."""
    item = numpy_dtype(dtype).itemsize
    inputs = (batch * hidden + classes * hidden) * item + batch * 8
    grads = (batch * hidden + classes * hidden) * item if grad else 0
    return {"inputs": inputs, "gradients": grads, "floor": inputs + grads, "logits": batch * classes * item}

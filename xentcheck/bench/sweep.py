"""What the benchmark sweep times: sizes, passes, and one canonical problem per op and size.

A size is batch x classes. Named sweeps run from dispatch-bound (32x10) through cache-resident to
memory-bound sizes; ``llm`` adds LLM-scale vocabularies. Each binding is timed on its op's
canonical problem: index targets where the binding takes them (else one-hot) for the categorical
ops, hard 0/1 multi-label targets for the binary ops, the ``mean`` reduction where offered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from xentcheck.problem import CATEGORICAL_OPS, Problem, numpy_dtype, round_to

#: named size sweeps (batch x classes)
SWEEPS: dict[str, tuple[tuple[int, int], ...]] = {
    "quick": ((32, 10), (1024, 1000), (4096, 32000)),
    "full": ((32, 10), (256, 1000), (1024, 8000), (4096, 32000), (8192, 32000)),
    "llm": ((32, 10), (1024, 8000), (4096, 32000), (8192, 32000), (2048, 128256), (4096, 128256)),
}
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

    @property
    def grad(self) -> bool:
        return self.pass_ == "forward+backward"

    @property
    def id(self) -> str:
        return "-".join(
            (
                self.framework,
                self.binding,
                f"{self.batch}x{self.classes}",
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
    x = round_to(x, dtype)
    if target_kind == "index":
        target = rng.integers(0, classes, size=batch)
    elif target_kind == "onehot":
        target = np.zeros(shape)
        target[np.arange(batch), rng.integers(0, classes, size=batch)] = 1.0
    else:
        target = (rng.random(shape) < 0.5).astype(np.float64)
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

"""What one oracle policy is (:class:`Policy`) and the working state its hook acts on (:class:`Flow`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..problem import OPS, Problem

#: where a policy acts in the oracle's pipeline (see ``reference.unreduced``), in pipeline order
STAGES = {
    "inputs": "on the inputs, before the loss formula (a hook changes the problem or the target)",
    "core": "inside the loss formula, which reads the policy's value where it forms the loss and gradient",
    "after": "after the loss formula (a hook changes its loss and gradient) or in the reduction, which "
    "reads the policy's value",
}
#: a policy value's Python type -> its JSON Schema type
_JSON_TYPES = {float: "number", bool: "boolean", str: "string"}


@dataclass
class Flow:
    """The working state of one oracle evaluation, which the pipeline's stages fill in and the policies'
    hooks read and change. ``conv`` is the :class:`xentcheck.reference.Convention` in force."""

    problem: Problem
    conv: Any
    #: the input the formula takes; after a softmax formula, the logits with a ``where`` mask applied
    x: np.ndarray
    #: the number of classes categorical label smoothing divides by (None: the problem's class count)
    smoothing_classes: int | None = None
    #: the target the formula takes: dense, label-smoothed
    y: np.ndarray | None = None
    #: the per-class target weights the formula used (categorical: ``y`` times the class weights)
    a: np.ndarray | None = None
    #: softmax_ce: the loss is formed as plain products ``a * (lse - z)`` (``0 * inf = NaN``)
    plain: bool = False
    #: the formula went through probabilities formed from the logits (policy ``probabilities_dtype``)
    via_probabilities: bool = False
    loss: np.ndarray | None = None
    grad: np.ndarray | None = None
    #: the error scales ``(A, S)`` of the loss and of the gradient
    vsc: tuple[np.ndarray, np.ndarray] | None = None
    gsc: tuple[np.ndarray, np.ndarray] | None = None
    #: the gradient that reaches each element of the formula's loss from the binding's output (the
    #: cotangent or the mean's 1/N, through the weights and the last-axis mean); None: 1. Only policies
    #: whose rounding depends on it read it (``log_grad_quotient``)
    upstream: np.ndarray | None = None
    #: the rows whose label the dtype could not hold (``labels_in_dtype``: it became inf), where
    #: ``lost_label_nan`` says the binding fills their target with NaN; None: no such row
    lost_rows: np.ndarray | None = None

    def formed(self, *ops: str) -> bool:
        """Whether the loss is one of ``ops`` formed by its own formula (not through probabilities)."""
        return self.problem.op in ops and not self.via_probabilities


@dataclass(frozen=True)
class Policy:
    """One documented numerical policy of the oracle: a way a binding departs from the plain mathematics,
    which a binding's convention or a registry entry's ``expect`` may name.

    name: the key in a registry entry's ``expect`` and the field of ``Convention``.
    kind: the type of its value (``float``, ``bool`` or ``str``); ``values``: a string policy's choices.
    stage: where it acts (a key of :data:`STAGES`).
    ops: the ops whose loss it can change.
    doc: what it means, in Markdown: the ``Convention`` docstring, the registry's schema and the policy
        table in docs/expectations.md are made from it.
    hook: for stages ``inputs`` and ``after``: what it does to the :class:`Flow` when in force (its value
        is neither None nor False); None where the formula or the reduction reads the value itself.
    """

    name: str
    kind: type
    stage: str
    ops: tuple[str, ...]
    doc: str
    values: tuple[str, ...] = ()
    hook: Callable[[Flow], None] | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"policy {self.name}: stage {self.stage!r} is not one of {sorted(STAGES)}")
        if self.kind not in _JSON_TYPES:
            raise ValueError(f"policy {self.name}: kind {self.kind!r} is not float, bool or str")
        if self.values and self.kind is not str:
            raise ValueError(f"policy {self.name}: only a str policy lists its values")
        if self.hook is not None and self.stage == "core":
            raise ValueError(f"policy {self.name}: a core policy is read by the formula; it has no hook")
        if not set(self.ops) <= set(OPS) or not self.ops:
            raise ValueError(f"policy {self.name}: ops {self.ops} are not a subset of {OPS}")

    @property
    def annotation(self) -> Any:
        """The type of its ``Convention`` field: its kind, or None (not in force)."""
        return self.kind | None

    def schema(self) -> dict:
        """The JSON Schema of its value in a registry entry's ``expect``."""
        if self.values:
            return {"title": f"expect.{self.name}", "enum": list(self.values)}
        return {"title": f"expect.{self.name}", "type": _JSON_TYPES[self.kind]}

    def in_force(self, conv: Any) -> bool:
        """Whether ``conv`` sets it (a value that is neither None nor False)."""
        value = getattr(conv, self.name)
        return value is not None and value is not False

    @property
    def test(self) -> str:
        """Its unit test (every registered policy has one; tests/test_policies.py checks it)."""
        return f"tests/test_policies.py::test_{self.name}"

"""The registry of the oracle's numerical policies: every module in this package declares one
:class:`Policy` as ``POLICY``, and is found here by name (adding a policy is adding its module).

From the registered policies come the fields of :class:`xentcheck.reference.Convention`, the stages of
the oracle's pipeline (``reference.unreduced`` runs each policy's hook at its stage), the JSON Schema of
a registry entry's ``expect`` (:func:`expect_schema`) and the policy table in docs/expectations.md
(:func:`markdown_table`; ``python -m xentcheck.policies --write`` regenerates it, a test fails on drift).
"""

from __future__ import annotations

import importlib
import pkgutil
import textwrap

from ..problem import OPS
from ._policy import STAGES, Flow, Policy

__all__ = ["REGISTRY", "STAGES", "Flow", "Policy", "at", "convention_doc", "expect_schema", "markdown_table"]


def _discover() -> tuple[Policy, ...]:
    """Every ``POLICY`` of this package's public modules, by name; a module's name is its policy's."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        policy = importlib.import_module(f"{__name__}.{info.name}").POLICY
        if policy.name != info.name:
            raise ValueError(
                f"xentcheck/policies/{info.name}.py declares policy {policy.name!r}: name the module after its policy"
            )
        found.append(policy)
    return tuple(sorted(found, key=lambda p: p.name))


#: every registered policy, by name
REGISTRY: tuple[Policy, ...] = _discover()


def at(stage: str) -> tuple[Policy, ...]:
    """The policies with a hook at ``stage`` (``inputs`` or ``after``), in the order their hooks run."""
    return tuple(p for p in REGISTRY if p.stage == stage and p.hook is not None)


def expect_schema() -> dict:
    """The JSON Schema properties of the policies a registry entry's ``expect`` may name."""
    return {p.name: p.schema() for p in REGISTRY}


def _values(p: Policy) -> str:
    if p.values:
        return " / ".join(f'`"{v}"`' for v in p.values)
    return {float: "a number", bool: "`true`", str: "a string"}[p.kind]


def markdown_table() -> str:
    """The policy table of docs/expectations.md."""
    rows = ["| policy | value | stage | ops | what the binding does |", "| --- | --- | --- | --- | --- |"]
    for p in REGISTRY:
        doc = " ".join(p.doc.split()).replace("|", "\\|")
        ops = "every op" if set(p.ops) == set(OPS) else ", ".join(p.ops)
        rows.append(f"| `{p.name}` | {_values(p)} | {p.stage} | {ops} | {doc} |")
    return "\n".join(rows) + "\n"


def convention_doc(header: str) -> str:
    """``header`` followed by one paragraph per policy: the docstring of ``Convention``."""
    body = [
        textwrap.fill(f"{p.name}: {' '.join(p.doc.split())}", 100, initial_indent="    ", subsequent_indent="        ")
        for p in REGISTRY
    ]
    return header + "\n" + "\n".join(body) + "\n"

"""The expectations registry: documented deviations from the mathematics, checked strictly.

Each entry names a framework, the bindings and cases it covers, a version range, and the behaviour
expected instead, written as a policy of the oracle (e.g. ``prob_clip = 1e-7``), so the expected
numbers still come from the oracle, never from the framework. A check an entry covers is a
``deviation`` when the binding differs from the mathematics and matches the policy; when the binding
matches the mathematics where the policy would differ, the entry no longer happens and the check
fails (a fix or a behaviour change on upgrade is never silent).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .declarations import tables
from .reference import POLICIES, Convention

# Oracle policies an entry may expect, plus compute_dtype: "the result has the precision of this dtype"
# (judged with that dtype's bound against the same oracle values).
# invalid_targets: what a binding documents for invalid input instead of raising ("nan": an out-of-range
# label's row is NaN; "wrap": a negative label counts from the end, as NumPy indexing does;
# "broadcast": a dense target of another shape is broadcast against the input, elementwise;
# "int_truncated": with integer targets, the loss is returned cast to integers, truncated toward 0).
_CONVENTION_KEYS = set(POLICIES)
_POLICY_KEYS = _CONVENTION_KEYS | {"compute_dtype", "invalid_targets"}
_KEYS = {"id", "framework", "package", "bindings", "checks", "cases", "categories", "dtypes", "modes", "versions",
         "expect", "reason", "source"}
_REQUIRED = ("id", "framework", "bindings", "expect", "reason", "source")


class ExpectationError(ValueError):
    """A malformed registry file; the message is one line naming the file, entry and key."""


@dataclass(frozen=True)
class Expectation:
    """One documented deviation."""

    id: str
    framework: str
    bindings: tuple[str, ...]
    expect: dict
    reason: str
    source: str
    package: str = ""
    checks: tuple[str, ...] = ("value", "grad")
    cases: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    versions: str = ""

    def applies(self, framework: str, binding: str, case: str, category: str, dtype: str, check: str,
                versions: dict, mode: str = "eager") -> bool:
        """Whether this entry covers the check (version taken from ``versions[package or framework]``)."""
        if framework != self.framework or binding not in self.bindings or check not in self.checks:
            return False
        if self.cases and case not in self.cases:
            return False
        if self.categories and category not in self.categories:
            return False
        if self.dtypes and dtype not in self.dtypes:
            return False
        if self.modes and mode not in self.modes:
            return False
        return self.in_versions(versions)

    def in_versions(self, versions: dict) -> bool:
        """Whether the installed version (``versions[package or framework]``) is inside the entry's range."""
        if not self.versions:
            return True
        v = versions.get(self.package or self.framework)
        try:
            return v is not None and Version(str(v)) in SpecifierSet(self.versions)
        except InvalidVersion:
            return False

    def convention(self, base: Convention) -> Convention:
        """The binding's convention with this entry's policies applied."""
        return replace(base, **{k: v for k, v in self.expect.items() if k in _CONVENTION_KEYS})

    @property
    def compute_dtype(self) -> str | None:
        return self.expect.get("compute_dtype")

    def as_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v, tuple) else v) for f in fields(self) for v in [getattr(self, f.name)]}


def _entry(raw: dict, where: str) -> Expectation:
    unknown = set(raw) - _KEYS
    if unknown:
        raise ExpectationError(f"{where}: unknown key {sorted(unknown)[0]!r}; known keys: {', '.join(sorted(_KEYS))}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", str(raw.get("id", ""))):
        raise ExpectationError(f"{where}: id must be lower-case letters, digits and '-'")
    for key in _REQUIRED:
        if not raw.get(key):
            raise ExpectationError(f"{where}: missing required key {key!r} (every entry needs {', '.join(_REQUIRED)})")
    bad = set(raw["expect"]) - _POLICY_KEYS
    if bad:
        raise ExpectationError(f"{where}: expect.{sorted(bad)[0]} is not an oracle policy; use one of "
                               f"{', '.join(sorted(_POLICY_KEYS))}")
    if not str(raw["source"]).startswith(("http://", "https://")):
        raise ExpectationError(f"{where}: source must be a link to the documentation or issue")
    if raw.get("versions"):
        try:
            SpecifierSet(raw["versions"])
        except InvalidSpecifier:
            raise ExpectationError(f"{where}: versions {raw['versions']!r} is not a version specifier like '>=2.0,<3'") from None
    for key, allowed in (("checks", ("value", "grad")), ("modes", ("eager", "compiled"))):
        for c in raw.get(key, ()):
            if c not in allowed:
                raise ExpectationError(f"{where}: {key} entry {c!r} must be one of {', '.join(allowed)}")
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items()}
    return Expectation(**kw)


@dataclass(frozen=True)
class Registry:
    """All expectation entries, loaded from one or more TOML files."""

    entries: tuple[Expectation, ...] = ()

    def find(self, framework: str, binding: str, case: str, category: str, dtype: str, check: str,
             versions: dict, mode: str = "eager") -> Expectation | None:
        """The entry covering this check, if any. Several entries that apply together (e.g. a policy and
        a compute_dtype) combine into one whose id joins theirs with '+'."""
        hits = [e for e in self.entries if e.applies(framework, binding, case, category, dtype, check, versions, mode)]
        if len(hits) <= 1:
            return hits[0] if hits else None
        expect: dict = {}
        for e in hits:
            expect.update(e.expect)
        return replace(hits[0], id="+".join(e.id for e in hits), expect=expect,
                       reason="; ".join(e.reason for e in hits))

    def get(self, entry_id: str) -> Expectation:
        return next(e for e in self.entries if e.id == entry_id)


def audit(registry: Registry, records: list[dict], frameworks: set[str],
          versions: dict | None = None) -> tuple[list[str], list[str]]:
    """Run-level strictness: (stale, unused) entry messages for the frameworks that ran (and, given
    ``versions``, only for entries whose version range holds: another release line's entry is silent).

    stale: the entry covered checks where its documented behaviour differs from the mathematics, and
        none of them deviated (the behaviour stopped).
    unused: the entry covered no check at all (a typo in a binding or case name, or a removed case).
    """
    applied: dict[str, int] = {}
    fired: dict[str, int] = {}
    covered: set[str] = set()
    for r in records:
        ids = (r.get("expectation") or "").split("+") if r.get("expectation") else []
        covered.update(ids)
        for e in ids if r.get("expectation_differs") else []:
            applied[e] = applied.get(e, 0) + 1
            if r.get("outcome") == "deviation":
                fired[e] = fired.get(e, 0) + 1
    stale, unused = [], []
    modes_run = {r.get("mode") for r in records}
    for e in registry.entries:
        if e.framework not in frameworks or (e.modes and not set(e.modes) & modes_run):
            continue  # its framework or its mode did not run
        if versions is not None and not e.in_versions(versions):
            continue  # it documents another release
        if e.id not in covered:
            unused.append(f"expectation {e.id!r} matched no check in this run (bindings {list(e.bindings)})")
        elif e.id not in applied:
            unused.append(f"expectation {e.id!r} covered checks, but none whose input shows the documented "
                          f"behaviour; add a case that does")
        elif e.id not in fired:
            stale.append(f"expectation {e.id!r} no longer happens: it covered {applied[e.id]} checks and none "
                         f"deviated; the behaviour changed, update or remove the entry")
    return stale, unused


def load_registry(paths: list[Path]) -> Registry:
    """Load and validate registry files; raises ExpectationError with one line on bad input."""
    entries: dict[str, Expectation] = {}
    for where, raw in tables(paths, "expectation", "id", ExpectationError, "expectations"):
        e = _entry(raw, where)
        if e.id in entries:
            raise ExpectationError(f"{where}: duplicate id")
        entries[e.id] = e
    return Registry(tuple(entries.values()))

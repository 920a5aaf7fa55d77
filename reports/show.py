"""Every number behind one check, rebuilt: ``python -m reports show CHECK_ID`` and :func:`show`.

A results record says whether a binding matched the mathematics; this module says with what. From a
case and a binding it rebuilds the check's inputs (the case's seeded arrays in the check's dtype),
evaluates the exact float64 oracle under the binding's own documented convention (its mean, its
weights), under the registry entry that covers the check (the documented deviation, where one does)
and under the plain mathematics (:data:`xentcheck.reference.MATH`), runs the binding, judges it as
the run does, and writes the framework-only snippet that reproduces it. Use it to compare a binding
with outside ground truth (ONNX's expected outputs, a kernel's own tests).

Unlike the rest of ``reports`` (results files in, pages out), this module loads cases and adapters,
and so the framework of the binding it shows: tests/test_layers.py names it as the one exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adapters import BUILTIN, AdapterError, load_builtin, load_external, missing_packages
from cases import Case, interactions, load_catalog
from xentcheck import checks, reference
from xentcheck.check import Check
from xentcheck.expectations import Expectation, load_registry
from xentcheck.problem import Problem
from xentcheck.protocol import Adapter, Binding, run_binding
from xentcheck.records import CheckRecord
from xentcheck.results import load

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXPECTATIONS = ROOT / "suites" / "expectations.toml"
DEFAULT_RESULTS = Path("results") / "results.json"
CHECK_PARTS = ("dtype", "mode", "reduction", "check")


@dataclass(frozen=True)
class Coordinates:
    """Which check of a case and a binding :func:`show` rebuilds: the ``dtype``, the ``reduction`` (None:
    the first the case and the binding share), the ``check`` ("value" or "grad"), the ``mode`` and the
    ``device``."""

    dtype: str = "float32"
    reduction: str | None = None
    check: str = "value"
    mode: str = "eager"
    device: str = "cpu"


@dataclass(frozen=True)
class Sources:
    """Where :func:`show` loads from besides the built-in catalog and adapters: ``cases``, external case
    files or folders (as ``--cases``); ``adapters``, external adapters as ``MODULE:ATTR`` or
    ``path/to/file.py:ATTR`` (as ``--adapter``); ``expectations``, registry files (None: the default
    suites/expectations.toml)."""

    cases: tuple[Path, ...] = ()
    adapters: tuple[str, ...] = ()
    expectations: tuple[Path, ...] | None = None


class ShowError(ValueError):
    """The check cannot be rebuilt (an unknown name, a framework not installed); one line saying why."""


@dataclass
class Shown:
    """One check rebuilt: its inputs, the expected values three ways, what the binding returned, the
    verdict and the snippet. Arrays are float64 (index targets int64); :meth:`text` prints them all."""

    framework: str
    binding: Binding
    problem: Problem
    check: str
    mode: str
    #: the problem's arrays and options as the binding gets them (class axis last)
    inputs: dict
    #: the binding's own documented convention (what its mean divides by, where its weights apply...)
    convention: reference.Convention
    #: the oracle under the binding's own convention: what the check compares against
    expected: np.ndarray | None
    #: the oracle under the plain mathematics (reference.MATH: a mean over every output element)
    expected_math: np.ndarray | None
    #: the registry entry covering the check and the oracle under it (the documented behaviour)
    entry: Expectation | None = None
    expected_documented: np.ndarray | None = None
    #: what the binding returned (None where it raised: see ``raised``)
    got: np.ndarray | None = None
    raised: str | None = None
    cotangent: np.ndarray | None = None
    #: the check as a run records it (outcome, reason, worst elements, snippet)
    record: CheckRecord | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def check_id(self) -> str:
        p = self.problem
        return Check(self.framework, self.binding.name, p.case, p.dtype, self.mode, p.reduction, self.check).id

    def text(self) -> str:
        """Everything, as plain text: inputs, the three expected values, the result, the verdict, the snippet."""
        p, r = self.problem, self.record
        out = [
            f"check {self.check_id}",
            f"  {self.framework} {self.binding.name} ({self.binding.api}): op {p.op}, case {p.case} "
            f"({p.category}), {p.dtype}, reduction {p.reduction}, {self.check}, {self.mode}",
        ]
        if r is not None:
            out.append(f"  outcome: {r.outcome}" + (f": {r.reason}" if r.reason else ""))
        out.append("\ninputs (rebuilt from the case; class axis last):")
        for name, v in self.inputs.items():
            out.append(_block(name, v))
        if self.cotangent is not None:
            out.append(_block("cotangent (the upstream gradient of the unreduced output)", self.cotangent))
        what = "loss" if self.check == "value" else "gradient with respect to the logits"
        out.append(f"\nexpected {what}, exact (float64 oracle):")
        conv = _convention_text(self.convention)
        out.append(_block(f"under the binding's own convention ({conv})", self.expected))
        if self.entry is not None and self.expected_documented is None:
            out.append(f"  registry entry {self.entry.id!r} covers it: {_expect_text(self.entry.expect)}")
        elif self.entry is not None:
            out.append(
                _block(
                    f"under registry entry {self.entry.id!r} (the documented behaviour: "
                    f"{_expect_text(self.entry.expect)})",
                    self.expected_documented,
                )
            )
        out.append(_block("under the plain mathematics (reference.MATH)", self.expected_math))
        if self.raised is not None:
            out.append(f"\nthe binding raised: {self.raised}")
        else:
            out += ["", _block(f"what {self.binding.name} returned", self.got)]
        if r is not None and r.worst:
            out.append("\nworst elements against the mathematics (where: expected, returned, bound):")
            out += [f"  {w['at']}: {w['expected']!r}, {w['got']!r}, {w['bound']!r}" for w in r.worst]
        out += [f"\nnote: {n}" for n in self.notes]
        if r is not None and r.repro:
            out.append("\nsnippet (the framework's own API, no xentcheck):\n" + r.repro)
        return "\n".join(out)


def _convention_text(conv: reference.Convention) -> str:
    diff = {k: v for k, v in vars(conv).items() if getattr(reference.MATH, k) != v}
    return ", ".join(f"{k}={v!r}" for k, v in diff.items()) or "the plain mathematics"


def _expect_text(expect: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in expect.items())


def _block(title: str, v) -> str:
    if v is None:
        return f"  {title}: none"
    a = np.asarray(v)
    if a.ndim == 0:
        return f"  {title}: {a.item()!r}"
    with np.printoptions(floatmode="unique", threshold=400, linewidth=110):
        body = np.array2string(a, separator=", ")
    more = " (summarised; Shown's arrays hold every element)" if a.size > 400 else ""
    return f"  {title}, shape {a.shape}{more}:\n    " + body.replace("\n", "\n    ")


def _inputs(p: Problem) -> dict:
    out: dict = {"logits" if p.op in ("softmax_ce", "sigmoid_bce") else "input": p.x, "target": p.target}
    for name in ("class_weight", "sample_weight", "pos_weight", "where"):
        if getattr(p, name) is not None:
            out[name] = getattr(p, name)
    if p.ignore_index is not None:
        out["ignore_index"] = p.ignore_index
    if p.label_smoothing:
        out["label_smoothing"] = p.label_smoothing
    if p.channels_first:
        out["channels_first"] = True
    return out


def _adapter(framework: str, externals: list[Adapter]) -> Adapter:
    for a in externals:
        if a.name == framework:
            return a
    if framework not in BUILTIN:
        raise ShowError(
            f"unknown framework {framework!r}; known: {', '.join(BUILTIN)} (an external adapter: "
            f"pass --adapter=MODULE:ATTR)"
        )
    missing = missing_packages(framework)
    if missing:
        raise ShowError(f"{framework} is not installed here (missing {', '.join(missing)})")
    try:
        return load_builtin(framework)
    except AdapterError as e:
        raise ShowError(str(e)) from None


def _problem(case: Case, binding: Binding, dtype: str, reduction: str | None) -> Problem:
    op = binding.caps.op
    if op not in case.ops:
        raise ShowError(f"case {case.name!r} is for {', '.join(case.ops)}, and {binding.name} is {op}")
    if reduction is None:
        reduction = next((r for r in case.reductions if r in binding.caps.reductions), case.reductions[0])
    return case.problem(op, dtype, reduction)


def _interaction_case(name: str, binding: Binding) -> Case | None:
    """The generated interaction case ``name`` of ``binding`` (every strength the run offers)."""
    for strength in (interactions.MIXED, 2, 3):
        for row in interactions.plan(binding, strength).rows:
            c = interactions.case(binding.caps.op, row)
            if c.name == name:
                return c
    return None


def show(
    case: str, binding: str, framework: str, *, at: Coordinates | None = None, sources: Sources | None = None
) -> Shown:
    """Rebuild one check of ``binding`` (of ``framework``) on ``case`` and evaluate everything behind it.

    ``at``: which check (dtype, reduction, value or grad, mode, device; default :class:`Coordinates`(),
    the float32 value in eager mode on the CPU, the first reduction the case and the binding share);
    ``sources``: external cases, adapters and registry files (default :class:`Sources`(), the built-in
    ones only). Raises :class:`ShowError` with one line when it cannot.

    >>> s = show("tutorial_logits", "log_softmax", "numpy", at=Coordinates(reduction="mean"))  # doctest: +SKIP
    >>> s.expected, s.expected_math, s.got                     # doctest: +SKIP
    >>> print(s.text())                                        # doctest: +SKIP
    """
    at = at if at is not None else Coordinates()
    sources = sources if sources is not None else Sources()
    try:
        externals = [load_external(spec) for spec in sources.adapters]
    except AdapterError as e:
        raise ShowError(str(e)) from None
    adapter = _adapter(framework, externals)
    if at.device != "cpu":
        adapter.device = at.device  # bound once, as a run binds it at start-up
    bindings = {b.name: b for b in adapter.bindings()}
    if binding not in bindings:
        raise ShowError(f"{framework} has no binding {binding!r}; it has {', '.join(sorted(bindings))}")
    b = bindings[binding]
    catalog = {c.name: c for c in load_catalog(external=list(sources.cases))}
    c = catalog.get(case) or (_interaction_case(case, b) if case.startswith("ix-") else None)
    if c is None:
        raise ShowError(f"no case {case!r} (the case names are in cases/*.toml; an external case: pass --cases)")
    p = _problem(c, b, at.dtype, at.reduction)
    registry = load_registry(list(sources.expectations or [DEFAULT_EXPECTATIONS]))
    versions = {k: v for k, v in adapter.environment().items() if isinstance(v, str)}
    judge = checks.Judge(registry, versions, at.device)
    key = Check(
        adapter.name,
        b.name,
        p.case,
        p.dtype,
        at.mode,
        p.reduction,
        at.check,
        api=b.api,
        op=p.op,
        category=p.category,
        target=p.target_kind,
        device=at.device,
    )
    return _rebuild(adapter, b, p, judge, key)


def _rebuild(adapter: Adapter, b: Binding, p: Problem, judge: checks.Judge, key: Check) -> Shown:
    """The :class:`Shown` of check ``key`` (its kind, value or grad, its mode and device) of binding ``b``
    on problem ``p``, judged by ``judge`` (the registry and the installed versions) as the run judges it."""
    check, mode = key.kind, key.mode
    conv = b.convention_for(p)
    cot = checks.cotangent_for(p, conv)
    pick = (lambda ev: ev.value) if check == "value" else (lambda ev: ev.grad)
    shown = Shown(adapter.name, b, p, check, mode, _inputs(p), conv, None, None, cotangent=cot)
    try:
        shown.expected = pick(reference.evaluate(p, conv, cot))
        same_shape = cot is None or reference.output_shape(p) == np.shape(cot)  # the MATH output's shape
        shown.expected_math = pick(reference.evaluate(p, reference.MATH, cot if same_shape else None))
    except Exception as e:  # an invalid input (an out-of-range label) has no mathematical value
        shown.notes.append(f"the oracle has no value for this input: {type(e).__name__}: {e}")
    shown.entry = judge.expectation(key, p)
    if p.invalid_input:
        handed, _ = p.handed_target()
        what = f"a malformed target ({p.malformed})" if p.malformed else f"an out-of-range label ({p.invalid_target})"
        shown.inputs["target as handed to the binding"] = handed
        shown.notes.append(
            f"the errors layer's input: {what}; the expected values are the well-formed problem's, "
            "and what the binding should do instead (raise, or a documented invalid_targets "
            "behaviour) is judged by xentcheck.invalid_input, not evaluated here"
        )
    if shown.entry is not None and not ({"raises", "invalid_targets"} & set(shown.entry.expect)):
        try:
            shown.expected_documented = pick(reference.evaluate(p, shown.entry.convention(conv), cot))
        except Exception as e:
            shown.notes.append(f"the documented behaviour has no value here: {type(e).__name__}: {e}")
    if conv != reference.MATH:
        shown.notes.append(
            "the binding's convention differs from the plain mathematics "
            f"({_convention_text(conv)}): the check compares with the first expected value"
        )
    try:
        out = run_binding(adapter, b, p, grad=check == "grad", cotangent=cot, mode=mode)
        shown.got = np.asarray(out.value if check == "value" else out.grad, dtype=np.float64)
    except Exception as e:
        shown.raised = f"{type(e).__name__}: {e}"
    shown.record = judge.run(adapter, b, p, key)
    return shown


def parse_check_id(check_id: str, results: Path | None = None, adapters: list[str] = ()) -> dict:
    """The parts of a check id (framework, binding, case, dtype, mode, reduction, check): from the record
    of that id in ``results`` where it has one, else parsed (the framework and binding names are known)."""
    path = results if results is not None else DEFAULT_RESULTS
    if path.exists():
        doc = load(path)
        rec = next((r for r in doc.records if r.id == check_id), None)
        if rec is not None and rec.check not in ("value", "grad"):
            raise ShowError(
                f"{check_id!r} is a {rec.check} record: its inputs were drawn (hypothesis), not taken "
                f"from a case; rerun it with ./run conformance --case={rec.case} --binding={rec.binding}"
            )
        if rec is not None:
            return {
                "framework": rec.framework,
                "binding": rec.binding,
                "case": rec.case,
                "dtype": rec.dtype,
                "mode": rec.mode,
                "reduction": rec.reduction,
                "check": rec.check,
            }
        if results is not None:
            raise ShowError(f"{path} has no check {check_id!r}")
    parts = check_id.split("-")
    if len(parts) < 7:
        raise ShowError(f"{check_id!r} is not a check id (FRAMEWORK-BINDING-CASE-DTYPE-MODE-REDUCTION-CHECK)")
    head, tail = "-".join(parts[:-4]), dict(zip(CHECK_PARTS, parts[-4:], strict=True))
    try:
        externals = [load_external(spec) for spec in adapters]
    except AdapterError as e:
        raise ShowError(str(e)) from None
    names = [*BUILTIN, *(a.name for a in externals)]
    framework = next((f for f in sorted(names, key=len, reverse=True) if head.startswith(f + "-")), None)
    if framework is None:
        raise ShowError(f"{check_id!r} names no known framework; pass the results file that holds it")
    adapter = _adapter(framework, externals)
    rest = head[len(framework) + 1 :]
    binding = next(
        (b.name for b in sorted(adapter.bindings(), key=lambda b: -len(b.name)) if rest.startswith(b.name + "-")), None
    )
    if binding is None:
        raise ShowError(f"{check_id!r}: no binding of {framework} starts {rest!r}")
    return {"framework": framework, "binding": binding, "case": rest[len(binding) + 1 :], **tail}


def show_check(check_id: str, results: Path | None = None, sources: Sources | None = None) -> Shown:
    """:func:`show` for a check id as the run names it (``results``: the results file that holds it;
    ``sources``: as :func:`show`'s)."""
    sources = sources if sources is not None else Sources()
    parts = parse_check_id(check_id, results, list(sources.adapters))
    at = Coordinates(dtype=parts["dtype"], reduction=parts["reduction"], check=parts["check"], mode=parts["mode"])
    return show(parts["case"], parts["binding"], parts["framework"], at=at, sources=sources)

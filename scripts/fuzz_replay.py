"""Replay one fuzz finding: judge a binding on the draw its repro names, as the run judges it (the oracle,
the registry's conditions on the input), and print each check's outcome, the entries that fired and why.

    python scripts/fuzz_replay.py FRAMEWORK BINDING "Problem(case='fuzz', op=..., ...)" [--expectations F]

The repro is a finding's ``repro`` (results file, report or campaign tally: xentcheck/fuzz.py
``repro_line``). Imports the binding's framework.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters import load_builtin  # noqa: E402
from xentcheck import checks, conditions  # noqa: E402
from xentcheck.expectations import load_registry  # noqa: E402
from xentcheck.problem import Problem  # noqa: E402

DEFAULT_EXPECTATIONS = Path(__file__).resolve().parent.parent / "suites" / "expectations.toml"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("framework")
    ap.add_argument("binding")
    ap.add_argument("repro", help="the finding's repro: a Problem(...) expression")
    ap.add_argument("--expectations", action="append", default=None, help="registry files (default: the suite's)")
    args = ap.parse_args(argv)
    try:
        p = eval(args.repro, {"np": np, "nan": np.nan, "inf": np.inf, "Problem": Problem})
    except Exception as e:  # a repro from another version of the fuzzer, or a typo
        print(f"error: the repro is not a Problem(...) expression ({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    adapter = load_builtin(args.framework)
    bindings = {b.name: b for b in adapter.bindings()}
    if args.binding not in bindings:
        print(f"error: {args.framework} has no binding {args.binding!r}", file=sys.stderr)
        return 2
    b = bindings[args.binding]
    registry = load_registry([Path(f) for f in (args.expectations or [DEFAULT_EXPECTATIONS])])
    versions = {k: v for k, v in adapter.environment().items() if isinstance(v, str)}
    judge = checks.Judge(registry, versions, "cpu")
    held = {k: v for k, v in conditions.describe(p).items() if v not in (False, [], None)}
    print(f"properties of the input: {held}")
    worst = 0
    for check in ("value", "grad") if b.caps.grad else ("value",):
        rec = judge.check(adapter, b, p, check)
        print(f"{check}: {rec.outcome}" + (f" [{rec.expectation}]" if rec.expectation else "") + f": {rec.reason}")
        worst = max(worst, rec.outcome in ("fail", "error"))
    return worst


if __name__ == "__main__":
    sys.exit(main())

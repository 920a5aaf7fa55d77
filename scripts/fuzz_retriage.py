"""Replay every finding of a fuzz campaign's tally against this checkout's code and registry: which findings
a registry entry or an oracle fix now explains (``deviation`` or ``pass``) and which still ``fail``.

    python scripts/fuzz_retriage.py TALLY.json [--framework FW] [--binding B] [--out OUT.jsonl]

TALLY is a campaign tally (``xentcheck-fuzz/1``, e.g. docs/fuzz-campaign/run3-vm-28650.json). Prints one line
per finding key (outcome now, the entries that fired, the reason) and a last line with the counts; exit
status 1 when any still fails or errs. Imports each framework once (scripts/fuzz_replay.py replays one).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters import load_builtin  # noqa: E402
from xentcheck import checks  # noqa: E402
from xentcheck.expectations import load_registry  # noqa: E402
from xentcheck.problem import Problem  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tally")
    ap.add_argument("--framework")
    ap.add_argument("--binding")
    ap.add_argument("--out", help="write each finding with its outcome now as JSON lines")
    args = ap.parse_args(argv)
    try:
        doc = json.loads(Path(args.tally).read_text())
        records = doc["records"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"error: {args.tally} is not a campaign tally ({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    registry = load_registry([ROOT / "suites" / "expectations.toml"])
    by_framework = collections.defaultdict(list)
    for r in records:
        if (args.framework in (None, r["framework"])) and (args.binding in (None, r["binding"])):
            by_framework[r["framework"]].append(r)
    out = open(args.out, "w") if args.out else None
    counts: collections.Counter = collections.Counter()
    for fw, recs in by_framework.items():
        adapter = load_builtin(fw)
        bindings = {b.name: b for b in adapter.bindings()}
        versions = {k: v for k, v in adapter.environment().items() if isinstance(v, str)}
        judge = checks.Judge(registry, versions, "cpu")
        for r in recs:
            b = bindings.get(r["binding"])
            for finding in r["findings"]:
                p = eval(finding["repro"], {"np": np, "nan": np.nan, "inf": np.inf, "Problem": Problem})
                if b is None:
                    outcome, reason, entry = "error", f"{fw} has no binding {r['binding']!r}", None
                else:
                    rec = judge.check(adapter, b, p, finding["check"])
                    outcome, reason, entry = rec.outcome, rec.reason or "", rec.expectation
                counts[outcome] += 1
                print(f"{outcome:9} {fw} {r['binding']} {finding['check']} {p.dtype} [{entry or ''}] {reason[:200]}")
                if out:
                    out.write(
                        json.dumps(
                            {
                                **finding,
                                "framework": fw,
                                "binding": r["binding"],
                                "now": outcome,
                                "reason": reason,
                                "expectation": entry,
                            }
                        )
                        + "\n"
                    )
    print("counts:", dict(counts))
    return int(bool(counts["fail"] or counts["error"]))


if __name__ == "__main__":
    sys.exit(main())

"""Command line for results files (no framework is imported).

  python -m reports build RESULTS.json [...] -o report.html   rebuild the HTML report
  python -m reports diff OLD.json NEW.json                     print what changed; exit 1 on a regression
"""
from __future__ import annotations

import argparse
import sys

from xentcheck.bench import stats
from xentcheck.results import ResultsError, load, write_atomic

from .diff import diff, lines
from .html import render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the HTML report from one or more results files")
    build.add_argument("results", nargs="+", help="results JSON files written by a run")
    build.add_argument("-o", "--output", default="results/report.html", help="where to write the HTML page")
    cmp = sub.add_parser("diff", help="what changed from OLD to NEW; exit status 1 on a regression")
    cmp.add_argument("old", help="the baseline results file")
    cmp.add_argument("new", help="the results file to judge")
    cmp.add_argument("--alpha", type=float, default=stats.ALPHA,
                     help=f"false discovery rate for timing changes (default {stats.ALPHA})")
    cmp.add_argument("--min-effect", type=float, default=stats.MIN_EFFECT,
                     help=f"smallest relative timing change that counts (default {stats.MIN_EFFECT})")
    args = parser.parse_args(argv)
    try:
        docs = [load(p) for p in ([args.old, args.new] if args.command == "diff" else args.results)]
    except ResultsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.command == "diff":
        d = diff(*docs, alpha=args.alpha, min_effect=args.min_effect)
        for line in lines(d):
            print(line)
        return 1 if d.regressions else 0
    try:
        path = write_atomic(args.output, render(docs))
    except OSError as e:
        print(f"error: cannot write {args.output} ({e.strerror}); choose a writable path with -o", file=sys.stderr)
        return 2
    print(f"report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command line for results files (no framework is imported).

python -m reports build RESULTS.json [...] -o report.html   rebuild the HTML report (several files: one
                                                            comparison, oldest first); fuzz campaign files
                                                            or folders (results/fuzz/) among them are merged
                                                            into the last results file's fuzz section
python -m reports diff OLD.json NEW.json                     print what changed; exit 1 on a regression
python -m reports recover JOURNAL.partial.jsonl -o R.json    a results file, marked incomplete, from the
                                                            journal of a run that did not finish
python -m reports wandb RESULTS.json [...]                   one Weights & Biases run per file (offline
                                                            unless WANDB_MODE says otherwise)
python -m reports show CHECK_ID [--results R.json]           every number behind one check: its inputs, the
                                                            expected values (the binding's convention, the
                                                            registry entry, the mathematics), the result, the
                                                            snippet (imports the binding's framework)
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from xentcheck.bench import stats
from xentcheck.fuzz_tally import TallyError, is_tally, read_tally
from xentcheck.journal import JournalError, recover_lines
from xentcheck.records import FuzzSection, Results
from xentcheck.results import ResultsError, dumps, load, write_atomic

from .diff import Thresholds, diff, lines
from .html import render


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reports", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{build,diff,recover,wandb,show}")
    build = sub.add_parser("build", help="build the HTML report from one or more results files")
    build.add_argument(
        "results",
        nargs="+",
        help="results JSON files written by a run, and fuzz tally files or folders (a campaign's results/fuzz/, "
        "from any number of processes and machines), merged into the last results file's fuzz section",
    )
    build.add_argument("-o", "--output", default="results/report.html", help="where to write the HTML page")
    cmp = sub.add_parser(
        "diff",
        help="what changed from OLD to NEW; exit status 1 on a regression",
        description="Regressions: a check that newly fails or errors, a documented deviation "
        "that changed or stopped, a significant slowdown, checks, bindings or "
        "frameworks that vanished, and an incomplete run on either side (the last two "
        "unless accepted with the options below).",
    )
    cmp.add_argument("old", help="the baseline results file")
    cmp.add_argument("new", help="the results file to judge")
    cmp.add_argument(
        "--accept-removed",
        action="store_true",
        help="checks, bindings or frameworks that vanished do not gate (they are still listed)",
    )
    cmp.add_argument(
        "--accept-incomplete",
        action="store_true",
        help="an incomplete run on either side does not gate (it is still listed)",
    )
    cmp.add_argument(
        "--alpha",
        type=float,
        default=stats.ALPHA,
        help=f"false discovery rate for timing changes (default {stats.ALPHA})",
    )
    cmp.add_argument(
        "--min-effect",
        type=float,
        default=stats.MIN_EFFECT,
        help=f"smallest relative timing change that counts (default {stats.MIN_EFFECT})",
    )
    rec = sub.add_parser("recover", help="a results file, marked incomplete, from a run's journal")
    rec.add_argument("journal", help="the RESULTS.<stamp>-<pid>.partial.jsonl file a run left")
    rec.add_argument("-o", "--output", required=True, help="where to write the results JSON")
    wb = sub.add_parser(
        "wandb",
        help="log one Weights & Biases run per results file (offline by default)",
        description="Config: environment and versions; summary: outcome counts and worst errors; "
        "the records as a W&B Table; the stability sweep as line plots; the HTML "
        "report as an artifact. WANDB_MODE=offline unless set; needs the wandb "
        "extra (pip install -e '.[wandb]').",
    )
    wb.add_argument("results", nargs="+", help="results JSON files written by a run")
    wb.add_argument("--project", default="xentcheck", help="the W&B project (default xentcheck)")
    wb.add_argument("--dir", default=None, help="where wandb writes its local run folders (default ./wandb)")
    sh = sub.add_parser(
        "show",
        help="every number behind one check, rebuilt from its case",
        description="Rebuild one check from its case and run its binding: the inputs, the expected "
        "values under the binding's own convention, under the registry entry that "
        "covers it and under the plain mathematics, what the binding returned, the "
        "verdict and the snippet. In Python: reports.show.show(case, binding, framework, "
        "at=Coordinates(dtype=..., reduction=..., check=...)).",
    )
    sh.add_argument("check_id", metavar="CHECK_ID", help="a check id as the results and the report name it")
    sh.add_argument(
        "--results",
        default=None,
        help="the results file that holds the check (default results/results.json where it exists; "
        "without one the id is parsed)",
    )
    sh.add_argument(
        "--cases",
        action="append",
        default=[],
        metavar="PATH",
        help="external case files or folders, as the run's --cases",
    )
    sh.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="an external adapter, as the run's --adapter",
    )
    sh.add_argument(
        "--expectations",
        action="append",
        default=None,
        metavar="PATH",
        help="registry files (default suites/expectations.toml)",
    )
    return parser


def _show(args) -> int:
    from pathlib import Path

    from .show import ShowError, Sources, show_check

    sources = Sources(
        cases=tuple(Path(p) for p in args.cases),
        adapters=tuple(args.adapter),
        expectations=tuple(Path(p) for p in args.expectations) if args.expectations else None,
    )
    try:
        shown = show_check(args.check_id, Path(args.results) if args.results else None, sources)
    except (ShowError, ResultsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(shown.text())
    return 0


def _with_fuzz(paths: list[str]) -> list[Results]:
    """The results files among ``paths``, the last one carrying its own fuzz section merged with every
    fuzz tally file or folder among them (several processes' and machines' campaigns: one section)."""
    tallies = [read_tally(p) for p in paths if is_tally(p)]
    docs = [load(p) for p in paths if not is_tally(p)]
    if not docs:
        raise ResultsError(
            "no results file among the arguments: a report needs one (a run's results.json) to attach "
            "the fuzz tallies to, e.g. python -m reports build results/results.json results/fuzz"
        )
    if tallies:
        last = docs[-1]
        docs[-1] = replace(last, fuzz=FuzzSection.merged(([last.fuzz] if last.fuzz else []) + tallies))
    return docs


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "show":
        return _show(args)
    try:
        if args.command == "recover":
            doc, skipped = recover_lines(args.journal)
            for line in skipped:  # every well-formed record is kept; these are the lines that were not
                print(f"warning: {args.journal}: skipped {line}", file=sys.stderr)
        elif args.command == "build":
            docs = _with_fuzz(args.results)
        else:
            docs = [load(p) for p in ([args.old, args.new] if args.command == "diff" else args.results)]
    except (ResultsError, JournalError, TallyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.command == "wandb":
        from .wandb_export import ExportError, export

        try:
            for folder in export(docs, project=args.project, directory=args.dir):
                print(f"W&B run written to {folder}")
        except ExportError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    if args.command == "diff":
        accept = frozenset(
            k for k, on in (("removed", args.accept_removed), ("incomplete", args.accept_incomplete)) if on
        )
        d = diff(*docs, speed=Thresholds(alpha=args.alpha, min_effect=args.min_effect), accept=accept)
        for line in lines(d):
            print(line)
        return 1 if d.regressions else 0
    if args.command == "recover":
        text, what = dumps(doc), "results (marked incomplete)"
    else:
        for path, doc in zip([p for p in args.results if not is_tally(p)], docs, strict=True):
            if doc.complete is False:
                print(
                    f"warning: {path} is an incomplete run ({doc.incomplete['reason']}); the report marks it",
                    file=sys.stderr,
                )
        text, what = render(docs), "report"
    try:
        path = write_atomic(args.output, text)
    except OSError as e:
        print(f"error: cannot write {args.output} ({e.strerror or e}); choose a writable path with -o", file=sys.stderr)
        return 2
    print(f"{what} written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

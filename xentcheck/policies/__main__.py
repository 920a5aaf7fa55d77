"""``python -m xentcheck.policies --write``: regenerate the policy table in docs/expectations.md and
xentcheck/expectations.schema.json from the registered policies; ``--check``: exit 1 where they drifted;
with neither, print the table."""

from __future__ import annotations

import argparse
import sys

from . import markdown_table
from ._generate import DriftError, drifted, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xentcheck.policies", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="regenerate the docs table and the schema file")
    group.add_argument("--check", action="store_true", help="exit 1 if either differs from the policies")
    args = parser.parse_args(argv)
    try:
        if args.write:
            for path in write():
                print(f"wrote {path}")
        elif args.check:
            problems = drifted()
            for line in problems:
                print(f"{line}; run python -m xentcheck.policies --write", file=sys.stderr)
            return 1 if problems else 0
        else:
            print(markdown_table(), end="")
    except DriftError as e:
        print(e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

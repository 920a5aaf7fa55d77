"""The op list the docs show, generated from :data:`xentcheck.problem.OPS` so the two cannot disagree.

``python -m xentcheck.oplist`` prints it; ``--write`` rewrites the marked blocks in README.md and
docs/adapters.md (between ``<!-- ops:begin -->`` and ``<!-- ops:end -->``); tests/test_docs.py fails
when a block differs from the code.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .problem import CATEGORICAL_OPS, LOGIT_OPS, OPS

#: what each op computes, in one line (its input space and output kind)
DESCRIPTIONS = {
    "softmax_ce": "logits in, one class out of C (softmax cross-entropy)",
    "categorical_ce": "probabilities in, one class out of C (categorical cross-entropy)",
    "sigmoid_bce": "logits in, binary or multi-label out (sigmoid binary cross-entropy)",
    "bce": "probabilities in, binary or multi-label out (binary cross-entropy)",
    "nll": "log-probabilities in (which need not normalise), one class out of C: -w_t x_t",
    "linear_ce": "hidden states X [N, D] and a classifier W [V, D] (optional bias) in, one class out of V: "
    "the fused linear + cross-entropy of language-model training, with gradients for X, W, b",
}
DOCS = ("README.md", "docs/adapters.md")
#: what an op takes where it is not logits or probabilities
_INPUT = {"nll": "log-probabilities", "linear_ce": "hidden states, classifier"}
_BLOCK = re.compile(r"(<!-- ops:begin -->\n).*?(<!-- ops:end -->)", re.S)


def markdown() -> str:
    """The op table in Markdown: one row per op of OPS, in its order."""
    missing = [op for op in OPS if op not in DESCRIPTIONS]
    if missing:
        raise KeyError(f"xentcheck.oplist.DESCRIPTIONS has no line for {missing}: add one")
    rows = [
        f"| `{op}` | {_INPUT.get(op) or ('logits' if op in LOGIT_OPS else 'probabilities')} "
        f"| {'classes' if op in CATEGORICAL_OPS else 'binary / multi-label'} | {DESCRIPTIONS[op]} |"
        for op in OPS
    ]
    return (
        "\n".join(
            [
                f"{len(OPS)} ops (`xentcheck.problem.OPS`):",
                "",
                "| op | input | output | what it computes |",
                "| --- | --- | --- | --- |",
                *rows,
            ]
        )
        + "\n"
    )


def write(root: Path) -> list[str]:
    """Rewrite the marked blocks under ``root``; returns the files that changed."""
    changed = []
    for name in DOCS:
        path = root / name
        text = path.read_text()
        new = _BLOCK.sub(lambda m: m[1] + markdown() + m[2], text)
        if new != text:
            path.write_text(new)
            changed.append(name)
    return changed


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        print("\n".join(write(Path(__file__).resolve().parent.parent)) or "the docs show the op list already")
    else:
        print(markdown(), end="")

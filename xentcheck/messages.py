"""The user-facing wording of verdicts that more than one judge (or report) says, written once."""

from __future__ import annotations

__all__ = ["UPDATE_REGISTRY", "as_documented", "expectation", "no_longer_happens"]

#: what to do when a documented behaviour stopped
UPDATE_REGISTRY = "update the registry"


def expectation(entry_id: str) -> str:
    """How a verdict names a registry entry."""
    return f"expectation {entry_id!r}"


def no_longer_happens(subject: str, what: str = "", fix: str = UPDATE_REGISTRY) -> str:
    """A documented behaviour (``subject``, e.g. :func:`expectation`) that stopped: ``what`` happens
    instead, and ``fix`` says what to do."""
    return f"{subject} no longer happens: {what}; {fix}" if what else f"{subject} no longer happens: {fix}"


def as_documented(reason: str, expect: object) -> str:
    """A deviation that matches its entry: the entry's reason and what it documents."""
    return f"{reason} (as documented: {expect})"

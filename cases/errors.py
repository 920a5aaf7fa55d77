"""The one error a malformed case declaration raises."""


class CaseError(ValueError):
    """A malformed case declaration; the message is one line naming the file, case and key."""

"""Cases: named, seeded, declarative input recipes (``cases/*.toml``), turned into :class:`Problem` objects.

A case is data: adding one means adding one ``[[case]]`` table to a catalog file. The keys are
documented in ``cases/README.md``; a malformed file fails with one line naming the file, the case
and the key. Loading and validating declarations lives in :mod:`cases.loader`, the declared case in
:mod:`cases.case`, generating its problems in :mod:`cases.generate`.
"""

from __future__ import annotations

from .case import Case
from .errors import CaseError
from .loader import CATALOG_DIR, CATEGORIES, EXTERNAL_SCHEMA, SCHEMA, case_files, load_catalog

__all__ = ["CATALOG_DIR", "CATEGORIES", "EXTERNAL_SCHEMA", "SCHEMA", "Case", "CaseError", "case_files", "load_catalog"]

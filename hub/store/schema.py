"""Every table module of the store, imported so ``Base.metadata`` knows them all.

Alembic's environment and the test fixtures import this module; a new table
module is added here in the same commit as its migration.
"""

from __future__ import annotations

from hub.store import (
    addressing,
    audit,
    cohort,
    delivery,
    documents,
    finance,
    identity,
    inbound,
    quality,
    tables,
    transitions,
)
from hub.store.tables import Base

__all__ = ["Base", "addressing", "audit", "cohort", "delivery", "documents", "finance", "identity", "inbound",
           "quality", "tables", "transitions"]

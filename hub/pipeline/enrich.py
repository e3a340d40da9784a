"""Stage 3, enrich: what the hub knows, added to validated records before they are stored.

Enrichers are named in config (``[pipeline] enrichers``: the gazetteer adds a UPRN and USRN to
every address it can match). An enricher never overwrites what the source said; it returns the
models in the order given, changed or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hub.model import Canonical
from hub.pipeline.record import Record


class Enricher(Protocol):
    """Adds what the hub knows to validated records before they are stored (a UPRN for an address)."""

    def enrich(self, models: Sequence[Canonical]) -> Sequence[Canonical]:
        """The same models, in order, with the hub's additions."""
        ...


def enrich(items: list[Record], enrichers: Sequence[Enricher]) -> None:
    """Each valid record's model passed through every enricher, in order."""
    for enricher in enrichers:
        live = [i for i in items if i.model is not None and i.error is None]
        if live:
            for item, model in zip(live, enricher.enrich([i.model for i in live if i.model]), strict=True):
                item.model = model

"""The pipeline's address enricher: every incoming address gets a UPRN when the gazetteer is sure.

Named in config (``[pipeline] enrichers = ["gazetteer.enrich:address_enricher"]``).
The source's address text is kept as it was; only ``uprn`` and ``usrn`` are
added, and only for a confident match. With no gazetteer loaded it changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from gazetteer.matcher import MatcherCache
from hub.model import Canonical, Person
from hub.store.db import Store


class AddressEnricher:
    """Adds UPRN and USRN to the addresses of Person records."""

    def __init__(self, store: Store) -> None:
        self.cache = MatcherCache(store)

    def enrich(self, models: Sequence[Canonical]) -> Sequence[Canonical]:
        """The same models, with confident UPRNs on their addresses."""
        if not any(isinstance(m, Person) and m.addresses for m in models):
            return models
        matcher = self.cache.get()
        if not matcher.size:
            return models
        out: list[Canonical] = []
        for model in models:
            if isinstance(model, Person) and any(a.uprn is None for a in model.addresses):
                addresses = [a if a.uprn else matcher.match_address(a) for a in model.addresses]
                model = model.model_copy(update={"addresses": addresses})
            out.append(model)
        return out


def address_enricher(store: Store) -> AddressEnricher:
    """Factory named in config: the enricher for this store."""
    return AddressEnricher(store)

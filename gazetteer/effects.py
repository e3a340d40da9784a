"""What an applied gazetteer file does to people: retired UPRNs move them or flag them."""

from __future__ import annotations

from gazetteer.load import LoadResult, retired_uprns
from hub.addresses import AddressEffects, UprnChange, apply_uprn_changes
from hub.store.db import Store


def update_people(store: Store, result: LoadResult) -> AddressEffects:
    """Move people at UPRNs replaced by one successor; flag those at UPRNs simply retired."""
    changes = [UprnChange(r.uprn, r.reason, tuple(r.successors)) for r in retired_uprns(result)]
    if not changes or result.outcome != "applied":
        return AddressEffects()
    with store.session() as session:
        return apply_uprn_changes(session, changes)

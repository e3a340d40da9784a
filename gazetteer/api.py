"""HTTP routes for addresses: match free text to UPRNs and look a property up by its UPRN.

``GET /api/addresses?q=...`` returns the match (or why there is none) and the
candidates considered; ``GET /api/addresses/{uprn}`` returns the property, its
addresses (LPIs), street, status and successors. The store comes from
``request.app.state.store``; the matcher index is built on first use and
rebuilt after each gazetteer load.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from gazetteer.lookup import property_record
from gazetteer.matcher import AddressMatcher, MatcherCache
from hub.errors import NotFound
from hub.store.db import Store

router = APIRouter(prefix="/api/addresses", tags=["addresses"])


def get_store(request: Request) -> Store:
    """The hub's store, as the application holds it."""
    store: Store = request.app.state.store
    return store


def get_matcher(request: Request) -> AddressMatcher:
    """The application's address matcher, current with the latest gazetteer load."""
    state = request.app.state
    cache: MatcherCache | None = getattr(state, "address_matchers", None)
    if cache is None:
        cache = MatcherCache(get_store(request))
        state.address_matchers = cache
    return cache.get()


StoreDep = Annotated[Store, Depends(get_store)]
MatcherDep = Annotated[AddressMatcher, Depends(get_matcher)]


@router.get("")
def match_address(
    matcher: MatcherDep,
    q: Annotated[str, Query(min_length=1, max_length=300, description="The address as free text.")],
    postcode: Annotated[str | None, Query(max_length=10)] = None,
) -> dict[str, Any]:
    """The UPRN for a free-text address, how sure the match is, and the candidates considered."""
    found = matcher.match(q, postcode)
    return {
        **found.as_json(),
        "usrn": found.usrn,
        "lines": found.lines,
        "candidates": [asdict(c) for c in found.candidates],
    }


@router.get("/{uprn}")
def get_property(
    store: StoreDep, uprn: Annotated[str, Path(pattern=r"^\d{1,12}$", description="The UPRN.")]
) -> dict[str, Any]:
    """The property: status, addresses (approved, alternative, historical), street, successors."""
    record = property_record(store, int(uprn))
    if record is None:
        raise NotFound(f"UPRN {uprn} is not in the gazetteer")
    return record

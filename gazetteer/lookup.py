"""What the gazetteer holds about one property: status, addresses, street, successors."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gazetteer.address import AddressableObject, Bs7666Address
from hub.store.addressing import (
    Property,
    PropertyAddress,
    Successor,
    organisations_at,
    property_addresses,
    street_descriptors,
    successors_of,
)
from hub.store.db import Store

LOGICAL_STATUS = {1: "approved", 3: "alternative", 6: "provisional", 8: "historical"}
BLPU_STATE = {
    1: "under construction",
    2: "in use",
    3: "unoccupied",
    4: "no longer existing",
    6: "planning permission granted",
}


def _lpi_address(
    lpi: PropertyAddress, street: dict[str, Any] | None, org: str | None
) -> Bs7666Address:
    return Bs7666Address(
        sao=AddressableObject(
            lpi.sao_start_number,
            lpi.sao_start_suffix,
            lpi.sao_end_number,
            lpi.sao_end_suffix,
            lpi.sao_text,
        ),
        pao=AddressableObject(
            lpi.pao_start_number,
            lpi.pao_start_suffix,
            lpi.pao_end_number,
            lpi.pao_end_suffix,
            lpi.pao_text,
        ),
        street=street["descriptor"] if street else None,
        locality=street["locality"] if street else None,
        town=lpi.post_town or (street["town"] if street else None),
        postcode=lpi.postcode,
        organisation=org,
        uprn=str(lpi.uprn),
        usrn=str(lpi.usrn) if lpi.usrn is not None else None,
    )


def property_record(store: Store, uprn: int) -> dict[str, Any] | None:
    """The property with this UPRN as plain data, or None when the gazetteer has never held it."""
    with store.session() as session:
        prop = session.get(Property, uprn)
        lpis = property_addresses(session, uprn)
        if prop is None and not lpis:
            return None
        usrns = {lpi.usrn for lpi in lpis if lpi.usrn is not None}
        streets = {
            d.usrn: {
                "usrn": str(d.usrn),
                "descriptor": d.descriptor,
                "locality": d.locality,
                "town": d.town,
                "language": d.language,
            }
            for d in street_descriptors(session, usrns)
        }
        orgs = organisations_at(session, uprn)
        org_name = orgs[0].organisation if orgs else (prop.organisation if prop else None)
        successors = [str(s.successor) for s in successors_of(session, uprn)]
        predecessors = [
            str(u)
            for u in session.scalars(select(Successor.uprn).where(Successor.successor == uprn))
        ]
        status = prop.logical_status if prop else None
        retired = prop is None or status == 8 or prop.end_date is not None
        return {
            "uprn": str(uprn),
            "status": LOGICAL_STATUS.get(status, str(status)) if status is not None else "deleted",
            "retired": retired,
            "state": BLPU_STATE.get(prop.blpu_state) if prop and prop.blpu_state else None,
            "classification": prop.blpu_class if prop else None,
            "parent_uprn": str(prop.parent_uprn) if prop and prop.parent_uprn else None,
            "start_date": prop.start_date.isoformat() if prop and prop.start_date else None,
            "end_date": prop.end_date.isoformat() if prop and prop.end_date else None,
            "organisation": org_name,
            "successors": successors,
            "predecessors": predecessors,
            "addresses": [
                {
                    "lpi_key": lpi.lpi_key,
                    "status": LOGICAL_STATUS.get(lpi.logical_status, str(lpi.logical_status)),
                    "language": lpi.language,
                    "usrn": str(lpi.usrn) if lpi.usrn is not None else None,
                    "postcode": lpi.postcode,
                    "lines": _lpi_address(lpi, streets.get(lpi.usrn or -1), org_name).lines(),
                    "end_date": lpi.end_date.isoformat() if lpi.end_date else None,
                }
                for lpi in lpis
            ],
            "streets": list(streets.values()),
        }

"""The canonical social-care model: one shape for every system's records.

``ENTITIES`` maps an entity type's name to its class; the store, the pipeline,
the mappings and the API all look entities up here.
"""

from __future__ import annotations

from hub.model.base import (
    ApprovalStatus,
    Canonical,
    Frequency,
    Period,
    PersonRecord,
    ServiceArea,
)
from hub.model.care import (
    Assessment,
    CarePlan,
    Commitment,
    Consent,
    DocumentLink,
    Episode,
    Flag,
    HealthEvent,
    Provider,
    Referral,
    Relationship,
    Seal,
    Transition,
    Worker,
)
from hub.model.person import (
    Address,
    Identifier,
    NameUse,
    NhsNumberStatus,
    Person,
    PersonName,
    Sex,
)

ENTITIES: dict[str, type[Canonical]] = {
    cls.entity_type: cls
    for cls in (
        Person, Relationship, Episode, Referral, Assessment, CarePlan, Commitment, Flag,
        Consent, Seal, DocumentLink, HealthEvent, Transition, Provider, Worker,
    )
}

__all__ = [
    "ENTITIES", "Address", "ApprovalStatus", "Assessment", "CarePlan", "Canonical",
    "Commitment", "Consent", "DocumentLink", "Episode", "Flag", "Frequency", "HealthEvent",
    "Identifier", "NameUse", "NhsNumberStatus", "Period", "Person", "PersonRecord", "PersonName", "Provider",
    "Referral", "Relationship", "Seal", "ServiceArea", "Sex", "Transition", "Worker",
]

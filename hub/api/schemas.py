"""The shapes the canonical JSON API answers with (its OpenAPI schema)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from hub.model import (
    Assessment,
    CarePlan,
    Commitment,
    Consent,
    DocumentLink,
    Episode,
    Flag,
    HealthEvent,
    Person,
    Referral,
    Relationship,
    Seal,
    Transition,
)

T = TypeVar("T", bound=BaseModel)


class PersonSummary(BaseModel):
    """One search result: enough to tell people apart, nothing more."""

    id: str
    name: str
    birth_date: date | None = None
    sex: str
    nhs_number: str | None = None
    postcode: str | None = None
    address: str | None = None
    access: Literal["open", "break_glass_required"] = Field(
        description="open, or break_glass_required when the record is outside your usual access.")


class PersonSearchResult(BaseModel):
    """A page of people and the cursor to the next page (absent on the last page)."""

    items: list[PersonSummary]
    next_cursor: str | None = None
    next: str | None = Field(default=None, description="The next page's URL.")


class Provenance(BaseModel):
    """One source record that contributed to an item."""

    system: str = Field(description="The source system, e.g. legacy_escr, health_adt, hub_admin.")
    stream: str
    source_id: str = Field(description="The item's id in that system.")
    last_seen: datetime = Field(description="When the hub last received this source record.")


class RecordItem(BaseModel, Generic[T]):
    """One item of the record: the canonical document with its version, last update and sources."""

    model_config = ConfigDict(arbitrary_types_allowed=False)

    id: str
    type: str
    version: int
    updated: datetime
    sources: list[Provenance]
    data: T


class AccessNote(BaseModel):
    """How the rules shaped this answer."""

    role: str
    purpose: str
    sealed: bool = Field(description="The record is sealed (you see it because the seal names you, or break glass).")
    break_glass: bool = Field(description="You opened it by breaking glass; the reason is audited and reviewed.")
    consent_withheld: str | None = Field(default=None, description="Why only demographics are shown.")
    hidden_sections: list[str] = Field(default_factory=list, description="Sections held back by consent.")


class IdentityLinks(BaseModel):
    """Why a person's records were joined: each link with its score and per-field evidence (levels and weights
    only, never the person's details), people's decisions about this person and another, and merges."""

    records: list[dict[str, Any]] = Field(default_factory=list, description="Source records the engine joined.")
    decisions: list[dict[str, Any]] = Field(default_factory=list,
                                            description="A reviewer's decisions: merged, or kept apart.")
    merges: list[dict[str, Any]] = Field(default_factory=list, description="Merges into or out of this person.")


class SharedRecord(BaseModel):
    """The whole shared record of one person, as the caller may see it."""

    id: str
    access: AccessNote
    person: RecordItem[Person]
    relationships: list[RecordItem[Relationship]] = Field(default_factory=list)
    episodes: list[RecordItem[Episode]] = Field(default_factory=list)
    referrals: list[RecordItem[Referral]] = Field(default_factory=list)
    assessments: list[RecordItem[Assessment]] = Field(default_factory=list)
    plans: list[RecordItem[CarePlan]] = Field(default_factory=list)
    commitments: list[RecordItem[Commitment]] = Field(default_factory=list)
    flags: list[RecordItem[Flag]] = Field(default_factory=list)
    consents: list[RecordItem[Consent]] = Field(default_factory=list)
    seals: list[RecordItem[Seal]] = Field(default_factory=list)
    documents: list[RecordItem[DocumentLink]] = Field(default_factory=list)
    health_events: list[RecordItem[HealthEvent]] = Field(default_factory=list)
    transitions: list[RecordItem[Transition]] = Field(default_factory=list)
    identity: IdentityLinks | None = Field(default=None, description="Why this person's records were joined.")


class TimelineEntry(BaseModel):
    """One dated thing in the person's history."""

    date: date
    type: str
    id: str
    title: str
    ongoing: bool
    sources: list[str]


class Timeline(BaseModel):
    """The person's history, newest first, as the caller may see it."""

    id: str
    access: AccessNote
    entries: list[TimelineEntry]


class ConsentIn(BaseModel):
    """An administrator records a person's consent decision."""

    model_config = ConfigDict(extra="forbid")

    scope: str = Field(pattern=r"^[a-z_]{3,40}$", examples=["share_with_health"])
    decision: bool
    reason: str | None = Field(default=None, max_length=500)


class SealIn(BaseModel):
    """An administrator seals a person's record to the roles and teams named."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["adoption", "witness_protection", "staff_member", "other"]
    allowed_roles: list[str] = Field(default_factory=list)
    allowed_teams: list[str] = Field(default_factory=list)
    reason: str | None = Field(default=None, max_length=500)


class WriteResult(BaseModel):
    """What an administrative write created or changed."""

    id: str
    type: str
    person_id: str


class ReviewIn(BaseModel):
    """An auditor's verdict on a break glass."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["justified", "referred"]
    note: str | None = Field(default=None, max_length=1000)


class BreakGlassEntry(BaseModel):
    """A break glass in the review queue."""

    id: int
    audit_event: str
    recorded: datetime
    user_id: str
    role: str | None
    team: str | None
    reason: str
    persons: list[str]
    status: str


class Page(BaseModel):
    """A plain list page for operator views."""

    items: list[dict[str, Any]]

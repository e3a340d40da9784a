"""Shared base for canonical entities and the small value types they use."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.model.validators import end_not_before_start


class Canonical(BaseModel):
    """Base of every canonical entity.

    ``id`` is the hub's own identifier (assigned by the pipeline, stable across
    syncs). ``person_id`` points at the golden Person the entity belongs to, for
    every entity that belongs to a person. ``entity_type`` is the class name the
    store, the outbox and the API use.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, use_enum_values=True)

    entity_type: ClassVar[str] = ""

    id: str | None = Field(default=None, description="The hub's identifier for this entity.")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.entity_type = cls.__name__


class Period(BaseModel):
    """A start and optional end date; the end may not be before the start."""

    model_config = ConfigDict(extra="forbid")

    start: date | None = Field(default=None, description="First day the thing applied.")
    end: date | None = Field(default=None, description="Last day; empty while it continues.")

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        end_not_before_start(self.start, self.end)
        return self


class ServiceArea(StrEnum):
    """Which side of social care an episode or team belongs to."""

    CHILDRENS = "childrens"
    ADULTS = "adults"


class ApprovalStatus(StrEnum):
    """Where a plan or commitment is in manager sign-off."""

    DRAFT = "draft"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    ENDED = "ended"
    CANCELLED = "cancelled"


class Frequency(StrEnum):
    """How often a unit cost is charged (CLD Cost_Frequency_Unit_Type)."""

    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    FOUR_WEEKLY = "four_weekly"
    MONTHLY = "monthly"
    ANNUAL = "annual"
    ONE_OFF = "one_off"


class PersonRecord(Canonical):
    """A canonical entity that belongs to one person's record."""

    person_id: str | None = Field(default=None, description="The golden Person this belongs to.")

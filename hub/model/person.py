"""The person at the centre of the record, with names, identifiers and addresses."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from hub.model.base import Canonical
from hub.model.validators import (
    MAX_GIVEN_NAMES,
    MAX_NAME_PART,
    MAX_NAMES,
    MAX_PREFIX,
    SAFE_TEXT,
    end_not_before_start,
    normalise_nhs_number,
    normalise_postcode,
    not_in_future,
)


class NhsNumberStatus(StrEnum):
    """NHS number verification status (UKCore-NHSNumberVerificationStatusEngland)."""

    VERIFIED = "01"
    NOT_TRACED = "02"
    TRACE_REQUIRED = "03"
    NO_MATCH = "04"
    TRACE_TO_RESOLVE = "05"
    TRACE_IN_PROGRESS = "06"
    NOT_PRESENT = "07"
    TRACE_POSTPONED = "08"


class Sex(StrEnum):
    """Administrative gender as FHIR and the statutory returns carry it."""

    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


class NameUse(StrEnum):
    """Why a name is recorded (FHIR HumanName.use)."""

    OFFICIAL = "official"
    USUAL = "usual"
    NICKNAME = "nickname"
    MAIDEN = "maiden"
    OLD = "old"


NamePart = Annotated[str, StringConstraints(max_length=MAX_NAME_PART, pattern=SAFE_TEXT)]
"""One part of a name: at most MAX_NAME_PART characters, no control or text-direction characters."""


class PersonName(BaseModel):
    """One name a person is or was known by; old names are kept, not overwritten.

    Every source's names pass the same limits (hub.model.validators): parts of at
    most 100 characters, at most 10 given names, no control or text-direction
    characters; a record breaking them is quarantined (an HL7 message gets AE).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    use: NameUse = Field(default=NameUse.OFFICIAL, description="Why this name is recorded.")
    prefix: str | None = Field(default=None, max_length=MAX_PREFIX, pattern=SAFE_TEXT,
                               description="Title, e.g. Mrs, Dr.")
    given: list[NamePart] = Field(default_factory=list, max_length=MAX_GIVEN_NAMES,
                                  description="Given names, first one first.")
    family: NamePart | None = Field(default=None, description="Family name (surname).")
    start: date | None = Field(default=None, description="From when the name was used.")
    end: date | None = Field(default=None, description="Until when; empty if still used.")

    @model_validator(mode="after")
    def _has_a_name(self) -> PersonName:
        if not self.family and not self.given:
            raise ValueError("a name needs a family or a given name")
        end_not_before_start(self.start, self.end)
        return self


class Identifier(BaseModel):
    """A local identifier of the person in one source system (e.g. ESCR client id)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    system: str = Field(max_length=64, description="The system that issued the id, e.g. 'legacy_escr'.")
    value: str = Field(min_length=1, max_length=128, description="The id as that system writes it.")


class Address(BaseModel):
    """A BS7666-shaped address, with the UPRN/USRN once the gazetteer has matched it.

    ``text`` keeps what the source said; the structured fields and the UPRN are
    the hub's reading of it and never overwrite that text.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    use: str = Field(default="home", description="home, temp, correspondence, placement.")
    text: str | None = Field(default=None, description="The address exactly as the source gave it.")
    sao_text: str | None = Field(default=None, description="Secondary addressable object, e.g. 'FLAT 2'.")
    pao_start_number: int | None = Field(default=None, ge=0, le=9999)
    pao_start_suffix: str | None = Field(default=None, max_length=2)
    pao_end_number: int | None = Field(default=None, ge=0, le=9999)
    pao_text: str | None = Field(default=None, description="Building name, e.g. 'ROSE COTTAGE'.")
    street: str | None = Field(default=None, description="Street descriptor.")
    locality: str | None = None
    town: str | None = None
    postcode: str | None = Field(default=None, description="UK postcode, normalised.")
    uprn: str | None = Field(default=None, pattern=r"^\d{1,12}$", description="Unique Property Reference Number.")
    usrn: str | None = Field(default=None, pattern=r"^\d{1,8}$", description="Unique Street Reference Number.")
    start: date | None = Field(default=None, description="From when the person lived here.")
    end: date | None = Field(default=None, description="Until when; empty if current.")

    @field_validator("postcode")
    @classmethod
    def _postcode(cls, value: str | None) -> str | None:
        return normalise_postcode(value) if value else None

    @model_validator(mode="after")
    def _ordered(self) -> Address:
        end_not_before_start(self.start, self.end)
        return self


DISABILITY_CODES = frozenset({"NONE", "MOB", "HAND", "PC", "INC", "COMM", "LD", "HEAR", "VIS", "BEH", "CON", "AUT",
                              "DDA"})


class Person(Canonical):
    """A child or adult known to social care: the golden record the hub keeps for them."""

    names: list[PersonName] = Field(min_length=1, max_length=MAX_NAMES,
                                    description="Current name first, then former names.")
    birth_date: date | None = Field(default=None, description="Date of birth.")
    sex: Sex = Field(default=Sex.UNKNOWN, description="Administrative gender.")
    nhs_number: str | None = Field(default=None, description="Ten-digit NHS number, check digit valid.")
    nhs_number_status: NhsNumberStatus | None = Field(default=None, description="How far the NHS number was verified.")
    identifiers: list[Identifier] = Field(default_factory=list, description="Ids in each source system.")
    addresses: list[Address] = Field(default_factory=list, description="Current address first, then former ones.")
    ethnicity: str | None = Field(default=None, description="NHS ethnic category code (A-S, Z).")
    ethnicity_dfe: str | None = Field(
        default=None, pattern=r"^[A-Z]{4}$",
        description="DfE ethnicity code as the children's returns carry it (CIN census Ethnicity, SSDA903 "
                    "ETHNIC: WBRI, MWBC, ABAN, REFU, NOBT ...), kept beside the NHS category, never converted.")
    upn: str | None = Field(
        default=None, pattern=r"^[A-Z](\d{12}|\d{11}[A-Z])$",
        description="Unique Pupil Number (CIN census UPN, SSDA903 UPN): a letter then 12 digits, or a letter, "
                    "11 digits, a letter.")
    upn_unknown: str | None = Field(default=None, pattern=r"^UN[1-7]$",
                                    description="Why the UPN is missing (CIN census UPNunknown UN1-UN7).")
    disabilities: list[str] = Field(
        default_factory=list,
        description="Disability codes (CIN census Disability: NONE, MOB, HAND, PC, INC, COMM, LD, HEAR, VIS, BEH, "
                    "CON, AUT, DDA).")
    uasc: bool | None = Field(default=None, description="Unaccompanied asylum-seeking child (SSDA903 UASC).")
    language: str | None = Field(default=None, description="Preferred language (ISO 639-1).")
    interpreter_required: bool | None = None
    death_date: date | None = Field(default=None, description="Date of death, if the person has died.")
    merged_into: str | None = Field(default=None, description="Survivor's id when this record was merged away.")

    @field_validator("nhs_number")
    @classmethod
    def _nhs(cls, value: str | None) -> str | None:
        return normalise_nhs_number(value) if value else None

    @field_validator("disabilities")
    @classmethod
    def _disability_codes(cls, value: list[str]) -> list[str]:
        unknown = [code for code in value if code not in DISABILITY_CODES]
        if unknown:
            raise ValueError(f"unknown disability codes {unknown} (CIN census: {', '.join(sorted(DISABILITY_CODES))})")
        return value

    @field_validator("birth_date")
    @classmethod
    def _born(cls, value: date | None) -> date | None:
        return not_in_future(value, "birth date") if value else None

    @field_validator("death_date")
    @classmethod
    def _died(cls, value: date | None) -> date | None:
        return not_in_future(value, "death date") if value else None

    @model_validator(mode="after")
    def _life_in_order(self) -> Person:
        if self.birth_date and self.death_date and self.death_date < self.birth_date:
            raise ValueError("death date is before birth date")
        if self.nhs_number is None and self.nhs_number_status == NhsNumberStatus.VERIFIED:
            raise ValueError("verified status without an NHS number")
        return self

    @property
    def current_name(self) -> PersonName:
        """The first name in the list, by convention the one in use now."""
        return self.names[0]

    @property
    def nhs_number_verified(self) -> bool:
        """True when the NHS number has been traced and verified (status 01)."""
        return self.nhs_number is not None and self.nhs_number_status == NhsNumberStatus.VERIFIED

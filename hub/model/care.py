"""Social care involvement: relationships, episodes, referrals, assessments, plans, costs."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import Field, model_validator

from hub.model.base import ApprovalStatus, Canonical, Frequency, PersonRecord, ServiceArea
from hub.model.validators import end_not_before_start

_WEEKS_PER = {
    Frequency.WEEKLY: Decimal(1),
    Frequency.FOUR_WEEKLY: Decimal(4),
    Frequency.MONTHLY: Decimal(52) / Decimal(12),
    Frequency.ANNUAL: Decimal(52),
}


class Relationship(PersonRecord):
    """A tie from the person to another person: parent, sibling, carer, foster carer..."""

    related_person_id: str | None = Field(default=None, description="The other person, if known to the hub.")
    related_name: str | None = Field(default=None, description="Their name when they are not a hub person.")
    kind: str = Field(description="parent, child, sibling, carer, foster_carer, guardian, spouse, other.")
    is_next_of_kin: bool = False
    has_parental_responsibility: bool | None = None
    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Relationship:
        end_not_before_start(self.start, self.end)
        return self


class Episode(PersonRecord):
    """A period in which a children's or adults' team works with the person (case/involvement)."""

    service_area: ServiceArea = Field(description="childrens or adults.")
    kind: str = Field(description="CIN, CP, LAC, care_leaver, long_term_support, safeguarding, ...")
    start: date = Field(description="Date the episode opened.")
    end: date | None = Field(default=None, description="Date it closed; empty while open.")
    team: str | None = Field(default=None, description="Responsible team.")
    allocated_worker: str | None = Field(default=None, description="Allocated worker's name or id.")
    closure_reason: str | None = None
    legal_status: str | None = Field(default=None, description="e.g. C2 (s31 care order) for a looked-after child.")
    primary_need: str | None = Field(
        default=None, pattern=r"^N[0-9]$",
        description="CIN census PrimaryNeedCode / SSDA903 CIN: N1 abuse or neglect ... N9 not a child in need, "
                    "N0 not stated.")
    referral_source: str | None = Field(default=None, description="CIN census ReferralSource (1A ... 10).")
    reason_new_episode: str | None = Field(default=None, description="SSDA903 RNE: S, L, P, T, B, U.")
    placement_type: str | None = Field(default=None, description="SSDA903 PLACE (placement type, e.g. U1, K2).")
    placement_provider: str | None = Field(default=None, description="SSDA903 PLACE_PROVIDER (PR0-PR5).")
    placement_postcode: str | None = Field(default=None, description="SSDA903 PL_POST (placement postcode).")
    placement_urn: str | None = Field(default=None, description="SSDA903 URN (Ofsted URN of the placement).")
    home_postcode: str | None = Field(default=None, description="SSDA903 HOME_POST (postcode of home).")
    personal_advisor: str | None = Field(default=None, description="A care leaver's personal advisor.")
    pathway_plan_review: date | None = Field(default=None, description="A care leaver's next pathway plan review.")
    in_touch: str | None = Field(default=None, description="SSDA903 OC3 IN_TOUCH (care leaver in touch).")
    accommodation: str | None = Field(default=None, description="SSDA903 OC3 ACCOM (care leaver accommodation).")
    activity: str | None = Field(default=None, description="SSDA903 OC3 ACTIV (care leaver main activity).")

    @model_validator(mode="after")
    def _ordered(self) -> Episode:
        end_not_before_start(self.start, self.end)
        return self

    @property
    def is_open(self) -> bool:
        """True while the episode has no end date."""
        return self.end is None


class Referral(PersonRecord):
    """A contact screened as needing intervention (children) or a request for support (adults)."""

    service_area: ServiceArea
    received: date = Field(description="Date the contact or referral was received.")
    source: str | None = Field(default=None, description="Who referred: school, police, GP, self...")
    reason: str | None = Field(default=None, description="Primary need or presenting reason.")
    outcome: str | None = Field(default=None, description="assessment, NFA, signposted...")
    decided: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Referral:
        end_not_before_start(self.received, self.decided)
        return self


class Assessment(PersonRecord):
    """A social work assessment: children's single assessment, Care Act needs assessment, carer's..."""

    service_area: ServiceArea
    kind: str = Field(description="single, needs, carers, financial, mca, s58_transition...")
    start: date
    completed: date | None = None
    authorised: date | None = Field(default=None, description="Manager authorisation date.")
    outcome: str | None = None
    eligible_needs: bool | None = Field(default=None, description="Care Act eligibility met.")
    factors: list[str] = Field(default_factory=list, description="Assessment factors (CIN census codes).")

    @model_validator(mode="after")
    def _ordered(self) -> Assessment:
        end_not_before_start(self.start, self.completed)
        end_not_before_start(self.start, self.authorised)
        return self


class CarePlan(PersonRecord):
    """A CIN/CP/care/support plan: what will be done to meet the person's needs."""

    service_area: ServiceArea
    kind: str = Field(description="cin_plan, cp_plan, care_plan, support_plan, pathway_plan...")
    start: date
    end: date | None = None
    status: ApprovalStatus = ApprovalStatus.DRAFT
    approved_by: str | None = None
    approved_on: date | None = None
    personal_budget: Decimal | None = Field(default=None, ge=0, decimal_places=2, description="Annual budget, pounds.")
    category_of_abuse: str | None = Field(
        default=None, description="For a CP plan, the latest category (CIN census LatestCategoryOfAbuse): "
                                  "neglect, physical, emotional, sexual, multiple.")
    initial_category_of_abuse: str | None = Field(
        default=None, description="For a CP plan, the category at the start (CIN census InitialCategoryOfAbuse).")
    review_date: date | None = Field(default=None, description="Latest review (CIN census CPPreviewDate).")

    @model_validator(mode="after")
    def _ordered(self) -> CarePlan:
        end_not_before_start(self.start, self.end)
        if self.status == ApprovalStatus.APPROVED and not self.approved_on:
            raise ValueError("an approved plan needs an approval date")
        return self


class Commitment(PersonRecord):
    """A service commissioned under a care plan: provider, unit cost, units, dates (CLD service event)."""

    care_plan_id: str | None = Field(default=None, description="The plan this service delivers.")
    service_type: str = Field(description="home_care, residential, nursing, day_care, direct_payment, ...")
    service_component: str | None = None
    delivery_mechanism: str | None = Field(default=None, description="CASSR managed, direct payment, ...")
    provider_id: str | None = Field(default=None, description="Provider's hub id or code.")
    provider_name: str | None = None
    unit_cost: Decimal = Field(ge=0, decimal_places=2, description="Cost of one unit, pounds.")
    unit: str = Field(default="hour", description="hour, day, week, night, item.")
    frequency: Frequency = Field(default=Frequency.WEEKLY, description="Cost frequency unit type.")
    units_per_week: Decimal = Field(ge=0, decimal_places=2, description="Planned units per week.")
    start: date
    end: date | None = None
    status: ApprovalStatus = ApprovalStatus.DRAFT
    approved_by: str | None = None
    approved_on: date | None = None
    client_contribution_weekly: Decimal | None = Field(default=None, ge=0, decimal_places=2)
    funding: str | None = Field(default=None, description="Client funding status: LA, CHC, self, joint.")

    @model_validator(mode="after")
    def _ordered(self) -> Commitment:
        end_not_before_start(self.start, self.end)
        if self.status == ApprovalStatus.APPROVED and not (self.approved_on and self.approved_by):
            raise ValueError("an approved service needs an approver and an approval date")
        return self

    @property
    def weekly_cost(self) -> Decimal:
        """Gross weekly cost: unit cost x planned units per week, to the penny."""
        return (self.unit_cost * self.units_per_week).quantize(Decimal("0.01"))


class Flag(PersonRecord):
    """An alert on the record: risk to staff, safeguarding, sealed record, key safe..."""

    category: str = Field(description="risk_to_staff, safeguarding, medical, communication, other.")
    text: str = Field(description="What the worker needs to know.")
    start: date
    end: date | None = None
    raised_by: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Flag:
        end_not_before_start(self.start, self.end)
        return self


class Consent(PersonRecord):
    """A consent decision, e.g. share the record with health: yes or no, with the reason."""

    scope: str = Field(description="share_with_health, share_with_education, research ...")
    decision: bool = Field(description="True when the person agreed.")
    recorded: date
    reason: str | None = None
    recorded_by: str | None = None
    expires: date | None = None


class Seal(PersonRecord):
    """A restriction that hides the record except from the roles and teams it names."""

    kind: str = Field(description="adoption, witness_protection, staff_member, other.")
    allowed_roles: list[str] = Field(default_factory=list)
    allowed_teams: list[str] = Field(default_factory=list)
    reason: str | None = None
    since: date


class DocumentLink(PersonRecord):
    """A document held in the EDRMS, linked to the person (and maybe a case)."""

    document_id: str = Field(description="The EDRMS object id.")
    title: str
    document_type: str | None = None
    episode_id: str | None = None
    created: datetime | None = None
    record_class: str | None = Field(default=None, description="Retention class, e.g. looked_after_child.")
    retain_until: date | None = Field(default=None, description="When the document is due for review "
                                                                "(never deleted by the hub).")
    retention_rule: str | None = Field(default=None, description="The rule of config/retention.toml applied.")
    legal_holds: list[str] = Field(default_factory=list, description="Legal holds suspending its review.")
    author: str | None = None
    url: str | None = Field(default=None, description="Where a person opens it in the EDRMS.")


class HealthEvent(PersonRecord):
    """An encounter in health: admission, transfer, discharge, attendance (from ADT or FHIR)."""

    kind: str = Field(description="admission, transfer, discharge, registration, attendance.")
    status: str = Field(default="in-progress", description="planned, in-progress, finished, cancelled.")
    patient_class: str | None = Field(default=None, description="I inpatient, O outpatient, E emergency.")
    facility: str | None = Field(default=None, description="Site or trust ODS code.")
    ward: str | None = None
    bed: str | None = None
    consultant: str | None = None
    visit_number: str | None = None
    admitted: datetime | None = None
    discharged: datetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> HealthEvent:
        end_not_before_start(self.admitted, self.discharged)
        return self


class Transition(PersonRecord):
    """The move of a young person's case from children's to adults' services (Care Act ss58-66).

    ``stage`` follows the move: ``identified`` (due, nothing decided), ``held`` (the consent condition
    is not met, or the significant-benefit test is not, with ``hold_reason``), ``referral_requested``
    (the adult referral is on its way through the outbox), ``received``, ``assessment``, ``eligible``
    or ``not_eligible`` (as the adults' system says), ``plan_in_place`` and ``closed`` (the children's
    case closed, which the hub allows only once the adult plan is in place: s66).
    """

    stage: str = Field(description="identified, held, referral_requested, received, assessment, eligible, "
                                   "not_eligible, plan_in_place, closed.")
    identified: date
    s58_assessment_id: str | None = None
    adults_episode_id: str | None = None
    lead_worker: str | None = None
    notes: str | None = None
    likely_needs_after_18: bool | None = Field(default=None, description="s58(1): likely to need care after 18.")
    significant_benefit: bool | None = Field(default=None, description="s58(1): assessing now is of significant "
                                                                       "benefit (a question of timing).")
    significant_benefit_reason: str | None = None
    decided: date | None = Field(default=None, description="When the significant-benefit decision was made.")
    consent_route: str | None = Field(default=None, description="s58(3)-(4): consent, best_interests or "
                                                                "abuse_neglect_override.")
    consent_given: bool | None = Field(default=None, description="Whether the young person consented.")
    has_capacity: bool | None = Field(default=None, description="Capacity or competence to consent.")
    hold_reason: str | None = Field(default=None, description="Why the transition is held.")
    written_reasons: str | None = Field(default=None, description="s58(5): written reasons for declining a request.")
    advice_given: str | None = Field(default=None, description="s58(5): information and advice given with them.")
    requested_by: str | None = Field(default=None, description="child, parent or carer (whose request it was).")
    adults_system_id: str | None = Field(default=None, description="The referral's id in the adults' system.")
    continuity_flag: bool = Field(default=False, description="s66: 18 with no adult plan; children's services "
                                                             "continue.")
    handover: dict[str, Any] | None = Field(
        default=None, description="What the adult referral carries: person, contacts, relationships, plan and "
                                  "costs, risks, documents (a snapshot as sent).")


class Provider(Canonical):
    """A care provider the council commissions from (CQC location, ODS or ledger code)."""

    name: str
    cqc_location_id: str | None = None
    ledger_code: str | None = None
    address: str | None = None


class Worker(Canonical):
    """A social worker, practitioner or manager, with their team."""

    name: str
    team: str | None = None
    role: str | None = None
    email: str | None = None
    registration: str | None = Field(default=None, description="Social Work England number.")

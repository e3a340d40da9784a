"""Commitment lines from approved care services: derived from the canonical record's change events.

Every change event of a Commitment (a service under a care plan) or a CarePlan, from
any source, is read in outbox order behind a cursor kept in the same transaction as
the versions it produced (``derive_commitments``). An approved service makes a line;
a change to what the finance system would see makes a **new version** carrying the
delta and the reason (a version sent is never edited); an ended service, or an ended
plan, **closes** the line; a cancelled or rejected service, or a cancelled plan,
**reverses** it. Draft and awaiting-approval services are *indicative*: shown beside
the approved ones, never sent. An "approved" service without an approver or date
never gets here: the canonical model quarantines it (``APPROVAL_INCOMPLETE``).

Each version is announced as a ``CommitmentLine`` change event (its idempotency key
is line id + version), which delivery pushes to the finance system by SOAP.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from finance_link.mapping import FinanceMapping, load_mapping
from finance_link.money import PENNY, hundredths, money, to_pence
from hub.delivery.fanout import hold_outbox_order
from hub.settings import Settings
from hub.store.canonical import ID_NAMESPACE, event_id_for
from hub.store.db import Store
from hub.store.finance import FinanceLine, FinanceVersion
from hub.store.tables import Cursor, Entity, OutboxEvent, utcnow
from hub.store.writer import NewEvent, append_events

log = logging.getLogger("carehub.finance")

SOURCE = "finance_link"
CURSOR_STREAM = "derivation"
LINE_ENTITY = "CommitmentLine"
WATCHED = ("Commitment", "CarePlan")
APPROVED = ("approved", "ended")
REVERSING = ("cancelled", "rejected")
INDICATIVE = ("draft", "awaiting_approval")
COST_PERIOD = {"hour": "hourly", "day": "daily", "week": "weekly", "night": "nightly", "item": "per_item"}
WEEKS_PER_YEAR = 52

# The columns a version carries about the line itself; a change in any of them is a new version.
TERMS = ("person_id", "care_plan_id", "service_type", "unit", "cost_period", "provider_code", "supplier_number",
         "supplier_site", "cost_centre", "subjective", "vat_treatment", "unit_cost_pence", "units_x100",
         "weekly_pence", "vat_weekly_pence", "contribution_pence", "total_pence", "total_basis", "start", "end",
         "approved_by", "approved_on")
_MONEY_TERMS = {"unit_cost_pence": "unit_cost", "weekly_pence": "weekly_amount", "vat_weekly_pence": "vat_weekly",
                "contribution_pence": "client_contribution_weekly", "total_pence": "total_amount"}


@dataclass
class DerivationResult:
    """What one derivation run did."""

    events_read: int = 0
    created: int = 0
    amended: int = 0
    closed: int = 0
    reversed: int = 0
    cursor: int = 0

    @property
    def versions(self) -> int:
        """Versions written."""
        return self.created + self.amended + self.closed + self.reversed

    def as_dict(self) -> dict[str, int]:
        """Counts for job records and the CLI."""
        return {"events_read": self.events_read, "created": self.created, "amended": self.amended,
                "closed": self.closed, "reversed": self.reversed, "versions": self.versions, "cursor": self.cursor}


def line_id_for(commitment_id: str) -> str:
    """The commitment line of a service: its own id (so its versions' keys never meet the service's own)."""
    return str(uuid.uuid5(ID_NAMESPACE, f"finance-line/{commitment_id}"))


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) and value else value or None


def weekly_pence(unit_cost: Decimal, units_per_week: Decimal) -> int:
    """Gross weekly cost (unit cost x planned units per week) in pence, rounded half up once."""
    return to_pence(unit_cost * units_per_week)


def total_pence(weekly: int, start: date, end: date | None) -> tuple[int, str]:
    """The total committed: weekly x the weeks from start to end inclusive ("dated"), or 52 weeks while
    the line is open-ended ("annual")."""
    if end is None:
        return weekly * WEEKS_PER_YEAR, "annual"
    days = (end - start).days + 1
    return to_pence(Decimal(weekly) * PENNY * Decimal(days) / Decimal(7)), "dated"


@dataclass
class _Context:
    """What terms need beyond the service itself, read once per batch: plans' areas, support reasons."""

    session: Session
    mapping: FinanceMapping
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    reasons: dict[str, str | None] = field(default_factory=dict)

    def plan(self, plan_id: str | None) -> dict[str, Any]:
        if not plan_id:
            return {}
        if plan_id not in self.plans:
            doc = self.session.scalar(select(Entity.document).where(Entity.id == plan_id))
            self.plans[plan_id] = orjson.loads(doc) if doc else {}
        return self.plans[plan_id]

    def support_reason(self, person_id: str) -> str | None:
        """The person's primary support reason: the reason of their latest adults' referral."""
        if person_id not in self.reasons:
            latest: tuple[str, str | None] | None = None
            for (doc,) in self.session.execute(select(Entity.document).where(
                    Entity.person_id == person_id, Entity.entity_type == "Referral")):
                ref = orjson.loads(doc)
                if ref.get("service_area") == "adults" and (latest is None or ref.get("received", "") > latest[0]):
                    latest = (ref.get("received", ""), ref.get("reason"))
            self.reasons[person_id] = latest[1] if latest else None
        return self.reasons[person_id]


def line_terms(doc: dict[str, Any], person_id: str, ctx: _Context) -> dict[str, Any]:
    """What the finance system is told about a service: every money amount in pence, pence-exact."""
    mapping = ctx.mapping
    service_type = doc["service_type"]
    unit_cost = _decimal(doc.get("unit_cost"))
    units = _decimal(doc.get("units_per_week"))
    weekly = weekly_pence(unit_cost, units)
    treatment = mapping.vat_treatment(service_type)
    vat = to_pence(Decimal(weekly) * PENNY * mapping.standard_rate) if treatment == "standard" else 0
    start = _date(doc["start"])
    assert start is not None
    end = _date(doc.get("end"))
    plan = ctx.plan(doc.get("care_plan_id"))
    plan_end = _date(plan.get("end")) if plan.get("status") == "ended" else None
    if plan_end is not None and (end is None or end > plan_end):  # a service ends with its plan
        end = max(plan_end, start)
    total, basis = total_pence(weekly, start, end)
    provider = doc.get("provider_id")
    supplier = mapping.suppliers.get(provider or "")
    area = plan.get("service_area")
    reason = ctx.support_reason(person_id) if area != "childrens" else None
    return {
        "person_id": person_id, "care_plan_id": doc.get("care_plan_id"), "service_type": service_type,
        "unit": doc.get("unit", "hour"), "cost_period": COST_PERIOD.get(doc.get("unit", "hour"), "weekly"),
        "provider_code": provider, "supplier_number": supplier.number if supplier else None,
        "supplier_site": supplier.site if supplier else None,
        "cost_centre": mapping.cost_centre(area, service_type, reason), "subjective": mapping.subjective(service_type),
        "vat_treatment": treatment, "unit_cost_pence": to_pence(unit_cost), "units_x100": to_pence(units),
        "weekly_pence": weekly, "vat_weekly_pence": vat,
        "contribution_pence": to_pence(_decimal(doc.get("client_contribution_weekly"))),
        "total_pence": total, "total_basis": basis, "start": start, "end": end,
        "approved_by": doc.get("approved_by"), "approved_on": _date(doc.get("approved_on")),
    }


def _terms_of(version: FinanceVersion) -> dict[str, Any]:
    return {name: getattr(version, name) for name in TERMS}


def _describe(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The reason of an amendment: each changed term, old -> new (approver named only as changed)."""
    parts: list[str] = []
    for name in TERMS:
        if old[name] == new[name] or name in ("total_basis", "person_id"):
            continue
        if name == "approved_by":
            parts.append("approver changed")
        elif name in _MONEY_TERMS:
            parts.append(f"{_MONEY_TERMS[name]} {money(old[name])} -> {money(new[name])}")
        elif name == "units_x100":
            parts.append(f"units_per_week {hundredths(old[name])} -> {hundredths(new[name])}")
        else:
            parts.append(f"{name} {old[name] or '-'} -> {new[name] or '-'}")
    return "; ".join(parts)


class Deriver:
    """Turns one batch of change events into versions, lines and their change events, in one transaction."""

    def __init__(self, session: Session, mapping: FinanceMapping, result: DerivationResult) -> None:
        self.session = session
        self.ctx = _Context(session, mapping)
        self.result = result
        self.latest: dict[str, FinanceVersion] = {}
        self.written: list[FinanceVersion] = []
        self.commitments: dict[str, str] = {}

    def _latest(self, line_id: str) -> FinanceVersion | None:
        if line_id not in self.latest:
            found = self.session.scalars(select(FinanceVersion).where(FinanceVersion.line_id == line_id)
                                         .order_by(FinanceVersion.version.desc()).limit(1)).first()
            if found is None:
                return None
            self.latest[line_id] = found
        return self.latest[line_id]

    def service(self, commitment_id: str, person_id: str | None, doc: dict[str, Any]) -> None:
        """A Commitment changed: create, amend, close or reverse its line."""
        line_id = line_id_for(commitment_id)
        self.commitments[line_id] = commitment_id
        status = doc.get("status", "draft")
        previous = self._latest(line_id)
        person = person_id or doc.get("person_id")
        if not person:
            return
        if status in APPROVED and doc.get("approved_on") and doc.get("approved_by"):
            terms = line_terms(doc, person, self.ctx)
            if previous is None or previous.action == "reverse":
                reason = "approved" if previous is None else "approved again after reversal"
                self._write(line_id, "create", reason, terms, previous)
                return
            old = _terms_of(previous)
            if old == terms:
                return
            closing = status == "ended" or (terms["end"] is not None and old["end"] != terms["end"])
            self._write(line_id, "close" if closing else "amend",
                        ("service ended: " if status == "ended" else "") + _describe(old, terms), terms, previous)
        elif status in REVERSING and previous is not None and previous.action != "reverse":
            self._reverse(previous, f"service {status}")

    def plan(self, plan_id: str, doc: dict[str, Any]) -> None:
        """A CarePlan changed: a cancelled plan reverses its lines, an ended one closes those still open."""
        status = doc.get("status")
        if status not in ("cancelled", "ended"):
            return
        line_ids = list(self.session.scalars(select(FinanceLine.line_id).where(
            FinanceLine.care_plan_id == plan_id, FinanceLine.status != "reversed")))
        line_ids += [v.line_id for v in self.latest.values()
                     if v.care_plan_id == plan_id and v.action != "reverse" and v.line_id not in line_ids]
        for line_id in sorted(line_ids):
            previous = self._latest(line_id)
            if previous is None or previous.action == "reverse":
                continue
            if status == "cancelled":
                self._reverse(previous, "care plan cancelled")
            elif previous.end is None and doc.get("end"):
                terms = _terms_of(previous)
                terms["end"] = max(_date(doc["end"]) or previous.start, previous.start)
                terms["total_pence"], terms["total_basis"] = total_pence(previous.weekly_pence, previous.start,
                                                                          terms["end"])
                self._write(line_id, "close", f"care plan ended: end - -> {terms['end']}", terms, previous)

    def _reverse(self, previous: FinanceVersion, reason: str) -> None:
        terms = _terms_of(previous)
        terms.update(weekly_pence=0, vat_weekly_pence=0, contribution_pence=0, total_pence=0)
        self._write(previous.line_id, "reverse", reason, terms, previous)

    def _write(self, line_id: str, action: str, reason: str, terms: dict[str, Any],
               previous: FinanceVersion | None) -> None:
        number = previous.version + 1 if previous else 1
        kind = "created" if number == 1 else "updated"
        version = FinanceVersion(
            line_id=line_id, version=number, action=action, reason=reason, **terms,
            delta_weekly_pence=terms["weekly_pence"] - (previous.weekly_pence if previous else 0),
            delta_total_pence=terms["total_pence"] - (previous.total_pence if previous else 0),
            event_id=event_id_for(line_id, number, kind), recorded_at=utcnow(),
        )
        version.item = orjson.dumps(feed_item(version)).decode()
        self.latest[line_id] = version
        self.written.append(version)
        counter = {"create": "created", "amend": "amended", "close": "closed", "reverse": "reversed"}[action]
        setattr(self.result, counter, getattr(self.result, counter) + 1)

    def flush(self) -> None:
        """Write the batch's versions, lines and events; the caller holds the outbox-order lock, so version
        ids, like outbox ids, rise in commit order."""
        if not self.written:
            return
        self.session.add_all(self.written)
        self.session.flush()
        for version in self.written:
            _keep_line(self.session, version, self.commitments.get(version.line_id))
        announce(self.session, self.written)


def _keep_line(session: Session, version: FinanceVersion, commitment_id: str | None) -> None:
    status = {"reverse": "reversed"}.get(version.action, "closed" if version.end is not None else "open")
    values = {"person_id": version.person_id, "care_plan_id": version.care_plan_id, "version": version.version,
              "status": status, "service_type": version.service_type, "provider_code": version.provider_code,
              "cost_centre": version.cost_centre, "weekly_pence": version.weekly_pence,
              "total_pence": version.total_pence, "start": version.start, "end": version.end,
              "updated_at": version.recorded_at}
    if version.version == 1:
        assert commitment_id is not None
        session.add(FinanceLine(line_id=version.line_id, commitment_id=commitment_id, **values))
    else:
        session.execute(update(FinanceLine).where(FinanceLine.line_id == version.line_id).values(**values))


def announce(session: Session, versions: Iterable[FinanceVersion]) -> None:
    """The change events of new versions, through the core's ``append_events``, in the transaction that wrote
    them (their key: line id + version; their ordering key: the person)."""
    append_events(session, [NewEvent(
        v.event_id, LINE_ENTITY, v.line_id, v.person_id, "created" if v.version == 1 else "updated", v.version,
        v.person_id, SOURCE, v.recorded_at, v.item or orjson.dumps(feed_item(v))) for v in versions])


def feed_item(v: FinanceVersion) -> dict[str, Any]:
    """A version as the finance system sees it (feed, CSV and SOAP): money as 2-place decimal strings."""
    return {
        "line_id": v.line_id, "version": v.version, "action": v.action, "reason": v.reason,
        "person_id": v.person_id, "care_plan_id": v.care_plan_id, "service_type": v.service_type,
        "provider_code": v.provider_code, "supplier_number": v.supplier_number, "supplier_site": v.supplier_site,
        "cost_centre": v.cost_centre, "subjective": v.subjective, "unit": v.unit, "cost_period": v.cost_period,
        "unit_cost": money(v.unit_cost_pence), "units_per_week": hundredths(v.units_x100),
        "weekly_amount": money(v.weekly_pence), "vat_treatment": v.vat_treatment,
        "vat_weekly_amount": money(v.vat_weekly_pence),
        "client_contribution_weekly": money(v.contribution_pence),
        "net_weekly_amount": money(v.weekly_pence - v.contribution_pence),
        "total_amount": money(v.total_pence), "total_basis": v.total_basis,
        "delta_weekly_amount": money(v.delta_weekly_pence), "delta_total_amount": money(v.delta_total_pence),
        "start": v.start.isoformat(), "end": v.end.isoformat() if v.end else None,
        "approved_by": v.approved_by, "approved_on": v.approved_on.isoformat() if v.approved_on else None,
        "recorded_at": v.recorded_at.isoformat(),
    }


FEED_COLUMNS = (
    "line_id", "version", "action", "reason", "person_id", "care_plan_id", "service_type", "provider_code",
    "supplier_number", "supplier_site", "cost_centre", "subjective", "unit", "cost_period", "unit_cost",
    "units_per_week", "weekly_amount", "vat_treatment", "vat_weekly_amount", "client_contribution_weekly",
    "net_weekly_amount", "total_amount", "total_basis", "delta_weekly_amount", "delta_total_amount", "start",
    "end", "approved_by", "approved_on", "recorded_at")


def _load_cursor(session: Session) -> tuple[Cursor | None, int]:
    row = session.scalars(select(Cursor).where(Cursor.source == SOURCE, Cursor.stream == CURSOR_STREAM)).first()
    return row, int((row.value or {}).get("outbox_id", 0)) if row else 0


def derive_step(session: Session, mapping: FinanceMapping, batch: int, result: DerivationResult) -> int:
    """Derive from the next ``batch`` watched change events after the cursor; returns how many were read."""
    hold_outbox_order(session)  # read after every open writer of outbox rows has committed
    cursor, after = _load_cursor(session)
    rows = session.execute(
        select(OutboxEvent.id, OutboxEvent.entity_type, OutboxEvent.entity_id, OutboxEvent.person_id,
               OutboxEvent.payload)
        .where(OutboxEvent.id > after, OutboxEvent.entity_type.in_(WATCHED))
        .order_by(OutboxEvent.id).limit(batch)).all()
    if not rows:
        return 0
    deriver = Deriver(session, mapping, result)
    for _id, entity_type, entity_id, person_id, payload in rows:
        doc = orjson.loads(payload)
        if entity_type == "Commitment":
            deriver.service(entity_id, person_id, doc)
        else:
            deriver.plan(entity_id, doc)
    deriver.flush()
    last = rows[-1][0]
    if cursor is None:
        session.add(Cursor(source=SOURCE, stream=CURSOR_STREAM, value={"outbox_id": last}, updated_at=utcnow()))
    else:
        cursor.value, cursor.updated_at = {"outbox_id": last}, utcnow()
    result.events_read += len(rows)
    result.cursor = last
    return len(rows)


def derive_commitments(store: Store, settings: Settings, mapping: FinanceMapping | None = None) -> DerivationResult:
    """Derive versions from every watched change event not yet read; each batch commits with its cursor."""
    the_mapping = mapping or load_mapping(settings)
    result = DerivationResult()
    while True:
        with store.session() as session:
            if not derive_step(session, the_mapping, settings.finance.derive_batch, result):
                break
    log.info("finance derivation: %s", result.as_dict())
    return result

"""What the finance page and its CSV show: commitment lines by provider, cost centre, status and period, with
planned vs actual, and the indicative (not yet approved) services beside them. Queries only; no HTML."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, TextIO

import orjson
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from finance_link.actuals import LineSpend, line_spend
from finance_link.commitments import INDICATIVE, weekly_pence
from finance_link.money import money
from hub.store.finance import FinanceLine
from hub.store.tables import Entity

STATUSES = ("open", "closed", "reversed")
PAGE_SIZE = 50
CSV_COLUMNS = ("line_id", "person_id", "service_type", "provider_code", "cost_centre", "status", "start", "end",
               "weekly_amount", "total_amount", "planned", "actual", "variance", "variance_percent", "flagged")


@dataclass(frozen=True, slots=True)
class LineFilter:
    """The finance page's filters (empty: any)."""

    provider: str | None = None
    cost_centre: str | None = None
    status: str | None = None
    period_from: date | None = None
    period_to: date | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        """The query narrowed to lines matching every filter (a period: lines running at some time in it)."""
        if self.provider:
            query = query.where(FinanceLine.provider_code == self.provider)
        if self.cost_centre:
            query = query.where(FinanceLine.cost_centre == self.cost_centre)
        if self.status:
            query = query.where(FinanceLine.status == self.status)
        if self.period_to:
            query = query.where(FinanceLine.start <= self.period_to)
        if self.period_from:
            query = query.where(or_(FinanceLine.end.is_(None), FinanceLine.end >= self.period_from))
        return query


@dataclass
class Totals:
    """Sums in pence of a set of lines."""

    lines: int = 0
    weekly: int = 0
    total: int = 0
    planned: int = 0
    actual: int = 0

    def add(self, line: FinanceLine, spend: LineSpend | None) -> None:
        self.lines += 1
        self.weekly += line.weekly_pence
        self.total += line.total_pence
        if spend is not None:
            self.planned += spend.planned_pence
            self.actual += spend.actual_pence

    def shown(self) -> dict[str, Any]:
        """As the page shows them."""
        return {"lines": self.lines, "weekly": money(self.weekly), "total": money(self.total),
                "planned": money(self.planned), "actual": money(self.actual),
                "variance": money(self.actual - self.planned)}


@dataclass
class FinanceView:
    """One page of lines, the totals of that page and of the whole filter, and the indicative services."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    page_totals: dict[str, Any] = field(default_factory=dict)
    filter_totals: dict[str, Any] = field(default_factory=dict)
    page: int = 1
    pages: int = 1
    indicative: dict[str, Any] = field(default_factory=dict)
    providers: list[str] = field(default_factory=list)
    cost_centres: list[str] = field(default_factory=list)


def _row(line: FinanceLine, spend: LineSpend | None) -> dict[str, Any]:
    shown = spend.as_json() if spend else {}
    return {"line_id": line.line_id, "person_id": line.person_id, "service_type": line.service_type,
            "provider_code": line.provider_code, "cost_centre": line.cost_centre, "status": line.status,
            "start": line.start.isoformat(), "end": line.end.isoformat() if line.end else "",
            "weekly_amount": money(line.weekly_pence), "total_amount": money(line.total_pence),
            "planned": shown.get("planned", "0.00"), "actual": shown.get("actual", "0.00"),
            "variance": shown.get("variance", "0.00"), "variance_percent": shown.get("variance_percent") or "",
            "flagged": bool(shown.get("flagged"))}


def finance_view(session: Session, flt: LineFilter, page: int = 1, size: int = PAGE_SIZE) -> FinanceView:
    """The lines of one page of the filter, with totals per page and per filter, and the indicative services."""
    lines = session.scalars(flt.apply(select(FinanceLine)).order_by(FinanceLine.start, FinanceLine.line_id)).all()
    spends = {s.line_id: s for s in line_spend(session, [line.line_id for line in lines])} if lines else {}
    view = FinanceView()
    whole, shown = Totals(), Totals()
    view.pages = max(1, -(-len(lines) // size))
    view.page = min(max(1, page), view.pages)
    first = (view.page - 1) * size
    for index, line in enumerate(lines):
        spend = spends.get(line.line_id)
        whole.add(line, spend)
        if first <= index < first + size:
            shown.add(line, spend)
            view.rows.append(_row(line, spend))
    view.page_totals, view.filter_totals = shown.shown(), whole.shown()
    view.indicative = indicative_services(session, flt)
    view.providers = [p for p in session.scalars(select(FinanceLine.provider_code).distinct()
                                                 .order_by(FinanceLine.provider_code)) if p]
    view.cost_centres = list(session.scalars(select(FinanceLine.cost_centre).distinct()
                                             .order_by(FinanceLine.cost_centre)))
    return view


def indicative_services(session: Session, flt: LineFilter) -> dict[str, Any]:
    """Services planned but not yet approved (never sent to the finance system): count and weekly total; and the
    personal budgets of plans awaiting approval (annual)."""
    count, weekly, plans, budgets = 0, 0, 0, Decimal(0)
    query = select(Entity.entity_type, Entity.document).where(Entity.entity_type.in_(("Commitment", "CarePlan")))
    for entity_type, doc_json in session.execute(query):
        doc = orjson.loads(doc_json)
        if doc.get("status") not in INDICATIVE:
            continue
        if entity_type == "CarePlan":
            if doc.get("personal_budget") and not flt.provider:
                plans += 1
                budgets += Decimal(str(doc["personal_budget"]))
            continue
        if flt.provider and doc.get("provider_id") != flt.provider:
            continue
        start = date.fromisoformat(doc["start"])
        end = date.fromisoformat(doc["end"]) if doc.get("end") else None
        if (flt.period_to and start > flt.period_to) or (flt.period_from and end and end < flt.period_from):
            continue
        count += 1
        weekly += weekly_pence(Decimal(str(doc.get("unit_cost", 0))), Decimal(str(doc.get("units_per_week", 0))))
    return {"services": count, "weekly": money(weekly), "budgets": plans, "budgets_annual": f"{budgets:.2f}"}


def write_lines_csv(session: Session, flt: LineFilter, out: TextIO) -> int:
    """Every line of the filter with planned vs actual, as CSV; how many rows."""
    lines = session.scalars(flt.apply(select(FinanceLine)).order_by(FinanceLine.start, FinanceLine.line_id)).all()
    spends = {s.line_id: s for s in line_spend(session, [line.line_id for line in lines])} if lines else {}
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for line in lines:
        writer.writerow(_row(line, spends.get(line.line_id)))
    return len(lines)


def line_count(session: Session) -> int:
    """How many commitment lines there are."""
    return int(session.scalar(select(func.count()).select_from(FinanceLine)) or 0)

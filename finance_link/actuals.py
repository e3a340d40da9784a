"""Actual spend back from the finance system: payments and invoices against commitment lines.

They arrive by ``POST /api/finance/actuals`` or as CSV files dropped in a folder
(``pick_up_actuals``, a scheduled job): each file is moved to ``processed/`` or
``failed/`` with a report beside it, and a file whose content was seen before
changes nothing. Each actual's ``reference`` (the finance system's document
number) is unique: the same actual twice is a duplicate, never counted twice.

Planned vs actual: for each line, *planned* is the line's weekly amount over the
days its actuals cover (within the line's dates), *actual* the sum of its actuals.
A line whose actual differs from plan by more than
``finance.variance_threshold_percent`` is flagged for the budget holder
(``finance_variances``), and unflagged when it comes back within it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import shutil
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from finance_link.auditing import SystemAudit, audit_system
from finance_link.money import money, parse_amount, to_pence
from hub.errors import QuarantineError
from hub.settings import Settings
from hub.store.db import Store
from hub.store.finance import FinanceActual, FinanceActualFile, FinanceLine, FinanceVariance, FinanceVersion
from hub.store.tables import utcnow

log = logging.getLogger("carehub.finance.actuals")

KINDS = ("invoice", "payment")
CSV_COLUMNS = ("reference", "line_id", "kind", "period_from", "period_to", "amount")


@dataclass
class ActualsResult:
    """What a batch of actuals did: accepted, duplicates, and each rejected one with its reason."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    lines: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        """The answer of the actuals API."""
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


@dataclass(frozen=True, slots=True)
class _Actual:
    reference: str
    line_id: str
    kind: str
    period_from: date
    period_to: date
    amount_pence: int


def _parse(item: dict[str, Any]) -> _Actual:
    missing = [c for c in CSV_COLUMNS if not str(item.get(c) or "").strip()]
    if missing:
        raise QuarantineError("MISSING_FIELD", f"missing {', '.join(missing)}", field=missing[0])
    kind = str(item["kind"]).strip().lower()
    if kind not in KINDS:
        raise QuarantineError("CODE_INVALID", f"kind {kind!r} is not invoice or payment", field="kind")
    try:
        start, end = date.fromisoformat(str(item["period_from"])), date.fromisoformat(str(item["period_to"]))
    except ValueError as exc:
        raise QuarantineError("DATE_INVALID", f"period dates must be YYYY-MM-DD: {exc}", field="period_from") from exc
    if end < start:
        raise QuarantineError("DATES_OUT_OF_ORDER", "period_to is before period_from", field="period_to")
    reference = str(item["reference"]).strip()
    if len(reference) > 64:
        raise QuarantineError("INVALID_VALUE", "reference longer than 64 characters", field="reference")
    return _Actual(reference, str(item["line_id"]).strip(), kind, start, end,
                   to_pence(parse_amount(str(item["amount"]), "amount")))


def record_actuals(session: Session, items: Iterable[dict[str, Any]], origin: str, threshold: float
                   ) -> ActualsResult:
    """Record a batch of actuals (one transaction: the caller's), then re-judge the variance of each line touched."""
    result = ActualsResult()
    parsed: list[tuple[int, _Actual]] = []
    for index, item in enumerate(items):
        try:
            parsed.append((index, _parse(item)))
        except QuarantineError as exc:
            result.rejected.append({"index": index, "reference": item.get("reference"), "reason": exc.reason,
                                    "detail": exc.message})
    refs = [a.reference for _, a in parsed]
    known = {r.reference: r for r in session.scalars(select(FinanceActual).where(FinanceActual.reference.in_(refs)))}
    lines = set(session.scalars(select(FinanceLine.line_id).where(
        FinanceLine.line_id.in_({a.line_id for _, a in parsed}))))
    seen: dict[str, _Actual] = {}
    for index, actual in parsed:
        before = known.get(actual.reference)
        earlier = seen.get(actual.reference)
        if before is not None or earlier is not None:
            same = earlier == actual if earlier is not None else (
                (before.line_id, before.kind, before.period_from, before.period_to, before.amount_pence)  # type: ignore[union-attr]
                == (actual.line_id, actual.kind, actual.period_from, actual.period_to, actual.amount_pence))
            if same:
                result.duplicates += 1
            else:
                result.rejected.append({"index": index, "reference": actual.reference, "reason": "REFERENCE_REUSED",
                                        "detail": "this reference was posted before with different content"})
            continue
        if actual.line_id not in lines:
            result.rejected.append({"index": index, "reference": actual.reference, "reason": "LINE_UNKNOWN",
                                    "detail": "no commitment line has this id"})
            continue
        seen[actual.reference] = actual
        session.add(FinanceActual(reference=actual.reference, line_id=actual.line_id, kind=actual.kind,
                                  period_from=actual.period_from, period_to=actual.period_to,
                                  amount_pence=actual.amount_pence, origin=origin[:160], received_at=utcnow()))
        result.accepted += 1
        result.lines.add(actual.line_id)
    session.flush()
    result.rejected.sort(key=lambda r: r["index"])
    judge_variances(session, result.lines, threshold)
    return result


# -- planned vs actual --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineSpend:
    """Planned vs actual for one line, in pence; ``percent`` is the variance against plan (None: no plan)."""

    line_id: str
    person_id: str
    status: str
    service_type: str
    provider_code: str | None
    cost_centre: str
    weekly_pence: int
    planned_pence: int
    actual_pence: int
    flagged: bool

    @property
    def variance_pence(self) -> int:
        """Actual minus planned."""
        return self.actual_pence - self.planned_pence

    @property
    def percent(self) -> Decimal | None:
        """Variance as a percentage of plan, one decimal place."""
        if not self.planned_pence:
            return None
        return (Decimal(self.variance_pence) * 100 / Decimal(self.planned_pence)).quantize(Decimal("0.1"))

    def as_json(self) -> dict[str, Any]:
        """Money as 2-place decimal strings."""
        return {"line_id": self.line_id, "person_id": self.person_id, "status": self.status,
                "service_type": self.service_type, "provider_code": self.provider_code,
                "cost_centre": self.cost_centre, "weekly_amount": money(self.weekly_pence),
                "planned": money(self.planned_pence), "actual": money(self.actual_pence),
                "variance": money(self.variance_pence),
                "variance_percent": None if self.percent is None else f"{self.percent}", "flagged": self.flagged}


def _overlap_days(start: date, end: date, line_start: date, line_end: date | None) -> int:
    lo, hi = max(start, line_start), min(end, line_end or end)
    return (hi - lo).days + 1 if hi >= lo else 0


def line_spend(session: Session, line_ids: Iterable[str] | None = None, person_id: str | None = None
               ) -> list[LineSpend]:
    """Planned vs actual of the given lines (or a person's, or every line), in line order."""
    query = select(FinanceLine).order_by(FinanceLine.start, FinanceLine.line_id)
    if line_ids is not None:
        query = query.where(FinanceLine.line_id.in_(list(line_ids)))
    if person_id is not None:
        query = query.where(FinanceLine.person_id == person_id)
    lines = session.scalars(query).all()
    if not lines:
        return []
    ids = [line.line_id for line in lines]
    actuals: dict[str, list[FinanceActual]] = defaultdict(list)
    for a in session.scalars(select(FinanceActual).where(FinanceActual.line_id.in_(ids))):
        actuals[a.line_id].append(a)
    weekly = _weekly_by_period(session, ids)
    flagged = set(session.scalars(select(FinanceVariance.line_id).where(FinanceVariance.line_id.in_(ids))))
    out = []
    for line in lines:
        planned = Decimal(0)
        for a in actuals.get(line.line_id, []):
            days = _overlap_days(a.period_from, a.period_to, line.start, line.end)
            planned += Decimal(weekly.get(line.line_id, line.weekly_pence)) * Decimal(days) / Decimal(7)
        out.append(LineSpend(line.line_id, line.person_id, line.status, line.service_type, line.provider_code,
                             line.cost_centre, line.weekly_pence, int(planned.quantize(Decimal(1))),
                             sum(a.amount_pence for a in actuals.get(line.line_id, [])), line.line_id in flagged))
    return out


def _weekly_by_period(session: Session, line_ids: list[str]) -> dict[str, int]:
    """The weekly amount planned of each line: its latest version that was not a reversal (a reversed line
    plans nothing)."""
    weekly: dict[str, int] = {}
    rows = session.execute(select(FinanceVersion.line_id, FinanceVersion.action, FinanceVersion.weekly_pence)
                           .where(FinanceVersion.line_id.in_(line_ids)).order_by(FinanceVersion.version))
    for line_id, action, pence in rows:
        weekly[line_id] = 0 if action == "reverse" else pence
    return weekly


def person_spend(spends: list[LineSpend]) -> dict[str, Any]:
    """Totals of one person's lines."""
    planned = sum(s.planned_pence for s in spends)
    actual = sum(s.actual_pence for s in spends)
    return {"planned": money(planned), "actual": money(actual), "variance": money(actual - planned),
            "weekly_amount": money(sum(s.weekly_pence for s in spends if s.status != "reversed")),
            "flagged": any(s.flagged for s in spends)}


def judge_variances(session: Session, line_ids: Iterable[str], threshold: float) -> None:
    """Raise (or clear) the variance flag of each line against ``threshold`` percent."""
    ids = list(line_ids)
    if not ids:
        return
    limit = Decimal(str(threshold))
    for spend in line_spend(session, ids):
        over = spend.actual_pence > 0 and (spend.percent is None or abs(spend.percent) > limit)
        session.execute(delete(FinanceVariance).where(FinanceVariance.line_id == spend.line_id))
        if over:
            session.add(FinanceVariance(line_id=spend.line_id, person_id=spend.person_id,
                                        planned_pence=spend.planned_pence, actual_pence=spend.actual_pence,
                                        percent="n/a" if spend.percent is None else str(spend.percent),
                                        raised_at=utcnow()))
            log.info("variance flag raised on line %s (%s%%)", spend.line_id, spend.percent)


# -- the CSV drop folder -------------------------------------------------------------------------------


def drop_folder(settings: Settings) -> Path:
    """The folder the finance system drops actuals CSVs in."""
    return Path(settings.finance.actuals_drop_folder.format(data_dir=settings.data_dir))


def read_csv(text: str) -> list[dict[str, Any]]:
    """Rows of an actuals CSV; QuarantineError when its header lacks a column."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise QuarantineError("HEADER_INVALID", f"the header lacks {', '.join(missing)}")
    return list(reader)


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What became of one dropped file."""

    name: str
    outcome: str  # processed, duplicate, failed
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    report: str = ""


def pick_up_file(store: Store, settings: Settings, path: Path) -> FileOutcome:
    """Load one dropped file and move it to processed/ (or failed/) with its report beside it.

    The file's rows, its record and the audit row commit together; the move follows the commit, so a crash
    between them leaves the file to be offered again, which its hash then recognises.
    """
    content = path.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    with store.session() as session:
        before = session.scalars(select(FinanceActualFile).where(FinanceActualFile.sha256 == digest)).first()
        if before is not None:
            outcome = FileOutcome(path.name, "duplicate", report=(
                f"{path.name}: the same content as {before.name} (loaded {before.received_at:%Y-%m-%d %H:%M}); "
                "nothing changed\n"))
        else:
            outcome = _load(session, settings, path, content)
            session.add(FinanceActualFile(name=path.name[:255], sha256=digest, outcome=outcome.outcome,
                                          accepted=outcome.accepted, duplicates=outcome.duplicates,
                                          rejected=outcome.rejected, report=outcome.report, received_at=utcnow()))
        audit_system(session, [SystemAudit(
            "FILE", f"finance:actuals/{path.name}"[:512], "system:finance-actuals", "write",
            "invalid" if outcome.outcome == "failed" else "success", outcome.report.strip()[:2000],
            [f"FinanceActualFile/{digest[:16]}"])])
    _move(path, path.parent / ("failed" if outcome.outcome == "failed" else "processed"), outcome.report)
    return outcome


def _load(session: Session, settings: Settings, path: Path, content: bytes) -> FileOutcome:
    try:
        items = read_csv(content.decode("utf-8-sig"))
    except (QuarantineError, UnicodeDecodeError) as exc:
        reason = exc.message if isinstance(exc, QuarantineError) else "not UTF-8 text"
        return FileOutcome(path.name, "failed", report=f"{path.name}: failed: {reason}\n")
    result = record_actuals(session, items, f"file:{path.name}", settings.finance.variance_threshold_percent)
    lines = [f"{path.name}: {len(items)} rows: {result.accepted} accepted, {result.duplicates} duplicates, "
             f"{len(result.rejected)} rejected"]
    lines += [f"row {r['index'] + 2}: {r['reason']}: {r['detail']}" for r in result.rejected]
    return FileOutcome(path.name, "processed", result.accepted, result.duplicates, len(result.rejected),
                       "\n".join(lines) + "\n")


def _move(path: Path, to: Path, report: str) -> None:
    to.mkdir(parents=True, exist_ok=True)
    target = to / path.name
    if target.exists():
        target = to / f"{path.stem}.{int(time.time() * 1000)}{path.suffix}"
    shutil.move(str(path), target)
    target.with_name(target.name + ".report.txt").write_text(report, encoding="utf-8")


def pick_up_actuals(store: Store, settings: Settings) -> dict[str, int]:
    """Every CSV in the drop folder old enough to be complete, in name order; counts for the job record."""
    folder = drop_folder(settings)
    counts = {"files": 0, "failed": 0, "duplicate_files": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
    if not folder.is_dir():
        return counts
    cutoff = time.time() - settings.finance.actuals_min_age_seconds
    for path in sorted(folder.glob("*.csv")):
        if path.stat().st_mtime > cutoff:
            continue
        outcome = pick_up_file(store, settings, path)
        counts["files"] += 1
        counts["failed"] += outcome.outcome == "failed"
        counts["duplicate_files"] += outcome.outcome == "duplicate"
        counts["accepted"] += outcome.accepted
        counts["duplicates"] += outcome.duplicates
        counts["rejected"] += outcome.rejected
    return counts

"""Actuals back from the finance system: by API (posted by the ERP simulator over HTTP) and by a CSV drop
folder; the same actual or file twice changes nothing; planned vs actual per line and per person; a variance
over the threshold is flagged; every actual on the audit trail."""

from __future__ import annotations

import os
import time
from decimal import Decimal

from sqlalchemy import select

from finance_link.actuals import drop_folder, pick_up_actuals
from finance_link.commitments import derive_commitments
from hub.store.audit import AuditEvent
from hub.store.finance import FinanceActual, FinanceVariance
from tests.support.finance import FinanceHub, plan_doc, service_doc


def _committed(fin: FinanceHub, people: int = 2) -> list[str]:
    """``people`` approved home care services (215.00 a week each), derived and pushed to the ERP."""
    for n in range(people):
        fin.council.person(f"a{n}", 40 + n)
        fin.council.ingest("plans", f"plan-a{n}", plan_doc(f"a{n}"))
        fin.council.ingest("services", f"svc-a{n}", service_doc(f"a{n}", f"plan-a{n}"))
    derive_commitments(fin.store, fin.settings)
    fin.loop()
    fin.drain(lambda: fin.erp.stats()["applied"] == people)
    return sorted(fin.erp.commitments)


def test_the_erp_posts_invoices_back_and_planned_vs_actual_flags_an_overspend(fin: FinanceHub) -> None:
    on_plan, over = _committed(fin)
    from datetime import date

    items = fin.erp.invoices(4, date(2026, 2, 1), overspend={over: Decimal("1.25")})
    answer = fin.erp.post_actuals(fin.url, fin.token(), items)
    assert answer == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert fin.erp.post_actuals(fin.url, fin.token(), items) == {"accepted": 0, "duplicates": 2, "rejected": []}

    with fin.store.session() as s:
        person = {line: s.scalar(select(FinanceActual.line_id).where(FinanceActual.line_id == line))
                  for line in (on_plan, over)}
        assert all(person.values())
        flagged = s.scalars(select(FinanceVariance)).all()
    assert [f.line_id for f in flagged] == [over] and flagged[0].percent == "25.0"

    from hub.store.finance import FinanceLine

    with fin.store.session() as s:
        over_person = s.get(FinanceLine, over).person_id  # type: ignore[union-attr]
    spend = fin.get(f"/api/finance/persons/{over_person}/spend")
    assert spend.status_code == 200, spend.text
    body = spend.json()
    # 4 weeks to 1 Feb from the start on 5 Jan: 28 days planned at 215.00 a week = 860.00; invoiced 1075.00
    assert body["lines"][0]["planned"] == "860.00" and body["lines"][0]["actual"] == "1075.00"
    assert body["lines"][0]["variance"] == "215.00" and body["lines"][0]["variance_percent"] == "25.0"
    assert body["total"]["flagged"] is True
    assert fin.get(f"/api/finance/persons/{over_person}/spend", role="clinician").status_code == 403

    bad = [{"reference": "X-1", "line_id": "nope", "kind": "invoice", "period_from": "2026-01-05",
            "period_to": "2026-01-11", "amount": "10.00"},
           {"reference": "X-2", "line_id": over, "kind": "invoice", "period_from": "2026-01-05",
            "period_to": "2026-01-11", "amount": "10.001"},
           {**items[0], "amount": "1.00"}]
    answer = fin.erp.post_actuals(fin.url, fin.token(), bad)
    assert [r["reason"] for r in answer["rejected"]] == ["LINE_UNKNOWN", "AMOUNT_INVALID", "REFERENCE_REUSED"]
    with fin.store.session() as s:
        posted = s.scalars(select(AuditEvent).where(AuditEvent.path == "/api/finance/actuals")).all()
    assert len(posted) == 3 and all(p.user_id == "fin.jones" for p in posted)


def test_a_dropped_csv_is_loaded_once_and_moved_with_a_report(fin: FinanceHub) -> None:
    line, _ = _committed(fin)
    folder = drop_folder(fin.settings)
    folder.mkdir(parents=True)
    rows = ("reference,line_id,kind,period_from,period_to,amount\n"
            f"PAY-1,{line},payment,2026-01-05,2026-01-11,215.00\n"
            f"PAY-2,{line},payment,2026-01-12,2026-01-18,215.00\n"
            "PAY-3,unknown-line,payment,2026-01-12,2026-01-18,1.00\n")
    old = time.time() - 60
    for name in ("actuals-1.csv", "actuals-2-copy.csv"):
        (folder / name).write_text(rows)
        os.utime(folder / name, (old, old))
    (folder / "broken.csv").write_text("ref;amount\n1;2\n")
    os.utime(folder / "broken.csv", (old, old))

    counts = pick_up_actuals(fin.store, fin.settings)
    assert counts == {"files": 3, "failed": 1, "duplicate_files": 1, "accepted": 2, "duplicates": 0, "rejected": 1}
    assert sorted(p.name for p in (folder / "processed").iterdir()) == [
        "actuals-1.csv", "actuals-1.csv.report.txt", "actuals-2-copy.csv", "actuals-2-copy.csv.report.txt"]
    assert "nothing changed" in (folder / "processed" / "actuals-2-copy.csv.report.txt").read_text()
    report = (folder / "processed" / "actuals-1.csv.report.txt").read_text()
    assert "2 accepted" in report and "row 4: LINE_UNKNOWN" in report
    assert "HEADER_INVALID" not in report and "lacks" in (folder / "failed" / "broken.csv.report.txt").read_text()
    assert not list(folder.glob("*.csv"))
    with fin.store.session() as s:
        assert len(s.scalars(select(FinanceActual)).all()) == 2
        files = s.scalars(select(AuditEvent).where(AuditEvent.method == "FILE")).all()
    assert sorted(f.outcome for f in files) == ["invalid", "success", "success"]

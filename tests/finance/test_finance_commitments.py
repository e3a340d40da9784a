"""Approved services become commitment versions, pulled over HTTP and pushed over SOAP (zeep) to the ERP
simulator through the outbox: create, amend, close, reverse; transient faults retried, refusals dead-lettered
and replayed; every version once, in order, across pages and a hub restart."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from finance_link.commitments import derive_commitments
from hub.delivery.operations import DeliveryFilter, list_deliveries, retry_delivery
from hub.store.audit import AuditEvent
from hub.store.delivery import Delivery
from hub.store.finance import FinanceLine
from hub.store.tables import Quarantine
from tests.support.finance import FinanceHub, plan_doc, service_doc


def _feed(fin: FinanceHub, since: str | None = None, limit: int = 100) -> dict:
    params = {"limit": limit} | ({"since": since} if since else {})
    response = fin.get("/api/finance/commitments", **params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_service_approved_amended_ended_and_cancelled_reaches_the_erp_once_per_version(fin: FinanceHub) -> None:
    council = fin.council
    council.person("ann", 1)
    council.ingest("plans", "plan-1", plan_doc("ann"))
    council.ingest("services", "svc-1", service_doc("ann", "plan-1"))
    assert derive_commitments(fin.store, fin.settings).created == 1

    first = _feed(fin)["items"]
    assert len(first) == 1
    line = first[0]
    assert line["action"] == "create" and line["version"] == 1
    assert line["weekly_amount"] == "215.00" and line["unit_cost"] == "21.50" and line["units_per_week"] == "10.00"
    assert line["client_contribution_weekly"] == "25.00" and line["net_weekly_amount"] == "190.00"
    assert line["total_amount"] == "11180.00" and line["total_basis"] == "annual"
    assert line["vat_treatment"] == "exempt" and line["vat_weekly_amount"] == "0.00"
    assert (line["supplier_number"], line["supplier_site"]) == ("700001", "02")
    assert line["cost_centre"] == "ASC110" and line["subjective"] == "52101" and line["cost_period"] == "hourly"
    assert "Hale" not in str(line) and "Ann" not in str(line)

    fin.loop()
    fin.drain(lambda: fin.erp.stats()["applied"] == 1)

    # amend: 12 hours a week -> a new version with the delta and the reason
    council.ingest("services", "svc-1", service_doc("ann", "plan-1", units_per_week="12"))
    # end: the service ends on 29 March -> the line closes with a dated total
    council.ingest("services", "svc-1", service_doc("ann", "plan-1", units_per_week="12", end="2026-03-29",
                                                    status="ended"))
    # the plan is cancelled -> the line is reversed
    council.ingest("plans", "plan-1", plan_doc("ann", status="cancelled"))
    result = derive_commitments(fin.store, fin.settings)
    assert (result.amended, result.closed, result.reversed) == (1, 1, 1)
    assert derive_commitments(fin.store, fin.settings).versions == 0  # nothing read twice

    items = _feed(fin)["items"]
    assert [(i["version"], i["action"]) for i in items] == [(1, "create"), (2, "amend"), (3, "close"), (4, "reverse")]
    amend, close, reverse = items[1:]
    assert amend["weekly_amount"] == "258.00" and amend["delta_weekly_amount"] == "43.00"
    assert "units_per_week 10.00 -> 12.00" in amend["reason"] and "weekly_amount 215.00 -> 258.00" in amend["reason"]
    # 5 Jan to 29 Mar inclusive: 84 days = 12 weeks of 258.00
    assert close["end"] == "2026-03-29" and close["total_amount"] == "3096.00" and close["total_basis"] == "dated"
    assert Decimal(close["delta_total_amount"]) == Decimal("3096.00") - Decimal("13416.00")
    assert reverse["weekly_amount"] == "0.00" and reverse["total_amount"] == "0.00"
    assert reverse["delta_total_amount"] == "-3096.00" and reverse["reason"] == "care plan cancelled"

    fin.drain(lambda: fin.erp.stats()["applied"] == 4)
    stats = fin.erp.stats()
    assert stats["applied_twice"] == 0 and stats["duplicates"] == 0 and stats["faults"] == {}
    assert fin.erp.commitments[line["line_id"]].status == "reversed"
    with fin.store.session() as s:
        assert s.get(FinanceLine, line["line_id"]).status == "reversed"  # type: ignore[union-attr]
        pushes = s.scalars(select(AuditEvent).where(AuditEvent.method == "SOAP")).all()
        pulls = s.scalars(select(AuditEvent).where(AuditEvent.path == "/api/finance/commitments")).all()
    assert len(pushes) == 4 and {p.outcome for p in pushes} == {"success"}
    assert pulls and all(p.role == "finance_officer" for p in pulls)


def test_an_approved_service_without_approver_is_quarantined_and_never_committed(fin: FinanceHub) -> None:
    fin.council.person("bea", 2)
    fin.council.ingest("plans", "plan-2", plan_doc("bea"))
    result = fin.council.ingest("services", "svc-2", service_doc("bea", "plan-2", approved_by=None))
    assert result.quarantined == 1
    with fin.store.session() as s:
        reasons = s.scalars(select(Quarantine.reason)).all()
    assert reasons == ["APPROVAL_INCOMPLETE"]
    assert derive_commitments(fin.store, fin.settings).versions == 0


def test_drafts_are_never_sent_and_only_finance_may_pull(fin: FinanceHub) -> None:
    fin.council.person("cal", 3)
    fin.council.ingest("plans", "plan-3", plan_doc("cal", status="awaiting_approval"))
    fin.council.ingest("services", "svc-3", service_doc("cal", "plan-3", status="awaiting_approval"))
    assert derive_commitments(fin.store, fin.settings).versions == 0
    assert _feed(fin)["items"] == []
    assert fin.get("/api/finance/commitments", role="social_worker").status_code == 403
    assert fin.get("/api/finance/commitments", since="garbage").status_code == 422


def test_the_feed_gives_every_version_once_in_order_across_pages_and_a_restart(fin: FinanceHub) -> None:
    council = fin.council
    for n in range(4):
        council.person(f"p{n}", 10 + n)
        council.ingest("plans", f"plan-p{n}", plan_doc(f"p{n}"))
        council.ingest("services", f"svc-p{n}", service_doc(f"p{n}", f"plan-p{n}"))
    derive_commitments(fin.store, fin.settings)
    council.ingest("services", "svc-p1", service_doc("p1", "plan-p1", unit_cost="22.00"))
    derive_commitments(fin.store, fin.settings)

    seen: list[tuple[str, int]] = []
    page = _feed(fin, limit=2)
    seen += [(i["line_id"], i["version"]) for i in page["items"]]
    cursor = page["next"]

    # the hub restarts: a new application on the same store answers the kept cursor
    from fastapi.testclient import TestClient

    from hub.api.app import create_app

    with TestClient(create_app(fin.settings, fin.store)) as again:
        headers = {"Authorization": f"Bearer {fin.token()}"}
        while True:
            answer = again.get("/api/finance/commitments", params={"since": cursor, "limit": 2}, headers=headers)
            assert answer.status_code == 200
            body = answer.json()
            if not body["items"]:
                assert body["next"] == cursor
                break
            seen += [(i["line_id"], i["version"]) for i in body["items"]]
            cursor = body["next"]
    assert len(seen) == 5 and len(set(seen)) == 5
    assert [v for _, v in seen] == [1, 1, 1, 1, 2]


def test_a_transient_fault_is_retried_and_a_refusal_is_dead_lettered_then_replayed_once(fin: FinanceHub) -> None:
    council = fin.council
    council.person("dev", 4)
    council.ingest("plans", "plan-4", plan_doc("dev"))
    council.ingest("services", "svc-4", service_doc("dev", "plan-4"))
    council.person("eve", 5)
    council.ingest("plans", "plan-5", plan_doc("eve"))
    council.ingest("services", "svc-5", service_doc("eve", "plan-5", provider_id="P0002"))
    derive_commitments(fin.store, fin.settings)

    fin.erp.fail_transiently(1)            # the first request: HTTP 503
    fin.erp.forget_supplier("700002", "03")  # eve's provider is not on the ERP's supplier master
    fin.loop()
    fin.drain(lambda: fin.erp.stats()["applied"] == 1 and _dead(fin) == 1)
    with fin.store.session() as s:
        dead = list_deliveries(s, DeliveryFilter(status="dead", target="finance"))
    assert len(dead) == 1
    assert "UnknownSupplierFault: supplier 700002 site 03 is not on the supplier master" in dead[0]["last_error"]
    assert fin.erp.stats()["faults"]["http_503"] == 1

    fin.erp.add_supplier("700002", "03")   # the fix, in the finance system
    with fin.store.session() as s:
        retry_delivery(s, dead[0]["id"], "fin.jones")
    fin.drain(lambda: fin.erp.stats()["applied"] == 2)
    for _ in range(5):
        fin.loops[-1].run_once()
    stats = fin.erp.stats()
    assert stats["applied"] == 2 and stats["applied_twice"] == 0
    with fin.store.session() as s:
        faults = s.scalars(select(AuditEvent).where(AuditEvent.method == "SOAP",
                                                    AuditEvent.outcome != "success")).all()
    assert {f.outcome for f in faults} == {"error", "invalid"}


def test_a_version_pushed_twice_is_recognised_by_its_key(fin: FinanceHub) -> None:
    import orjson

    from finance_link.soap import FinanceTarget
    from hub.contract import ChangeEvent
    from hub.delivery.config import TargetSettings
    from hub.store.tables import OutboxEvent

    fin.council.person("fay", 6)
    fin.council.ingest("plans", "plan-6", plan_doc("fay"))
    fin.council.ingest("services", "svc-6", service_doc("fay", "plan-6"))
    derive_commitments(fin.store, fin.settings)
    with fin.store.session() as s:
        row = s.scalars(select(OutboxEvent).where(OutboxEvent.entity_type == "CommitmentLine")).one()
        event = ChangeEvent(row.event_id, row.entity_type, row.entity_id, row.person_id, row.kind, row.version,
                            orjson.loads(row.payload), row.created_at)
    target = FinanceTarget("finance", TargetSettings(adapter="x", options={"url": fin.erp.url}))
    first, second = target.push([event]), target.push([event])
    target.close()
    assert first[0].accepted and second[0].accepted and second[0].receipt.endswith("(duplicate)")
    assert fin.erp.stats()["applied"] == 1 and fin.erp.stats()["duplicates"] == 1


def _dead(fin: FinanceHub) -> int:
    with fin.store.session() as s:
        return len(s.scalars(select(Delivery.id).where(Delivery.status == "dead")).all())


def test_an_ended_plan_closes_its_open_lines_at_its_end_and_a_rejected_service_is_reversed(fin: FinanceHub) -> None:
    council = fin.council
    council.person("hal", 8)
    council.ingest("plans", "plan-8", plan_doc("hal"))
    council.ingest("services", "svc-8a", service_doc("hal", "plan-8"))
    council.ingest("services", "svc-8b", service_doc("hal", "plan-8", service_type="day_care", unit="day",
                                                      unit_cost="48.00", units_per_week="2", provider_id="P0004"))
    derive_commitments(fin.store, fin.settings)
    council.ingest("plans", "plan-8", plan_doc("hal", status="ended", end="2026-02-01"))
    council.ingest("services", "svc-8b", service_doc("hal", "plan-8", service_type="day_care", unit="day",
                                                      unit_cost="48.00", units_per_week="2", provider_id="P0004",
                                                      status="rejected"))
    result = derive_commitments(fin.store, fin.settings)
    assert (result.closed, result.reversed) == (2, 1)
    items = _feed(fin)["items"]
    closes = [i for i in items if i["action"] == "close"]
    assert {c["end"] for c in closes} == {"2026-02-01"}
    assert all(c["reason"].startswith("care plan ended") for c in closes)
    home = next(c for c in closes if c["service_type"] == "home_care")
    assert home["total_amount"] == "860.00" and home["total_basis"] == "dated"  # 5 Jan to 1 Feb: 4 weeks of 215.00
    day = [i for i in items if i["service_type"] == "day_care"]
    assert [d["action"] for d in day] == ["create", "close", "reverse"] and day[-1]["reason"] == "service rejected"
    assert day[0]["cost_period"] == "daily" and day[0]["weekly_amount"] == "96.00"

    # a later change to a service of the ended plan keeps the plan's end: the line is not reopened
    council.ingest("services", "svc-8a", service_doc("hal", "plan-8", unit_cost="22.00"))
    assert derive_commitments(fin.store, fin.settings).amended == 1
    last = _feed(fin)["items"][-1]
    assert last["action"] == "amend" and last["end"] == "2026-02-01" and last["total_amount"] == "880.00"

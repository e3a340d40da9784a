"""The ERP simulator's other modes through the hub's zeep client: a closed period and an invalid cost centre are
refusals with the ERP's reason (dead letters), a slow answer past the timeout is transient (retried)."""

from __future__ import annotations

from datetime import date

import pytest

from finance_link.commitments import derive_commitments
from finance_link.feed import read_page
from finance_link.soap import FinanceClient, FinanceRefused, FinanceUnavailable
from hub.delivery.operations import DeliveryFilter, list_deliveries
from tests.support.finance import FinanceHub, plan_doc, service_doc
from tests.support.waiting import wait_for


def _one_version(fin: FinanceHub) -> dict:
    fin.council.person("gil", 7)
    fin.council.ingest("plans", "plan-7", plan_doc("gil"))
    fin.council.ingest("services", "svc-7", service_doc("gil", "plan-7"))
    derive_commitments(fin.store, fin.settings)
    with fin.store.session() as s:
        return read_page(s, None, 10).items[0]


def test_a_closed_period_is_a_dead_letter_with_the_erps_reason(fin: FinanceHub) -> None:
    _one_version(fin)
    fin.erp.close_period(date(2026, 4, 1))
    fin.loop()
    fin.drain(lambda: bool(_dead(fin)))
    assert "ClosedPeriodFault: the period of 2026-01-05 is closed (open from 2026-04-01)" in _dead(fin)[0]["last_error"]
    assert fin.erp.stats()["applied"] == 0


def test_an_invalid_cost_centre_is_refused_and_a_slow_erp_is_transient(fin: FinanceHub) -> None:
    item = _one_version(fin)
    client = FinanceClient(fin.erp.url, timeout=0.5)
    try:
        fin.erp.forget_cost_centre(item["cost_centre"])
        with pytest.raises(FinanceRefused, match="InvalidCostCentreFault: cost centre ASC110 is not open"):
            client.send(item)
        fin.erp.cost_centres.add(item["cost_centre"])
        fin.erp.slow(1.5)
        with pytest.raises(FinanceUnavailable, match="unreachable: ReadTimeout"):
            client.send(item)
        fin.erp.slow(0)
        # the ERP finishes the request the client gave up on
        wait_for(lambda: fin.erp.stats()["applied"] > 0, "the ERP to apply the slow request", timeout=10, every=0.05)
        number, duplicate = client.send(item)  # the slow request was applied after all: recognised by its key
        assert duplicate and number.startswith("CMT")
    finally:
        client.close()
    assert fin.erp.stats()["applied"] == 1 and fin.erp.stats()["applied_twice"] == 0


def _dead(fin: FinanceHub) -> list[dict]:
    with fin.store.session() as s:
        return list_deliveries(s, DeliveryFilter(status="dead", target="finance"))


def test_a_provider_without_an_erp_supplier_is_a_dead_letter_saying_what_to_add(fin: FinanceHub) -> None:
    fin.council.person("ida", 8)
    fin.council.ingest("plans", "plan-8", plan_doc("ida"))
    fin.council.ingest("services", "svc-8", service_doc("ida", "plan-8", provider_id="P9999"))
    derive_commitments(fin.store, fin.settings)
    fin.loop()
    fin.drain(lambda: bool(_dead(fin)))
    error = _dead(fin)[0]["last_error"]
    assert "provider P9999 has no ERP supplier number and site" in error and "config/finance.toml" in error
    assert fin.erp.stats()["requests"] == 0  # nothing the ERP could accept was sent

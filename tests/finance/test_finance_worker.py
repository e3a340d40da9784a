"""`carehub worker` runs the finance link as configured: the scheduler's derive job makes the versions, the
delivery loop pushes them by SOAP to the ERP simulator, the actuals job loads the CSV the ERP drops."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from finance_link.actuals import drop_folder
from tests.support.delivery import start_worker, write_toml
from tests.support.finance import FinanceHub, plan_doc, service_doc
from tests.support.waiting import wait_for


def test_the_worker_derives_pushes_and_loads_actuals(fin: FinanceHub, tmp_path: Path) -> None:
    for n in range(3):
        fin.council.person(f"w{n}", 80 + n)
        fin.council.ingest("plans", f"plan-w{n}", plan_doc(f"w{n}"))
        fin.council.ingest("services", f"svc-w{n}", service_doc(f"w{n}", f"plan-w{n}"))
    subscriptions = {
        "targets": {"finance": {
            "adapter": "finance_link.soap:FinanceTarget", "batch_size": 50, "timeout_seconds": 5,
            "options": {"url": fin.erp.url, "audit_store": "{database_url}"},
            "retry": {"max_attempts": 20, "base_seconds": 0.1, "max_seconds": 0.5}}},
        "subscriptions": [{"target": "finance", "entity_types": ["CommitmentLine"]}],
    }
    schedules = {"jobs": {
        "finance_derive": {"call": "finance_link.jobs:derive", "every_seconds": 1},
        "finance_actuals_pickup": {"call": "finance_link.jobs:pick_up", "every_seconds": 1},
    }}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}
    env.update({
        "CAREHUB_DATABASE_URL": fin.store.url, "CAREHUB_DATA_DIR": str(fin.settings.data_dir),
        "CAREHUB_SUBSCRIPTIONS_FILE": str(write_toml(tmp_path / "subscriptions.toml", subscriptions)),
        "CAREHUB_SCHEDULES_FILE": str(write_toml(tmp_path / "schedules.toml", schedules)),
        "CAREHUB_SOURCES": "{}", "CAREHUB_LOG_LEVEL": "WARNING", "CAREHUB_WORKER__POLL_SECONDS": "0.05",
        "CAREHUB_FINANCE__ACTUALS_MIN_AGE_SECONDS": "0",
    })
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        wait_for(lambda: fin.erp.stats()["applied"] == 3, "three commitments at the ERP")
        fin.council.ingest("services", "svc-w1", service_doc("w1", "plan-w1", units_per_week="14"))
        wait_for(lambda: fin.erp.stats()["applied"] == 4, "the amendment at the ERP")
        folder = drop_folder(fin.settings)
        fin.erp.drop_actuals(folder, "erp-1.csv", fin.erp.invoices(2, date(2026, 1, 18)))
        wait_for(lambda: (folder / "processed" / "erp-1.csv.report.txt").exists(), "the actuals file loaded")
        assert "3 accepted" in (folder / "processed" / "erp-1.csv.report.txt").read_text()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert fin.erp.stats()["applied_twice"] == 0 and fin.erp.stats()["duplicates"] == 0

"""The demo's finance traffic: the demo's approved services become commitments, pushed by SOAP to the ERP
simulator by a delivery loop, and the ERP's invoices come back as a dropped CSV.

`carehub demo` calls :func:`settle_finance` after it has synced (``[demo] after_sync``). The simulator runs on
a free loopback port and keeps running while the demo serves (its address is in the summary). To show the
fault paths, the ERP is told one supplier is not on its master (those lines become dead letters, replayable
with `carehub deliveries retry`) and answers its first requests with HTTP 503 (retried with backoff).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from finance_link.actuals import drop_folder, pick_up_actuals
from finance_link.commitments import derive_commitments
from finance_link.mapping import load_mapping
from finance_link.simulator import FinanceSimulator
from hub.delivery.config import DeliveryConfig, RetryPolicy, load_delivery_config
from hub.delivery.worker import DeliveryLoop, ensure_circuits
from hub.settings import Settings
from hub.store.db import Store
from hub.store.delivery import Delivery
from hub.store.finance import FinanceVariance, FinanceVersion

TARGET = "finance"


def demo_delivery(settings: Settings, url: str) -> DeliveryConfig:
    """The configured finance target, switched on, pointed at the simulator, with the demo's quick retries."""
    configured = load_delivery_config(settings)
    target = configured.targets[TARGET].model_copy(update={
        "enabled": True, "options": {**configured.targets[TARGET].options, "url": url},
        "retry": RetryPolicy(max_attempts=5, base_seconds=0.2, max_seconds=1.0)})
    return DeliveryConfig(targets={TARGET: target},
                          subscriptions=[s for s in configured.subscriptions if s.target == TARGET])


def settle_finance(settings: Settings, timeout: float = 180) -> str:
    """Derive, push, take invoices back; a one-line summary of what was sent, refused and paid."""
    store = Store(settings.database_url)
    try:
        derived = derive_commitments(store, settings)
        with store.session() as session:
            versions = int(session.scalar(select(func.count()).select_from(FinanceVersion)) or 0)
            providers = Counter(session.scalars(select(FinanceVersion.supplier_number)))
        if not versions:
            return "finance: no approved services, nothing committed"
        erp = FinanceSimulator(mapping=load_mapping(settings)).start()
        mapping = load_mapping(settings)
        rare = min((n for n in providers.items() if n[0]), key=lambda kv: (kv[1], kv[0]), default=None)
        refused = next(((s.number, s.site) for s in mapping.suppliers.values() if rare and s.number == rare[0]), None)
        if refused:
            erp.forget_supplier(*refused)
        erp.fail_transiently(3)
        config = demo_delivery(settings, erp.url)
        ensure_circuits(store, config.enabled_targets())
        loop = DeliveryLoop(store, settings, config, "demo-worker", threading.Event())
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                handled = loop.run_once()
                with store.session() as session:
                    rows = dict(session.execute(select(Delivery.status, func.count()).where(
                        Delivery.target == TARGET).group_by(Delivery.status)).all())
                dead = rows.get("dead", 0)
                # done when every version is committed, refused, or held behind a refused one of its person
                if not rows.get("failed") and erp.stats()["applied"] + dead + rows.get("pending", 0) >= versions:
                    break
                if not handled:
                    time.sleep(0.05)
        finally:
            loop.close()
        stats = erp.stats()
        invoices = erp.invoices(4, date.today(), overspend={
            line: Decimal("1.2") for i, line in enumerate(sorted(erp.commitments)) if i % 9 == 0})
        erp.drop_actuals(drop_folder(settings), f"erp-invoices-{date.today():%Y%m%d}.csv", invoices)
        picked = pick_up_actuals(store, settings.model_copy(update={
            "finance": settings.finance.model_copy(update={"actuals_min_age_seconds": 0})}))
        with store.session() as session:
            flagged = int(session.scalar(select(func.count()).select_from(FinanceVariance)) or 0)
        faults = ", ".join(f"{name} {count}" for name, count in sorted(stats["faults"].items())) or "none"
        return (f"finance: {derived.versions} commitment versions derived ({derived.created} created, "
                f"{derived.amended} amended, {derived.closed} closed, {derived.reversed} reversed); "
                f"sent by SOAP to the ERP simulator at {erp.url}: {stats['applied']} committed, "
                f"{stats['applied_twice']} twice; faults: {faults} ({dead} dead letters to replay, "
                f"{rows.get('pending', 0)} held behind them); "
                f"actuals back: {picked['files']} file, {picked['accepted']} invoices, {flagged} lines over the "
                f"variance threshold")
    finally:
        store.dispose()

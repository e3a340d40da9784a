"""Transitions in ``carehub demo``: the young people the scan finds, a few transitions started for real.

Called after the demo has synced the children's and adults' case systems (``[demo] after_sync``; the demo
starts both simulators with ``carehub simulate`` and switches their sources on, ``[demo] simulators`` and
``enable_sources``). Starts transitions for the first young people due - one held for want of consent, the
others referred - delivers the referrals to the adults' system through the outbox and the ``adults_case``
target (switched on for this pass), follows them once, and says what it did in one line for the summary.
"""

from __future__ import annotations

import threading
import time
from datetime import date

from hub.delivery.config import load_delivery_config
from hub.delivery.worker import DeliveryLoop, ensure_circuits
from hub.errors import HubError
from hub.registry import load_object
from hub.settings import Settings
from hub.status import delivery_status
from hub.store.db import Store
from hub.transitions import move
from hub.transitions.due import scan

# How many transitions the demo starts (the first is held: the young person has not consented).
STARTED = 6


def start_transitions(settings: Settings) -> str:
    """Start a few transitions for young people due, deliver and follow their referrals; a summary line."""
    today = date.today()
    store = Store(settings.database_url)
    try:
        with store.session() as session:
            entries = scan(session, today, settings.transitions)
            chosen = [e for e in entries if e.transition_id is None][:STARTED]
            held = referred = 0
            for n, entry in enumerate(chosen):
                consent = n != 0
                move.start(session, move.StartRequest(
                    person_id=entry.person_id, likely_needs_after_18=True, significant_benefit=True,
                    significant_benefit_reason="Demo: time to plan support before 18",
                    consent_route="consent", consent_given=consent, has_capacity=True), "demo", today)
                held, referred = held + (not consent), referred + consent
        delivered = _deliver(store, settings, referred)
        followed = _follow(store, settings, today)
        overdue = sum(1 for e in entries if e.overdue)
        return (f"transitions: {len(entries)} young people due ({overdue} overdue); started {len(chosen)}: "
                f"{held} held (no consent), {referred} referred, {delivered} delivered to the adults' system, "
                f"{followed} acknowledged items")
    finally:
        store.dispose()


def _deliver(store: Store, settings: Settings, wanted: int) -> int:
    """Run the adults' intake target until ``wanted`` referrals are delivered (or 60 s pass)."""
    config = load_delivery_config(settings)
    target = settings.transitions.adults_target
    if target not in config.targets or not wanted:
        return 0
    config.targets[target].enabled = True
    ensure_circuits(store, [target])
    loop = DeliveryLoop(store, settings, config, "demo-transitions", threading.Event())
    delivered = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with store.session() as session:
                delivered = int(delivery_status(session).get(target, {}).get("delivered", 0))
            if delivered >= wanted:
                break
            if loop.run_once() == 0:
                time.sleep(0.1)
    finally:
        loop.close()
    return delivered


def _follow(store: Store, settings: Settings, today: date) -> int:
    """Read each referral back from the adults' system once; how many items it acknowledged."""
    options = dict(settings.transitions.adults_system)
    client_path = options.pop("client", None)
    if not client_path:
        return 0
    client = load_object(str(client_path))(options)
    try:
        with store.session() as session:
            return int(move.follow(session, client, today).get("acknowledged", 0))
    except HubError:
        return 0
    finally:
        client.close()

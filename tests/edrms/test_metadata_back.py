"""Linked documents' properties flow back to the EDRMS through the outbox and delivery, once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date

import orjson
import pytest
from sqlalchemy import select

from edrms.target import EdrmsTarget
from hub.contract import ChangeEvent
from hub.delivery.config import DeliveryConfig, TargetSettings
from hub.delivery.worker import DeliveryLoop, ensure_circuits
from hub.settings import reload_settings
from hub.store.documents import EdrmsDocument
from hub.store.tables import OutboxEvent
from tests.support.edrms import PASSWORD, USER, EdrmsHub


@pytest.fixture
def edrms_env(edrms_hub: EdrmsHub, monkeypatch: pytest.MonkeyPatch) -> Iterator[EdrmsHub]:
    """The hub's settings name the simulator (the target reads them from the one settings object)."""
    for key, value in {"ENABLED": "true", "SERVICE_URL": edrms_hub.settings.edrms.service_url, "USER": USER,
                       "PASSWORD": PASSWORD}.items():
        monkeypatch.setenv(f"CAREHUB_EDRMS__{key}", value)
    reload_settings()
    yield edrms_hub
    monkeypatch.undo()
    reload_settings()


def deliver_all(hub: EdrmsHub) -> int:
    """Run one delivery loop on the hub's store until the edrms target has nothing left."""
    config = DeliveryConfig.model_validate({
        "targets": {"edrms": {"adapter": "edrms.target:EdrmsTarget", "batch_size": 10, "ordering": "entity"}},
        "subscriptions": [{"target": "edrms", "entity_types": ["DocumentLink"], "kinds": ["*"]}]})
    ensure_circuits(hub.store, ["edrms"])
    loop = DeliveryLoop(hub.store, hub.settings, config, "edrms-test", threading.Event())
    try:
        total, idle, deadline = 0, 0, time.monotonic() + 60
        while idle < 3 and time.monotonic() < deadline:
            handled = loop.run_once()
            total += handled
            idle = idle + 1 if handled == 0 else 0
        return total
    finally:
        loop.close()


def test_linking_writes_person_case_class_and_review_date_back_once(edrms_env: EdrmsHub) -> None:
    hub = edrms_env
    hub.pull()
    updates_before = hub.repo.updates
    delivered = deliver_all(hub)
    assert delivered >= 8
    ann = hub.repo.get(hub.docs["ann_case"].object_id).properties
    assert ann["sc:personId"] == hub.people["ann"] and ann["sc:caseId"] == hub.episodes["ann"][0]
    assert ann["sc:recordClass"] == "adults" and ann["sc:legalHold"] is False
    tom = hub.repo.get(hub.docs["tom_id"].object_id).properties
    assert tom["sc:retentionDate"].date() == date(2087, 4, 3)  # to his 75th birthday
    assert tom["sc:legalHold"] is True  # the IICSA moratorium covers children's records
    wrong = hub.repo.get(hub.docs["wrong"].object_id).properties
    assert "sc:personId" not in wrong and wrong["sc:clientId"] == "X9999999"  # orphans are left alone
    written = hub.repo.updates - updates_before
    assert written == 4  # the four linked documents, each once
    # the write-back changed the documents: the next pull reads them and changes nothing in the hub
    with hub.store.session() as s:
        events = len(s.scalars(select(OutboxEvent.id)).all())
    again = hub.pull()
    assert again.changed == 4 and again.linked == 4
    with hub.store.session() as s:
        assert len(s.scalars(select(OutboxEvent.id)).all()) == events
    assert deliver_all(hub) == 0 and hub.repo.updates == updates_before + 4


def test_a_retried_push_writes_nothing_twice(edrms_env: EdrmsHub) -> None:
    hub = edrms_env
    hub.pull()
    with hub.store.session() as s:
        row = s.scalars(select(OutboxEvent).where(OutboxEvent.entity_type == "DocumentLink",
                                                  OutboxEvent.source == "edrms", OutboxEvent.person_id.is_not(None))
                        .order_by(OutboxEvent.id)).first()
        assert row is not None
        event = ChangeEvent(row.event_id, row.entity_type, row.entity_id, row.person_id, row.kind, row.version,
                            orjson.loads(row.payload), row.created_at, source=row.source)
    target = EdrmsTarget("edrms", TargetSettings(adapter="edrms.target:EdrmsTarget"))
    try:
        first = target.push([event])
        count = hub.repo.updates
        second = target.push([event])  # the answer to the first was lost: delivery tries again
    finally:
        target.close()
    assert first[0].accepted and second[0].accepted and second[0].receipt == "unchanged"
    assert hub.repo.updates == count


def test_a_conflicting_edit_is_reread_and_the_write_retried(edrms_env: EdrmsHub) -> None:
    hub = edrms_env
    hub.pull()
    hub.repo.interleave_edits = 1  # someone edits the document between the hub's read and its write
    deliver_all(hub)
    ann = hub.repo.get(hub.docs["ann_nhs"].object_id).properties
    assert ann["sc:personId"] == hub.people["ann"]
    assert hub.repo.conflicts == 1
    with hub.store.session() as s:
        assert s.scalar(select(EdrmsDocument.status).where(
            EdrmsDocument.object_id == hub.docs["ann_nhs"].object_id)) == "linked"

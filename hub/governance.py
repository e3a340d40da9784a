"""Consent decisions and seals set by hub administrators, written through the pipeline.

An administrator's change is a source record of the source ``hub_admin`` (one
per person and consent scope, one per person and seal kind), so it is kept raw,
validated, merged with provenance and announced in the outbox like any other.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.access.decision import Access, no_person
from hub.access.policy import Policy
from hub.access.rules import Caller, require_write
from hub.audit import AuditContext
from hub.contract import MappedRecord, SourceRecord
from hub.errors import QuarantineError
from hub.pipeline import Pipeline, entity_id_for
from hub.registry import build_pipeline
from hub.settings import Settings
from hub.store.db import Store
from hub.store.tables import Entity, utcnow

SOURCE = "hub_admin"
# The CIN census reason an episode closed with adoption, and the team an adoption seal names.
ADOPTED = "RC1"
ADOPTION_TEAM = "ADOPT"
STREAM_TYPES = {"consents": "Consent", "seals": "Seal"}


def map_admin_record(record: SourceRecord) -> MappedRecord:
    """The hub_admin mapper: the payload is already a canonical document of the stream's type."""
    return MappedRecord(STREAM_TYPES[record.stream], dict(record.payload))


def _write(session: Session, pipeline: Pipeline, policy: Policy, caller: Caller, audit: AuditContext,
           person_id: str, stream: str, key: str, document: dict[str, Any]) -> str:
    entity_type = STREAM_TYPES[stream]
    audit.action = "write"
    audit.touch_person(person_id)
    require_write(policy, caller, entity_type)
    # The person must exist and the administrator must be able to see them (a seal can hide them from admins
    # too): otherwise the same 404, and no orphan row.
    access = Access(session, policy, caller, audit)
    access.open(person_id)
    if access.person(person_id).merged_into:  # a registration merged away is no longer a person to write to
        audit.deny("merged record", "not_found")
        raise no_person(person_id)
    source_id = f"{person_id}/{key}"
    record = SourceRecord(stream, source_id, {**document, "person_id": person_id},
                          modified=utcnow().isoformat())
    result = pipeline.ingest(session, SOURCE, [record], map_admin_record)
    if result.quarantined:
        reason = next(iter(result.reasons))
        raise QuarantineError(reason, f"the {entity_type.lower()} was refused: {reason}")
    entity_id = entity_id_for(SOURCE, stream, source_id)
    audit.touch(entity_type, entity_id)
    return entity_id


def seal_adopted(settings: Settings) -> str:
    """Seal the record of every child whose episode closed with adoption (CIN census reason RC1), naming the
    adoption team: adoption records are sealed. A one-line summary (``carehub demo`` runs it after its sync)."""
    store = Store(settings.database_url)
    try:
        with store.session() as session:
            adopted = sorted({pid for pid, document in session.execute(
                select(Entity.person_id, Entity.document).where(Entity.entity_type == "Episode"))
                if pid and orjson.loads(document).get("closure_reason") == ADOPTED})
            records = [SourceRecord("seals", f"{pid}/adoption", {
                "person_id": pid, "kind": "adoption", "allowed_roles": [], "allowed_teams": [ADOPTION_TEAM],
                "since": date.today().isoformat(), "reason": "adoption order"}, modified=utcnow().isoformat())
                for pid in adopted]
            result = build_pipeline(settings, store).ingest(session, SOURCE, records, map_admin_record)
    finally:
        store.dispose()
    return f"adoption seals: {result.accepted} records sealed for the team {ADOPTION_TEAM}"


def set_consent(session: Session, pipeline: Pipeline, policy: Policy, caller: Caller, audit: AuditContext,
                person_id: str, scope: str, decision: bool, reason: str | None) -> str:
    """Record the person's decision for ``scope`` (replacing the hub's earlier one); returns the Consent id."""
    document = {"scope": scope, "decision": decision, "recorded": date.today().isoformat(), "reason": reason,
                "recorded_by": caller.user_id}
    return _write(session, pipeline, policy, caller, audit, person_id, "consents", scope,
                  {k: v for k, v in document.items() if v is not None})


def set_seal(session: Session, pipeline: Pipeline, policy: Policy, caller: Caller, audit: AuditContext,
             person_id: str, kind: str, allowed_roles: list[str], allowed_teams: list[str],
             reason: str | None) -> str:
    """Seal the person's record (or change the seal of this kind); returns the Seal id."""
    document = {"kind": kind, "allowed_roles": allowed_roles, "allowed_teams": allowed_teams,
                "since": date.today().isoformat(), "reason": reason}
    return _write(session, pipeline, policy, caller, audit, person_id, "seals", kind,
                  {k: v for k, v in document.items() if v is not None})

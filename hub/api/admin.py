"""Administrative writes to the record: consent decisions and seals (role admin; audited like every call)."""

from __future__ import annotations

from fastapi import APIRouter

from hub.api.deps import AdminUser, AuditDep, PipelineDep, PolicyDep, StoreDep
from hub.api.schemas import ConsentIn, SealIn, WriteResult
from hub.governance import set_consent, set_seal
from hub.record import InvalidQuery

router = APIRouter(prefix="/api/admin/persons", tags=["administration"])


@router.put("/{person_id}/consents", response_model=WriteResult, summary="Record a consent decision")
def put_consent(person_id: str, body: ConsentIn, session: StoreDep, policy: PolicyDep, pipeline: PipelineDep,
                caller: AdminUser, audit: AuditDep) -> WriteResult:
    """Record the person's decision for one scope (e.g. share_with_health = false, with the reason)."""
    entity_id = set_consent(session, pipeline, policy, caller, audit, person_id, body.scope, body.decision,
                            body.reason)
    return WriteResult(id=entity_id, type="Consent", person_id=person_id)


@router.put("/{person_id}/seals", response_model=WriteResult, summary="Seal a record")
def put_seal(person_id: str, body: SealIn, session: StoreDep, policy: PolicyDep, pipeline: PipelineDep,
             caller: AdminUser, audit: AuditDep) -> WriteResult:
    """Seal the record so only the named roles and teams can find or open it."""
    unknown = [r for r in body.allowed_roles if policy.role(r) is None]
    if unknown:
        raise InvalidQuery(f"unknown roles {unknown}")
    entity_id = set_seal(session, pipeline, policy, caller, audit, person_id, body.kind, body.allowed_roles,
                         body.allowed_teams, body.reason)
    return WriteResult(id=entity_id, type="Seal", person_id=person_id)

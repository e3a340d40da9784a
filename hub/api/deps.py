"""The API's dependencies, as ``Annotated`` aliases routes declare: the store session, the caller, the audit.

``CurrentUser`` authenticates the bearer token (401 without a good one), picks
the role and purpose (headers ``X-Role``, ``X-Purpose``), reads a break-glass
reason (``X-Break-Glass``) and writes all of it onto the request's audit
context. ``require_role("admin")`` guards operator routes: ``AdminUser``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from hub.access.policy import Policy
from hub.access.rules import Caller, caller_for
from hub.access.tokens import TokenVerifier
from hub.audit import AuditContext
from hub.errors import Forbidden, HubError, Unauthenticated
from hub.pipeline import Pipeline
from hub.store.db import Store

COOKIE = "carehub_token"
bearer = HTTPBearer(auto_error=False, description="An OAuth2 access token (JWT, RS256) from a trusted issuer.")


def get_store(request: Request) -> Store:
    """The application's store."""
    store: Store = request.app.state.store
    return store


def get_session(request: Request) -> Iterator[Session]:
    """A session in one transaction for the request: committed when the route returns, rolled back on error."""
    with get_store(request).session() as session:
        yield session


def get_policy(request: Request) -> Policy:
    """The role policy loaded at start-up."""
    policy: Policy = request.app.state.policy
    return policy


def get_pipeline(request: Request) -> Pipeline:
    """The ingest pipeline (for writes made through the API)."""
    pipeline: Pipeline = request.app.state.pipeline
    return pipeline


def get_audit(request: Request) -> AuditContext:
    """This request's audit context (the audit middleware made it)."""
    ctx: AuditContext | None = getattr(request.state, "audit", None)
    if ctx is None:
        # A route outside the audited paths asked for the audit: refuse rather than answer unaudited.
        raise HubError("this request is not audited")
    return ctx


# scope="function": the transaction commits when the route returns, before the response (and its audit row)
# leaves, so the client never sees a write that is not committed and the audit never waits on the route's lock.
StoreDep = Annotated[Session, Depends(get_session, scope="function")]
PolicyDep = Annotated[Policy, Depends(get_policy)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
AuditDep = Annotated[AuditContext, Depends(get_audit)]


def authenticate(request: Request, token: str | None, audit: AuditContext, role: str | None,
                 purpose: str | None, break_glass: str | None) -> Caller:
    """Verify ``token`` and build the caller, noting who they are on the audit context."""
    if not token:
        audit.deny("no bearer token")
        raise Unauthenticated("a bearer token is required")
    verifier: TokenVerifier = request.app.state.verifier
    try:
        claims = verifier.verify(token)
    except Unauthenticated as exc:
        audit.deny(exc.message)
        raise
    audit.user_id, audit.issuer, audit.team = claims.subject, claims.issuer, claims.team
    audit.role = role or (claims.roles[0] if claims.roles else None)
    audit.break_glass_reason = None
    try:
        caller = caller_for(claims, get_policy(request), role=role, purpose=purpose, break_glass=break_glass)
    except Forbidden as exc:
        audit.deny(exc.message)
        raise
    audit.role, audit.purpose = caller.role, caller.purpose
    return caller


def current_caller(
    request: Request,
    audit: AuditDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    x_role: Annotated[str | None, Header(description="Act in this one of your token's roles.")] = None,
    x_purpose: Annotated[str | None, Header(description="Why you are asking (policy purposes).")] = None,
    x_break_glass: Annotated[str | None, Header(
        description="Break glass: the reason you must open a record outside your usual access.")] = None,
) -> Caller:
    """The authenticated caller of an API or FHIR request."""
    token = credentials.credentials if credentials and credentials.scheme.lower() == "bearer" else None
    return authenticate(request, token, audit, x_role, x_purpose, x_break_glass)


CurrentUser = Annotated[Caller, Depends(current_caller)]


def require_role(*roles: str) -> Callable[..., Caller]:
    """A dependency admitting only callers acting in one of ``roles`` (403 otherwise)."""

    def check(caller: CurrentUser, audit: AuditDep) -> Caller:
        if caller.role not in roles:
            reason = f"this needs the role {' or '.join(roles)}; you are acting as {caller.role}"
            audit.deny(reason)
            raise Forbidden(reason)
        return caller

    return check


AdminUser = Annotated[Caller, Depends(require_role("admin"))]
AuditorUser = Annotated[Caller, Depends(require_role("auditor"))]

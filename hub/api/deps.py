"""The API's dependencies, as ``Annotated`` aliases routes declare: the store session, the caller, the audit.

``CurrentUser`` authenticates the bearer token (401 without a good one), picks
the role and purpose (headers ``X-Role``, ``X-Purpose``), reads a break-glass
reason (``X-Break-Glass``) and writes all of it onto the request's audit
context; :func:`caller_context` does the same for the hot routes, which call
it themselves, and hands over the audit context, read threads and policy with
the caller.
``require_role("admin")`` guards operator routes: ``AdminUser``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from anyio import CapacityLimiter, to_thread
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hub.access.policy import Policy
from hub.access.rules import Caller, caller_for
from hub.access.tokens import TokenClaims, TokenVerifier
from hub.api.reads import ReadThreads
from hub.audit import AuditContext
from hub.errors import Forbidden, HubError, Unauthenticated
from hub.pipeline import Pipeline
from hub.store.db import Store

COOKIE = "carehub_token"
bearer = HTTPBearer(auto_error=False, description="An OAuth2 access token (JWT, RS256) from a trusted issuer.")


async def get_store(request: Request) -> Store:
    """The application's store."""
    store: Store = request.app.state.store
    return store


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session in one transaction for the request: committed when the route returns, rolled back on error.

    Opening a session touches no connection, so it happens on the event loop;
    only ending a transaction the route began goes to a worker thread.
    """
    store: Store = request.app.state.store
    session = store.sessions()
    try:
        yield session
    except BaseException:
        await to_thread.run_sync(session.close, limiter=_ENDINGS)  # rolls back
        raise
    if session.in_transaction():
        await to_thread.run_sync(_commit_and_close, session, limiter=_ENDINGS)
    else:
        session.close()


# Ending a transaction returns its connection to the pool. It gets threads of its own: were it to queue for
# the routes' thread pool, routes waiting there for a pooled connection could starve the very commits that
# would hand them one.
_ENDINGS = CapacityLimiter(16)


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    finally:
        session.close()


async def get_policy(request: Request) -> Policy:
    """The role policy loaded at start-up."""
    policy: Policy = request.app.state.policy
    return policy


async def get_pipeline(request: Request) -> Pipeline:
    """The ingest pipeline (for writes made through the API)."""
    pipeline: Pipeline = request.app.state.pipeline
    return pipeline


async def get_audit(request: Request) -> AuditContext:
    """This request's audit context (the audit middleware made it)."""
    return audit_of(request)


def audit_of(request: Request) -> AuditContext:
    """This request's audit context; HubError when the request is not audited."""
    ctx: AuditContext | None = request.scope.get("state", {}).get("audit")
    if ctx is None:
        # A route outside the audited paths asked for the audit: refuse rather than answer unaudited.
        raise HubError("this request is not audited")
    return ctx


# scope="function": the transaction commits when the route returns, before the response (and its audit row)
# leaves, so the client never sees a write that is not committed and the audit never waits on the route's lock.
StoreDep = Annotated[Session, Depends(get_session, scope="function")]
StoreRef = Annotated[Store, Depends(get_store)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
AuditDep = Annotated[AuditContext, Depends(get_audit)]


def authenticate(request: Request, token: str | None, audit: AuditContext, role: str | None,
                 purpose: str | None, break_glass: str | None) -> Caller:
    """Verify ``token`` and build the caller, noting who they are on the audit context."""
    return caller_from(request, verify_token(request, token, audit), audit, role, purpose, break_glass)


def verify_token(request: Request, token: str | None, audit: AuditContext) -> TokenClaims:
    """The claims of ``token``; Unauthenticated (noted on the audit) when it is missing or bad."""
    if not token:
        audit.deny("no bearer token")
        raise Unauthenticated("a bearer token is required")
    verifier: TokenVerifier = request.app.state.verifier
    try:
        return verifier.verify(token)
    except Unauthenticated as exc:
        audit.deny(exc.message)
        raise


def caller_from(request: Request, claims: TokenClaims, audit: AuditContext, role: str | None,
                purpose: str | None, break_glass: str | None) -> Caller:
    """The caller verified ``claims`` describe, in the requested role and purpose, noted on the audit."""
    audit.user_id, audit.issuer, audit.team = claims.subject, claims.issuer, claims.team
    audit.role = role or (claims.roles[0] if claims.roles else None)
    audit.break_glass_reason = None
    try:
        caller = caller_for(claims, request.app.state.policy, role=role, purpose=purpose, break_glass=break_glass)
    except Forbidden as exc:
        audit.deny(exc.message)
        raise
    audit.role, audit.purpose = caller.role, caller.purpose
    return caller


# What the headers naming the role, the purpose and a break-glass reason are for (the OpenAPI document says it).
X_ROLE = "Act in this one of your token's roles."
X_PURPOSE = "Why you are asking (policy purposes)."
X_BREAK_GLASS = "Break glass: the reason you must open a record outside your usual access."


async def current_caller(
    request: Request,
    audit: AuditDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    x_role: Annotated[str | None, Header(description=X_ROLE)] = None,
    x_purpose: Annotated[str | None, Header(description=X_PURPOSE)] = None,
    x_break_glass: Annotated[str | None, Header(description=X_BREAK_GLASS)] = None,
) -> Caller:
    """The authenticated caller of an API or FHIR request.

    A token verified before is taken from the verifier's memory on the event
    loop; a new one is checked in a worker thread (its issuer's keys may have to
    be fetched).
    """
    token = credentials.credentials if credentials and credentials.scheme.lower() == "bearer" else None
    return await _caller(request, audit, token, x_role, x_purpose, x_break_glass)


async def _caller(request: Request, audit: AuditContext, token: str | None, role: str | None, purpose: str | None,
                  break_glass: str | None) -> Caller:
    verifier: TokenVerifier = request.app.state.verifier
    claims = verifier.remembered(token) if token else None
    if claims is None:
        claims = await run_in_threadpool(verify_token, request, token, audit)
    return caller_from(request, claims, audit, role, purpose, break_glass)


CurrentUser = Annotated[Caller, Depends(current_caller)]


@dataclass(frozen=True, slots=True)
class CallerContext:
    """What a hot route needs, from one dependency: the caller, the request's audit context, the read threads
    and the policy."""

    caller: Caller
    audit: AuditContext
    reads: ReadThreads
    policy: Policy


async def caller_context(request: Request) -> CallerContext:
    """The caller as :func:`current_caller` makes it, with the audit context, read threads and policy.

    The hot routes call it themselves rather than declaring a dependency: it
    reads ``Authorization`` and the three headers from the request itself, and
    FastAPI solving dependencies cost the busiest routes more CPU than the
    record's own work (six of them on a record open at first; even one, a
    tenth of a record open's time holding the GIL). The routes declare what it
    reads with ``openapi_extra=CALLER_OPENAPI``, so their OpenAPI entries say
    what those of :data:`CurrentUser` routes say.
    """
    audit = audit_of(request)
    headers = request.headers
    scheme, credentials = get_authorization_scheme_param(headers.get("authorization"))
    token = credentials if credentials and scheme.lower() == "bearer" else None
    caller = await _caller(request, audit, token, headers.get("x-role"), headers.get("x-purpose"),
                           headers.get("x-break-glass"))
    state = request.app.state
    return CallerContext(caller, audit, state.reads, state.policy)



def _header(name: str, title: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description,
            "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": title, "description": description}}


# What caller_context reads, declared as FastAPI declares current_caller's bearer scheme and headers.
CALLER_OPENAPI: dict[str, Any] = {
    "security": [{"HTTPBearer": []}],
    "parameters": [_header("x-role", "X-Role", X_ROLE), _header("x-purpose", "X-Purpose", X_PURPOSE),
                   _header("x-break-glass", "X-Break-Glass", X_BREAK_GLASS)],
}


def require_role(*roles: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency admitting only callers acting in one of ``roles`` (403 otherwise)."""

    async def check(caller: CurrentUser, audit: AuditDep) -> Caller:
        if caller.role not in roles:
            reason = f"this needs the role {' or '.join(roles)}; you are acting as {caller.role}"
            audit.deny(reason)
            raise Forbidden(reason)
        return caller

    return check


AdminUser = Annotated[Caller, Depends(require_role("admin"))]
AuditorUser = Annotated[Caller, Depends(require_role("auditor"))]

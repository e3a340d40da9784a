"""The audit middleware: every request to an audited path leaves its row before the answer leaves.

A pure ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware): it puts an
:class:`~hub.audit.AuditContext` on the request state, lets the route run, and
when the response starts hands the row to the audit writer
(:meth:`hub.audit.AuditTrail.record`, a group commit) and waits until it is
committed before the first byte leaves. If the row cannot be written the client
gets a 500 instead of an unaudited answer. A request that fails with an error
nothing handled leaves its row too (status 500, outcome ``error``) before the
server-error handler answers.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.audit import AuditContext, AuditTrail

log = logging.getLogger("carehub.audit")

# Paths that hold no personal data and are not audited.
UNAUDITED_PREFIXES = ("/static/", "/health", "/.well-known/", "/docs", "/redoc", "/openapi.json", "/favicon.ico",
                      "/bench/")


class AuditMiddleware:
    """Writes one audit row per audited request, with the status the client is about to get."""

    def __init__(self, app: ASGIApp, trail: AuditTrail) -> None:
        self.app = app
        self.trail = trail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNAUDITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        ctx = AuditContext(method=scope["method"], path=scope["path"], client_ip=client[0] if client else None)
        scope.setdefault("state", {})["audit"] = ctx
        written = False

        async def send_audited(message: Message) -> None:
            nonlocal written
            if message["type"] == "http.response.start" and not written:
                written = True
                await self.trail.record(ctx, int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_audited)
        except Exception:
            # An error nothing handled: the server-error handler outside answers 500; the row says so first.
            if not written:
                written = True
                try:
                    await self.trail.record(ctx, 500)
                except Exception:  # noqa: BLE001 - the request's own error is the one to raise
                    log.exception("audit row for a failed request could not be written")
            raise

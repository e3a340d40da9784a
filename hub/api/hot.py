"""A direct way in for the two busiest reads: ``GET /api/persons/{id}/record`` and ``.../timeline``.

A record open's own work (the caller, one read transaction, the answer's
bytes) came to about a third of its CPU; FastAPI's way to the route took as
much again: matching the path against every route of the hub, solving the
route's parameters, and the exit stacks and exception wrappers around each
call. This ASGI layer sits inside the audit middleware (so each request still
has its audit context and leaves its row) and sends those two paths straight
to the same route functions FastAPI declares (:mod:`hub.api.persons`), which
still describe them in the OpenAPI document. The routes take nothing but the
person's id from the path, so nothing is left to validate.

A hub error becomes the same problem+json answer the application's handler
gives (:func:`hub.api.problems.hub_error_response`); any other error goes on
up to the server-error handler, as it would from the router. Everything
else, and any other method on these paths, goes through FastAPI as usual.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.api.persons import read_record, read_timeline
from hub.api.problems import hub_error_response
from hub.errors import HubError

PREFIX = "/api/persons/"
ROUTES: dict[str, Callable[[str, Request], Awaitable[Response]]] = {"record": read_record,
                                                                   "timeline": read_timeline}


def hot_route(scope: Scope) -> tuple[Callable[[str, Request], Awaitable[Response]], str] | None:
    """The route function and person id of a ``GET /api/persons/{id}/record|timeline``; None for any other."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return None
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    if not path.startswith(PREFIX):
        return None
    person_id, slash, leaf = path[len(PREFIX):].partition("/")
    route = ROUTES.get(leaf)
    if route is None or not slash or not person_id:
        return None
    return route, person_id


class HotRoutes:
    """Serves the record and timeline reads without the router; passes every other request to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = hot_route(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        route, person_id = found
        request = Request(scope, receive)
        try:
            response = await route(person_id, request)
        except HubError as exc:
            response = hub_error_response(request, exc)
        await response(scope, receive, send)

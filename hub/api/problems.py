"""Errors at the web edge: problem+json (RFC 9457) on /api, OperationOutcome on /fhir, a page elsewhere.

One handler per kind of failure (hub errors, request validation, Starlette's own
404/405), each choosing the dialect by path, so every refusal speaks the
language of the interface it came through and says why without leaking data.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.errors import HubError

log = logging.getLogger("carehub.api")

FHIR_JSON = "application/fhir+json"
ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
               409: "conflict", 422: "invalid", 503: "transient"}
ERROR_TITLES = {400: "Bad request", 401: "Unauthenticated", 403: "Forbidden", 404: "Not found",
                405: "Method not allowed", 409: "Conflict", 422: "Unprocessable request", 500: "Server error"}


def operation_outcome(status: int, diagnostics: str, code: str | None = None) -> dict[str, Any]:
    """A FHIR R4 OperationOutcome for an error ``status``."""
    issue: dict[str, Any] = {"severity": "error" if status < 500 else "fatal",
                             "code": ISSUE_CODES.get(status, "exception"), "diagnostics": diagnostics}
    if code:
        issue["details"] = {"coding": [{"system": "https://carehub.example/errors", "code": code}]}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def _respond(request: Request, status: int, detail: str, code: str, headers: dict[str, str] | None = None
             ) -> Response:
    path = request.url.path
    if path.startswith("/fhir"):
        return JSONResponse(operation_outcome(status, detail, code), status_code=status, media_type=FHIR_JSON,
                            headers=headers)
    if path.startswith("/api") or not _wants_html(request):
        return JSONResponse(
            {"type": f"https://carehub.example/errors/{code}", "title": ERROR_TITLES.get(status, "Error"),
             "status": status, "detail": detail, "code": code},
            status_code=status, media_type="application/problem+json", headers=headers)
    if status == 401:
        return RedirectResponse("/sign-in", status_code=303)
    templates = request.app.state.templates
    return templates.TemplateResponse(request, "error.html", {"status": status, "title": ERROR_TITLES.get(
        status, "Error"), "detail": detail}, status_code=status)


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") or request.method == "POST"


def hub_error_response(request: Request, exc: HubError) -> Response:
    """The answer to a hub error: its status, and why, in the dialect of the path."""
    if exc.http_status >= 500:
        log.error("%s on %s %s: %s", exc.code, request.method, request.url.path, type(exc).__name__)
    audit = request.scope.get("state", {}).get("audit")
    if audit is not None and exc.http_status in (401, 403, 404) and audit.reason is None:
        # Every refusal leaves its reason on the audit row, whichever route raised it.
        audit.deny(exc.message, "not_found" if exc.http_status == 404 else "denied")
    headers = {"WWW-Authenticate": 'Bearer realm="carehub"'} if exc.http_status == 401 else None
    return _respond(request, exc.http_status, exc.message, exc.code, headers)


def install(app: FastAPI) -> None:
    """Register the error handlers on ``app``."""

    @app.exception_handler(HubError)
    async def hub_error(request: Request, exc: HubError) -> Response:
        return hub_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return _respond(request, 422 if not request.url.path.startswith("/fhir") else 400, detail, "CAREHUB-E422")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # A link's router may give a detail of its own shape ({"code", "message"}): the message, never a printout.
        detail, code = exc.detail, f"CAREHUB-E{exc.status_code}"
        if isinstance(detail, dict):
            code = str(detail.get("code") or code)
            detail = detail.get("message")
        if not isinstance(detail, str):
            detail = ERROR_TITLES.get(exc.status_code, "Error")
        return _respond(request, exc.status_code, detail, code)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        # Whatever nothing else handled: a 500 in the dialect of the path, naming no exception and no value.
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return _respond(request, 500, "the hub could not answer this request", "CAREHUB-E500")


__all__ = ["FHIR_JSON", "hub_error_response", "install", "operation_outcome"]

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
PROBLEM_JSON = "application/problem+json"
ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
               406: "not-supported", 409: "conflict", 422: "invalid", 503: "transient"}
ERROR_TITLES = {400: "Bad request", 401: "Unauthenticated", 403: "Forbidden", 404: "Not found",
                405: "Method not allowed", 406: "Not acceptable", 409: "Conflict", 422: "Unprocessable request",
                500: "Server error"}


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
            status_code=status, media_type=PROBLEM_JSON, headers=headers)
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


# -- what the OpenAPI document says about errors -----------------------------------------------------------

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem", "type": "object", "description": "RFC 9457 problem details with the hub's stable code.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "code": {"type": "string", "pattern": "^CAREHUB-E[0-9]+$"}},
}
OUTCOME_SCHEMA: dict[str, Any] = {
    "title": "OperationOutcome", "type": "object", "description": "A FHIR R4 OperationOutcome.",
    "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"type": "string", "enum": ["OperationOutcome"]},
                   "issue": {"type": "array", "minItems": 1, "items": {
                       "type": "object", "required": ["severity", "code"],
                       "properties": {"severity": {"type": "string"}, "code": {"type": "string"},
                                      "diagnostics": {"type": "string"}, "details": {"type": "object"}}}}},
}
FHIR_RESOURCE_SCHEMA: dict[str, Any] = {
    "title": "FhirResource", "type": "object", "description": "A FHIR R4 resource (JSON).",
    "required": ["resourceType"], "properties": {"resourceType": {"type": "string"}},
}
# The errors each kind of operation may answer with, besides those it declares itself.
API_ERRORS = {400: "Bad request (a malformed parameter or cursor)", 401: "No valid bearer token",
              403: "Your role, relationship or the person's consent does not allow it",
              404: "Not found (or nothing you may know of)", 409: "Conflicts with the record's current state",
              422: "A request the hub cannot process (missing or invalid criteria)"}
FHIR_ERRORS = {400: "Invalid search (unknown parameter or modifier without Prefer: handling=lenient, bad value)",
               401: "No valid bearer token", 403: "Your role or the person's consent does not allow it",
               404: "No such resource (or none you may know of)", 406: "Only application/fhir+json is written"}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with the errors the hub really sends: problem+json on /api (422 included, instead
    of FastAPI's validation shape), OperationOutcome as application/fhir+json on /fhir, whose answers are
    declared as application/fhir+json too."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update({"Problem": PROBLEM_SCHEMA, "OperationOutcome": OUTCOME_SCHEMA,
                       "FhirResource": FHIR_RESOURCE_SCHEMA})
    for key in ("HTTPValidationError", "ValidationError"):
        components.pop(key, None)
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    outcome = {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}}
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "patch"):
                continue
            responses = operation.setdefault("responses", {})
            secured = bool(operation.get("security"))
            if path.startswith("/fhir"):
                responses.pop("422", None)
                ok = responses.get("200")
                if ok is not None:
                    ok["content"] = {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/FhirResource"}}}
                errors, content = FHIR_ERRORS, outcome
            elif path.startswith("/api"):
                errors, content = API_ERRORS, problem
            else:
                continue
            for status, description in errors.items():
                if status == 401 and not secured:
                    continue
                if status == 409 and method == "get":
                    continue
                entry = responses.setdefault(str(status), {"description": description})
                entry["content"] = content
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document declare the hub's real error answers (:func:`document_errors`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["FHIR_JSON", "PROBLEM_JSON", "document_errors", "hub_error_response", "install", "install_openapi",
           "operation_outcome"]

"""Canonical JSON API for people: search, the whole shared record, the timeline.

Thin routes: parse, call one service function in :mod:`hub.record`, shape the
answer. The record is serialised straight to JSON bytes (its shape is declared
by the response model for the OpenAPI document and checked by the tests). These
are the hub's busiest routes: they are ``async`` and do their store work, from
beginning the transaction to ending it, in one hop to a read thread (:mod:`hub.api.reads`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from hub.access.policy import Policy
from hub.access.rules import Caller
from hub.api.deps import CALLER_OPENAPI, caller_context
from hub.api.schemas import PersonSearchResult, SharedRecord, Timeline
from hub.audit import AuditContext
from hub.record import (
    RECORD_SECTIONS,
    InvalidQuery,
    LoadedRecord,
    Match,
    PersonQuery,
    open_record,
    search_people,
    timeline,
)
from hub.store.identity import person_links

router = APIRouter(prefix="/api/persons", tags=["shared record"])


def json_response(payload: Any) -> Response:
    """Pre-serialised JSON (orjson), bypassing response-model re-validation on the hot path."""
    return json_bytes(orjson.dumps(payload))


def json_bytes(body: bytes) -> Response:
    """An answer of JSON already serialised."""
    return Response(body, media_type="application/json")


def access_note(record: LoadedRecord, role: str, purpose: str) -> dict[str, Any]:
    """The access section of a record answer."""
    return {"role": role, "purpose": purpose, "sealed": record.view.sealed, "break_glass": record.view.break_glass,
            "consent_withheld": record.view.consent_withheld, "hidden_sections": record.hidden_sections}


@router.get("", response_model=PersonSearchResult, summary="Find people", openapi_extra=CALLER_OPENAPI)
async def find_people(
    request: Request,
    name: Annotated[str | None, Query(description="Any part of the name: each word matches a given or family "
                                                  "name prefix.")] = None,
    family: Annotated[str | None, Query(description="Family name prefix.")] = None,
    given: Annotated[str | None, Query(description="Given name prefix.")] = None,
    birth_date: Annotated[date | None, Query(description="Date of birth, YYYY-MM-DD.")] = None,
    postcode: Annotated[str | None, Query(description="Full postcode or outward code.")] = None,
    nhs_number: Annotated[str | None, Query(description="Ten-digit NHS number.")] = None,
    identifier: Annotated[str | None, Query(description="An NHS number or a local id: 'system|value' (system "
                                                        "'nhs' or https://fhir.nhs.uk/Id/nhs-number for an NHS "
                                                        "number) or a bare value (an NHS number or any local id)."
                                            )] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> Response:
    """People matching every criterion given, that you may know exist, in a stable order."""
    ctx = await caller_context(request)
    query = PersonQuery(name=name, family=family, given=given, birth_date=birth_date, postcode=postcode,
                        nhs_number=nhs_number, all_of=identifier_criteria(identifier))
    page = await ctx.reads.run(search_people, ctx.policy, ctx.caller, query, ctx.audit, limit=limit,
                          cursor=cursor)
    next_url = None
    if page.next_cursor:
        params = {k: v for k, v in request.query_params.items() if k != "cursor"}
        next_url = f"{request.url.path}?{urlencode({**params, 'cursor': page.next_cursor})}"
    return json_response({"items": page.people, "next_cursor": page.next_cursor, "next": next_url})


NHS_SYSTEMS = frozenset({"nhs", "NHS", "https://fhir.nhs.uk/Id/nhs-number"})


def identifier_criteria(identifier: str | None) -> tuple[tuple[Match, ...], ...]:
    """``identifier=`` as a criterion: an NHS number or a local id; a bare value may be either."""
    if not identifier:
        return ()
    system, _, value = identifier.rpartition("|")
    if not value:
        raise InvalidQuery("identifier needs a value")
    if system in NHS_SYSTEMS:
        return ((Match("nhs_number", "eq", (value,)),),)
    if system:
        return ((Match("identifier", "in_system", (system, value)),),)
    return ((Match("nhs_number", "eq", (value,)), Match("identifier", "eq", (value,))),)


@router.get("/{person_id}/record", response_model=SharedRecord, summary="The whole shared record of one person",
            responses={403: {"description": "Your role or relationship does not allow it"},
                       404: {"description": "No such person (or none you may know of)"}},
            openapi_extra=CALLER_OPENAPI)
async def read_record(person_id: str, request: Request) -> Response:
    """Demographics, relationships, episodes, referrals, assessments, plans, commitments, flags, consents,
    documents, health events and transitions, each with its source systems and last update."""
    ctx = await caller_context(request)
    return json_bytes(await ctx.reads.run(record_json, ctx.policy, ctx.caller, person_id, ctx.audit))


def record_json(session: Connection, policy: Policy, caller: Caller, person_id: str, audit: AuditContext) -> bytes:
    """The record answer, serialised (each document as stored, parsed only where the access rules read it)."""
    record = open_record(session, policy, caller, person_id, audit, embed_documents=True)
    body: dict[str, Any] = {"id": person_id, "access": access_note(record, caller.role, caller.purpose),
                            "person": record.person}
    for etype, key in RECORD_SECTIONS.items():
        body[key] = record.items.get(etype, [])
    body["identity"] = record.identity(person_links(session, person_id))
    return orjson.dumps(body)


@router.get("/{person_id}/timeline", response_model=Timeline, summary="The person's history, newest first",
            openapi_extra=CALLER_OPENAPI)
async def read_timeline(person_id: str, request: Request) -> Response:
    """Episodes, referrals, assessments, plans, health events, documents, transitions and alerts by date."""
    ctx = await caller_context(request)
    return json_bytes(await ctx.reads.run(timeline_json, ctx.policy, ctx.caller, person_id, ctx.audit))


def timeline_json(session: Connection, policy: Policy, caller: Caller, person_id: str, audit: AuditContext) -> bytes:
    """The timeline answer, serialised."""
    record = open_record(session, policy, caller, person_id, audit)
    return orjson.dumps({"id": person_id, "access": access_note(record, caller.role, caller.purpose),
                         "entries": timeline(record, policy)})

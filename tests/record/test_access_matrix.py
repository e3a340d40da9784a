"""The authorisation matrix: every route of the OpenAPI document × every role of the policy × six kinds of person.

The people: one on the social worker's own caseload (Ann, team ASC-OPN), one on another team's (Tom, CIN-N), a
sealed child (Sky, seal naming team ADOPT only), one who declined consent to share with health (Nora), a
registration merged away into the sealed child (Max), and an id the hub never held. A registration held for
identity review beside the sealed child (Jo) and a quarantined source row of the sealed child are in the store
too, as is a relative of Ann's pointing at the sealed child.

For each route that takes a person, a resource of a person, a review or a merge, each role asks about each
person, and the test checks the two things the one access decision (:mod:`hub.access.decision`) promises:

* the sealed child, the id merged into her and the id never held get the same answer (status and body, but for
  the id asked about), for every role and route;
* no answer names more than the record read gives the same caller: every id in it is the person asked about or
  appears in the read's answer, and for a person the read refuses, the answer carries none of their details
  (a search may show a person outside the caseload as a reduced entry: name, birth date, sex, nothing more).

Routes that take no person (operations, the audit queue, addresses, metadata) are walked too, and must not name
the sealed child. The store is built once per backend and nothing in the walk changes it (writes are sent only
for people the caller may not know of, and are refused).
"""

from __future__ import annotations

import re
import shutil
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.api.app import create_app
from hub.contract import SourceRecord
from hub.fhir import RESOURCE_TYPES
from hub.pipeline import Pipeline
from hub.settings import Settings, config_dir
from hub.store.db import Store
from hub.store.identity import MatchReview
from hub.store.tables import Entity, Quarantine, SourceLink
from tests.support.postgres import BACKENDS, empty_postgres
from tests.support.synthetic import SOURCE, Dataset, add_named, mapper, nhs_number, person_payload

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Who asks, per role of the policy (a team where the role works in one).
TEAMS = {"social_worker": "ASC-OPN", "clinician": "ICT-1", "transitions_worker": "TRANS"}
INVISIBLE = ("sealed", "merged", "unknown")
REASON = "Matrix: child at A&E, need placement contacts"


@dataclass
class Subject:
    """One person of the matrix and the ids and details that belong to them."""

    kind: str
    person_id: str
    nhs: str
    family: str
    postcode: str
    episode: str
    review: int = 987_654
    merge: int = 987_654
    secrets: list[str] = field(default_factory=list)


@dataclass
class Matrix:
    """The app over the matrix store, and its people."""

    client: TestClient
    store: Store
    subjects: dict[str, Subject]
    roles: list[str]
    quarantined: int
    held: str

    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str, **extra: str) -> dict[str, str]:
        if role not in self.tokens:
            issuer = self.client.app.state.demo_issuer  # type: ignore[attr-defined]
            self.tokens[role] = issuer.issue(f"matrix.{role}", role, TEAMS.get(role), ttl=600)
        return {"Authorization": f"Bearer {self.tokens[role]}", **extra}


def _ingest(store: Store, source: str, stream: str, records: list[tuple[str, dict[str, Any]]]) -> None:
    with store.session() as session:
        Pipeline().ingest(session, source, [SourceRecord(stream, sid, payload, modified="2024-03-01T00:00:00")
                                            for sid, payload in records], mapper)


def _build(store: Store, data_dir: Path) -> Iterator[Matrix]:
    data = Dataset()
    named = add_named(data)
    max_sid = data.add("people", person_payload("Max", "Ferrand", date(2016, 7, 9), "male", nhs_number(5), None,
                                                "LS28 7LN", "C-1005"), "C-1005")
    data.add("episodes", {"person": max_sid, "service_area": "adults", "kind": "long_term_support",
                          "start": "2022-01-01", "team": "ASC-OPN"})
    with store.session() as session:
        data.load(session)
    with store.session() as s:
        ids = dict(s.execute(select(SourceLink.source_id, SourceLink.entity_id).where(
            SourceLink.source == SOURCE, SourceLink.stream == "people")).all())
    people = {name: ids[sid] for name, sid in named.items()}
    people["max"] = ids[max_sid]
    # Ann's relative is the sealed child; a registration under the child's NHS number is held for review beside
    # her; a later update of the child's row is quarantined.
    _ingest(store, SOURCE, "relationships", [("rel-m", {"person": "C-1001", "related_person_id": people["sealed"],
                                                        "kind": "other", "related_name": "Foster child"})])
    _ingest(store, "health_reg", "people", [("H-1", person_payload("Jo", "Bloggs", date(1990, 1, 9), "female",
                                                                   nhs_number(3), None, "LS6 2QT", "H-1"))])
    _ingest(store, SOURCE, "people", [("C-1003", {**person_payload("Sky", "Marlow", date(2016, 7, 9), "female",
                                                                   nhs_number(3), "01", "LS6 2QT", "C-1003"),
                                                  "birth_date": "not a date"})])
    with store.session() as s:
        episodes = dict(s.execute(select(Entity.person_id, Entity.id).where(Entity.entity_type == "Episode")).all())
        held = s.scalar(select(SourceLink.entity_id).where(SourceLink.source == "health_reg"))
        review = s.scalar(select(MatchReview.id).where(MatchReview.person_a.in_([held, people["sealed"]]),
                                                       MatchReview.person_b.in_([held, people["sealed"]])))
        quarantined = s.scalar(select(Quarantine.id).where(Quarantine.source_id == "C-1003"))
    assert review is not None and quarantined is not None
    settings = Settings(database_url=store.url, data_dir=data_dir)
    with TestClient(create_app(settings, store)) as client:
        issuer = client.app.state.demo_issuer  # type: ignore[attr-defined]
        adoption_dq = {"Authorization": f"Bearer {issuer.issue('dq.adopt', 'data_quality', 'ADOPT', ttl=600)}"}
        merged = client.post("/api/identity/merges", json={"survivor": people["sealed"], "merged": people["max"]},
                             headers=adoption_dq)
        assert merged.status_code == 201, merged.text
        sky_secrets = [nhs_number(3), "Marlow", "LS6 2QT", people["sealed"], "adoption"]
        subjects = {
            "own": Subject("own", people["ann"], nhs_number(1), "Hale", "LS1 4AP", episodes[people["ann"]]),
            "other": Subject("other", people["tom"], nhs_number(2), "Hale", "LS1 4AP", episodes[people["tom"]],
                             secrets=[nhs_number(2), "Amira Khan"]),
            "consent": Subject("consent", people["nora"], nhs_number(4), "Quinn", "LS9 8AB",
                               episodes[people["nora"]]),
            "sealed": Subject("sealed", people["sealed"], nhs_number(3), "Marlow", "LS6 2QT",
                              episodes[people["sealed"]], review=review, secrets=sky_secrets),
            "merged": Subject("merged", people["max"], nhs_number(5), "Ferrand", "LS28 7LN", episodes[people["max"]],
                              merge=merged.json()["id"], secrets=[*sky_secrets, nhs_number(5), "Ferrand"]),
            "unknown": Subject("unknown", str(uuid.UUID(int=12345)), nhs_number(9), "Zedwardson", "LS17 6HJ",
                               str(uuid.UUID(int=67890)), secrets=[]),
        }
        roles = list(tomllib.loads((config_dir() / "policy.toml").read_text())["roles"])
        yield Matrix(client, store, subjects, roles, quarantined, held)


@pytest.fixture(scope="module", params=BACKENDS)
def matrix(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    """One small store per backend, built once for the whole walk."""
    tmp = tmp_path_factory.mktemp(f"matrix-{request.param}")
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), tmp / "hub.db")
        url = f"sqlite:///{tmp / 'hub.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        empty_postgres(url)
    store = Store(url)
    yield from _build(store, tmp / "var")
    store.dispose()


def person_requests(m: Matrix, s: Subject) -> list[tuple[str, str, str, dict[str, Any] | None, Any]]:
    """(label, method, path, params, json body) for every route about one person, built from the OpenAPI
    document so that a route added later is walked (or fails the test until it is placed)."""
    out: list[tuple[str, str, str, dict[str, Any] | None, Any]] = []
    paths = m.client.get("/openapi.json").json()["paths"]
    invisible = s.kind in INVISIBLE
    for path, operations in paths.items():
        for method in operations:
            method = method.upper()
            key = f"{method} {path}"
            if "{person_id}" in path or "{pid}" in path:
                if method != "GET" and not invisible:
                    continue  # a write to someone visible would change the store the walk reads
                body = {"scope": "share_with_health", "decision": True} if path.endswith("consents") else (
                    {"kind": "staff_member", "allowed_roles": ["admin"]} if path.endswith("seals") else None)
                out.append((key, method, path.replace("{person_id}", s.person_id).replace("{pid}", s.person_id),
                            None, body))
            elif path == "/api/persons":
                out.append((key + " by NHS number", method, path, {"nhs_number": s.nhs}, None))
                out.append((key + " by family", method, path, {"family": s.family}, None))
            elif path == "/fhir/Patient":
                out.append((key + " _id", method, path, {"_id": s.person_id}, None))
                out.append((key + " identifier", method, path,
                            {"identifier": f"https://fhir.nhs.uk/Id/nhs-number|{s.nhs}"}, None))
            elif path == "/fhir/{rtype}":
                for rtype, etype in RESOURCE_TYPES.items():
                    if etype != "Person":
                        out.append((f"{key} {rtype} by patient", method, f"/fhir/{rtype}", {"patient": s.person_id},
                                    None))
                out.append((key + " EpisodeOfCare _id", method, "/fhir/EpisodeOfCare", {"_id": s.episode}, None))
            elif path == "/fhir/{rtype}/{rid}":
                out.append((key, method, f"/fhir/EpisodeOfCare/{s.episode}", None, None))
            elif path == "/fhir/AuditEvent":
                out.append((key, method, path, {"patient": s.person_id}, None))
            elif "{review_id}" in path:
                out.append((key, method, path.replace("{review_id}", str(s.review)), None, None))
            elif "{merge_id}" in path:
                out.append((key, method, path.replace("{merge_id}", str(s.merge)), None, None))
            elif path == "/api/identity/merges":
                if invisible:
                    out.append((key, method, path, None, {"survivor": s.person_id,
                                                          "merged": m.subjects["own"].person_id}))
            elif path == "/api/ops/quarantine/{entry_id}":
                if s.kind == "sealed":
                    out.append((key, method, path.replace("{entry_id}", str(m.quarantined)), None, None))
            else:
                # any other route that takes a person in its query (a link's list by person, say)
                named = [q["name"] for q in operations[method.lower()].get("parameters", [])
                         if q["in"] == "query" and q["name"] in ("person_id", "person", "patient", "subject")]
                if named:
                    out.append((key + f" by {named[0]}", method, path, {named[0]: s.person_id}, None))
                else:
                    PERSONLESS.add(key)
    return out


PERSONLESS: set[str] = set()
# Routes whose answer may differ between a sealed person and an unknown id, and why.
NOT_COMPARED = {
    # The audit trail is information governance's to read whole: who touched a sealed record is exactly what an
    # auditor must see. Every other role is refused it outright.
    "GET /fhir/AuditEvent": "auditor",
    # Likewise the break-glass review queue: the auditor reviews whose sealed record was opened, and why.
    "GET /api/audit/break-glass": "auditor",
}


def normalised(text: str, asked: list[str]) -> str:
    """The answer without what differs by asking: the values asked about (whole words), the bundle's time."""
    for value in sorted(asked, key=len, reverse=True):
        text = re.sub(rf"(?<![0-9a-z]){re.escape(value)}(?![0-9a-z])", "ASKED", text)
    return re.sub(r'"timestamp":"[^"]*"', "", text)


def ask(m: Matrix, role: str, method: str, path: str, params: dict[str, Any] | None, body: Any,
        **extra: str) -> Any:
    return m.client.request(method, path, params=params, json=body, headers=m.headers(role, **extra))


@dataclass
class Answer:
    """One request of the walk and what it got."""

    role: str
    kind: str
    label: str
    path: str
    params: dict[str, Any] | None
    body: Any
    status: int
    text: str


@pytest.fixture(scope="module")
def walk(matrix: Matrix) -> dict[tuple[str, str], list[Answer]]:
    """Every role's answers about every person on every route (and the record read first), asked once."""
    m = matrix
    answers: dict[tuple[str, str], list[Answer]] = {}
    for role in m.roles:
        for kind, s in m.subjects.items():
            read = f"/api/persons/{s.person_id}/record"
            found = answers[(role, kind)] = []
            for label, method, path, params, body in [("READ", "GET", read, None, None), *person_requests(m, s)]:
                r = ask(m, role, method, path, params, body)
                assert r.status_code < 500, (role, kind, label, r.text)
                found.append(Answer(role, kind, label, path, params, body, r.status_code, r.text))
    return answers


def test_sealed_merged_away_and_unknown_get_the_same_answer_on_every_route_for_every_role(
        matrix: Matrix, walk: dict[tuple[str, str], list[Answer]]) -> None:
    compared = 0
    for role in matrix.roles:
        by_label: dict[str, dict[str, tuple[int, str]]] = {}
        for kind in INVISIBLE:
            s = matrix.subjects[kind]
            asked = [s.person_id, s.episode, str(s.review), str(s.merge), s.nhs, s.family]
            for a in walk[(role, kind)]:
                if NOT_COMPARED.get(a.label) == role or a.label.startswith("GET /api/ops/quarantine"):
                    continue
                by_label.setdefault(a.label, {})[kind] = (a.status, normalised(a.text, asked))
        for label, by_kind in by_label.items():
            assert by_kind["sealed"] == by_kind["unknown"] == by_kind["merged"], (role, label, by_kind)
            compared += 1
    assert compared > 100


def test_no_answer_names_more_than_the_record_read(matrix: Matrix, walk: dict[tuple[str, str], list[Answer]]
                                                    ) -> None:
    m = matrix
    opened = 0
    hidden = {m.subjects["sealed"].person_id, m.subjects["merged"].person_id, m.held}
    for (role, kind), answers in walk.items():
        s = m.subjects[kind]
        read = answers[0]
        readable = read.status == 200
        opened += readable
        allowed = set(UUID.findall(read.text)) | {s.person_id, s.episode} if readable else {s.person_id}
        for a in answers[1:]:
            if "AuditEvent" in a.label or a.label.startswith("GET /api/ops/quarantine"):
                # audit rows carry their own event ids; the quarantine's payload is checked for secrets below
                named: set[str] = set()
            elif a.label.endswith("by family"):
                # a name search finds other people too: none of them may be one the caller may not know of
                named = set(UUID.findall(a.text)) & hidden
            else:  # every id in the answer is one the caller asked with, or one the read gives them
                named = set(UUID.findall(a.text)) - allowed - set(UUID.findall(f"{a.path} {a.params} {a.body}"))
            assert not named, (role, kind, a.label, named, a.text)
            if not readable and NOT_COMPARED.get(a.label) != role:
                # (what the caller asked with may come back in a self link; nothing else of the person may)
                leaked = [v for v in s.secrets if v in a.text and v != s.person_id and v not in str(a.params)]
                assert not leaked, (role, kind, a.label, leaked, a.text)
    assert opened >= 10  # the walk is not vacuous: several roles read several people


def test_break_glass_on_any_route_reveals_only_what_it_records(matrix: Matrix) -> None:
    """With a stated reason, a glass-breaking role sees the sealed child by id; every such answer is a break
    glass on the audit row (checked in test_access_holes); the unknown id still answers as unknown."""
    m = matrix
    sealed, unknown = m.subjects["sealed"], m.subjects["unknown"]
    glass = {"X-Break-Glass": REASON}
    for role in ("social_worker", "clinician", "transitions_worker"):
        read = ask(m, role, "GET", f"/api/persons/{sealed.person_id}/record", None, None, **glass)
        assert read.status_code == 200
        gone = ask(m, role, "GET", f"/api/persons/{unknown.person_id}/record", None, None, **glass)
        assert gone.status_code == 404
        # the merged-away id is answered in its own name only: never the survivor's id
        merged = ask(m, role, "GET", f"/fhir/Patient/{m.subjects['merged'].person_id}", None, None, **glass)
        assert merged.status_code == 200 and merged.json()["active"] is False


def test_routes_about_no_person_name_no_sealed_person(matrix: Matrix) -> None:
    m = matrix
    person_requests(m, m.subjects["unknown"])
    assert PERSONLESS, "the walk found no route without a person"
    sealed = m.subjects["sealed"]
    paths = m.client.get("/openapi.json").json()["paths"]
    for role in m.roles:
        for key in sorted(PERSONLESS):
            method, path = key.split(" ", 1)
            if method != "GET" or "{" in path or NOT_COMPARED.get(key) == role:
                continue  # writes and lookups by an id of their own (an event, a delivery, a UPRN) name no person
            assert method.lower() in paths[path]
            r = ask(m, role, method, path, None, None)
            assert r.status_code < 500, (role, key, r.text)
            for secret in sealed.secrets:
                assert secret not in r.text, (role, key, secret)

"""The identity review queue, merge and unmerge through the API: roles, audit rows, outbox events.

The store is filled by syncing two small legacy sources through the real
pipeline, so the queue holds what the engine itself was unsure of: the twins,
and Greta Hawthorne who may be Margaret.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.store.audit import AuditEvent, AuditSubject
from hub.store.db import Store
from hub.store.identity import queue_reviews
from hub.store.tables import OutboxEvent
from tests.support.two_sources import Hub, make_hub

DQ = ("dq.hughes", "data_quality")
ADMIN = ("admin.lee", "admin")


@pytest.fixture
def hub(store: Store, tmp_path: Path) -> Iterator[Hub]:
    yield from make_hub(store, tmp_path)


def review_of(reviews: list[dict[str, Any]], a: str, b: str) -> dict[str, Any]:
    return next(r for r in reviews if {r["person_a"]["id"], r["person_b"]["id"]} == {a, b})


def audit_rows(store: Store, path: str) -> list[tuple[AuditEvent, set[str]]]:
    with store.session() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.path == path).order_by(AuditEvent.id)))
        subjects = {e.id: {p for (p,) in s.execute(select(AuditSubject.person_id).where(
            AuditSubject.audit_id == e.id))} for e in events}
        s.expunge_all()
    return [(e, subjects[e.id]) for e in events]


def events_for(store: Store, person_id: str, kind: str) -> list[OutboxEvent]:
    with store.session() as s:
        found = list(s.scalars(select(OutboxEvent).where(OutboxEvent.entity_id == person_id,
                                                         OutboxEvent.kind == kind)))
        s.expunge_all()
    return found


def test_only_reviewers_see_the_queue_and_each_look_is_audited(hub: Hub) -> None:
    denied = hub.client.get("/api/identity/reviews", headers=hub.headers("sw.owen", "social_worker", "ASC-OPN"))
    assert denied.status_code == 403
    reply = hub.client.get("/api/identity/reviews", headers=hub.headers(*DQ))
    assert reply.status_code == 200, reply.text
    reviews = reply.json()
    greta = review_of(reviews, hub.people["margaret"], hub.people["greta"])
    assert 0.40 <= greta["score"] < 0.95
    assert {f["field"] for f in greta["evidence"]["fields"]} >= {"given_name", "family_name", "birth_date"}
    # Margaret's golden name is the adults' system's (Peggy) by survivorship; both records are listed
    assert {greta["person_a"]["name"], greta["person_b"]["name"]} == {"Peggy Hawthorne", "Greta Hawthorne"}
    cards = {greta["person_a"]["id"]: greta["person_a"], greta["person_b"]["id"]: greta["person_b"]}
    assert cards[hub.people["margaret"]]["records"] == ["escr/clients/1", "adults/clients/101"]
    twins = review_of(reviews, hub.people["amy"], hub.people["beth"])
    assert [g["guard"] for g in twins["evidence"]["guards"]] == ["twins"]

    rows = audit_rows(hub.store, "/api/identity/reviews")
    assert [(e.user_id, e.outcome) for e, _ in rows] == [("sw.owen", "denied"), ("dq.hughes", "success")]
    assert rows[1][0].action == "search"
    assert {hub.people["margaret"], hub.people["greta"], hub.people["amy"], hub.people["beth"]} <= rows[1][1]


def test_accept_merges_then_unmerge_restores_with_events_and_audit(hub: Hub) -> None:
    margaret, greta = hub.people["margaret"], hub.people["greta"]
    reviews = hub.client.get("/api/identity/reviews", headers=hub.headers(*DQ)).json()
    pair = review_of(reviews, margaret, greta)
    path = f"/api/identity/reviews/{pair['id']}/accept"

    accepted = hub.client.post(path, headers=hub.headers(*DQ))
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["status"] == "accepted" and body["decided_by"] == "dq.hughes" and body["merge_id"]
    assert hub.client.post(path, headers=hub.headers(*DQ)).status_code == 409  # decided once
    # the longer-known person (the ESCR's Margaret) survives; both persons' change events are in the outbox
    assert [e.kind for e in events_for(hub.store, margaret, "merged")] == ["merged"]
    assert [e.kind for e in events_for(hub.store, greta, "merged")] == ["merged"]
    (row, subjects), _conflict = audit_rows(hub.store, path)
    assert (row.user_id, row.role, row.action, row.outcome) == ("dq.hughes", "data_quality", "write", "success")
    assert subjects == {margaret, greta}
    assert f"MatchReview/{pair['id']}" in row.resources

    why = hub.client.get(f"/api/identity/persons/{margaret}/links", headers=hub.headers(*ADMIN)).json()
    assert [(d["other_person"], d["decision"], d["decided_by"]) for d in why["decisions"]] == [
        (greta, "link", "dq.hughes")]
    assert why["merges"][0]["status"] == "merged"

    merge_id = body["merge_id"]
    undone = hub.client.post(f"/api/identity/merges/{merge_id}/unmerge", headers=hub.headers(*ADMIN))
    assert undone.status_code == 200, undone.text
    assert undone.json()["status"] == "unmerged" and undone.json()["unmerged_by"] == "admin.lee"
    assert len(events_for(hub.store, margaret, "unmerged")) == 1
    assert len(events_for(hub.store, greta, "unmerged")) == 1
    (row, subjects), = audit_rows(hub.store, f"/api/identity/merges/{merge_id}/unmerge")
    assert row.outcome == "success" and subjects == {margaret, greta}
    again = hub.client.post(f"/api/identity/merges/{merge_id}/unmerge", headers=hub.headers(*ADMIN))
    assert again.status_code == 409
    # the pair is remembered as two people: it is never put before a reviewer again
    with hub.store.session() as s:
        assert queue_reviews(s, [{"person_a": greta, "person_b": margaret, "score": 0.9, "evidence": {}}]) == 0


def test_reject_keeps_the_twins_apart_and_never_asks_again(hub: Hub) -> None:
    amy, beth = hub.people["amy"], hub.people["beth"]
    pair = review_of(hub.client.get("/api/identity/reviews", headers=hub.headers(*ADMIN)).json(), amy, beth)
    rejected = hub.client.post(f"/api/identity/reviews/{pair['id']}/reject", headers=hub.headers(*ADMIN))
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected" and rejected.json()["merge_id"] is None
    open_now = hub.client.get("/api/identity/reviews", headers=hub.headers(*ADMIN)).json()
    assert all(r["id"] != pair["id"] for r in open_now)
    decided = hub.client.get("/api/identity/reviews?status=rejected", headers=hub.headers(*ADMIN)).json()
    assert [r["id"] for r in decided] == [pair["id"]]
    assert events_for(hub.store, amy, "merged") == []
    with hub.store.session() as s:
        assert queue_reviews(s, [{"person_a": beth, "person_b": amy, "score": 0.99, "evidence": {}}]) == 0
    (row, subjects), = audit_rows(hub.store, f"/api/identity/reviews/{pair['id']}/reject")
    assert row.user_id == "admin.lee" and row.outcome == "success" and subjects == {amy, beth}


def test_direct_merge_and_the_record_says_why_records_were_joined(hub: Hub) -> None:
    margaret, greta = hub.people["margaret"], hub.people["greta"]
    refused = hub.client.post("/api/identity/merges", json={"survivor": margaret, "merged": greta},
                              headers=hub.headers("dr.patel", "clinician", "ICT-1"))
    assert refused.status_code == 403
    made = hub.client.post("/api/identity/merges", json={"survivor": margaret, "merged": greta},
                           headers=hub.headers(*DQ))
    assert made.status_code == 201, made.text
    assert made.json()["survivor"] == margaret and made.json()["status"] == "merged"
    assert len(events_for(hub.store, greta, "merged")) == 1

    record = hub.client.get(f"/api/persons/{margaret}/record", headers=hub.headers(*ADMIN))
    assert record.status_code == 200, record.text
    identity = record.json()["identity"]
    # Peggy in the adults' system was joined to Margaret by score: the record says why
    peggy = next(r for r in identity["records"] if r["source"] == "adults")
    assert peggy["source_id"] == "101" and peggy["decision"] == "link" and peggy["score"] >= 0.95
    levels = {f["field"]: f["level"] for f in peggy["evidence"]["fields"]}
    assert levels["given_name"] == "nickname"
    assert all(set(f) == {"field", "level", "weight"} for f in peggy["evidence"]["fields"])
    assert identity["merges"][0]["merged"] == greta
    assert "Peggy" not in str(identity) and "1941" not in str(identity)  # evidence carries no personal details


def test_a_review_naming_a_sealed_person_goes_only_to_reviewers_the_seal_names(hub: Hub) -> None:
    margaret, greta = hub.people["margaret"], hub.people["greta"]
    sealed = hub.client.put(f"/api/admin/persons/{greta}/seals", headers=hub.headers(*ADMIN),
                            json={"kind": "witness_protection", "allowed_roles": ["admin"], "reason": "court order"})
    assert sealed.status_code == 200, sealed.text
    # the administrator, whom the seal names, sees the pair in full
    pair = review_of(hub.client.get("/api/identity/reviews", headers=hub.headers(*ADMIN)).json(), margaret, greta)
    # the data-quality officer, whom it does not, never learns the pair (or the sealed person) exists
    listed = hub.client.get("/api/identity/reviews", headers=hub.headers(*DQ)).json()
    assert all(greta not in (r["person_a"]["id"], r["person_b"]["id"]) for r in listed)
    assert greta not in str(listed)
    unknown = hub.client.get("/api/identity/reviews/999999", headers=hub.headers(*DQ))
    shown = hub.client.get(f"/api/identity/reviews/{pair['id']}", headers=hub.headers(*DQ))
    assert shown.status_code == unknown.status_code == 404
    assert shown.json()["detail"].replace(str(pair["id"]), "N") == unknown.json()["detail"].replace("999999", "N")
    refused = hub.client.post(f"/api/identity/reviews/{pair['id']}/accept", headers=hub.headers(*DQ))
    assert refused.status_code == 404
    assert events_for(hub.store, greta, "merged") == []
    assert hub.client.post(f"/api/identity/reviews/{pair['id']}/reject", headers=hub.headers(*ADMIN)).status_code == 200

"""Records managers find orphans, link and unlink them through the API; sealed people stay invisible."""

from __future__ import annotations

from sqlalchemy import select

from hub.store.audit import AuditEvent
from hub.store.documents import EdrmsDocument
from tests.support.edrms import EdrmsHub


def doc_id(hub: EdrmsHub, key: str) -> int:
    with hub.store.session() as s:
        return int(s.scalar(select(EdrmsDocument.id).where(EdrmsDocument.object_id == hub.docs[key].object_id)))


def test_orphans_are_listed_with_suggested_people_but_never_a_sealed_one(edrms_hub: EdrmsHub) -> None:
    edrms_hub.pull()
    answer = edrms_hub.client.get("/api/documents", params={"orphans": "true"}, headers=edrms_hub.headers())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["total"] == 4
    by_title = {d["title"]: d for d in body["documents"]}
    nora = by_title["Letter - Nora Quinn (23/11/1978).pdf"]
    assert nora["orphan_reason"] == "NO_IDENTIFIERS"
    assert nora["suggestions"] and nora["suggestions"][0]["person_id"] == edrms_hub.people["nora"]
    sky = by_title["Note - Sky Marlow (09/07/2016).pdf"]
    assert all(s["person_id"] != edrms_hub.people["sealed"] for s in sky["suggestions"])
    assert by_title["Letter 7.pdf"]["identifiers_found"] == ["nhs_number", "client_id"]
    assert "nhs_number" not in by_title["Letter 7.pdf"] and "9990000" not in answer.text


def test_only_records_managers_may_use_it(edrms_hub: EdrmsHub) -> None:
    answer = edrms_hub.client.get("/api/documents", params={"orphans": "true"},
                                  headers=edrms_hub.headers("sw.amira", "social_worker", "CIN-N"))
    assert answer.status_code == 403


def test_link_then_unlink_keeps_who_when_and_why_and_is_audited(edrms_hub: EdrmsHub) -> None:
    edrms_hub.pull()
    nora_doc = doc_id(edrms_hub, "nora_none")
    headers = edrms_hub.headers()
    answer = edrms_hub.client.post(f"/api/documents/{nora_doc}/links", headers=headers, json={
        "person_id": edrms_hub.people["nora"], "reason": "Name and date of birth in the title match"})
    assert answer.status_code == 201, answer.text
    link = answer.json()
    assert link["created_by"] == "rm.clarke" and link["method"] == "manual" and link["active"]
    shown = edrms_hub.client.get(f"/api/documents/{nora_doc}", headers=headers).json()
    assert shown["status"] == "linked" and shown["person_id"] == edrms_hub.people["nora"]
    assert shown["record_class"] == "adults" and shown["review_date"] is None  # her case is open
    orphans = edrms_hub.client.get("/api/documents", params={"orphans": "true"}, headers=headers).json()
    assert orphans["total"] == 3
    # her record now lists it
    record = edrms_hub.client.get(f"/api/documents?person_id={edrms_hub.people['nora']}", headers=headers).json()
    assert [d["id"] for d in record["documents"]] == [nora_doc]
    gone = edrms_hub.client.request("DELETE", f"/api/documents/{nora_doc}/links/{link['id']}", headers=headers,
                                    json={"reason": "Wrong Nora: another person of the same name"})
    assert gone.status_code == 200, gone.text
    ended = gone.json()
    assert not ended["active"] and ended["ended_by"] == "rm.clarke" and ended["end_reason"].startswith("Wrong Nora")
    shown = edrms_hub.client.get(f"/api/documents/{nora_doc}", headers=headers).json()
    assert shown["status"] == "orphan" and shown["orphan_reason"] == "UNLINKED"
    assert [k["active"] for k in shown["links"]] == [False]
    again = edrms_hub.client.request("DELETE", f"/api/documents/{nora_doc}/links/{link['id']}", headers=headers,
                                     json={"reason": "twice over"})
    assert again.status_code == 409
    no_reason = edrms_hub.client.request("DELETE", f"/api/documents/{nora_doc}/links/{link['id']}",
                                         headers=headers)
    assert no_reason.status_code == 422
    with edrms_hub.store.session() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.path.like("/api/documents%"))))
    writes = [r for r in rows if r.action == "write"]
    assert len(writes) >= 2 and all(r.user_id == "rm.clarke" and r.role == "records_manager" for r in writes)


def test_a_sealed_persons_documents_are_not_found(edrms_hub: EdrmsHub) -> None:
    edrms_hub.pull()
    sky_doc = doc_id(edrms_hub, "sky_nhs")
    headers = edrms_hub.headers()
    assert edrms_hub.client.get(f"/api/documents/{sky_doc}", headers=headers).status_code == 404
    listed = edrms_hub.client.get("/api/documents", headers=headers).json()
    assert sky_doc not in [d["id"] for d in listed["documents"]]
    assert edrms_hub.client.get(f"/api/documents?person_id={edrms_hub.people['sealed']}",
                                headers=headers).status_code == 404
    orphan = doc_id(edrms_hub, "sky_none")
    refused = edrms_hub.client.post(f"/api/documents/{orphan}/links", headers=headers, json={
        "person_id": edrms_hub.people["sealed"], "reason": "the title names her"})
    assert refused.status_code == 404

"""Linked documents on the shared record: FHIR DocumentReference (search by patient, $everything) and the record
page, under exactly the person's seals, consents and roles."""

from __future__ import annotations

from tests.support.edrms import EdrmsHub


def references(hub: EdrmsHub, patient: str, headers: dict[str, str]) -> list[dict]:
    answer = hub.client.get("/fhir/DocumentReference", params={"patient": patient}, headers=headers)
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry", [])]


def test_linked_documents_are_document_references_of_their_patient(edrms_hub: EdrmsHub) -> None:
    hub = edrms_hub
    hub.pull()
    owen = hub.headers("sw.owen", "social_worker", "ASC-OPN")
    ann = hub.people["ann"]
    found = {r["masterIdentifier"]["value"]: r for r in references(hub, ann, owen)}
    case_doc = found[hub.docs["ann_case"].object_id]
    assert case_doc["subject"]["reference"] == f"Patient/{ann}"
    assert case_doc["author"] == [{"display": "amira.khan"}]
    url = case_doc["content"][0]["attachment"]["url"]
    assert url.startswith(f"http://127.0.0.1:{hub.simulator.port}/share/page/document-details?nodeRef=")
    assert case_doc["context"]["related"][0]["reference"].endswith(hub.episodes["ann"][0])
    everything = hub.client.get(f"/fhir/Patient/{ann}/$everything", headers=owen).json()
    kinds = [e["resource"]["resourceType"] for e in everything["entry"]]
    assert kinds.count("DocumentReference") >= 2
    # an orphan is on no one's record
    assert hub.docs["wrong"].object_id not in found


def test_a_sealed_persons_documents_are_hidden_exactly_as_their_record_is(edrms_hub: EdrmsHub) -> None:
    hub = edrms_hub
    hub.pull()
    sky = hub.people["sealed"]
    amira = hub.headers("sw.amira", "social_worker", "CIN-N")  # works with children, but is not named by the seal
    assert hub.client.get(f"/fhir/Patient/{sky}", headers=amira).status_code == 404
    hidden = hub.client.get("/fhir/DocumentReference", params={"patient": sky}, headers=amira)
    unknown = hub.client.get("/fhir/DocumentReference", params={"patient": "p-never-held"}, headers=amira)
    assert hidden.status_code == unknown.status_code  # sealed answers exactly as an id never held
    assert hub.docs["sky_nhs"].object_id not in hidden.text and sky not in hidden.text.replace(
        f"patient={sky}", "")
    adoption = hub.headers("sw.adoption", "social_worker", "ADOPT")  # the team the seal names
    assert hub.client.get(f"/fhir/Patient/{sky}", headers=adoption).status_code == 200
    assert [r["masterIdentifier"]["value"] for r in references(hub, sky, adoption)] == [
        hub.docs["sky_nhs"].object_id]


def test_the_record_page_lists_documents_with_a_link_to_open_them(edrms_hub: EdrmsHub) -> None:
    hub = edrms_hub
    hub.pull()
    token = hub.client.app.state.demo_issuer.issue("sw.owen", "social_worker", "ASC-OPN", ttl=600)
    hub.client.cookies.set("carehub_token", token)
    page = hub.client.get(f"/persons/{hub.people['ann']}")
    hub.client.cookies.clear()
    assert page.status_code == 200, page.text[:300]
    assert 'id="documents-heading"' in page.text and "Review 2.pdf" in page.text
    assert "Open in the EDRMS" in page.text and "amira.khan" in page.text

"""Two A28s for different people with different valid NHS numbers must never become one Patient.

Same surname, birth date, sex and address, given names one letter apart, and two NHS numbers
that both pass modulus 11 (one unverified, as any v2.3 feed sends them): sent over MLLP with
python-hl7's client to the hub's listener, the second lands as its own Patient and the pair
goes to review with the reason; each NHS number finds its own Patient.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hl7.client import MLLPClient
from sqlalchemy import select

from health_link.hl7 import LOCAL_TIME
from health_link.simulator import SyntheticPatient, adt_message, synthetic_nhs_number
from hub.fhir import NHS_NUMBER
from hub.store.identity import MatchReview
from tests.support.health import HealthHub


def _ack_code(raw: bytes) -> str:
    text = raw.decode("utf-8").strip("\x0b\x1c\r")
    msa = next(s for s in text.split("\r") if s.startswith("MSA"))
    return msa.split("|")[1]


def test_two_valid_nhs_numbers_are_two_patients_and_a_review(health: HealthHub) -> None:
    sent = datetime.now(LOCAL_TIME).replace(microsecond=0) - timedelta(hours=2)
    first_nhs, second_nhs = synthetic_nhs_number(31_337), synthetic_nhs_number(52_114)
    assert first_nhs != second_nhs
    first = SyntheticPatient("H610001", first_nhs, "Pritchard", "Megan", "19470302", "F",
                             "12 Mill Road", "Carmarthen", "SA31 1AA", nhs_status="NSTS01")
    second = SyntheticPatient("H610002", second_nhs, "Pritchard", "Megen", "19470302", "F",
                              "12 Mill Road", "Carmarthen", "SA31 1AA", nhs_status="NSTS02")
    with MLLPClient("127.0.0.1", health.listener.port) as client:
        acks = [client.send_message(adt_message("A28", "W0001", first, sent=sent)),
                client.send_message(adt_message("A28", "W0002", second, sent=sent + timedelta(minutes=5)))]
    assert [_ack_code(a) for a in acks] == ["AA", "AA"]

    ids = []
    for number in (first_nhs, second_nhs):
        bundle = health.fhir("Patient", identifier=f"{NHS_NUMBER}|{number}")
        assert len(bundle.get("entry", [])) == 1, f"an NHS number finds {len(bundle.get('entry', []))} patients"
        ids.append(bundle["entry"][0]["resource"]["id"])
    assert ids[0] != ids[1]
    with health.store.session() as s:
        reviews = s.scalars(select(MatchReview)).all()
    assert len(reviews) == 1 and {reviews[0].person_a, reviews[0].person_b} == set(ids)
    guards = {g["guard"]: g for g in reviews[0].evidence["guards"]}
    assert guards["nhs_number_conflict"]["effect"] == "review"
    assert "different NHS numbers" in guards["nhs_number_conflict"]["reason"]

"""Names over MLLP, sent with python-hl7's own client: lengths enforced, control and text-direction characters
refused with an AE and the reason, former names capped however often a hospital renames a patient."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hl7.client import MLLPClient
from sqlalchemy import func, select

from health_link.hl7 import LOCAL_TIME
from health_link.simulator import SyntheticPatient, adt_message, synthetic_nhs_number
from hub.model.validators import MAX_NAMES
from hub.store.inbound import InboundMessage
from tests.support.health import HealthHub, err, msa

HOSPITAL = "https://carehub.example.gov.uk/Id/hospital/RX1"


def patient(n: int, family: str = "Pritchard", given: str = "Megan") -> SyntheticPatient:
    return SyntheticPatient(f"H61{n:04d}", synthetic_nhs_number(6100 + n), family, given, "19470302", "F",
                            "12 Mill Road", "Carmarthen", "SA31 1AA")


def send(health: HealthHub, message: str) -> str:
    """Send one message with python-hl7's MLLP client; the ACK as text."""
    with MLLPClient("127.0.0.1", health.listener.port) as client:
        raw = client.send_message(message)
    return raw.decode("utf-8").strip("\x0b\x1c\r")


def held(health: HealthHub, hospital_number: str) -> list[dict]:  # type: ignore[type-arg]
    return health.fhir("Patient", identifier=f"{HOSPITAL}|{hospital_number}").get("entry", [])


@pytest.mark.parametrize(("family", "given", "reason"), [
    ("P" * 3_000_000, "Megan", "TOO_LONG"),               # a 3 MB family name
    ("P" * 101, "Megan", "TOO_LONG"),
    ("Pritchard", "M" * 101, "TOO_LONG"),
    ("Prit\x00chard", "Megan", "CONTROL_CHARACTER"),       # a NUL byte
    ("Pritchard", "\u202eMegan", "CONTROL_CHARACTER"),     # a right-to-left override
    ("Prit\u2066chard", "Megan", "CONTROL_CHARACTER"),     # a direction isolate
    ("Prit\x1bchard", "Megan", "CONTROL_CHARACTER"),       # an escape
])
def test_bad_names_are_refused_with_ae_and_the_reason(health: HealthHub, family: str, given: str,
                                                      reason: str) -> None:
    who = patient(1, family, given)
    ack = send(health, adt_message("A28", "N0001", who, sent=datetime.now(LOCAL_TIME) - timedelta(hours=1)))
    assert msa(ack)[1:3] == ["AE", "N0001"], ack[:300]
    assert reason in err(ack), err(ack)[:300]
    assert family not in ack and given not in ack  # the ACK names the rule, not the value
    assert held(health, who.hospital_number) == []
    with health.store.session() as s:  # kept verbatim as refused, never applied
        assert s.scalar(select(func.count()).select_from(InboundMessage).where(
            InboundMessage.message_id == "N0001", InboundMessage.status == "refused")) == 1


def test_a_good_name_with_accents_and_apostrophes_is_accepted(health: HealthHub) -> None:
    who = patient(2, "O'Brien-Ní Dhomhnaill", "Siân")
    ack = send(health, adt_message("A28", "N0002", who, sent=datetime.now(LOCAL_TIME) - timedelta(hours=1)))
    assert msa(ack)[1:3] == ["AA", "N0002"], ack
    [entry] = held(health, who.hospital_number)
    assert entry["resource"]["name"][0]["family"] == "O'Brien-Ní Dhomhnaill"


def test_former_names_are_capped_however_often_a_patient_is_renamed(health: HealthHub) -> None:
    start = datetime.now(LOCAL_TIME) - timedelta(days=2)
    who = patient(3)
    renames = MAX_NAMES + 15
    acks = [send(health, adt_message("A28", "R0000", who, sent=start))]
    for n in range(1, renames + 1):
        renamed = replace(who, family=f"Pritchard{chr(ord('a') + n % 26)}{chr(ord('a') + n // 26)}")
        acks.append(send(health, adt_message("A08", f"R{n:04d}", renamed, sent=start + timedelta(minutes=n))))
    assert all(msa(a)[1] == "AA" for a in acks), [a for a in acks if msa(a)[1] != "AA"][:1]
    [entry] = held(health, who.hospital_number)
    names = entry["resource"]["name"]
    assert len(names) == MAX_NAMES
    assert names[0]["family"] == renamed.family and names[0].get("use") != "old"
    # the most recent former names are the ones kept
    assert names[1]["family"] == replace(who, family=f"Pritchard{chr(ord('a') + (renames - 1) % 26)}"
                                                     f"{chr(ord('a') + (renames - 1) // 26)}").family


def test_long_header_values_and_ids_are_stored_or_refused_never_a_fault(health: HealthHub) -> None:
    sent = datetime.now(LOCAL_TIME) - timedelta(hours=1)
    long_control = "C" * 300
    first = send(health, adt_message("A28", long_control + "1", patient(10), sent=sent))
    second = send(health, adt_message("A28", long_control + "2", patient(11), sent=sent))
    # two control ids alike in their first 300 characters are two messages, not a duplicate
    assert msa(first)[1] == "AA" and msa(second)[1] == "AA", (first[:200], second[:200])
    assert "already applied" not in msa(second)[3] if len(msa(second)) > 3 else True
    assert held(health, patient(11).hospital_number) != []
    again = send(health, adt_message("A28", long_control + "2", patient(11), sent=sent))
    assert msa(again)[1] == "AA" and "already applied" in msa(again)[3]
    facility = send(health, adt_message("A28", "F0001", patient(12), sent=sent, facility="RX" + "9" * 200))
    assert msa(facility)[1] in ("AA", "AE"), facility[:300]
    long_number = replace(patient(13), hospital_number="H" + "7" * 300)
    ack = send(health, adt_message("A28", "L0001", long_number, sent=sent))
    assert msa(ack)[1] in ("AA", "AE"), ack[:300]
    with health.store.session() as s:
        kept = s.scalar(select(func.count()).select_from(InboundMessage))
    assert kept == 5

"""The MLLP listener end to end: real sockets, real store (SQLite and PostgreSQL), checked through /fhir."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from hl7apy.parser import parse_message
from sqlalchemy import func, select

from health_link.adt import AdtFeed
from health_link.hl7 import LOCAL_TIME, frame
from health_link.mllp import MllpClient, MllpListener, RunningListener
from health_link.simulator import SyntheticPatient, Visit, adt_message, synthetic_nhs_number, synthetic_patient
from hub.fhir import NHS_NUMBER
from hub.registry import build_pipeline
from hub.settings import Settings
from hub.store.db import Store
from hub.store.inbound import InboundMessage, raw_bytes
from hub.store.tables import Entity, OutboxEvent, PersonIndex
from tests.support.health import HealthHub, err, msa

HOSPITAL = "https://carehub.example.gov.uk/Id/hospital/RX1"


def outbox_count(hub: HealthHub) -> int:
    with hub.store.session() as s:
        return int(s.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


def test_done_when_sequence_ends_with_one_patient_one_finished_encounter_new_address_and_merge(
        health: HealthHub) -> None:
    start = datetime.now(LOCAL_TIME).replace(microsecond=0) - timedelta(days=1)
    patient = SyntheticPatient("H500001", synthetic_nhs_number(4242), "Pritchard", "Megan", "19470302", "F",
                               "12 Mill Road", "Carmarthen", "SA31 1AA")
    visit = Visit("V900001", "I", "WARD-B", "", "4", admitted=start + timedelta(hours=1))
    moved = replace(patient, street="3 Castle Street", town="Llanelli", postcode="SA15 1AB")
    duplicate = SyntheticPatient("H500777", None, "Pritchard", "Meg", "19470302", "F", "Unknown", "Carmarthen",
                                 "SA31 1AA")
    a01 = adt_message("A01", "C0002", patient, visit, sent=start + timedelta(hours=1))
    with health.connect() as mllp:
        acks = [mllp.send(adt_message("A28", "C0001", patient, sent=start))]
        acks.append(mllp.send(a01))
        events_after_admit = outbox_count(health)
        acks.append(mllp.send(a01))  # the same message resent
        assert outbox_count(health) == events_after_admit
        done = replace(visit, discharged=start + timedelta(hours=30))
        acks.append(mllp.send(adt_message("A03", "C0003", patient, done, sent=start + timedelta(hours=30))))
        acks.append(mllp.send(adt_message("A08", "C0004", moved, sent=start + timedelta(hours=31))))
        acks.append(mllp.send(adt_message("A28", "C0005", duplicate, sent=start + timedelta(hours=32))))
        dup_bundle = health.fhir("Patient", identifier=f"{HOSPITAL}|H500777")
        acks.append(mllp.send(adt_message("A40", "C0006", patient, sent=start + timedelta(hours=33),
                                          prior_hospital_number="H500777")))
    controls = ["C0001", "C0002", "C0002", "C0003", "C0004", "C0005", "C0006"]
    for ack, control in zip(acks, controls, strict=True):
        assert msa(ack)[1:3] == ["AA", control], ack
    assert "already applied" in msa(acks[2])[3]

    bundle = health.fhir("Patient", identifier=f"{NHS_NUMBER}|{patient.nhs_number}")
    assert len(bundle["entry"]) == 1
    survivor = bundle["entry"][0]["resource"]
    assert survivor["active"] is True
    assert survivor["address"][0]["line"] == ["3 Castle Street"] and survivor["address"][0]["postalCode"] == "SA15 1AB"
    assert "end" in survivor["address"][1]["period"]
    assert {"system": HOSPITAL, "value": "H500777"} in survivor["identifier"]

    encounters = health.fhir("Encounter", patient=survivor["id"])
    assert len(encounters["entry"]) == 1
    encounter = encounters["entry"][0]["resource"]
    assert encounter["status"] == "finished" and encounter["class"]["code"] == "IMP"
    assert encounter["period"]["start"] < encounter["period"]["end"]
    assert encounter["identifier"][0]["value"] == "V900001"

    merged_id = dup_bundle["entry"][0]["resource"]["id"]
    assert merged_id != survivor["id"]
    merged = health.fhir(f"Patient/{merged_id}")
    assert merged["active"] is False
    assert merged["link"] == [{"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}]
    with health.store.session() as s:
        assert s.scalar(select(func.count()).select_from(InboundMessage)) == 7
        statuses = [r for (r,) in s.execute(select(InboundMessage.status).order_by(InboundMessage.id))]
        assert statuses == ["accepted", "accepted", "duplicate", "accepted", "accepted", "accepted", "accepted"]
        kinds = [k for (k,) in s.execute(select(OutboxEvent.kind).where(OutboxEvent.person_id == merged_id))]
        assert "merged" in kinds
        active = s.scalars(select(PersonIndex.person_id).where(PersonIndex.nhs_number == patient.nhs_number,
                                                                PersonIndex.status == "active")).all()
        assert active == [survivor["id"]]


def test_garbage_unparseable_and_bad_nhs_number_get_their_naks_are_kept_and_the_listener_goes_on(
        health: HealthHub) -> None:
    wales_a40 = ("MSH|^~\\&|169|169|100|100|20250618154752||ADT^A40^ADT_A39|185270320250618154752|P|2.5.1|||||GBR||EN\r"
                 "EVN||||||20250618154752\rPID|||7000000001^^^NHS^NH~700002^^^169^PI\rMRG|700001^^^169^PI\r")
    unparseable = "MSH|^~\\&|PAS|RX1|CAREHUB|COUNCIL|20250101||ADT^A01^ADT_A01|BAD1|P|2.5.1\r12345|nonsense\r"
    too_new = adt_message("A28", "NEW1", synthetic_patient(1), version="2.9")
    with health.connect() as mllp:
        mllp.send_raw(b"stray bytes between frames")
        garbage = mllp.send(b"\x00\xffthis is not HL7 at all")
        bad = mllp.send(unparseable)
        nhs = mllp.send(wales_a40)
        version = mllp.send(too_new)
        good = mllp.send(adt_message("A28", "GOOD1", synthetic_patient(2)))
    assert msa(garbage)[1:3] == ["AR", ""] and err(garbage)
    assert msa(bad)[1:3] == ["AR", "BAD1"]
    assert msa(nhs)[1:3] == ["AE", "185270320250618154752"]
    assert "|102^Data type error^HL70357|E|" in err(nhs) and "PID^1^3" in err(nhs)
    assert msa(version)[1:3] == ["AR", "NEW1"] and "203^" in err(version)
    assert msa(good)[1:3] == ["AA", "GOOD1"]
    for ack in (garbage, bad, nhs, version, good):
        assert parse_message(ack).msh.msh_9.to_er7().startswith("ACK")
    with health.store.session() as s:
        rows = s.scalars(select(InboundMessage).order_by(InboundMessage.id)).all()
        assert [(r.answer, r.status) for r in rows] == [(None, "refused"),  # stray bytes: kept, not answered
            ("AR", "refused"), ("AR", "refused"), ("AE", "refused"), ("AR", "refused"), ("AA", "accepted")]
        assert raw_bytes(rows[0]) == b"stray bytes between frames"
        assert raw_bytes(rows[1]) == b"\x00\xffthis is not HL7 at all"
        assert "7000000001" in rows[3].raw and rows[3].raw_format == "text"
        assert s.scalar(select(func.count()).select_from(PersonIndex).where(
            PersonIndex.nhs_number == "7000000001")) == 0
        assert s.scalar(select(func.count()).select_from(Entity).where(Entity.document.contains("7000000001"))) == 0
        assert s.scalar(select(func.count()).select_from(PersonIndex)) == 1


def test_a_refused_message_fixed_and_resent_under_the_same_id_is_applied(health: HealthHub) -> None:
    patient = synthetic_patient(3)
    broken = replace(patient, birth_date="21990101")
    with health.connect() as mllp:
        first = mllp.send(adt_message("A28", "FIX1", broken))
        second = mllp.send(adt_message("A28", "FIX1", patient))
    assert msa(first)[1] == "AE" and "DATE_IN_FUTURE" in err(first)
    assert msa(second)[1:3] == ["AA", "FIX1"]
    assert len(health.fhir("Patient", identifier=f"{HOSPITAL}|{patient.hospital_number}")["entry"]) == 1


def test_transfer_cancellations_and_line_endings(health: HealthHub) -> None:
    start = datetime.now(LOCAL_TIME).replace(microsecond=0) - timedelta(days=2)
    patient = synthetic_patient(7)
    visit = Visit("V7", "I", "AMU", "", "2", admitted=start)
    other = Visit("V8", "I", "CCU", "", "9", admitted=start + timedelta(hours=1))
    ward7 = replace(visit, ward="WARD-7", bed="11")
    messages = [
        adt_message("A01", "L1", patient, visit, sent=start, segment_end="\n"),
        adt_message("A02", "L2", patient, ward7, sent=start + timedelta(hours=2), segment_end="\r\n"),
        adt_message("A12", "L3", patient, visit, sent=start + timedelta(hours=3)),
        adt_message("A03", "L4", patient, replace(visit, discharged=start + timedelta(hours=9)),
                    sent=start + timedelta(hours=9)),
        adt_message("A13", "L5", patient, visit, sent=start + timedelta(hours=10)),
        adt_message("A01", "L6", patient, other, sent=start + timedelta(hours=11)),
        adt_message("A11", "L7", patient, other, sent=start + timedelta(hours=12)),
    ]
    with health.connect() as mllp:
        acks = mllp.send_many(messages, window=4)
    assert [msa(a)[1] for a in acks] == ["AA"] * 7, acks
    pid = health.fhir("Patient", identifier=f"{HOSPITAL}|{patient.hospital_number}")["entry"][0]["resource"]["id"]
    encounters = {e["resource"]["identifier"][0]["value"]: e["resource"]
                  for e in health.fhir("Encounter", patient=pid)["entry"]}
    assert encounters["V7"]["status"] == "in-progress" and "end" not in encounters["V7"]["period"]
    assert encounters["V7"]["location"][0]["location"]["display"] == "AMU 2"
    assert encounters["V8"]["status"] == "cancelled"


def test_many_connections_at_once_each_get_their_own_acks_in_order(health: HealthHub) -> None:
    results: dict[int, list[str]] = {}

    def send(k: int) -> None:
        batch = [adt_message("A28", f"P{k}-{i}", synthetic_patient(1000 + k * 100 + i)) for i in range(25)]
        with health.connect() as mllp:
            results[k] = mllp.send_many(batch, window=5)

    threads = [threading.Thread(target=send, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for k in range(4):
        assert [msa(a)[1:3] for a in results[k]] == [["AA", f"P{k}-{i}"] for i in range(25)]
    with health.store.session() as s:
        assert s.scalar(select(func.count()).select_from(PersonIndex)) == 100


def test_a_frame_split_across_writes_and_two_frames_in_one_write(health: HealthHub) -> None:
    one = frame(adt_message("A28", "S1", synthetic_patient(11)))
    two = b"".join(frame(adt_message("A28", f"S{i}", synthetic_patient(10 + i))) for i in (2, 3))
    with health.connect() as mllp:
        mllp.send_raw(one[:20])
        mllp.send_raw(one[20:])
        first = mllp.read_ack()
        mllp.send_raw(two)
        rest = [mllp.read_ack(), mllp.read_ack()]
    assert [msa(a)[2] for a in (first, *rest)] == ["S1", "S2", "S3"]


def test_a_listener_with_a_reader_process_answers_alike(store: Store, tmp_path: Path) -> None:
    settings = Settings(database_url=store.url, data_dir=tmp_path / "var")
    running = RunningListener(MllpListener(store, AdtFeed(build_pipeline(settings, store)), readers=1))
    try:
        batch = [adt_message("A28", f"R{i}", synthetic_patient(300 + i)) for i in range(40)]
        batch.insert(7, "MSH|^~\\&|PAS|RX1|||20250101||ADT^A01^ADT_A01|BADR|P|2.5.1\r12345|x\r")
        with MllpClient("127.0.0.1", running.port) as mllp:
            acks = mllp.send_many(batch, window=40)
    finally:
        running.stop()
    codes = [msa(a)[1:3] for a in acks]
    assert codes[7] == ["AR", "BADR"]
    assert [c for i, c in enumerate(codes) if i != 7] == [["AA", f"R{i}"] for i in range(40)]


def test_a_merge_naming_an_unknown_prior_patient_is_an_ae_and_a_repeated_merge_changes_nothing(
        health: HealthHub) -> None:
    survivor, prior = synthetic_patient(21), replace(synthetic_patient(22), nhs_number=None)
    with health.connect() as mllp:
        unknown = mllp.send(adt_message("A40", "M0", survivor, prior_hospital_number="H999999"))
        mllp.send_many([adt_message("A28", "M1", survivor), adt_message("A28", "M2", prior)], window=2)
        merged = mllp.send(adt_message("A40", "M3", survivor, prior_hospital_number=prior.hospital_number))
        again = mllp.send(adt_message("A40", "M4", survivor, prior_hospital_number=prior.hospital_number))
    assert msa(unknown)[1:3] == ["AE", "M0"] and "204^" in err(unknown) and "MRG^1^1" in err(unknown)
    assert msa(merged)[1:4] == ["AA", "M3", "merged"]
    assert msa(again)[1:4] == ["AA", "M4", "already one patient"]
    with health.store.session() as s:
        assert s.scalar(select(func.count()).select_from(PersonIndex).where(PersonIndex.status == "active")) == 1

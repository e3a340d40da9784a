"""HL7 v2 as real feeds send it: optional visit numbers, v2.3 ACKs, lost end blocks, conflicting resends,
enhanced-mode acknowledgement, A34/A35 merges, merged NHS numbers, and `carehub mllp` under signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import hl7
import pytest
from hl7apy.parser import parse_message
from sqlalchemy import select

from health_link.adt import AdtFeed
from health_link.hl7 import LOCAL_TIME, frame
from health_link.mllp import MllpClient, MllpListener, RunningListener
from health_link.simulator import Visit, adt_message, synthetic_patient
from hub.fhir import NHS_NUMBER
from hub.registry import build_pipeline
from hub.settings import Settings
from hub.store.db import Store
from hub.store.inbound import InboundMessage, raw_bytes
from tests.support.health import HealthHub, msa
from tests.support.waiting import wait_for

HOSPITAL = "https://carehub.example.gov.uk/Id/hospital/RX1"


def msh(ack: str) -> list[str]:
    return ack.split("\r")[0].split("|")


def kept(health: HealthHub) -> list[InboundMessage]:
    with health.store.session() as s:
        rows = list(s.scalars(select(InboundMessage).order_by(InboundMessage.id)))
        s.expunge_all()
        return rows


def test_an_a04_without_a_visit_number_registers_the_person_and_keys_the_visit_by_admit_time(
        health: HealthHub) -> None:
    patient = synthetic_patient(31)
    admitted = datetime.now(LOCAL_TIME).replace(microsecond=0) - timedelta(hours=3)
    visit = Visit("", "O", admitted=admitted)
    with health.connect() as mllp:
        registered = mllp.send(adt_message("A04", "V1", patient, visit, sent=admitted))
        other_day = mllp.send(adt_message("A04", "V2", patient, replace(visit, admitted=admitted - timedelta(days=2)),
                                          sent=admitted))
        done = mllp.send(adt_message("A03", "V3", patient, replace(visit, discharged=admitted + timedelta(hours=1)),
                                     sent=admitted + timedelta(hours=1)))
    assert [msa(a)[1] for a in (registered, other_day, done)] == ["AA", "AA", "AA"], registered
    found = health.fhir("Patient", identifier=f"{NHS_NUMBER}|{patient.nhs_number}")
    person = found["entry"][0]["resource"]["id"]
    encounters = [e["resource"] for e in health.fhir("Encounter", patient=person)["entry"]]
    assert len(encounters) == 2
    statuses = sorted((e["period"]["start"][:16], e["status"]) for e in encounters)
    assert [s for _, s in statuses] == ["in-progress", "finished"]
    assert all("identifier" not in e for e in encounters)


@pytest.mark.parametrize(("version", "parts"), [("2.2", 2), ("2.3", 2), ("2.3.1", 3), ("2.4", 3), ("2.5.1", 3)])
def test_acks_carry_msh9_as_their_version_defines_and_a_short_control_id(
        health: HealthHub, version: str, parts: int) -> None:
    with health.connect() as mllp:
        ack = mllp.send(adt_message("A28", f"K{version}", synthetic_patient(40), version=version))
    header = msh(ack)
    assert msa(ack)[1:3] == ["AA", f"K{version}"]
    assert len(header[8].split("^")) == parts and header[8].startswith("ACK^A28")
    assert 0 < len(header[9]) <= 20 and header[11] == version
    parsed = hl7.parse(ack)
    assert str(parsed.segment("MSA")[2]) == f"K{version}"
    if version != "2.2":  # hl7apy knows 2.3 onwards
        assert parse_message(ack).msh.msh_10.to_er7() == header[9]


def test_a_frame_that_lost_its_end_block_is_kept_and_refused_and_the_next_one_applied(health: HealthHub) -> None:
    first = adt_message("A28", "LOST1", synthetic_patient(41)).encode()
    second = adt_message("A28", "NEXT1", synthetic_patient(42)).encode()
    with health.connect() as mllp:
        mllp.send_raw(b"\x0b" + first + b"\x0b" + second + b"\x1c\x0d")
        acks = [mllp.read_ack(), mllp.read_ack()]
        resent = mllp.send(first)
    assert [msa(a)[1:3] for a in acks] == [["AR", "LOST1"], ["AA", "NEXT1"]]
    assert msa(resent)[1:3] == ["AA", "LOST1"]
    rows = kept(health)
    assert [(r.message_id, r.status) for r in rows] == [("LOST1", "refused"), ("NEXT1", "accepted"),
                                                        ("LOST1", "accepted")]
    assert raw_bytes(rows[0]) == first


def test_a_cut_frame_at_the_end_of_a_connection_is_kept(health: HealthHub) -> None:
    partial = adt_message("A28", "CUT1", synthetic_patient(43)).encode()[:60]
    with health.connect() as mllp:
        assert msa(mllp.send(adt_message("A28", "WHOLE", synthetic_patient(44))))[1] == "AA"
        mllp.send_raw(b"\x0b" + partial)
    wait_for(lambda: len(kept(health)) == 2, "the cut frame kept", timeout=5, every=0.05)
    rows = kept(health)
    assert raw_bytes(rows[1]) == partial and rows[1].status == "refused"


def test_a_resend_with_the_same_id_and_different_content_is_a_conflict_kept_raw(health: HealthHub) -> None:
    patient = synthetic_patient(45)
    original = adt_message("A28", "SAME1", patient)
    changed = adt_message("A28", "SAME1", replace(patient, family="Different"))
    with health.connect() as mllp:
        assert msa(mllp.send(original))[1] == "AA"
        again = mllp.send(original)
        clash = mllp.send(changed)
        both = mllp.send_many([adt_message("A28", "PAIR", patient),
                               adt_message("A28", "PAIR", replace(patient, given="Other"))], window=2)
    assert msa(again)[1:4] == ["AA", "SAME1", "already applied; nothing changed"]
    assert msa(clash)[1:3] == ["AE", "SAME1"] and "205^" in clash and "MSH^1^10" in clash
    assert [msa(a)[1] for a in both] == ["AA", "AE"]
    rows = kept(health)
    assert [r.status for r in rows] == ["accepted", "duplicate", "conflict", "accepted", "conflict"]
    assert raw_bytes(rows[2]).decode() == changed
    found = health.fhir("Patient", identifier=f"{NHS_NUMBER}|{patient.nhs_number}")["entry"][0]["resource"]
    assert found["name"][0]["family"] == patient.family and found["name"][0]["given"] == [patient.given]


@pytest.fixture
def enhanced(store: Store, tmp_path: Path) -> RunningListener:
    settings = Settings(database_url=store.url, data_dir=tmp_path / "var")
    running = RunningListener(MllpListener(store, AdtFeed(build_pipeline(settings, store), enhanced_acks=True)))
    yield running
    running.stop()


def with_ack_types(message: str, accept: str, application: str) -> str:
    return message.replace("|||AL|NE|GBR|", f"|||{accept}|{application}|GBR|", 1)


def test_enhanced_mode_answers_commit_acks_as_msh15_asks(enhanced: RunningListener) -> None:
    bad_nhs = adt_message("A28", "E2", replace(synthetic_patient(51), nhs_number="1234567890"))
    with MllpClient("127.0.0.1", enhanced.port) as mllp:
        ok = mllp.send(with_ack_types(adt_message("A28", "E1", synthetic_patient(50)), "AL", "NE"))
        error = mllp.send(with_ack_types(bad_nhs, "AL", "AL"))
        reject = mllp.send(with_ack_types(adt_message("A28", "E3", synthetic_patient(52), version="2.9"), "AL", "NE"))
        # NE: no acknowledgement; ER: only on error; SU: only on success; so the next ACK read is E7's
        mllp.send_raw(frame(with_ack_types(adt_message("A28", "E4", synthetic_patient(53)), "NE", "NE")))
        mllp.send_raw(frame(with_ack_types(adt_message("A28", "E5", synthetic_patient(54)), "ER", "NE")))
        mllp.send_raw(frame(with_ack_types(bad_nhs.replace("|E2|", "|E6|"), "SU", "NE")))
        last = mllp.send(with_ack_types(adt_message("A28", "E7", synthetic_patient(55)), "SU", "NE"))
        original = mllp.send(with_ack_types(adt_message("A28", "E8", synthetic_patient(56)), "", ""))
    assert msa(ok)[1:3] == ["CA", "E1"] and msa(error)[1:3] == ["CE", "E2"] and msa(reject)[1:3] == ["CR", "E3"]
    assert msa(last)[1:3] == ["CA", "E7"]
    assert msa(original)[1:3] == ["AA", "E8"]
    for ack in (ok, error, reject, last):
        assert parse_message(ack).msa.msa_1.to_er7() in ("CA", "CE", "CR")


def test_original_mode_stays_the_default(health: HealthHub) -> None:
    with health.connect() as mllp:
        ack = mllp.send(adt_message("A28", "O1", synthetic_patient(57)))  # MSH-15/16 AL/NE, listener not enhanced
    assert msa(ack)[1:3] == ["AA", "O1"]


def test_a34_merges_like_a40_and_a35_changes_nothing(health: HealthHub) -> None:
    survivor, prior = synthetic_patient(60), replace(synthetic_patient(61), nhs_number=None)
    a34 = adt_message("A40", "L3", survivor, prior_hospital_number=prior.hospital_number).replace(
        "ADT^A40^ADT_A39", "ADT^A34^ADT_A30").replace("EVN|A40|", "EVN|A34|")
    a35 = a34.replace("ADT^A34^ADT_A30", "ADT^A35^ADT_A30").replace("|L3|", "|L4|")
    with health.connect() as mllp:
        mllp.send_many([adt_message("A28", "L1", survivor), adt_message("A28", "L2", prior)], window=2)
        merged = mllp.send(a34)
        accounts = mllp.send(a35)
    assert msa(merged)[1:4] == ["AA", "L3", "merged"]
    assert msa(accounts)[1:3] == ["AA", "L4"] and "account numbers" in msa(accounts)[3]
    by_prior = health.fhir("Patient", identifier=f"{HOSPITAL}|{prior.hospital_number}")
    by_survivor = health.fhir("Patient", identifier=f"{NHS_NUMBER}|{survivor.nhs_number}")
    assert [e["resource"]["id"] for e in by_prior["entry"]] == [e["resource"]["id"] for e in by_survivor["entry"]]


def test_after_an_a40_the_merged_away_nhs_number_finds_the_survivor(health: HealthHub) -> None:
    survivor, prior = synthetic_patient(70), synthetic_patient(71)
    assert survivor.nhs_number != prior.nhs_number
    with health.connect() as mllp:
        mllp.send_many([adt_message("A28", "N1", survivor), adt_message("A28", "N2", prior)], window=2)
        assert msa(mllp.send(adt_message("A40", "N3", survivor, prior_hospital_number=prior.hospital_number)))[1] \
            == "AA"
    kept_id = health.fhir("Patient", identifier=f"{NHS_NUMBER}|{survivor.nhs_number}")["entry"][0]["resource"]["id"]
    old = health.fhir("Patient", identifier=f"{NHS_NUMBER}|{prior.nhs_number}")
    assert old["total"] == 1 and [e["resource"]["id"] for e in old["entry"]] == [kept_id]
    api = health.client.get("/api/persons", params={"nhs_number": prior.nhs_number}, headers=health.headers())
    assert [p["id"] for p in api.json()["items"]] == [kept_id]


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_carehub_mllp_stops_with_its_readers_on_sigterm_and_on_sigint_in_the_background(
        tmp_path: Path, signum: int) -> None:
    env = {**os.environ, "CAREHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
           "CAREHUB_DATA_DIR": str(tmp_path / "var")}
    carehub = str(Path(sys.executable).with_name("carehub"))
    # as a shell starts a background job: SIGINT ignored from the start
    process = subprocess.Popen([carehub, "mllp", "--port", "0", "--readers", "1"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert process.stdout is not None
        line = ""
        deadline = time.monotonic() + 120
        while "listening for MLLP" not in line and time.monotonic() < deadline:
            line = process.stdout.readline()
        port = int(re.search(r":(\d+) ", line)[1])  # type: ignore[index]
        with MllpClient("127.0.0.1", port) as mllp:
            assert msa(mllp.send(adt_message("A28", "S1", synthetic_patient(80))))[1] == "AA"
        readers = _children(process.pid)
        assert readers, "the listener should run a reader process"
        process.send_signal(signum)
        assert process.wait(60) == 0
        wait_for(lambda: not any(_alive(r) for r in readers), "the reader processes to exit", timeout=10)
        assert "stopped after 1 messages" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_reader_process_keeps_broken_frames_and_stray_bytes_alike(store: Store, tmp_path: Path) -> None:
    settings = Settings(database_url=store.url, data_dir=tmp_path / "var")
    running = RunningListener(MllpListener(store, AdtFeed(build_pipeline(settings, store)), readers=1))
    first = adt_message("A28", "RLOST", synthetic_patient(46)).encode()
    second = adt_message("A28", "RNEXT", synthetic_patient(47)).encode()
    try:
        with MllpClient("127.0.0.1", running.port) as mllp:
            mllp.send_raw(b"noise" + b"\x0b" + first + b"\x0b" + second + b"\x1c\x0d")
            acks = [mllp.read_ack(), mllp.read_ack()]
    finally:
        running.stop()
    assert [msa(a)[1:3] for a in acks] == [["AR", "RLOST"], ["AA", "RNEXT"]]
    with store.session() as s:
        rows = [(raw_bytes(r), r.answer, r.status) for r in s.scalars(select(InboundMessage).order_by(
            InboundMessage.id))]
    assert rows == [(b"noise", None, "refused"), (first, "AR", "refused"), (second, "AA", "accepted")]

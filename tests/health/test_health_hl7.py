"""Reading HL7 v2 as found in the wild: separators, escapes, character sets, versions, Z-segments, ACKs."""

from __future__ import annotations

import pytest
from hl7apy.parser import parse_message

from health_link.adt import interpret, read_person
from health_link.hl7 import (
    Hl7Error,
    Hl7ParseError,
    build_ack,
    conformance_problems,
    frames,
    parse,
    parse_time,
)
from health_link.simulator import adt_message, synthetic_patient

NAME_WITH_ESCAPES = "O\\T\\Brien\\F\\Jones\\S\\x\\R\\y\\E\\z"


def a28(version: str = "2.5.1", end: str = "\r", charset: str = "UNICODE UTF-8", family: str = "Rees") -> str:
    return end.join([
        f"MSH|^~\\&|PAS|RX1|CAREHUB|COUNCIL|20250301101500||ADT^A28^ADT_A05|M1|P|{version}|||AL|NE|GBR|{charset}",
        "EVN|A28|20250301101500",
        f"PID|1||9990000018^^^NHS^NH~H1^^^RX1^PI||{family}^Siân^^^Mrs||19600101|F|||1 High Street^^Llandeilo^^SA19 6AA",
        "ZPI|local|stuff^kept",
    ]) + end


@pytest.mark.parametrize("end", ["\r", "\n", "\r\n"])
def test_cr_lf_and_crlf_segment_endings_read_alike(end: str) -> None:
    message = parse(a28(end=end).encode())
    assert message.segment_names() == ["MSH", "EVN", "PID", "ZPI"]
    assert message.value("PID", 5, 2) == "Siân"
    assert message.value("ZPI", 2, 2) == "kept"


def test_escape_sequences_are_decoded() -> None:
    message = parse(a28(family=NAME_WITH_ESCAPES).encode())
    assert message.value("PID", 5, 1) == "O&Brien|Jones^x~y\\z"


def test_msh18_names_the_character_set() -> None:
    latin = a28(charset="8859/1").encode("latin-1")
    assert parse(latin).value("PID", 5, 2) == "Siân"
    with pytest.raises(Hl7ParseError) as refused:
        parse(a28(charset="ISO IR87").encode())
    assert refused.value.answer == "AR" and refused.value.location == "MSH^1^18"


def test_no_msh18_falls_back_to_windows_1252() -> None:
    text = a28(charset="").encode("cp1252")
    assert parse(text).value("PID", 5, 2) == "Siân"


@pytest.mark.parametrize("version", ["2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1"])
def test_versions_2_2_to_2_5_1_are_taken(version: str) -> None:
    event = interpret(0, parse(a28(version=version).encode()))
    assert event.patient_key == "RX1/H1" and event.person["nhs_number"] == "9990000018"


def test_the_nhs_number_comes_from_the_nh_repetition_and_a_bad_one_is_an_ae() -> None:
    key, person = read_person(parse(a28().encode()))
    assert person["identifiers"] == [{"system": "hospital/RX1", "value": "H1"}]
    bad = a28().replace("9990000018", "9990000017")
    with pytest.raises(Hl7Error) as refused:
        interpret(0, parse(bad.encode()))
    assert refused.value.answer == "AE" and refused.value.hl7_code == 102
    assert "9990000017" not in refused.value.message


def test_local_times_are_read_as_uk_time_and_zones_are_honoured() -> None:
    assert parse_time("20250701120000").isoformat() == "2025-07-01T11:00:00+00:00"  # type: ignore[union-attr]
    assert parse_time("20250101120000").isoformat() == "2025-01-01T12:00:00+00:00"  # type: ignore[union-attr]
    assert parse_time("202507011200+0200").isoformat() == "2025-07-01T10:00:00+00:00"  # type: ignore[union-attr]
    assert parse_time("not a time") is None


@pytest.mark.parametrize("version", ["2.3", "2.5.1"])
def test_acks_are_well_formed_for_hl7apy(version: str) -> None:
    header = parse(a28(version=version).encode()).header
    error = Hl7Error("AE", 102, "PID-3 holds an NHS number that fails | the check", "PID^1^3")
    ack = build_ack(header, "AE", "refused", error)
    parsed = parse_message(ack)
    assert parsed.msa.msa_1.to_er7() == "AE" and parsed.msa.msa_2.to_er7() == "M1"
    assert parsed.msh.msh_12.to_er7() == version
    assert "\\F\\" in parsed.err.to_er7()


def test_frames_keep_junk_and_lost_end_blocks_apart_and_keep_a_partial_one() -> None:
    buffer = bytearray(b"junk\x0bone\x1c\x0d\r\n\x0btwo\x1c\x0d\x0bno end\x0bthree\x1c\x0d\x0bthr")
    found, used = frames(buffer)
    assert found == [b"junk", b"one", b"two", b"no end", b"three"] and buffer[used:] == b"\x0bthr"
    assert [type(f).__name__ for f in found] == ["StrayBytes", "bytes", "bytes", "BrokenFrame", "bytes"]


def test_simulated_messages_parse_with_visits() -> None:
    message = parse(adt_message("A28", "X1", synthetic_patient(1)).encode())
    assert message.header.message_type == "ADT^A28" and message.header.charset == "utf-8"


def test_the_strict_conformance_check_runs_on_demand() -> None:
    a01_without_visit = adt_message("A01", "X1", synthetic_patient(1))
    assert conformance_problems(a01_without_visit) == ["Missing required child ADT_A01.PV1"]
    assert conformance_problems(build_ack(parse(a01_without_visit.encode()).header, "AA")) == []

"""ADT semantics: HL7 v2 admit/transfer/discharge/registration/merge messages into the canonical record.

:class:`AdtFeed` applies a batch of received messages inside the caller's
transaction and answers each one. The patient (PID) becomes a canonical
``Person`` and the visit (PV1, keyed by its visit number) a ``HealthEvent``, both
through the hub's pipeline as source ``health_adt`` (streams ``patient`` and
``encounter``), so raw records, provenance, survivorship, identity and change
events all work as for any other source. Each message restates what it knows,
so it is laid over what the hub already holds for that patient or visit:

* A28/A31 add or update a person; A08 updates the person and, with a visit number, the visit.
* A01 admit, A04 register, A05 pre-admit (planned); A02 transfer (ward and bed move); A03 discharge (finished).
* A11 cancels an admission (cancelled), A12 a transfer (PV1-3 holds the location returned to),
  A13 a discharge (in progress again).
* A40 merges the registration MRG-1 names into the one PID-3 names: the prior person is marked
  ``merged_into`` the survivor, its identifiers and records move, both get a change event.

NHS numbers are read from PID-3 (and PID-2) repetitions typed ``NH`` or assigned by
``NHS``; one failing the modulus-11 check makes the message an AE and is never
stored as an NHS number. A message already applied (same MSH-4 and MSH-10) is an AA
that changes nothing. Every message, whatever its answer, is kept verbatim in
``inbound_messages``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from health_link.hl7 import (
    BrokenFrame,
    Header,
    Hl7Error,
    Hl7Message,
    Hl7ParseError,
    StrayBytes,
    build_ack,
    check_header,
    parse,
    parse_date,
    read_header,
)
from health_link.hl7 import parse_time as hl7_time
from hub.contract import MappedRecord, SourceRecord
from hub.errors import Conflict, HubError
from hub.model import HealthEvent, Person
from hub.model.validators import MAX_NAMES, is_valid_nhs_number, normalise_postcode
from hub.pipeline import Pipeline, quarantine_reason
from hub.store.fit import fit_to
from hub.store.inbound import (
    ACCEPTED,
    CONFLICT,
    DUPLICATE,
    FAILED,
    REFUSED,
    InboundMessage,
    applied_messages,
    raw_columns,
    same_message,
)
from hub.store.merges import merge
from hub.store.tables import Entity, SourceLink, utcnow

log = logging.getLogger(__name__)

SOURCE = "health_adt"
PATIENT, ENCOUNTER = "patient", "encounter"
PERSON_EVENTS = frozenset({"A28", "A31"})
VISIT_EVENTS = frozenset({"A01", "A02", "A03", "A04", "A05", "A11", "A12", "A13"})
MERGE_EVENTS = frozenset({"A34", "A40"})  # A34: the older merge of patient ids, read as A40
EVENTS = PERSON_EVENTS | VISIT_EVENTS | MERGE_EVENTS | {"A08", "A35"}
NHS_AUTHORITIES = frozenset({"NHS", "2.16.840.1.113883.2.1.4.1"})
SEX = {"M": "male", "F": "female", "O": "other", "A": "other", "U": "unknown", "N": "unknown"}
ETHNIC = frozenset("ABCDEFGHJKLMNPRSZ")
LOCAL_TYPES = ("PI", "MR", "PN", "PT", "")


@dataclass(slots=True)
class Received:
    """One message as a listener received it."""

    raw: bytes
    peer: str | None = None
    received_at: datetime = field(default_factory=utcnow)
    reading: AdtEvent | Answer | None = None


COMMIT_CODES = {"AA": "CA", "AE": "CE", "AR": "CR"}


@dataclass(slots=True)
class Answer:
    """What the hub answers a message, and what it kept of it.

    ``code`` is the outcome as an original-mode code (AA, AE, AR). With ``enhanced`` set (the listener offers
    enhanced mode and the sender asked for it in MSH-15/16) the ACK is the commit acknowledgement CA, CE or
    CR, sent only when MSH-15 asks for it in that case (AL always, NE never, ER on error, SU on success).
    """

    code: str
    status: str
    header: Header | None = None
    text: str = ""
    error: Hl7Error | None = None
    enhanced: bool = False
    silent: bool = False  # kept but not answered (stray bytes between frames)

    @property
    def sent_code(self) -> str | None:
        """The MSA-1 code the sender is answered with (None: no answer is sent, as MSH-15 asked or for stray
        bytes)."""
        if self.silent:
            return None
        if not self.enhanced or self.header is None:
            return self.code
        condition = self.header.accept_ack or "AL"
        wanted = {"AL": True, "NE": False, "ER": self.code != "AA", "SU": self.code == "AA"}.get(condition, True)
        return COMMIT_CODES[self.code] if wanted else None

    def ack(self) -> str:
        """The ACK message text."""
        return build_ack(self.header, self.sent_code or self.code, self.text, self.error)

    def ack_bytes(self) -> bytes | None:
        """The ACK encoded as the sender's message was (UTF-8 for one that could not be read); None when the
        sender asked for no acknowledgement."""
        if self.sent_code is None:
            return None
        codec = self.header.charset if self.header and self.header.charset not in ("utf-16",) else "utf-8"
        return self.ack().encode(codec or "utf-8", errors="replace")


@dataclass(slots=True)
class AdtEvent:
    """A message read for what it says: the patient, the visit, a prior registration to merge."""

    index: int
    header: Header
    patient_key: str
    person: dict[str, Any]
    encounter_key: str | None = None
    encounter: dict[str, Any] | None = None
    clear: tuple[str, ...] = ()
    prior_key: str | None = None
    note: str | None = None  # taken but changes nothing (A35): the answer's text


class BatchFault(HubError):
    """Something in a batch failed that a message-by-message retry will pin down."""

    code = "CAREHUB-E312"


def _ae(hl7_code: int, message: str, location: str | None = None) -> Hl7Error:
    return Hl7Error("AE", hl7_code, message, location)


# -- reading a message --------------------------------------------------------------------------


def _cx(rep: list[list[str]]) -> tuple[str, str, str]:
    """An extended identifier (CX): its value, assigning authority (CX.4) and type code (CX.5, upper case)."""
    authority = rep[3][0].strip() if len(rep) > 3 else ""
    kind = rep[4][0].strip().upper() if len(rep) > 4 else ""
    return rep[0][0].strip(), authority, kind


def _is_nhs_number(authority: str, kind: str) -> bool:
    """An identifier typed NH (or NHS), or assigned by the NHS, carries an NHS number."""
    return kind in ("NH", "NHS") or authority.upper() in NHS_AUTHORITIES


def _identifiers(msg: Hl7Message, facility: str) -> tuple[str | None, list[tuple[str, str, str]]]:
    """(NHS number, [(type, authority, value)]) from PID-3 and PID-2; AE for an NHS number that fails."""
    nhs: str | None = None
    local: list[tuple[str, str, str]] = []
    for field_no in (3, 2):
        for rep in msg.repetitions("PID", field_no):
            value, authority, kind = _cx(rep)
            if not value:
                continue
            if _is_nhs_number(authority, kind):
                digits = re.sub(r"[\s-]", "", value)
                if not is_valid_nhs_number(digits):
                    raise _ae(102, f"PID-{field_no} holds an NHS number that is not ten digits with a valid "
                              "modulus-11 check digit", f"PID^1^{field_no}")
                nhs = nhs or digits
            elif field_no == 3:
                local.append((kind, authority or facility, value))
    return nhs, local


def _patient_key(nhs: str | None, local: list[tuple[str, str, str]]) -> str:
    for wanted in LOCAL_TYPES:
        for kind, authority, value in local:
            if kind == wanted or wanted == "":
                return f"{authority}/{value}"
    if nhs:
        return f"NHS/{nhs}"
    raise _ae(101, "PID-3 holds no patient identifier", "PID^1^3")


def _names(msg: Hl7Message) -> list[dict[str, Any]]:
    names: list[dict[str, Any]] = []
    for rep in msg.repetitions("PID", 5):
        parts = [c[0].strip() if c else "" for c in rep] + [""] * 6
        family, given = parts[0], [p for p in (parts[1], parts[2]) if p]
        if not family and not given:
            continue
        name: dict[str, Any] = {"use": "official" if not names else "usual", "given": given}
        if family:
            name["family"] = family
        if parts[4]:
            name["prefix"] = parts[4]
        names.append(name)
    return names


def _addresses(msg: Hl7Message) -> list[dict[str, Any]]:
    addresses = []
    for rep in msg.repetitions("PID", 11):
        parts = [c[0].strip() if c else "" for c in rep] + [""] * 7
        street, other, city, county, postcode, kind = parts[0], parts[1], parts[2], parts[3], parts[4], parts[6]
        text = ", ".join(p for p in (street, other, city, county, postcode) if p)
        if not text:
            continue
        address: dict[str, Any] = {"use": {"C": "temp", "M": "correspondence", "B": "home"}.get(kind.upper(), "home"),
                                   "text": text}
        number = re.match(r"(\d{1,4})([A-Za-z]?)\s+(.+)", street)
        if number:
            address["pao_start_number"] = int(number[1])
            if number[2]:
                address["pao_start_suffix"] = number[2].upper()
            address["street"] = number[3]
        elif street:
            address["street"] = street
        if other:
            address["locality"] = other
        if city:
            address["town"] = city
        if postcode:
            # the text keeps what was sent; a postcode the hub cannot read is not invented
            with contextlib.suppress(ValueError):
                address["postcode"] = normalise_postcode(postcode)
        addresses.append(address)
    return addresses


def read_person(msg: Hl7Message) -> tuple[str, dict[str, Any]]:
    """The patient's key in this feed and what PID says about them (only what it says)."""
    facility = msg.header.sending_facility
    nhs, local = _identifiers(msg, facility)
    key = _patient_key(nhs, local)
    person: dict[str, Any] = {
        "identifiers": [{"system": f"hospital/{authority}", "value": value} for _, authority, value in local],
    }
    names = _names(msg)
    if names:
        person["names"] = names
    born = msg.value("PID", 7)
    if born:
        birth = parse_date(born)
        if birth is None:
            raise _ae(102, "PID-7 is not a date", "PID^1^7")
        person["birth_date"] = birth.isoformat()
    sex = msg.value("PID", 8).upper()
    if sex:
        person["sex"] = SEX.get(sex, "unknown")
    addresses = _addresses(msg)
    if addresses:
        person["addresses"] = addresses
    if nhs:
        person["nhs_number"] = nhs
        status = msg.value("PID", 32).upper().removeprefix("NSTS")
        person["nhs_number_status"] = status if re.fullmatch(r"0[1-8]", status) else None
    ethnic = msg.value("PID", 22).upper()
    if len(ethnic) == 1 and ethnic in ETHNIC:
        person["ethnicity"] = ethnic
    died = parse_date(msg.value("PID", 29)) if msg.value("PID", 29) else None
    if died:
        person["death_date"] = died.isoformat()
    return key, person


def _consultant(msg: Hl7Message) -> str | None:
    reps = msg.repetitions("PV1", 7) or msg.repetitions("PV1", 17)
    if not reps:
        return None
    parts = [c[0].strip() if c else "" for c in reps[0]] + [""] * 6
    name = " ".join(p for p in (parts[5], parts[2], parts[1]) if p)
    if name and parts[0]:
        return f"{name} ({parts[0]})"
    return name or parts[0] or None


def _moment(msg: Hl7Message, segment: str, field_no: int) -> str | None:
    value = msg.value(segment, field_no)
    moment = hl7_time(value) if value else None
    if value and moment is None:
        raise _ae(102, f"{segment}-{field_no} is not a date-time", f"{segment}^1^{field_no}")
    return moment.isoformat() if moment else None


def read_visit(msg: Hl7Message, trigger: str, patient_key: str = ""
               ) -> tuple[str | None, dict[str, Any] | None, tuple[str, ...]]:
    """The visit's key, what this event says about it, and the fields it clears.

    The key is the visit number (PV1-19) under its authority; without one (PV1-19 is optional) the visit is
    keyed by the sending facility, the patient's key and the admission time (PV1-44, or for an admission or
    registration the event's time), so later messages about it with the same admission time find it.
    """
    if not msg.has("PV1"):
        if trigger in VISIT_EVENTS:
            raise _ae(101, "the event needs a PV1 segment", "PV1")
        return None, None, ()
    visit = msg.value("PV1", 19)
    doc: dict[str, Any] = {}
    if visit:
        key = f"{msg.value('PV1', 19, 4) or msg.header.sending_facility}/{visit}"
        doc["visit_number"] = visit
    elif trigger not in VISIT_EVENTS:
        return None, None, ()
    else:
        began = _moment(msg, "PV1", 44)
        if began is None and trigger in ("A01", "A04", "A05"):
            began = _moment(msg, "EVN", 6) or _moment(msg, "EVN", 2)
        if began is None:
            raise _ae(101, "PV1-19 (visit number) is empty and PV1-44 (admit time) does not say which visit",
                      "PV1^1^19")
        key = f"{msg.header.sending_facility}/{patient_key}/{began}"
    patient_class = msg.value("PV1", 2).upper()
    if patient_class in ("I", "O", "E"):
        doc["patient_class"] = patient_class
    facility = msg.value("PV1", 3, 4) or msg.value("PV1", 39) or msg.header.sending_facility
    if facility:
        doc["facility"] = facility
    ward, room, bed = msg.value("PV1", 3, 1), msg.value("PV1", 3, 2), msg.value("PV1", 3, 3)
    if ward:
        doc["ward"] = ward
    if bed or room:
        doc["bed"] = " ".join(p for p in (room, bed) if p)
    consultant = _consultant(msg)
    if consultant:
        doc["consultant"] = consultant
    admitted, discharged = _moment(msg, "PV1", 44), _moment(msg, "PV1", 45)
    occurred = _moment(msg, "EVN", 6) or _moment(msg, "EVN", 2)
    if admitted:
        doc["admitted"] = admitted
    clear: tuple[str, ...] = ()
    if trigger in ("A01", "A04", "A05"):
        if trigger == "A04":
            doc["kind"] = "registration" if patient_class == "O" else "attendance"
        else:
            doc["kind"] = "attendance" if patient_class in ("O", "E") and trigger == "A01" else "admission"
        doc["status"] = "planned" if trigger == "A05" else "in-progress"
        if trigger != "A05":
            doc.setdefault("admitted", occurred)
    elif trigger == "A02":
        doc["status"] = "in-progress"
    elif trigger == "A03":
        doc["status"] = "finished"
        doc["discharged"] = discharged or occurred
    elif trigger == "A11":
        doc["status"] = "cancelled"
    elif trigger == "A13":
        doc["status"] = "in-progress"
        clear = ("discharged",)
    if discharged and trigger not in ("A13", "A11"):
        doc["discharged"] = discharged
    return key, {k: v for k, v in doc.items() if v is not None}, clear


# A registration's or a visit's key in this feed is a source id: at most what the store's column holds.
MAX_KEY = SourceLink.source_id.type.length  # type: ignore[attr-defined]


def _fitting(key: str, what: str, location: str) -> str:
    """``key``, or AE when it (an identifier with its assigning authority) is longer than the hub keeps."""
    if len(key) > MAX_KEY:
        raise _ae(102, f"TOO_LONG: the {what} with its assigning authority is longer than {MAX_KEY} characters",
                  location)
    return key


def interpret(index: int, msg: Hl7Message) -> AdtEvent:
    """What one ADT message asks of the record; AR/AE (:class:`Hl7Error`) when it cannot be taken."""
    header = msg.header
    check_header(header)
    if header.message_code != "ADT":
        raise Hl7ParseError(f"message type {header.message_code[:8]!r} is not taken here (ADT only)", 200, "MSH^1^9")
    trigger = header.trigger or msg.value("EVN", 1)
    if trigger not in EVENTS:
        raise Hl7ParseError(f"ADT event {trigger[:8]!r} is not taken here", 201, "MSH^1^9^2")
    if not msg.has("PID"):
        raise _ae(101, "the message has no PID segment", "PID")
    key, person = read_person(msg)
    event = AdtEvent(index, header, _fitting(key, "patient identifier", "PID^1^3"), person)
    if trigger == "A35":
        event.note = "account numbers are not kept; nothing changed"
        return event
    if trigger in MERGE_EVENTS:
        if not msg.has("MRG"):
            raise _ae(101, f"an {trigger} needs an MRG segment", "MRG")
        prior = msg.repetitions("MRG", 1)
        _, local = _prior_identifiers(prior, header.sending_facility)
        if not local:
            raise _ae(101, "MRG-1 holds no prior patient identifier", "MRG^1^1")
        event.prior_key = _fitting(local, "prior patient identifier", "MRG^1^1")
        return event
    if trigger not in PERSON_EVENTS:
        event.encounter_key, event.encounter, event.clear = read_visit(msg, trigger, key)
        if event.encounter_key:
            _fitting(event.encounter_key, "visit number", "PV1^1^19")
    return event


def _prior_identifiers(reps: list[list[list[str]]], facility: str) -> tuple[str | None, str | None]:
    nhs, local = None, None
    for rep in reps:
        value, authority, kind = _cx(rep)
        if not value:
            continue
        if _is_nhs_number(authority, kind):
            nhs = nhs or f"NHS/{value}"
        elif local is None:
            local = f"{authority or facility}/{value}"
    return nhs, local or nhs


# -- laying a message over what the hub holds ---------------------------------------------------------


def overlay_person(existing: dict[str, Any] | None, said: dict[str, Any], when: date) -> dict[str, Any]:
    """What the hub holds for this registration, with what the message says laid over it.

    A new current name or address goes first; the former ones are kept (old, ended), the most recent
    of them up to the model's limit of names (a registration renamed every day does not pile them up).
    """
    doc = {k: v for k, v in (existing or {}).items() if k not in ("id", "person_id", "merged_into")}
    for key in ("birth_date", "sex", "nhs_number", "nhs_number_status", "ethnicity", "death_date"):
        if key in said:
            doc[key] = said[key]
    if doc.get("nhs_number_status") is None:
        doc.pop("nhs_number_status", None)
    known = {(i["system"], i["value"]) for i in doc.get("identifiers", [])}
    doc["identifiers"] = [*doc.get("identifiers", []),
                          *(i for i in said.get("identifiers", []) if (i["system"], i["value"]) not in known)]
    if said.get("names"):
        current = {_name_key(n) for n in said["names"]}
        former = [{**n, "use": "old"} for n in doc.get("names", []) if _name_key(n) not in current]
        doc["names"] = [*said["names"], *former][:max(MAX_NAMES, len(said["names"]))]
    if said.get("addresses"):
        current = {a.get("text") for a in said["addresses"]}
        former = [a if a.get("end") else {**a, "end": when.isoformat()}
                  for a in doc.get("addresses", []) if a.get("text") not in current]
        for a in former:
            if a.get("start") and a["start"] > a["end"]:
                a["end"] = a["start"]
        doc["addresses"] = [*said["addresses"], *former]
    return doc


def _name_key(name: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    return ((name.get("family") or "").upper(), tuple(g.upper() for g in name.get("given", [])))


def overlay_visit(existing: dict[str, Any] | None, said: dict[str, Any], clear: tuple[str, ...]) -> dict[str, Any]:
    """The visit as held, with what the message says laid over it (and what it clears taken off)."""
    doc = {k: v for k, v in (existing or {}).items() if k not in ("id", "person_id")}
    doc.update(said)
    for key in clear:
        doc.pop(key, None)
    if "kind" not in doc:
        doc["kind"] = "admission" if doc.get("patient_class") == "I" else "attendance"
    return doc


def _map_person(record: SourceRecord) -> MappedRecord:
    return MappedRecord("Person", dict(record.payload))


def _map_visit(record: SourceRecord) -> MappedRecord:
    document = {k: v for k, v in record.payload.items() if k != "patient"}
    return MappedRecord("HealthEvent", document, {"person_id": (PATIENT, record.payload["patient"])})


# -- applying a batch ------------------------------------------------------------------------------


def read_frames(frames: list[bytes]) -> list[AdtEvent | Answer]:
    """Read several messages (in a reader process): what each asks, or its answer when it cannot be taken."""
    return [AdtFeed.read(Received(raw)) for raw in frames]


class AdtFeed:
    """Applies batches of received ADT messages to the store and answers each one."""

    def __init__(self, pipeline: Pipeline, *, source: str = SOURCE, channel: str = "mllp",
                 enhanced_acks: bool = False) -> None:
        self.pipeline, self.source, self.channel = pipeline, source, channel
        self.enhanced_acks = enhanced_acks

    def apply(self, session: Session, batch: Sequence[Received]) -> list[Answer]:
        """Apply ``batch`` in order in ``session``'s transaction (the caller commits) and answer each.

        Raises :class:`BatchFault` (or a store error) when the batch as a whole went
        wrong; the caller rolls back and applies the messages one by one.
        """
        answers: list[Answer | None] = [None] * len(batch)
        events: list[AdtEvent] = []
        for i, received in enumerate(batch):
            reading = received.reading if received.reading is not None else self.read(received)
            if isinstance(reading, Answer):
                answers[i] = reading
            else:
                reading.index = i
                events.append(reading)
        keys = {e.index: self.dedupe_key(e.header) for e in events}
        already = applied_messages(session, keys.values())
        first: dict[str, int] = {}
        copies: dict[int, int] = {}
        fresh: list[AdtEvent] = []
        for event in events:
            key = keys[event.index]
            if key in already:
                answers[event.index] = self._resent(event.header, already[key], batch[event.index].raw)
            elif key in first:
                copies[event.index] = first[key]
            else:
                first[key] = event.index
                fresh.append(event)
        self._apply_events(session, fresh, answers)
        for index, original in copies.items():
            done = answers[original]
            assert done is not None
            copy = batch[index].reading
            header = copy.header if copy is not None else None
            if done.code != "AA":
                answers[index] = Answer(done.code, REFUSED, header, done.text, done.error)
            else:
                answers[index] = self._resent(header, batch[original].raw, batch[index].raw)
        final = [a for a in answers if a is not None]
        assert len(final) == len(batch)
        if self.enhanced_acks:
            for answer in final:
                answer.enhanced = bool(answer.header and answer.header.enhanced)
        self.keep(session, batch, final, [keys.get(i) for i in range(len(batch))])
        return final

    @staticmethod
    def _resent(header: Header | None, applied: bytes, raw: bytes) -> Answer:
        """The answer to a message whose sender and control id were applied before: the same message again
        changes nothing; different content under the same id is a conflict, kept raw and refused (AE 205)."""
        if same_message(applied, raw):
            return Answer("AA", DUPLICATE, header, "already applied; nothing changed")
        return Answer("AE", CONFLICT, header, "another message was applied under this id",
                      _ae(205, "MSH-10 was already used by this sender for a different message: resend it under a "
                          "new control id", "MSH^1^10"))

    @staticmethod
    def read(received: Received) -> AdtEvent | Answer:
        """Parse and interpret a message (or answer it, when it cannot be taken); kept on ``received``.

        The listener calls this as frames arrive, so reading overlaps the commit of the batch before.
        """
        if isinstance(received.raw, BrokenFrame):
            problem = Hl7ParseError("the bytes did not arrive as a whole MLLP frame (start block, message, end "
                                    "block 0x1C 0x0D): kept, not applied; resend the message")
            received.reading = Answer("AR", REFUSED, read_header(received.raw), problem.message, problem,
                                      silent=isinstance(received.raw, StrayBytes))
            return received.reading
        try:
            msg = parse(received.raw)
        except Hl7Error as exc:
            received.reading = Answer(exc.answer, REFUSED, read_header(received.raw), exc.message, exc)
            return received.reading
        try:
            received.reading = interpret(0, msg)
        except Hl7Error as exc:
            received.reading = Answer(exc.answer, REFUSED, msg.header, exc.message, exc)
        return received.reading

    @staticmethod
    def dedupe_key(header: Header) -> str:
        """Sending facility and message control id: the same message resent has the same key."""
        return fit_to(InboundMessage.dedupe_key, f"hl7|{header.sending_facility}|{header.control_id}") or ""

    def keep(self, session: Session, batch: Sequence[Received], answers: Sequence[Answer],
             keys: Sequence[str | None]) -> None:
        """Keep every message verbatim with its answer; applied ones carry their dedupe key."""
        rows = []
        for received, answer, key in zip(batch, answers, keys, strict=True):
            header = answer.header
            rows.append({
                "channel": self.channel, "peer": fit_to(InboundMessage.peer, received.peer or None),
                "sender": fit_to(InboundMessage.sender, header.sending_facility) if header else None,
                "message_id": fit_to(InboundMessage.message_id, header.control_id) if header else None,
                "message_type": fit_to(InboundMessage.message_type, header.message_type) if header else None,
                "received_at": received.received_at, "status": answer.status, "answer": answer.sent_code,
                "error": f"{answer.error.hl7_code} {answer.error.message}" if answer.error else None,
                **raw_columns(received.raw, header.charset if header else None),
                "dedupe_key": key if answer.status == ACCEPTED else None,
            })
        session.execute(insert(InboundMessage), rows)

    def keep_failed(self, session: Session, received: Received, answer: Answer) -> None:
        """Keep a message whose application failed (the store or a bug): raw, with the fault."""
        self.keep(session, [received], [answer], [None])

    def _apply_events(self, session: Session, events: list[AdtEvent], answers: list[Answer | None]) -> None:
        """Apply in order: runs of ordinary events fold together; a merge stands between runs."""
        run: list[AdtEvent] = []
        for event in events:
            if event.note is not None:
                answers[event.index] = Answer("AA", ACCEPTED, event.header, event.note)
            elif event.prior_key is not None:
                self._apply_run(session, run, answers)
                run = []
                self._apply_merge(session, event, answers)
            else:
                run.append(event)
        self._apply_run(session, run, answers)

    def _documents(self, session: Session, stream: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 500):
            rows = session.execute(select(SourceLink.source_id, SourceLink.document).where(
                SourceLink.source == self.source, SourceLink.stream == stream,
                SourceLink.source_id.in_(keys[start:start + 500])))
            found.update({sid: json.loads(doc) for sid, doc in rows})
        return found

    def _apply_run(self, session: Session, run: list[AdtEvent], answers: list[Answer | None]) -> None:
        if not run:
            return
        people = self._documents(session, PATIENT, [e.patient_key for e in run])
        visits = self._documents(session, ENCOUNTER, [e.encounter_key for e in run if e.encounter_key])
        # each message is laid over the state the ones before it left, so a batch ends where
        # the same messages applied one by one would; the pipeline takes the last state of each
        persons: dict[str, SourceRecord] = {}
        encounters: dict[str, SourceRecord] = {}
        for event in run:
            when = (hl7_time(event.header.sent_at) or utcnow()).date()
            person = overlay_person(people.get(event.patient_key), event.person, when)
            visit = None
            try:
                Person.model_validate(person)
                if event.encounter is not None and event.encounter_key:
                    visit = overlay_visit(visits.get(event.encounter_key), event.encounter, event.clear)
                    HealthEvent.model_validate(visit)
            except ValidationError as exc:
                problem = quarantine_reason(exc)
                answers[event.index] = Answer("AE", REFUSED, event.header, problem.message[:80], _ae(
                    101 if problem.reason == "MISSING_FIELD" else 102, f"{problem.reason}: {problem.message}"))
                continue
            modified = event.header.sent_at or None
            people[event.patient_key] = person
            persons[event.patient_key] = SourceRecord(PATIENT, event.patient_key, person, modified)
            if visit is not None and event.encounter_key:
                visits[event.encounter_key] = visit
                encounters[event.encounter_key] = SourceRecord(ENCOUNTER, event.encounter_key,
                                                               {**visit, "patient": event.patient_key}, modified)
            answers[event.index] = Answer("AA", ACCEPTED, event.header)
        person_records, visit_records = list(persons.values()), list(encounters.values())
        for records, mapper in ((person_records, _map_person), (visit_records, _map_visit)):
            if records:
                result = self.pipeline.ingest(session, self.source, records, mapper)
                if result.quarantined:
                    raise BatchFault(f"the pipeline quarantined {result.quarantined} record(s): {dict(result.reasons)}")

    def _apply_merge(self, session: Session, event: AdtEvent, answers: list[Answer | None]) -> None:
        assert event.prior_key is not None
        known = session.scalar(select(SourceLink.entity_id).where(
            SourceLink.source == self.source, SourceLink.stream == PATIENT, SourceLink.source_id == event.prior_key))
        if known is None:
            answers[event.index] = Answer("AE", REFUSED, event.header, "prior patient unknown",
                                          _ae(204, "MRG-1 names a patient the hub does not hold", "MRG^1^1"))
            return
        self._apply_run(session, [event], answers)
        if answers[event.index] is not None and answers[event.index].code != "AA":  # type: ignore[union-attr]
            return
        links = dict(session.execute(select(SourceLink.source_id, SourceLink.entity_id).where(
            SourceLink.source == self.source, SourceLink.stream == PATIENT,
            SourceLink.source_id.in_([event.patient_key, event.prior_key]))).all())
        survivor, prior = links.get(event.patient_key), links.get(event.prior_key)
        assert survivor is not None and prior is not None
        # both followed to the person they now are, so merge() never meets a merged-away one
        survivor = _current(session, survivor)
        if _current(session, prior) == survivor:
            answers[event.index] = Answer("AA", ACCEPTED, event.header, "already one patient")
            return
        try:
            merge(session, survivor, prior, f"hl7:{event.header.sending_facility}"[:128])
        except Conflict as exc:
            answers[event.index] = Answer("AE", REFUSED, event.header, "cannot merge", _ae(207, exc.message, "MRG"))
            return
        answers[event.index] = Answer("AA", ACCEPTED, event.header, "merged")


def _current(session: Session, person_id: str) -> str:
    """The person a registration now belongs to, following earlier merges."""
    seen = {person_id}
    while True:
        doc = session.scalar(select(Entity.document).where(Entity.id == person_id))
        nxt = json.loads(doc).get("merged_into") if doc else None
        if not nxt or nxt in seen:
            return person_id
        seen.add(nxt)
        person_id = nxt


def refusal(received: Received, exc: Exception) -> Answer:
    """The answer to a message whose application failed in the store or in the hub: AR, resend later."""
    header = None
    header = read_header(received.raw)
    log.error("ADT message %s could not be applied: %s", header.control_id if header else "?", type(exc).__name__)
    return Answer("AR", FAILED, header, "application error; resend later",
                  Hl7Error("AR", 207, f"the hub could not apply the message ({type(exc).__name__}); resend later"))


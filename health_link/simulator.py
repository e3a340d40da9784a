"""The health link's simulators: synthetic HL7 v2 ADT traffic, an HL7 sender, and a FHIR R4 server.

Everything here is synthetic: names from a short list, NHS numbers from the
999 000 0000 - 999 999 9999 test range (never issued) with valid check digits,
hospital numbers and visit numbers made up. :func:`adt_message` writes one ADT
message; :func:`synthetic_day` a day of a trust's traffic (registrations,
admissions, transfers, discharges, updates, the odd cancellation and merge);
:func:`replay` sends messages to an MLLP listener. :class:`FhirSimulator` is a
small FHIR R4 server on loopback (Patient and Encounter search by identifier,
patient and ``_lastUpdated`` with ``next``-link paging, read, conditional update
``PUT Type?identifier=system|value``, and 429/503 on demand).
"""

from __future__ import annotations

import itertools
import json
import random
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from health_link.hl7 import LOCAL_TIME, escape
from health_link.mllp import MllpClient
from hub.loopback import LoopbackServer, SimulatorHandler
from hub.model.validators import synthetic_nhs_number

GIVEN = ["Olivia", "Amelia", "Isla", "Ava", "Mia", "Noah", "Oliver", "George", "Arthur", "Leo", "Harry", "Oscar",
         "Evan", "Megan", "Rhys", "Cerys", "Dylan", "Ffion", "Ioan", "Seren", "Aled", "Bethan", "Gareth", "Sian"]
FAMILY = ["Jones", "Davies", "Williams", "Evans", "Thomas", "Roberts", "Hughes", "Lewis", "Morgan", "Griffiths",
          "Price", "Edwards", "Owen", "Jenkins", "Phillips", "Powell", "Rees", "Watkins", "Pugh", "Harris"]
STREETS = ["High Street", "Station Road", "Church Lane", "Mill Road", "Castle Street", "Bridge Street", "Park Avenue"]
TOWNS = [("Carmarthen", "SA31 1AA"), ("Llanelli", "SA15 1AB"), ("Ammanford", "SA18 2AB"), ("Kidwelly", "SA17 4AA")]
WARDS = ["WARD-A", "WARD-B", "CCU", "AMU", "WARD-7", "SAU"]


@dataclass(frozen=True)
class SyntheticPatient:
    """A made-up patient as a hospital holds them."""

    hospital_number: str
    nhs_number: str | None
    family: str
    given: str
    birth_date: str
    sex: str
    street: str
    town: str
    postcode: str
    nhs_status: str = "NSTS01"


def synthetic_patient(i: int, rng: random.Random | None = None) -> SyntheticPatient:
    """Patient number ``i`` of a synthetic population."""
    rng = rng or random.Random(i)
    town, postcode = TOWNS[i % len(TOWNS)]
    return SyntheticPatient(
        hospital_number=f"H{100000 + i}", nhs_number=synthetic_nhs_number(i * 7 + 1),
        family=FAMILY[rng.randrange(len(FAMILY))], given=GIVEN[rng.randrange(len(GIVEN))],
        birth_date=f"{rng.randint(1925, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
        sex=rng.choice("MF"), street=f"{rng.randint(1, 120)} {STREETS[rng.randrange(len(STREETS))]}",
        town=town, postcode=postcode,
    )


@dataclass(frozen=True)
class Visit:
    """A hospital visit as PV1 carries it."""

    number: str
    patient_class: str = "I"
    ward: str = "WARD-A"
    room: str = ""
    bed: str = "1"
    consultant: str = "C1234567^Bell^Emma^^^Dr"
    admitted: datetime | None = None
    discharged: datetime | None = None


def _ts(moment: datetime | None) -> str:
    return moment.astimezone(LOCAL_TIME).strftime("%Y%m%d%H%M%S") if moment else ""


def adt_message(trigger: str, control_id: str, patient: SyntheticPatient, visit: Visit | None = None, *,
                facility: str = "RX1", sent: datetime | None = None, version: str = "2.5.1",
                prior_hospital_number: str | None = None, segment_end: str = "\r",
                z_segment: str | None = None) -> str:
    """One ADT message (structure by event) for a synthetic patient."""
    sent = sent or datetime.now(LOCAL_TIME)
    structure = {"A01": "ADT_A01", "A04": "ADT_A01", "A05": "ADT_A05", "A08": "ADT_A01", "A13": "ADT_A01",
                 "A02": "ADT_A02", "A03": "ADT_A03", "A11": "ADT_A09", "A12": "ADT_A12", "A28": "ADT_A05",
                 "A31": "ADT_A05", "A40": "ADT_A39"}.get(trigger, "ADT_A01")
    ids = f"{patient.hospital_number}^^^{facility}^PI"
    if patient.nhs_number:
        ids = f"{patient.nhs_number}^^^NHS^NH~{ids}"
    segments = [
        f"MSH|^~\\&|PAS|{facility}|CAREHUB|COUNCIL|{_ts(sent)}||ADT^{trigger}^{structure}|{control_id}|P|{version}"
        "|||AL|NE|GBR|UNICODE UTF-8",
        f"EVN|{trigger}|{_ts(sent)}||||{_ts(sent)}",
    ]
    if trigger == "A40":
        segments.append(f"PID|1||{ids}")
        segments.append(f"MRG|{prior_hospital_number}^^^{facility}^PI")
        return segment_end.join(segments) + segment_end
    address = f"{escape(patient.street)}^^{escape(patient.town)}^^{patient.postcode}^GBR^H" if patient.street else ""
    pid = ["PID", "1", "", ids, "", f"{escape(patient.family)}^{escape(patient.given)}^^^", "", patient.birth_date,
           patient.sex, "", "", address]
    pid += [""] * (32 - len(pid)) + [patient.nhs_status if patient.nhs_number else ""]
    segments.append("|".join(pid))
    segments.append("PD1|||GP PRACTICE^^^^^^^^^W98045")
    if visit is not None:
        pv1 = ["PV1", "1", visit.patient_class, f"{visit.ward}^{visit.room}^{visit.bed}^{facility}", "E", "", "",
               visit.consultant]
        pv1 += [""] * (19 - len(pv1)) + [f"{visit.number}^^^{facility}^VN"]
        pv1 += [""] * (44 - len(pv1)) + [_ts(visit.admitted), _ts(visit.discharged)]
        segments.append("|".join(pv1))
    if z_segment:
        segments.append(z_segment)
    return segment_end.join(segments) + segment_end


def synthetic_day(patients: int = 200, *, start: datetime | None = None, facility: str = "RX1",
                  seed: int = 5, population: Sequence[SyntheticPatient] | None = None) -> list[str]:
    """A day of a trust's ADT traffic in time order.

    Each patient is registered (A28), then admitted (A01) or seen as an outpatient
    or in A&E (A04); some are transferred (A02) or have details updated (A08);
    most are discharged (A03). A few admissions are cancelled (A11) and a few
    discharges cancelled and redone (A13).
    """
    rng = random.Random(seed)
    start = start or datetime.now(LOCAL_TIME).replace(hour=0, minute=5, second=0, microsecond=0) - timedelta(days=1)
    people = list(population) if population is not None else [synthetic_patient(i) for i in range(patients)]
    events: list[tuple[datetime, str, SyntheticPatient, Visit | None]] = []
    for i, patient in enumerate(people):
        at = start + timedelta(minutes=rng.randint(0, 20 * 60))
        events.append((at, "A28", patient, None))
        klass = rng.choice("IIIEO")
        visit = Visit(number=f"V{facility}{seed:02d}{i:06d}", patient_class=klass, ward=rng.choice(WARDS),
                      bed=str(rng.randint(1, 30)), admitted=at + timedelta(minutes=5))
        events.append((visit.admitted, "A01" if klass == "I" else "A04", patient, visit))  # type: ignore[arg-type]
        t = at + timedelta(minutes=5)
        if klass == "I" and rng.random() < 0.01:
            events.append((t + timedelta(minutes=20), "A11", patient, visit))
            continue
        if klass == "I" and rng.random() < 0.4:
            t += timedelta(minutes=rng.randint(30, 180))
            visit = replace(visit, ward=rng.choice(WARDS), bed=str(rng.randint(1, 30)))
            events.append((t, "A02", patient, visit))
        if rng.random() < 0.2:
            t += timedelta(minutes=rng.randint(5, 60))
            if patient.street:  # a move; a patient sent without an address stays without one
                patient = replace(patient, street=f"{rng.randint(1, 120)} {rng.choice(STREETS)}")
            events.append((t, "A08", patient, visit))
        if rng.random() < 0.8:
            t += timedelta(minutes=rng.randint(30, 240))
            done = replace(visit, discharged=t)
            events.append((t, "A03", patient, done))
            if rng.random() < 0.02:
                events.append((t + timedelta(minutes=10), "A13", patient, visit))
    events.sort(key=lambda e: e[0])
    return [adt_message(trigger, f"{facility}{seed:02d}{n:08d}", patient, visit, facility=facility, sent=at)
            for n, (at, trigger, patient, visit) in enumerate(events)]


def replay(messages: Sequence[str], host: str, port: int, *, window: int = 1) -> list[str]:
    """Send messages to an MLLP listener over one connection; the ACKs in order."""
    with MllpClient(host, port) as client:
        return client.send_many(messages, window=window)


# -- a FHIR R4 server --------------------------------------------------------------------------------


class FhirStore:
    """The simulated server's resources: by type and id, each with a version and a last-updated instant."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.lock = threading.Lock()
        self.failures: list[int] = []
        self.requests: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._clock = datetime.now(UTC) - timedelta(days=2)

    def tick(self) -> str:
        """A strictly rising lastUpdated (a millisecond per write)."""
        self._clock = max(self._clock + timedelta(milliseconds=1), datetime.now(UTC) - timedelta(days=2))
        return self._clock.isoformat(timespec="milliseconds")

    def put(self, resource: dict[str, Any], rid: str | None = None) -> dict[str, Any]:
        """Create or replace a resource; returns it with id and meta."""
        rtype = resource["resourceType"]
        with self.lock:
            rid = rid or resource.get("id") or f"{rtype[:3].lower()}{next(self._ids)}"
            old = self.resources[rtype].get(rid)
            version = int(old["meta"]["versionId"]) + 1 if old else 1
            stored = {**resource, "id": rid, "meta": {"versionId": str(version), "lastUpdated": self.tick()}}
            self.resources[rtype][rid] = stored
            return stored

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` (429 or 503), Retry-After 0."""
        self.failures.extend([status] * times)

    def matching(self, rtype: str, params: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Resources of a type matching the search parameters, in lastUpdated then id order."""
        found = []
        for resource in self.resources.get(rtype, {}).values():
            if all(_matches(resource, name, values) for name, values in params.items()
                   if not name.startswith("_") or name == "_lastUpdated" or name == "_id"):
                found.append(resource)
        return sorted(found, key=lambda r: (r["meta"]["lastUpdated"], r["id"]))


def _matches(resource: dict[str, Any], name: str, values: list[str]) -> bool:
    if name == "_id":
        return resource["id"] in values
    if name == "_lastUpdated":
        updated = datetime.fromisoformat(resource["meta"]["lastUpdated"])
        for value in values:
            prefix, moment = (value[:2], value[2:]) if value[:2].isalpha() else ("eq", value)
            bound = datetime.fromisoformat(moment)
            bound = bound if bound.tzinfo else bound.replace(tzinfo=UTC)
            ok = {"gt": updated > bound, "ge": updated >= bound, "lt": updated < bound, "le": updated <= bound,
                  "eq": updated == bound}.get(prefix, False)
            if not ok:
                return False
        return True
    if name == "identifier":
        for value in values:
            system, _, code = value.rpartition("|")
            if not any(i.get("value") == code and (not system or i.get("system") == system)
                       for i in resource.get("identifier", [])):
                return False
        return True
    if name in ("patient", "subject"):
        reference = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
        return all(reference == (v if "/" in v else f"Patient/{v}") for v in values)
    return False


class FhirSimulator(LoopbackServer):
    """A small FHIR R4 server on loopback: read, search (paged), conditional update, injected 429/503."""

    name = "fhir"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = FhirStore()
        super().__init__(_FhirHandler, host, port)

    @property
    def base_url(self) -> str:
        """The server's base URL."""
        return f"{self.origin}/fhir"

    def seed(self, patients: Sequence[SyntheticPatient], encounters_each: int = 1) -> list[dict[str, Any]]:
        """UK Core-shaped Patients (and their Encounters) for synthetic patients; the Patients."""
        made = []
        for n, p in enumerate(patients):
            patient = self.store.put(uk_core_patient(p))
            made.append(patient)
            for k in range(encounters_each):
                start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10 - k, hours=n % 12)
                self.store.put(encounter_resource(patient["id"], f"E{p.hospital_number}{k}", start,
                                                  start + timedelta(hours=30) if k % 2 == 0 else None))
        return made


def uk_core_patient(p: SyntheticPatient) -> dict[str, Any]:
    """A UK Core Patient for a synthetic patient (NHS number with its verification status)."""
    identifiers: list[dict[str, Any]] = [{"system": "https://fhir.nhs.uk/Id/local-patient-identifier",
                                          "value": p.hospital_number}]
    if p.nhs_number:
        identifiers.insert(0, {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": p.nhs_number, "extension": [{
            "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
            "valueCodeableConcept": {"coding": [{
                "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland",
                "code": p.nhs_status.removeprefix("NSTS") or "01"}]}}]})
    born = p.birth_date
    return {
        "resourceType": "Patient", "identifier": identifiers,
        "name": [{"use": "official", "family": p.family, "given": [p.given]}],
        "gender": {"M": "male", "F": "female"}.get(p.sex, "unknown"),
        "birthDate": f"{born[:4]}-{born[4:6]}-{born[6:8]}",
        "address": [{"use": "home", "line": [p.street], "city": p.town, "postalCode": p.postcode}] if p.street else [],
    }


def encounter_resource(patient_id: str, visit: str, start: datetime, end: datetime | None) -> dict[str, Any]:
    """An inpatient Encounter for a patient of the simulated server."""
    return {
        "resourceType": "Encounter", "status": "finished" if end else "in-progress",
        "identifier": [{"system": "https://fhir.example-trust.nhs.uk/Id/visit-number", "value": visit}],
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": start.isoformat(), **({"end": end.isoformat()} if end else {})},
        "serviceProvider": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code",
                                           "value": "RX1"}},
        "location": [{"location": {"display": "WARD-A 3"}}],
    }


class _FhirHandler(SimulatorHandler["FhirSimulator"]):
    """Answers FHIR REST requests from the simulator's store."""

    @property
    def fhir(self) -> FhirStore:
        return self.server.simulator.store

    def _send(self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _injected(self) -> bool:
        self.fhir.requests.append((self.command, self.path))
        with self.fhir.lock:
            status = self.fhir.failures.pop(0) if self.fhir.failures else None
        if status is None:
            return False
        self._send(status, _outcome("transient", f"simulated {status}"), {"Retry-After": "0"})
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        """Read, search (with paging) and the CapabilityStatement."""
        if self._injected():
            return
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p][1:]  # drop the /fhir prefix
        params = parse_qs(url.query)
        if parts == ["metadata"]:
            self._send(200, {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
                             "fhirVersion": "4.0.1", "format": ["json"]})
        elif len(parts) == 2:
            found = self.fhir.resources.get(parts[0], {}).get(parts[1])
            if found:
                self._send(200, found)
            else:
                self._send(404, _outcome("not-found", "no such resource"))
        elif len(parts) == 1:
            self._search(parts[0], params, url.path)
        else:
            self._send(404, _outcome("not-found", "unknown path"))

    def _search(self, rtype: str, params: dict[str, list[str]], path: str) -> None:
        count = int(params.get("_count", ["20"])[0])
        offset = int(params.get("_offset", ["0"])[0])
        found = self.fhir.matching(rtype, params)
        page = found[offset:offset + count]
        base = f"http://{self.headers.get('Host')}{path}"
        query = {k: v for k, v in params.items() if k != "_offset"}
        links = [{"relation": "self", "url": f"{base}?{urlencode(query, doseq=True)}&_offset={offset}"}]
        if offset + count < len(found):
            links.append({"relation": "next",
                          "url": f"{base}?{urlencode(query, doseq=True)}&_offset={offset + count}"})
        self._send(200, {"resourceType": "Bundle", "type": "searchset", "total": len(found), "link": links,
                         "entry": [{"fullUrl": f"{base}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                                   for r in page]})

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        """Update by id, or conditional update by ``?identifier=system|value`` (create when none matches)."""
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if self._injected():
            return
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p][1:]
        if not parts or body.get("resourceType") != parts[0]:
            self._send(400, _outcome("invalid", "resource type does not match the URL"))
            return
        rid: str | None
        if len(parts) == 2:
            rid = parts[1]
        else:
            params = parse_qs(url.query)
            if "identifier" not in params:
                self._send(400, _outcome("invalid", "a conditional update needs search parameters"))
                return
            matches = self.fhir.matching(parts[0], {"identifier": params["identifier"]})
            if len(matches) > 1:
                self._send(412, _outcome("multiple-matches", "more than one resource matches"))
                return
            rid = matches[0]["id"] if matches else None
        created = rid is None or rid not in self.fhir.resources.get(parts[0], {})
        stored = self.fhir.put(body, rid)
        self._send(201 if created else 200, stored,
                   {"Location": f"{parts[0]}/{stored['id']}/_history/{stored['meta']['versionId']}",
                    "ETag": f'W/"{stored["meta"]["versionId"]}"'})


def _outcome(code: str, text: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}


def serve(host: str, port: int, patients: int = 200) -> None:
    """Run the FHIR R4 simulator in the foreground, seeded with synthetic UK Core Patients and their Encounters,
    until interrupted (``carehub simulate health_fhir``)."""
    simulator = FhirSimulator(host, port)
    simulator.seed([synthetic_patient(i) for i in range(patients)])
    print(f"FHIR R4 simulator on {simulator.base_url} ({patients} patients); Ctrl-C to stop", flush=True)
    simulator.serve_forever()

"""The health link's simulators: synthetic HL7 v2 ADT traffic and an HL7 sender.

Everything here is synthetic: names from a short list, NHS numbers from the
999 000 0000 - 999 999 9999 test range (never issued) with valid check digits,
hospital numbers and visit numbers made up. :func:`adt_message` writes one ADT
message; :func:`synthetic_day` a day of a trust's traffic (registrations,
admissions, transfers, discharges, updates, the odd cancellation and merge);
:func:`replay` sends messages to an MLLP listener.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from health_link.hl7 import LOCAL_TIME, escape
from health_link.mllp import MllpClient
from hub.model.validators import nhs_number_check_digit

GIVEN = ["Olivia", "Amelia", "Isla", "Ava", "Mia", "Noah", "Oliver", "George", "Arthur", "Leo", "Harry", "Oscar",
         "Evan", "Megan", "Rhys", "Cerys", "Dylan", "Ffion", "Ioan", "Seren", "Aled", "Bethan", "Gareth", "Sian"]
FAMILY = ["Jones", "Davies", "Williams", "Evans", "Thomas", "Roberts", "Hughes", "Lewis", "Morgan", "Griffiths",
          "Price", "Edwards", "Owen", "Jenkins", "Phillips", "Powell", "Rees", "Watkins", "Pugh", "Harris"]
STREETS = ["High Street", "Station Road", "Church Lane", "Mill Road", "Castle Street", "Bridge Street", "Park Avenue"]
TOWNS = [("Carmarthen", "SA31 1AA"), ("Llanelli", "SA15 1AB"), ("Ammanford", "SA18 2AB"), ("Kidwelly", "SA17 4AA")]
WARDS = ["WARD-A", "WARD-B", "CCU", "AMU", "WARD-7", "SAU"]


def synthetic_nhs_number(seed: int) -> str:
    """A valid NHS number from the 999 test range (never issued to anyone)."""
    n = seed % 1_000_000
    while True:
        first = f"999{n:06d}"
        check = nhs_number_check_digit(first)
        if check is not None:
            return f"{first}{check}"
        n = (n + 1) % 1_000_000


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
    pid = ["PID", "1", "", ids, "", f"{escape(patient.family)}^{escape(patient.given)}^^^", "", patient.birth_date,
           patient.sex, "", "", f"{escape(patient.street)}^^{escape(patient.town)}^^{patient.postcode}^GBR^H"]
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


def iter_batches(items: Sequence[str], n: int) -> Iterator[Sequence[str]]:
    """``items`` dealt round-robin into ``n`` lists (one per connection)."""
    for k in range(n):
        yield items[k::n]

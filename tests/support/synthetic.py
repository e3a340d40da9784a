"""A demo-like synthetic council dataset, loaded through the real pipeline as the source ``council_test``.

Four named people carry the cases the access tests need (an ordinary adult, a
child on a CIN team's caseload, a sealed adoption record, a person who declined
sharing with health); ``extra`` more people get a random spread of every entity
type and every code the FHIR facade maps. All names and numbers are synthetic;
NHS numbers are from the 999 test range.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from hub.contract import MappedRecord, SourceRecord
from hub.model.validators import nhs_number_check_digit
from hub.pipeline import BatchResult, Pipeline

SOURCE = "council_test"
STREAMS = {
    "people": "Person",
    "relationships": "Relationship",
    "episodes": "Episode",
    "referrals": "Referral",
    "assessments": "Assessment",
    "plans": "CarePlan",
    "commitments": "Commitment",
    "flags": "Flag",
    "consents": "Consent",
    "seals": "Seal",
    "documents": "DocumentLink",
    "health_events": "HealthEvent",
    "transitions": "Transition",
}
GIVEN = ["Ann", "Tom", "Maya", "Oliver", "Priya", "Jack", "Zara", "Leo", "Grace", "Ravi", "Ellie", "Kofi", "Ivy"]
FAMILY = ["Hale", "Okafor", "Singh", "Walsh", "Nowak", "Begum", "Price", "Murphy", "Evans", "Clarke", "Hughes"]
STREETS = ["High Street", "Mill Lane", "Church Road", "Station Road", "Park Avenue", "Victoria Terrace"]
POSTCODES = ["LS1 4AP", "LS6 2QT", "LS9 8AB", "LS11 5DF", "LS17 6HJ", "LS28 7LN"]
TEAMS = ["CIN-N", "CIN-S", "ASC-OPN", "ASC-W", "LAC-1"]


def nhs_number(n: int) -> str:
    """The n-th valid NHS number in the 999 test range (distinct for n below 500,000)."""
    # Of two neighbours 2n and 2n+1 at most one lacks a check digit (the sums differ by 2, not 11).
    for k in (2 * n, 2 * n + 1):
        first = f"999{k:06d}"
        check = nhs_number_check_digit(first)
        if check is not None:
            return f"{first}{check}"
    raise ValueError(f"no NHS number for {n}")


def mapper(record: SourceRecord) -> MappedRecord:
    """Map a council_test record: the payload is the document; ``person`` names the person's source id."""
    doc = dict(record.payload)
    person = doc.pop("person", None)
    refs = {"person_id": ("people", person)} if person else {}
    return MappedRecord(STREAMS[record.stream], doc, refs)


class Dataset:
    """Source records grouped by stream, with the source ids of the named people."""

    def __init__(self) -> None:
        self.records: dict[str, list[SourceRecord]] = {s: [] for s in STREAMS}
        self.serial = 0

    def add(self, stream: str, payload: dict[str, Any], source_id: str | None = None) -> str:
        """Add one record; returns its source id."""
        self.serial += 1
        sid = source_id or f"{stream[:3]}-{self.serial}"
        self.records[stream].append(
            SourceRecord(stream, sid, payload, modified=f"2024-01-01T00:00:{self.serial % 60:02d}")
        )
        return sid

    def load(self, session: Session, pipeline: Pipeline | None = None) -> BatchResult:
        """Ingest every stream in dependency order through the real pipeline."""
        pipe = pipeline or Pipeline()
        total = BatchResult()
        for stream in STREAMS:
            records = self.records[stream]
            for start in range(0, len(records), 2000):
                total.add(pipe.ingest(session, SOURCE, records[start : start + 2000], mapper))
        return total


def person_payload(
    given: str,
    family: str,
    born: date,
    sex: str,
    number: str | None,
    status: str | None,
    postcode: str,
    local_id: str,
    uprn: str | None = None,
    ethnicity: str | None = None,
    house: int = 14,
    street: str = "High Street",
) -> dict[str, Any]:
    """A Person document."""
    address: dict[str, Any] = {
        "use": "home",
        "text": f"{house} {street}, Leeds, {postcode}",
        "pao_start_number": house,
        "street": street.upper(),
        "town": "LEEDS",
        "postcode": postcode,
        "start": "2015-01-01",
    }
    if uprn:
        address["uprn"] = uprn
    doc: dict[str, Any] = {
        "names": [{"given": [given], "family": family}],
        "birth_date": born.isoformat(),
        "sex": sex,
        "identifiers": [{"system": SOURCE, "value": local_id}],
        "addresses": [address],
        "language": "en",
    }
    if number:
        doc["nhs_number"] = number
        if status:
            doc["nhs_number_status"] = status
    if ethnicity:
        doc["ethnicity"] = ethnicity
    return doc


def add_named(data: Dataset) -> dict[str, str]:
    """The four people the access tests rely on; returns their source ids by role in the tests."""
    ann = data.add(
        "people",
        person_payload(
            "Ann",
            "Hale",
            date(1950, 2, 1),
            "female",
            nhs_number(1),
            "01",
            "LS1 4AP",
            "C-1001",
            uprn="72045678",
            ethnicity="A",
        ),
        "C-1001",
    )
    tom = data.add(
        "people",
        person_payload("Tom", "Hale", date(2012, 4, 3), "male", nhs_number(2), "02", "LS1 4AP", "C-1002"),
        "C-1002",
    )
    sealed = data.add(
        "people",
        person_payload("Sky", "Marlow", date(2016, 7, 9), "female", nhs_number(3), "01", "LS6 2QT", "C-1003"),
        "C-1003",
    )
    nora = data.add(
        "people",
        person_payload("Nora", "Quinn", date(1978, 11, 23), "female", nhs_number(4), "01", "LS9 8AB", "C-1004"),
        "C-1004",
    )
    data.add(
        "episodes",
        {
            "person": ann,
            "service_area": "adults",
            "kind": "long_term_support",
            "start": "2021-03-01",
            "team": "ASC-OPN",
            "allocated_worker": "Owen Price",
        },
    )
    data.add(
        "episodes",
        {
            "person": tom,
            "service_area": "childrens",
            "kind": "CIN",
            "start": "2020-03-01",
            "team": "CIN-N",
            "allocated_worker": "Amira Khan",
        },
    )
    data.add(
        "episodes",
        {
            "person": sealed,
            "service_area": "childrens",
            "kind": "LAC",
            "start": "2019-01-10",
            "team": "CIN-N",
            "legal_status": "C2",
        },
    )
    data.add(
        "episodes",
        {
            "person": nora,
            "service_area": "adults",
            "kind": "safeguarding",
            "start": "2023-05-02",
            "team": "ASC-OPN",
            "allocated_worker": "Owen Price",
        },
    )
    data.add(
        "seals",
        {
            "person": sealed,
            "kind": "adoption",
            "allowed_roles": [],
            "allowed_teams": ["ADOPT"],
            "since": "2020-01-01",
            "reason": "adoption order",
        },
    )
    data.add(
        "consents",
        {
            "person": nora,
            "scope": "share_with_health",
            "decision": False,
            "recorded": "2023-05-03",
            "reason": "Does not want her GP practice to see social care notes",
        },
    )
    for pid in (ann, nora):
        data.add(
            "health_events",
            {
                "person": pid,
                "kind": "admission",
                "status": "finished",
                "patient_class": "I",
                "facility": "RR8",
                "ward": "Ward 4",
                "admitted": "2024-02-01T10:00:00+00:00",
                "discharged": "2024-02-05T12:00:00+00:00",
                "visit_number": f"V{pid}",
            },
        )
    data.add(
        "plans",
        {
            "person": ann,
            "service_area": "adults",
            "kind": "support_plan",
            "start": "2021-04-01",
            "status": "approved",
            "approved_by": "Team Manager",
            "approved_on": "2021-04-02",
            "personal_budget": "12000.00",
        },
    )
    data.add(
        "commitments",
        {
            "person": ann,
            "service_type": "home_care",
            "unit_cost": "21.50",
            "units_per_week": "7",
            "start": "2021-04-05",
            "status": "approved",
            "approved_by": "Team Manager",
            "approved_on": "2021-04-02",
            "provider_name": "Caring Hands Ltd",
        },
    )
    data.add(
        "flags",
        {"person": ann, "category": "risk_to_staff", "text": "Dog in the house: visit in pairs", "start": "2022-01-01"},
    )
    data.add(
        "documents",
        {
            "person": ann,
            "document_id": "edrms-0001",
            "title": "Care Act assessment",
            "document_type": "assessment",
            "created": "2021-03-20T09:30:00+00:00",
        },
    )
    data.add(
        "relationships",
        {
            "person": tom,
            "related_person_id": None,
            "related_name": "Kim Hale",
            "kind": "parent",
            "is_next_of_kin": True,
            "has_parental_responsibility": True,
        },
    )
    return {"ann": ann, "tom": tom, "sealed": sealed, "nora": nora}


def add_random(data: Dataset, count: int, seed: int = 7, offset: int = 100) -> None:
    """``count`` more people with a random spread of every entity type and code."""
    rng = random.Random(seed)
    today = date.today()
    for i in range(count):
        sid = f"R-{offset + i}"
        born = date(1935, 1, 1) + timedelta(days=rng.randrange(0, 365 * 85))
        status = rng.choice(["01", "02", "03", "04", "05", "06", "07", "08", None])
        number = nhs_number(offset + i + 10) if status not in ("07", None) else None
        postcode = rng.choice(POSTCODES)
        pid = data.add(
            "people",
            person_payload(
                rng.choice(GIVEN),
                rng.choice(FAMILY),
                born,
                rng.choice(["male", "female", "other", "unknown"]),
                number,
                status if number else None,
                postcode,
                sid,
                uprn=str(rng.randrange(10**6, 10**11)) if rng.random() < 0.6 else None,
                ethnicity=rng.choice(["A", "B", "C", "J", "N", "S", "Z", None]),
                house=rng.randrange(1, 200),
                street=rng.choice(STREETS),
            ),
            sid,
        )
        child = born > today - timedelta(days=365 * 18)
        area = "childrens" if child else "adults"
        for _ in range(rng.randrange(1, 3)):
            start = born + timedelta(days=rng.randrange(30, max(31, (today - born).days)))
            end = (start + timedelta(days=rng.randrange(30, 900))) if rng.random() < 0.4 else None
            data.add(
                "episodes",
                {
                    "person": pid,
                    "service_area": area,
                    "kind": rng.choice(["CIN", "CP", "LAC"] if child else ["long_term_support", "safeguarding"]),
                    "start": start.isoformat(),
                    "end": end.isoformat() if end and end <= today else None,
                    "team": rng.choice(TEAMS),
                    "allocated_worker": rng.choice(["Amira Khan", "Owen Price", None]),
                },
            )
        data.add(
            "referrals",
            {
                "person": pid,
                "service_area": area,
                "received": (today - timedelta(days=rng.randrange(1, 2000))).isoformat(),
                "source": rng.choice(["school", "police", "GP", "self"]),
                "outcome": "assessment",
            },
        )
        data.add(
            "assessments",
            {
                "person": pid,
                "service_area": area,
                "kind": rng.choice(["single", "needs", "carers"]),
                "start": (today - timedelta(days=400)).isoformat(),
                "completed": (today - timedelta(days=350)).isoformat(),
            },
        )
        plan_status = rng.choice(["draft", "awaiting_approval", "approved", "rejected", "ended", "cancelled"])
        plan: dict[str, Any] = {
            "person": pid,
            "service_area": area,
            "kind": rng.choice(["cin_plan", "care_plan", "support_plan"]),
            "start": (today - timedelta(days=300)).isoformat(),
            "status": plan_status,
        }
        if plan_status == "approved":
            plan.update(
                approved_on=(today - timedelta(days=299)).isoformat(),
                approved_by="Team Manager",
                end=(today - timedelta(days=10)).isoformat() if rng.random() < 0.3 else None,
            )
        data.add("plans", {k: v for k, v in plan.items() if v is not None})
        data.add(
            "commitments",
            {
                "person": pid,
                "service_type": rng.choice(["home_care", "day_care", "residential"]),
                "unit_cost": f"{rng.randrange(1000, 90000) / 100:.2f}",
                "units_per_week": str(rng.randrange(1, 20)),
                "start": (today - timedelta(days=200)).isoformat(),
                "status": "approved",
                "approved_by": "Team Manager",
                "approved_on": (today - timedelta(days=201)).isoformat(),
            },
        )
        kind = rng.choice(["admission", "transfer", "discharge", "attendance", "registration"])
        event: dict[str, Any] = {
            "person": pid,
            "kind": kind,
            "status": rng.choice(["planned", "in-progress", "finished", "cancelled", "odd-status"]),
            "patient_class": rng.choice(["I", "O", "E", None]),
            "facility": rng.choice(["RR8", "RAE", None]),
            "admitted": f"{(today - timedelta(days=rng.randrange(5, 900))).isoformat()}T08:15:00+00:00",
        }
        data.add("health_events", {k: v for k, v in event.items() if v is not None})
        if rng.random() < 0.5:
            data.add(
                "flags",
                {
                    "person": pid,
                    "category": rng.choice(["risk_to_staff", "safeguarding", "medical", "communication", "other"]),
                    "text": "Synthetic alert text",
                    "start": "2022-06-01",
                    "end": rng.choice([None, "2023-01-01", (today + timedelta(days=30)).isoformat()]),
                },
            )
        if rng.random() < 0.3:
            data.add(
                "consents",
                {
                    "person": pid,
                    "scope": "share_with_health",
                    "decision": rng.random() < 0.7,
                    "recorded": "2023-01-15",
                    "expires": rng.choice([None, "2024-01-01", "2030-01-01"]),
                },
            )
        data.add(
            "documents",
            {
                "person": pid,
                "document_id": f"edrms-{sid}",
                "title": "Review notes",
                "document_type": rng.choice(["assessment", "letter", None]),
                "created": rng.choice([None, "2023-03-01T10:00:00+00:00"]),
            },
        )
        data.add(
            "relationships",
            {
                "person": pid,
                "related_name": "Synthetic Relative",
                "kind": rng.choice(
                    ["parent", "child", "sibling", "carer", "foster_carer", "guardian", "spouse", "other"]
                ),
                "is_next_of_kin": rng.random() < 0.3,
            },
        )
        if child and rng.random() < 0.5:
            data.add("transitions", {"person": pid, "stage": "identified", "identified": today.isoformat()})


def clean(payloads: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Payloads without empty values (the canonical documents leave them out)."""
    return [{k: v for k, v in p.items() if v is not None} for p in payloads]

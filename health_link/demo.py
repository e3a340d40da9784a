"""The demo's health traffic: a day of hospital ADT over MLLP and a FHIR pull, for people the demo knows.

`carehub demo` calls :func:`replay_hospital_day` after it has synced the demo's
sources (``[demo] after_sync``). It takes people whose NHS number is verified,
plays their synthetic day in hospital (registrations, admissions, transfers,
discharges) into an MLLP listener on a free loopback port, over real MLLP, and
pulls a few of them from the FHIR simulator as the ``health_fhir`` source, so
the record page's timeline shows hospital events. The messages carry no
addresses: the council's own sources stay the authority on where people live.
"""

from __future__ import annotations

import json
from collections import Counter

from sqlalchemy import select

from health_link.adt import AdtFeed
from health_link.fhir_client import FhirSource
from health_link.mllp import MllpListener, RunningListener
from health_link.simulator import FhirSimulator, SyntheticPatient, replay, synthetic_day
from hub.registry import build_pipeline
from hub.settings import Settings, SourceSettings
from hub.store.db import Store
from hub.store.tables import Entity, PersonIndex
from hub.sync import sync_source


def demo_patients(store: Store, limit: int) -> list[SyntheticPatient]:
    """Patients made from demo people with a verified NHS number (their names and birth dates)."""
    with store.session() as session:
        rows = session.execute(
            select(PersonIndex.person_id, Entity.document).join(Entity, Entity.id == PersonIndex.person_id)
            .where(PersonIndex.nhs_verified.is_(True), PersonIndex.status == "active")
            .order_by(PersonIndex.person_id).limit(limit)).all()
    patients = []
    for n, (_, document) in enumerate(rows):
        doc = json.loads(document)
        name = doc["names"][0]
        born = (doc.get("birth_date") or "1950-01-01").replace("-", "")
        patients.append(SyntheticPatient(
            hospital_number=f"D{200000 + n}", nhs_number=doc["nhs_number"], family=name.get("family") or "Unknown",
            given=(name.get("given") or ["Unknown"])[0], birth_date=born,
            sex={"male": "M", "female": "F"}.get(doc.get("sex", ""), "U"), street="", town="", postcode=""))
    return patients


def replay_hospital_day(settings: Settings, patients: int = 150) -> str:
    """Replay a day of ADT for demo people over MLLP, then pull some of them over FHIR; a one-line summary."""
    store = Store(settings.database_url)
    try:
        people = demo_patients(store, patients)
        if not people:
            return "hospital day: no demo person has a verified NHS number; nothing replayed"
        pipeline = build_pipeline(settings, store)
        listener = RunningListener(MllpListener(store, AdtFeed(pipeline)))
        try:
            messages = synthetic_day(population=people, facility="RDEMO")
            acks = replay(messages, "127.0.0.1", listener.port, window=8)
        finally:
            listener.stop()
        answers = Counter(a.split("\rMSA|", 1)[1][:2] for a in acks)
        with FhirSimulator() as simulator:
            simulator.seed(people[:20], encounters_each=2)
            source = FhirSource("health_fhir", SourceSettings(adapter="health_link.fhir_client:FhirSource",
                                                              options={"base_url": simulator.base_url}))
            try:
                pulled = sync_source(store, source, pipeline)
            finally:
                source.close()
    finally:
        store.dispose()
    return (f"hospital day: {len(messages)} ADT messages over MLLP for {len(people)} people "
            f"({', '.join(f'{k} {v}' for k, v in sorted(answers.items()))}); "
            f"FHIR pull: {pulled.accepted} Patients and Encounters accepted")

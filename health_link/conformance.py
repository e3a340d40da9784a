"""Conformance fixtures of the health link's FHIR source and target (a FHIR server simulator on loopback).

See :mod:`adapters.testing`; ``tests/conformance/`` runs every registered fixture.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adapters.testing import SourceCase, TargetCase, source_fixture, target_fixture
from health_link.fhir_client import FhirSource
from health_link.simulator import FhirSimulator, synthetic_patient, uk_core_patient
from hub.delivery.config import TargetSettings
from hub.settings import SourceSettings

INITIAL = 5


@source_fixture("fhir")
@contextmanager
def fhir_source(tmp: Path) -> Iterator[SourceCase]:
    """Patients (no encounters) pulled by _lastUpdated; 429/503 waited out by the FHIR client."""
    sim = FhirSimulator().start()
    numbers = itertools.count(1)

    def add() -> tuple[str, str]:
        made = sim.store.put(uk_core_patient(synthetic_patient(next(numbers))))
        return "Patient", made["id"]

    def change() -> tuple[str, str]:
        first = sorted(sim.store.resources["Patient"])[0]
        patient = dict(sim.store.resources["Patient"][first])
        patient["name"] = [{"use": "official", "family": "Changed", "given": ["Sam"]}]
        sim.store.put(patient, first)
        return "Patient", first

    def bad() -> tuple[str, str, str]:
        made = sim.store.put({"resourceType": "Patient", "gender": "female", "birthDate": "2001-02-03"})
        return "Patient", made["id"], "MISSING_FIELD"

    def heal() -> None:
        with sim.store.lock:
            sim.store.failures.clear()

    def adapter() -> FhirSource:
        return FhirSource("conformance_fhir", SourceSettings(adapter="health_link.fhir_client:FhirSource", options={
            "base_url": sim.base_url, "page_size": 2, "backoff_seconds": 0.01}))

    for _ in range(INITIAL):
        add()
    try:
        yield SourceCase(adapter=adapter(), initial=INITIAL, add=add, change=change, add_bad=bad,
                         fail_transiently=lambda n: sim.store.fail_next(503, n), heal=heal,
                         fail_permanently=lambda: sim.store.fail_next(403, 100), make_adapter=adapter)
    finally:
        sim.stop()


@target_fixture("fhir")
@contextmanager
def fhir_target(tmp: Path) -> Iterator[TargetCase]:
    """Adult care episodes sent as EpisodeOfCare by conditional update."""
    sim = FhirSimulator().start()
    settings = TargetSettings(adapter="health_link.fhir_client:FhirTarget", options={
        "base_url": sim.base_url, "backoff_seconds": 0.01})
    try:
        yield TargetCase(
            settings=settings,
            event=lambda n: ("Episode", {"service_area": "adults", "kind": "long_term_support",
                                         "start": f"2024-01-{n % 28 + 1:02d}", "team": "ASC-E"}),
            held=lambda: len(sim.store.resources.get("EpisodeOfCare", {})),
            fail_transiently=lambda n: sim.store.fail_next(503, n * 2),  # the client retries once in place
            refuse_next=lambda: sim.store.fail_next(422), refusal="422")
    finally:
        sim.stop()

"""FHIR R4 (UK Core) in both directions: pull Patient and Encounter, push EpisodeOfCare, Flag and CarePlan.

* :class:`FhirClient` - search with ``next``-link paging, read, conditional update; 429 and
  503 are waited out (``Retry-After``, else exponential backoff) a few times. This is the
  one place requests is called: its errors become hub errors here and nowhere else.
* :class:`FhirSource` - the source adapter ``health_fhir``: streams ``Patient`` then
  ``Encounter``, read incrementally by ``_lastUpdated`` after the saved cursor; UK Core
  mapped to the canonical Person and HealthEvent. :func:`pull_patient` fetches one
  person (and their encounters) by NHS number.
* :class:`FhirTarget` - the delivery target adapter: adult care episodes, safeguarding
  flags and care plans, built by the hub's FHIR builder, are sent as conditional updates
  (``PUT Type?identifier=<hub system>|<hub id>``), so a retried push updates the same
  resource and never makes a second one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import requests
from sqlalchemy.orm import Session

from hub.contract import ChangeEvent, MappedRecord, PushResult, SourceRecord, StreamCursor, StreamSpec, not_sent
from hub.delivery.config import TargetSettings
from hub.errors import ConfigError, HubError, QuarantineError, RetryableError, SourceUnavailable
from hub.fhir import NHS_NUMBER, NHS_STATUS_EXT, FhirBuilder, to_json
from hub.pipeline import BatchResult, Pipeline
from hub.settings import SourceSettings

SOURCE = "health_fhir"
GENDERS = {"male": "male", "female": "female", "other": "other", "unknown": "unknown"}


class FhirError(HubError):
    """A FHIR server refused a request for good (a 4xx other than 429)."""

    code = "CAREHUB-E320"


class FhirClient:
    """Talks to one FHIR R4 server over requests."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, retries: int = 5, backoff: float = 0.5,
                 max_wait: float = 30.0, headers: dict[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout, self.retries, self.backoff, self.max_wait = timeout, retries, backoff, max_wait
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/fhir+json", **(headers or {})})

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request; 429/503 and connection failures are retried with backoff, then raised as retryable."""
        target = url if url.startswith("http") else f"{self.base_url}/{url.lstrip('/')}"
        for attempt in range(self.retries + 1):
            try:
                response = self.session.request(method, target, timeout=self.timeout, **kwargs)
            except requests.RequestException as exc:
                if attempt == self.retries:
                    raise SourceUnavailable(f"FHIR server {self.base_url} unreachable: {type(exc).__name__}") from exc
                self._wait(attempt, None)
                continue
            if response.status_code in (429, 503):
                if attempt == self.retries:
                    raise RetryableError(f"FHIR server {self.base_url} still answers {response.status_code}")
                self._wait(attempt, response.headers.get("Retry-After"))
                continue
            if response.status_code >= 500:
                raise RetryableError(f"FHIR server {self.base_url} answered {response.status_code}")
            if response.status_code >= 400:
                raise FhirError(f"FHIR server refused {method} {target.split('?')[0]}: {response.status_code} "
                                f"{_diagnostics(response)}")
            return response
        raise RetryableError(f"FHIR server {self.base_url} did not answer")  # the loop always returns or raises

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * (2 ** attempt)
        if retry_after and retry_after.strip().isdigit():
            delay = float(retry_after)
        time.sleep(min(delay, self.max_wait))

    def search(self, resource_type: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every resource a search matches, following the Bundle's ``next`` links."""
        response = self.request("GET", resource_type, params=params)
        while True:
            bundle = _json(response)
            for entry in bundle.get("entry", []):
                resource = entry.get("resource") or {}
                if entry.get("search", {}).get("mode", "match") == "match" and resource.get("resourceType") == \
                        resource_type:
                    yield resource
            following = next((link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None)
            if not following:
                return
            response = self.request("GET", following)

    def conditional_update(self, resource: dict[str, Any], system: str, value: str) -> tuple[int, str]:
        """PUT ``Type?identifier=system|value``: the status (201 created, 200 updated) and Location."""
        response = self.request("PUT", resource["resourceType"], params={"identifier": f"{system}|{value}"},
                                json=resource, headers={"Content-Type": "application/fhir+json"})
        return response.status_code, response.headers.get("Location", "")

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body: dict[str, Any] = response.json()
    except ValueError as exc:
        raise RetryableError(f"FHIR server answered {response.status_code} without JSON") from exc
    return body


def _diagnostics(response: requests.Response) -> str:
    try:
        issues = response.json().get("issue", [])
    except ValueError:
        return ""
    return "; ".join(str(i.get("diagnostics") or i.get("code")) for i in issues)[:200]


# -- UK Core to canonical ----------------------------------------------------------------------------


def person_from_patient(patient: dict[str, Any]) -> dict[str, Any]:
    """A canonical Person document from a UK Core Patient (QuarantineError when it cannot be one)."""
    doc: dict[str, Any] = {"identifiers": [{"system": SOURCE, "value": patient["id"]}]}
    for ident in patient.get("identifier", []):
        if ident.get("system") == NHS_NUMBER and ident.get("value"):
            doc["nhs_number"] = ident["value"]
            for ext in ident.get("extension", []):
                if ext.get("url") == NHS_STATUS_EXT or ext.get("url", "").startswith(
                        "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"):
                    codes = [c.get("code") for c in ext.get("valueCodeableConcept", {}).get("coding", [])]
                    status = next((c for c in codes if c and re.fullmatch(r"0[1-8]", c)), None)
                    if status:
                        doc["nhs_number_status"] = status
    names = []
    for name in patient.get("name", []):
        if not name.get("family") and not name.get("given"):
            continue
        use = name.get("use") if name.get("use") in ("official", "usual", "nickname", "maiden", "old") else "official"
        entry: dict[str, Any] = {"use": use, "given": list(name.get("given", []))}
        if name.get("family"):
            entry["family"] = name["family"]
        if name.get("prefix"):
            entry["prefix"] = name["prefix"][0]
        names.append(entry)
    if not names:
        raise QuarantineError("MISSING_FIELD", "the Patient has no name", field="name")
    doc["names"] = names
    if patient.get("birthDate"):
        doc["birth_date"] = patient["birthDate"][:10]
    doc["sex"] = GENDERS.get(patient.get("gender", "unknown"), "unknown")
    if patient.get("deceasedDateTime"):
        doc["death_date"] = patient["deceasedDateTime"][:10]
    addresses = []
    for address in patient.get("address", []):
        lines = address.get("line", [])
        text = address.get("text") or ", ".join(p for p in [*lines, address.get("city"), address.get("postalCode")]
                                                if p)
        if not text:
            continue
        entry = {"use": "temp" if address.get("use") == "temp" else "home", "text": text}
        if address.get("city"):
            entry["town"] = address["city"]
        if address.get("postalCode"):
            entry["postcode"] = address["postalCode"]
        if address.get("period", {}).get("end"):
            entry["end"] = address["period"]["end"][:10]
        addresses.append(entry)
    doc["addresses"] = sorted(addresses, key=lambda a: "end" in a)
    return doc


ENCOUNTER_CLASSES = {"IMP": "I", "ACUTE": "I", "NONAC": "I", "AMB": "O", "EMER": "E"}


def health_event_from_encounter(encounter: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A canonical HealthEvent document from an Encounter, and the id of its Patient."""
    reference = (encounter.get("subject") or {}).get("reference", "")
    if not reference.startswith("Patient/"):
        raise QuarantineError("UNRESOLVED_REFERENCE", "the Encounter has no Patient subject", field="subject")
    klass = ENCOUNTER_CLASSES.get((encounter.get("class") or {}).get("code", ""))
    status = encounter.get("status", "unknown")
    period = encounter.get("period", {})
    doc: dict[str, Any] = {
        "kind": "admission" if klass == "I" else "attendance",
        "status": status if status in ("planned", "in-progress", "finished", "cancelled") else "in-progress",
    }
    if klass:
        doc["patient_class"] = klass
    if period.get("start"):
        doc["admitted"] = period["start"]
    if period.get("end"):
        doc["discharged"] = period["end"]
    visit = next((i.get("value") for i in encounter.get("identifier", []) if i.get("value")), None)
    if visit:
        doc["visit_number"] = visit
    provider = (encounter.get("serviceProvider") or {}).get("identifier", {}).get("value")
    if provider:
        doc["facility"] = provider
    location = next((loc.get("location", {}).get("display") for loc in encounter.get("location", [])), None)
    if location:
        ward, _, bed = location.partition(" ")
        doc["ward"] = ward
        if bed:
            doc["bed"] = bed
    return doc, reference.removeprefix("Patient/")


class FhirSource:
    """The ``health_fhir`` source: Patients then Encounters from a FHIR R4 server, by ``_lastUpdated``.

    Options: ``base_url`` (required), ``page_size`` (default 100), ``timeout_seconds``.
    """

    def __init__(self, name: str, settings: SourceSettings) -> None:
        self.name = name
        base = settings.options.get("base_url")
        if not base:
            raise ConfigError(f"source {name!r} needs options.base_url")
        self.page_size = int(settings.options.get("page_size", 100))
        self.client = FhirClient(str(base), timeout=float(settings.options.get("timeout_seconds", 30)),
                                 backoff=float(settings.options.get("backoff_seconds", 0.5)))

    def streams(self) -> list[StreamSpec]:
        """Patients first: encounters refer to them."""
        return [StreamSpec("Patient", "Person"), StreamSpec("Encounter", "HealthEvent", depends_on=["Patient"])]

    def pull(self, stream: str, cursor: StreamCursor, until: datetime) -> Iterator[SourceRecord]:
        """Resources changed after the cursor and not after ``until``, oldest first."""
        params: dict[str, Any] = {"_lastUpdated": [f"le{until.isoformat()}"], "_sort": "_lastUpdated",
                                  "_count": self.page_size}
        if cursor.modified:
            params["_lastUpdated"].append(f"ge{cursor.modified}")
        after = (cursor.modified or "", cursor.key or "")
        records = []
        for resource in self.client.search(stream, params):
            updated = resource.get("meta", {}).get("lastUpdated", "")
            if cursor.modified and (_instant(updated), resource["id"]) <= (_instant(after[0]), after[1]):
                continue
            records.append(SourceRecord(stream, resource["id"], resource, updated))
        records.sort(key=lambda r: (_instant(r.modified or ""), r.source_id))
        yield from records

    def map(self, record: SourceRecord) -> MappedRecord:
        """UK Core to canonical."""
        if record.stream == "Patient":
            return MappedRecord("Person", person_from_patient(record.payload))
        document, patient = health_event_from_encounter(record.payload)
        return MappedRecord("HealthEvent", document, {"person_id": ("Patient", patient)})

    def can_read_ahead(self) -> bool:
        """No: the FHIR client's connections are not shared with a forked reader."""
        return False

    def after_fork(self) -> None:
        """Nothing to drop (never read ahead)."""

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else datetime.min.replace(tzinfo=UTC)


def pull_patient(session: Session, pipeline: Pipeline, source: FhirSource, nhs_number: str) -> BatchResult:
    """Fetch one person by NHS number, and their encounters, into the hub (in ``session``'s transaction)."""
    patients = list(source.client.search("Patient", {"identifier": f"{NHS_NUMBER}|{nhs_number}"}))
    result = pipeline.ingest(session, source.name, [
        SourceRecord("Patient", p["id"], p, p.get("meta", {}).get("lastUpdated")) for p in patients], source.map)
    for patient in patients:
        encounters = [SourceRecord("Encounter", e["id"], e, e.get("meta", {}).get("lastUpdated"))
                      for e in source.client.search("Encounter", {"patient": f"Patient/{patient['id']}"})]
        if encounters:
            result.add(pipeline.ingest(session, source.name, encounters, source.map))
    return result


# -- canonical to FHIR, pushed -------------------------------------------------------------------------


class FhirTarget:
    """Pushes adult care episodes, safeguarding flags and care plans to a FHIR server as conditional updates.

    Options: ``base_url`` (required); ``identifier_base`` (the hub's identifier systems,
    default the demo's); ``episode_areas`` / ``care_plan_areas`` (default ``["adults"]``);
    ``flag_categories`` (default ``["safeguarding"]``). Events for other records are
    accepted without being sent (receipt ``not shared``).
    """

    def __init__(self, name: str, settings: TargetSettings) -> None:
        self.name = name
        options = settings.options
        if not options.get("base_url"):
            raise ConfigError(f"target {name!r} needs options.base_url")
        self.client = FhirClient(str(options["base_url"]), timeout=settings.timeout_seconds, retries=1,
                                 backoff=float(options.get("backoff_seconds", 0.5)))
        self.builder = FhirBuilder(str(options.get("identifier_base", "https://carehub.example.gov.uk/Id")))
        self.episode_areas = set(options.get("episode_areas", ["adults"]))
        self.care_plan_areas = set(options.get("care_plan_areas", ["adults"]))
        self.flag_categories = set(options.get("flag_categories", ["safeguarding"]))

    def resource(self, event: ChangeEvent) -> dict[str, Any] | None:
        """The FHIR resource for an event's record, or None when it is not shared with health."""
        doc = {k: v for k, v in event.payload.items() if k != "id"}
        item = {"id": event.entity_id, "data": doc, "updated": event.created_at.isoformat()}
        if event.entity_type == "Episode" and doc.get("service_area") in self.episode_areas:
            resource = to_json(self.builder.episode_of_care(item))
        elif event.entity_type == "Flag" and doc.get("category") in self.flag_categories:
            resource = to_json(self.builder.flag(item))
        elif event.entity_type == "CarePlan" and doc.get("service_area") in self.care_plan_areas:
            resource = to_json(self.builder.care_plan(item))
        else:
            return None
        resource.pop("id", None)
        resource.pop("meta", None)
        person = {"identifier": {"system": self.builder.local_system("person"), "value": event.person_id}}
        resource["patient" if event.entity_type == "Episode" else "subject"] = person
        resource["identifier"] = [{"system": self.system(event.entity_type), "value": event.entity_id}]
        return resource

    def system(self, entity_type: str) -> str:
        """The identifier system the hub's records of a type carry on the target."""
        return self.builder.local_system(entity_type.lower())

    def push(self, batch: list[ChangeEvent]) -> list[PushResult]:
        """Send each shared event as a conditional update; transient failures fail the rest of the batch."""
        results = []
        for event in batch:
            resource = self.resource(event)
            if resource is None:
                results.append(PushResult(event.event_id, True, receipt="not shared"))
                continue
            try:
                status, location = self.client.conditional_update(resource, self.system(event.entity_type),
                                                                  event.entity_id)
            except FhirError as exc:
                results.append(PushResult(event.event_id, False, error=exc.message, permanent=True))
                continue
            except RetryableError:
                if not results:
                    raise
                results.extend(not_sent(batch[len(results):]))
                break
            results.append(PushResult(event.event_id, True, receipt=f"{status} {location}"))
        return results

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()



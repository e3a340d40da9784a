"""The FHIR R4 facade's resources, built from canonical documents with fhir.resources (R4B module).

Every builder returns a validated fhir.resources object; :func:`to_json` emits
it. R4B is the package's closest model to R4: the builders use only elements
R4 also has, so the JSON is R4 (4.0.1) on the wire. fhir.resources checks
structure but not codes, so each code the hub emits is checked here against its
value set (:func:`coded`): an unknown code is a bug and fails loudly.

UK Core conventions: the NHS number identifier carries the verification-status
extension; an address with a UPRN carries the AddressKey extension; the ethnic
category extension uses the England code system. The council's own ids use
identifier systems under ``[auth] identifier_base``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.episodeofcare import EpisodeOfCare
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.relatedperson import RelatedPerson
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.task import Task

from hub import __version__
from hub.errors import HubError
from hub.fhir_search import PARAMETERS, PREFIXES, RESULT_PARAMETERS, SearchParameter, includes_of

NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
NHS_STATUS_EXT = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
NHS_STATUS_CS = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
ADDRESS_KEY_EXT = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AddressKey"
ADDRESS_KEY_CS = "https://fhir.hl7.org.uk/CodeSystem/UKCore-AddressKeyType"
ETHNIC_EXT = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
ETHNIC_CS = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"

NHS_STATUS_DISPLAY = {
    "01": "Number present and verified", "02": "Number present but not traced", "03": "Trace required",
    "04": "Trace attempted - No match or multiple match found", "05": "Trace needs to be resolved",
    "06": "Trace in progress", "07": "Number not present and trace not required", "08": "Trace postponed",
}
ETHNIC_CODES = frozenset("ABCDEFGHJKLMNPRSZ")

# The value sets of the codes the hub emits (required bindings in R4, or the hub's chosen code systems).
VALUE_SETS: dict[str, frozenset[str]] = {
    "task-status": frozenset({"draft", "requested", "received", "accepted", "rejected", "ready", "cancelled",
                              "in-progress", "on-hold", "failed", "completed", "entered-in-error"}),
    "administrative-gender": frozenset({"male", "female", "other", "unknown"}),
    "link-type": frozenset({"replaced-by", "replaces", "refer", "seealso"}),
    "name-use": frozenset({"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"}),
    "address-use": frozenset({"home", "work", "temp", "old", "billing"}),
    "address-type": frozenset({"postal", "physical", "both"}),
    "episode-of-care-status": frozenset({"planned", "waitlist", "active", "onhold", "finished", "cancelled",
                                         "entered-in-error"}),
    "encounter-status": frozenset({"planned", "arrived", "triaged", "in-progress", "onleave", "finished",
                                   "cancelled", "entered-in-error", "unknown"}),
    "encounter-class": frozenset({"IMP", "AMB", "EMER", "HH", "VR", "ACUTE", "NONAC", "OBSENC", "PRENC", "SS"}),
    "request-status": frozenset({"draft", "active", "on-hold", "revoked", "completed", "entered-in-error",
                                 "unknown"}),
    "care-plan-intent": frozenset({"proposal", "plan", "order", "option"}),
    "flag-status": frozenset({"active", "inactive", "entered-in-error"}),
    "flag-category": frozenset({"diet", "drug", "lab", "admin", "behavioral", "research", "clinical", "safety"}),
    "consent-state-codes": frozenset({"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}),
    "consent-provision-type": frozenset({"deny", "permit"}),
    "document-reference-status": frozenset({"current", "superseded", "entered-in-error"}),
    "audit-event-action": frozenset({"C", "R", "U", "D", "E"}),
    "audit-event-outcome": frozenset({"0", "4", "8", "12"}),
    "restful-interaction": frozenset({"read", "vread", "update", "patch", "delete", "history", "create", "search",
                                      "search-type", "search-system", "capabilities", "transaction", "batch",
                                      "operation"}),
    "v3-RoleCode": frozenset({"PRN", "MTH", "FTH", "CHILD", "SIB", "SPS", "GUARD", "FAMMEMB", "NOK"}),
    "purpose-of-use": frozenset({"TREAT", "ETREAT", "BTG", "CAREMGT", "HPAYMT", "HOPERAT", "RECORDMGT"}),
    "nhs-number-verification-status": frozenset(NHS_STATUS_DISPLAY),
    "ethnic-category": ETHNIC_CODES,
}


class InvalidResource(HubError):
    """The hub was about to emit a code outside its value set: a bug, refused rather than sent."""

    code = "CAREHUB-E500"


def coded(value_set: str, code: str) -> str:
    """``code`` when it is in ``value_set``; InvalidResource otherwise."""
    if code not in VALUE_SETS[value_set]:
        raise InvalidResource(f"code {code!r} is not in value set {value_set}")
    return code


def _ref(resource_type: str, rid: str | None, display: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"reference": f"{resource_type}/{rid}"} if rid else {}
    if display:
        ref["display"] = display
    return ref


def _period(start: Any, end: Any) -> dict[str, str] | None:
    period = {k: str(v) for k, v in (("start", start), ("end", end)) if v}
    return period or None


def _text(value: str) -> dict[str, str]:
    return {"text": value}


def _meta(updated: str | None) -> dict[str, Any] | None:
    return {"lastUpdated": updated} if updated else None


def _instant(value: Any) -> str | None:
    """A FHIR instant (with zone) from an ISO date-time; naive values are read as UTC."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        cleaned = {k: _clean(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, [], {}, "")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


class FhirBuilder:
    """Builds the facade's resources; knows the council's identifier base and, where given, its teams' names
    (``team_name``: a code to its name, the access policy's reference data)."""

    def __init__(self, identifier_base: str, team_name: Callable[[str], str | None] | None = None) -> None:
        self.identifier_base = identifier_base.rstrip("/")
        self.team_name = team_name

    def local_system(self, system: str) -> str:
        """The FHIR identifier system of a source system's local ids."""
        return f"{self.identifier_base}/{system}"

    # -- Patient ------------------------------------------------------------------------------

    def patient(self, pid: str, doc: dict[str, Any], updated: str | None = None) -> Patient:
        """A UK Core-shaped Patient from a golden Person document."""
        identifiers: list[dict[str, Any]] = []
        if doc.get("nhs_number"):
            ident: dict[str, Any] = {"system": NHS_NUMBER, "value": doc["nhs_number"]}
            status = doc.get("nhs_number_status")
            if status:
                ident["extension"] = [{"url": NHS_STATUS_EXT, "valueCodeableConcept": {"coding": [{
                    "system": NHS_STATUS_CS, "code": coded("nhs-number-verification-status", status),
                    "display": NHS_STATUS_DISPLAY[status]}]}}]
            identifiers.append(ident)
        identifiers += [{"system": self.local_system(i["system"]), "value": i["value"]}
                        for i in doc.get("identifiers", [])]
        names = [{
            "use": coded("name-use", n.get("use", "official")), "family": n.get("family"), "given": n.get("given"),
            "prefix": [n["prefix"]] if n.get("prefix") else None, "period": _period(n.get("start"), n.get("end")),
        } for n in doc.get("names", [])]
        extensions = []
        if doc.get("ethnicity") in ETHNIC_CODES:
            extensions.append({"url": ETHNIC_EXT, "valueCodeableConcept": {"coding": [{
                "system": ETHNIC_CS, "code": coded("ethnic-category", doc["ethnicity"])}]}})
        communication = None
        if doc.get("language"):
            communication = [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": doc["language"]}]},
                              "preferred": True}]
        data = {
            "resourceType": "Patient", "id": pid, "meta": _meta(updated), "extension": extensions,
            "identifier": identifiers, "name": names,
            "gender": coded("administrative-gender", doc.get("sex", "unknown")),
            "birthDate": doc.get("birth_date"), "deceasedDateTime": doc.get("death_date"),
            "address": [self.address(a) for a in doc.get("addresses", [])], "communication": communication,
            "active": not doc.get("merged_into"),
            "link": [{"other": _ref("Patient", doc["merged_into"]), "type": coded("link-type", "replaced-by")}]
            if doc.get("merged_into") else None,
        }
        return Patient.model_validate(_clean(data))

    @staticmethod
    def address(a: dict[str, Any]) -> dict[str, Any]:
        """A FHIR Address from a BS7666-shaped canonical address (UPRN as the UK Core AddressKey)."""
        use = {"home": "home", "temp": "temp", "placement": "temp", "correspondence": "home"}.get(a.get("use", ""),
                                                                                                  "home")
        if a.get("end"):
            use = "old"
        number = " ".join(str(p) for p in (a.get("pao_start_number"), a.get("pao_start_suffix")) if p)
        lines = [a.get("sao_text"), a.get("pao_text"), " ".join(p for p in (number, a.get("street")) if p)]
        address: dict[str, Any] = {
            "use": coded("address-use", use),
            "type": coded("address-type", "postal" if a.get("use") == "correspondence" else "both"),
            "text": a.get("text"), "line": [line for line in lines if line], "district": a.get("locality"),
            "city": a.get("town"), "postalCode": a.get("postcode"), "period": _period(a.get("start"), a.get("end")),
        }
        if a.get("uprn"):
            address["extension"] = [{"url": ADDRESS_KEY_EXT, "extension": [
                {"url": "type", "valueCoding": {"system": ADDRESS_KEY_CS, "code": "UPRN",
                                                "display": "Unique Property Reference Number"}},
                {"url": "value", "valueString": a["uprn"]},
            ]}]
        return address

    # -- the rest of the record ---------------------------------------------------------------

    def build(self, entity_type: str, item: dict[str, Any]) -> Resource:
        """The FHIR resource for one record item (as :func:`hub.record.open_record` gives it)."""
        return BUILDERS[entity_type](self, item)

    def related_person(self, item: dict[str, Any]) -> RelatedPerson:
        """RelatedPerson from a Relationship."""
        doc = item["data"]
        codes = {"parent": "PRN", "mother": "MTH", "father": "FTH", "child": "CHILD", "sibling": "SIB",
                 "spouse": "SPS", "guardian": "GUARD"}
        relationship: list[dict[str, Any]] = [{"text": doc["kind"].replace("_", " ")}]
        if doc["kind"] in codes:
            relationship[0]["coding"] = [{"system": ROLE_CODE, "code": coded("v3-RoleCode", codes[doc["kind"]])}]
        if doc.get("is_next_of_kin"):
            relationship.append({"coding": [{"system": ROLE_CODE, "code": coded("v3-RoleCode", "NOK")}]})
        data = {"resourceType": "RelatedPerson", "id": item["id"], "meta": _meta(item.get("updated")),
                "active": not doc.get("end"), "patient": _ref("Patient", doc.get("person_id")),
                "relationship": relationship,
                "name": [{"text": doc["related_name"]}] if doc.get("related_name") else None,
                "period": _period(doc.get("start"), doc.get("end"))}
        return RelatedPerson.model_validate(_clean(data))

    def episode_of_care(self, item: dict[str, Any]) -> EpisodeOfCare:
        """EpisodeOfCare from an Episode (case/involvement)."""
        doc = item["data"]
        status = "finished" if doc.get("end") else "active"
        data = {"resourceType": "EpisodeOfCare", "id": item["id"], "meta": _meta(item.get("updated")),
                "status": coded("episode-of-care-status", status),
                "type": [_text(f"{doc['service_area']} {doc['kind']}")],
                "patient": _ref("Patient", doc.get("person_id")), "period": _period(doc.get("start"), doc.get("end")),
                "team": [self.team(doc["team"])] if doc.get("team") else None,
                "careManager": {"display": doc["allocated_worker"]} if doc.get("allocated_worker") else None}
        return EpisodeOfCare.model_validate(_clean(data))

    def team(self, code: str) -> dict[str, Any]:
        """A reference to a council team: its code as a business identifier, its name as the display."""
        name = self.team_name(code) if self.team_name is not None else None
        return {"identifier": {"system": self.local_system("team"), "value": code}, "display": name or code}

    def task(self, item: dict[str, Any]) -> Task:
        """Task from a Transition: the move to adult services (Care Act s58), its stage as the Task's status and
        business status, the hold reason as the status reason, the adults' system's referral id."""
        doc = item["data"]
        stage = doc.get("stage", "identified")
        status = TASK_STATUS.get(stage, "in-progress")
        data = {"resourceType": "Task", "id": item["id"], "meta": _meta(item.get("updated")),
                "status": coded("task-status", status), "intent": "order",
                "businessStatus": _text(stage.replace("_", " ")),
                "statusReason": _text(doc["hold_reason"]) if doc.get("hold_reason") else None,
                "code": _text("Transition to adult social care (Care Act 2014 s58 transition assessment)"),
                "for": _ref("Patient", doc.get("person_id")), "authoredOn": doc.get("identified"),
                "identifier": [{"system": self.local_system("adults_case"), "value": doc["adults_system_id"]}]
                if doc.get("adults_system_id") else None,
                "owner": {"display": "Adult social care"},
                "note": [{"text": doc["significant_benefit_reason"]}] if doc.get("significant_benefit_reason")
                else None}
        return Task.model_validate(_clean(data))

    def care_plan(self, item: dict[str, Any]) -> CarePlan:
        """CarePlan from a CarePlan (CIN, CP, care, support, pathway plan)."""
        doc = item["data"]
        status = {"draft": "draft", "awaiting_approval": "draft", "approved": "active", "rejected": "revoked",
                  "ended": "completed", "cancelled": "revoked"}[doc.get("status", "draft")]
        if status == "active" and doc.get("end") and doc["end"] < date.today().isoformat():
            status = "completed"
        data = {"resourceType": "CarePlan", "id": item["id"], "meta": _meta(item.get("updated")),
                "status": coded("request-status", status), "intent": coded("care-plan-intent", "plan"),
                "category": [_text(doc["kind"].replace("_", " "))], "title": doc["kind"].replace("_", " ").capitalize(),
                "subject": _ref("Patient", doc.get("person_id")),
                "period": _period(doc.get("start"), doc.get("end")),
                "author": {"display": doc["approved_by"]} if doc.get("approved_by") else None}
        return CarePlan.model_validate(_clean(data))

    def encounter(self, item: dict[str, Any]) -> Encounter:
        """Encounter from a HealthEvent (admission, attendance, discharge...)."""
        doc = item["data"]
        klass = {"I": "IMP", "O": "AMB", "E": "EMER"}.get(doc.get("patient_class") or "",
                                                          "IMP" if doc["kind"] in ("admission", "transfer") else "AMB")
        status = doc.get("status", "unknown")
        data = {"resourceType": "Encounter", "id": item["id"], "meta": _meta(item.get("updated")),
                "status": coded("encounter-status", status if status in VALUE_SETS["encounter-status"] else "unknown"),
                "class": {"system": ACT_CODE, "code": coded("encounter-class", klass)},
                "type": [_text(doc["kind"])], "subject": _ref("Patient", doc.get("person_id")),
                "period": _period(_instant(doc.get("admitted")), _instant(doc.get("discharged"))),
                "identifier": [{"system": self.local_system("visit"), "value": doc["visit_number"]}]
                if doc.get("visit_number") else None,
                "serviceProvider": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code",
                                                   "value": doc["facility"]}} if doc.get("facility") else None,
                "location": [{"location": {"display": " ".join(p for p in (doc.get("ward"), doc.get("bed")) if p)}}]
                if doc.get("ward") else None}
        return Encounter.model_validate(_clean(data))

    def flag(self, item: dict[str, Any]) -> Flag:
        """Flag from a Flag (alert)."""
        doc = item["data"]
        active = not doc.get("end") or doc["end"] >= date.today().isoformat()
        category = {"risk_to_staff": "safety", "safeguarding": "safety", "medical": "clinical",
                    "communication": "admin"}.get(doc["category"], "admin")
        data = {"resourceType": "Flag", "id": item["id"], "meta": _meta(item.get("updated")),
                "status": coded("flag-status", "active" if active else "inactive"),
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category",
                                          "code": coded("flag-category", category)}],
                              "text": doc["category"].replace("_", " ")}],
                "code": _text(doc["text"]), "subject": _ref("Patient", doc.get("person_id")),
                "period": _period(doc.get("start"), doc.get("end")),
                "author": {"display": doc["raised_by"]} if doc.get("raised_by") else None}
        return Flag.model_validate(_clean(data))

    def consent(self, item: dict[str, Any]) -> Consent:
        """Consent from a Consent decision (e.g. share with health: permit or deny)."""
        doc = item["data"]
        expired = doc.get("expires") and doc["expires"] < date.today().isoformat()
        data = {"resourceType": "Consent", "id": item["id"], "meta": _meta(item.get("updated")),
                "status": coded("consent-state-codes", "inactive" if expired else "active"),
                "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                      "code": "patient-privacy"}]},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": _ref("Patient", doc.get("person_id")), "dateTime": doc.get("recorded"),
                "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTIN" if doc["decision"] else "OPTOUT"}],
                               "text": doc.get("reason")},
                "provision": {"type": coded("consent-provision-type", "permit" if doc["decision"] else "deny"),
                              "period": _period(None, doc.get("expires")),
                              "code": [_text(doc["scope"].replace("_", " "))]}}
        return Consent.model_validate(_clean(data))

    def document_reference(self, item: dict[str, Any]) -> DocumentReference:
        """DocumentReference from a DocumentLink (an EDRMS document)."""
        doc = item["data"]
        data = {"resourceType": "DocumentReference", "id": item["id"], "meta": _meta(item.get("updated")),
                "masterIdentifier": {"system": self.local_system("edrms"), "value": doc["document_id"]},
                "status": coded("document-reference-status", "current"),
                "type": _text(doc["document_type"]) if doc.get("document_type") else None,
                "subject": _ref("Patient", doc.get("person_id")), "date": _instant(doc.get("created")),
                "description": doc["title"],
                "author": [{"display": doc["author"]}] if doc.get("author") else None,
                "content": [{"attachment": {"title": doc["title"],
                                            "url": doc.get("url") or
                                            f"{self.local_system('edrms')}/{doc['document_id']}"}}],
                "context": {"encounter": None,
                            "related": [_ref("EpisodeOfCare", doc["episode_id"])] if doc.get("episode_id") else None}}
        return DocumentReference.model_validate(_clean(data))

    # -- audit --------------------------------------------------------------------------------

    def audit_event(self, row: Any, persons: list[str], purpose_code: str) -> AuditEvent:
        """AuditEvent from one audit row (who, role, purpose, client, what, outcome, break-glass reason)."""
        action = {"read": "R", "search": "E", "write": "U"}.get(row.action, "E")
        interaction = {"read": "read", "search": "search-type", "write": "update"}.get(row.action, "operation")
        outcome = {"success": "0", "denied": "4", "not_found": "4", "invalid": "4", "error": "8"}[row.outcome]
        purposes = [{"coding": [{"system": ACT_REASON, "code": coded("purpose-of-use", purpose_code)}],
                     "text": row.purpose}] if row.purpose else []
        if row.break_glass_reason:
            purposes.append({"coding": [{"system": ACT_REASON, "code": coded("purpose-of-use", "BTG")}],
                             "text": row.break_glass_reason})
        agent = {
            "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110153",
                                 "display": "Source Role ID"}]},
            "who": {"identifier": {"system": row.issuer or self.local_system("anonymous"), "value": row.user_id},
                    "display": row.user_id},
            "role": [_text(f"{row.role or 'none'}{f' ({row.team})' if row.team else ''}")],
            "requestor": True, "purposeOfUse": purposes,
            "network": {"address": row.client_ip, "type": "2"} if row.client_ip else None,
        }
        entities = [{"what": _ref("Patient", pid), "role": {
            "system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}}
            for pid in persons]
        for ref in (row.resources or [])[:200]:
            rtype, _, rid = ref.partition("/")
            fhir_type = ENTITY_RESOURCES.get(rtype)
            if fhir_type and fhir_type != "Patient":
                entities.append({"what": _ref(fhir_type, rid)})
        data = {"resourceType": "AuditEvent", "id": row.event_id,
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
                         "display": "Restful Operation"},
                "subtype": [{"system": "http://hl7.org/fhir/restful-interaction",
                             "code": coded("restful-interaction", interaction)}],
                "action": coded("audit-event-action", action), "recorded": row.recorded.isoformat(),
                "outcome": coded("audit-event-outcome", outcome),
                "outcomeDesc": row.reason or f"{row.method} {row.path} -> {row.status}",
                "agent": [agent], "source": {"observer": {"display": f"Care Hub {__version__}"}, "site": "carehub"},
                "entity": entities}
        return AuditEvent.model_validate(_clean(data))


BUILDERS = {
    "Relationship": FhirBuilder.related_person, "Episode": FhirBuilder.episode_of_care,
    "CarePlan": FhirBuilder.care_plan, "HealthEvent": FhirBuilder.encounter, "Flag": FhirBuilder.flag,
    "Consent": FhirBuilder.consent, "DocumentLink": FhirBuilder.document_reference, "Transition": FhirBuilder.task,
}
# A Transition's stage as a Task's status (the stage itself is the Task's business status).
TASK_STATUS = {"identified": "draft", "held": "on-hold", "referral_requested": "requested", "received": "received",
               "assessment": "in-progress", "eligible": "in-progress", "not_eligible": "rejected",
               "plan_in_place": "completed", "closed": "completed"}
# FHIR resource type -> the canonical entity type behind it.
RESOURCE_TYPES = {"Patient": "Person", "RelatedPerson": "Relationship", "EpisodeOfCare": "Episode",
                  "CarePlan": "CarePlan", "Encounter": "HealthEvent", "Flag": "Flag", "Consent": "Consent",
                  "DocumentReference": "DocumentLink", "Task": "Transition"}
ENTITY_RESOURCES = {v: k for k, v in RESOURCE_TYPES.items()} | {"Patient": "Patient"}


def to_json(resource: Resource) -> dict[str, Any]:
    """A resource as FHIR JSON (aliases such as ``class``; nothing empty)."""
    result: dict[str, Any] = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    return result


def search_bundle(entries: list[tuple[Resource, str]], base: str, self_url: str, next_url: str | None,
                  total: int | None = None) -> Bundle:
    """A searchset Bundle; ``entries`` are (resource, "match" | "include"); ``total`` counts the matches of
    every page."""
    data: dict[str, Any] = {
        "resourceType": "Bundle", "type": "searchset", "timestamp": datetime.now(UTC).isoformat(), "total": total,
        "link": [{"relation": "self", "url": self_url}] + ([{"relation": "next", "url": next_url}] if next_url else []),
        "entry": [{"fullUrl": f"{base}/{r.get_resource_type()}/{r.id}", "resource": r, "search": {"mode": mode}}
                  for r, mode in entries],
    }
    return Bundle.model_validate(_clean(data))


def parameter_documentation(param: SearchParameter) -> str:
    """A parameter's documentation ending with the modifiers and prefixes it supports (a CapabilityStatement
    has no field for them): ``...; modifiers: :contains, :exact; prefixes: eq, ge``."""
    said = param.documentation
    if param.modifiers:
        said += f"; modifiers: {', '.join(':' + m for m in sorted(param.modifiers))}"
    if param.prefixes:
        said += f"; prefixes: {', '.join(p for p in PREFIXES if p in param.prefixes)}"
    return said


def capability_statement(base: str) -> CapabilityStatement:
    """What the facade offers, made from the one table of search parameters (:mod:`hub.fhir_search`):
    read and search per resource type, their parameters, modifiers and includes, $everything on Patient."""
    resources = []
    for rtype in [*RESOURCE_TYPES, "AuditEvent"]:
        params = [{"name": p.name, "type": p.type, "documentation": parameter_documentation(p)}
                  for p in PARAMETERS[rtype]]
        entry: dict[str, Any] = {"type": rtype, "interaction": [{"code": "read"}, {"code": "search-type"}],
                                 "searchParam": params, "searchInclude": includes_of(rtype)}
        if rtype == "Patient":
            entry["operation"] = [{"name": "everything",
                                   "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]
        resources.append(_clean(entry))
    data = {
        "resourceType": "CapabilityStatement", "status": "active", "date": date.today().isoformat(),
        "kind": "instance", "fhirVersion": "4.0.1", "format": ["application/fhir+json", "json"],
        "software": {"name": "Care Hub", "version": __version__},
        "implementation": {"description": "Care Hub shared care record (FHIR R4, UK Core conventions)", "url": base},
        "rest": [{"mode": "server", "security": {
            "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                     "code": "OAuth"}]}],
            "description": "OAuth2 bearer JWT (RS256); role policy, consent, seals and break glass apply."},
            "resource": resources,
            "searchParam": [{"name": name, "type": "special" if name != "_count" else "number",
                             "documentation": text} for name, text in RESULT_PARAMETERS.items()]}],
    }
    return CapabilityStatement.model_validate(data)

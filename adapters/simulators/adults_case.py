"""An adults' case management system on loopback (synthetic only): people, requests, assessments, care packages
with costs, reviews, allocations - and an intake endpoint for transition referrals.

Shaped after Hackney's adult workflows and brokerage API (``case-systems.md``): a
referral made at ``POST /api/v1/intake/transitions`` (once per ``Idempotency-Key``; a
repeat answers the first answer) returns its id and an acknowledgement per item it
carried; its status then moves on over simulated time - ``received`` -> ``assessment``
-> ``eligible`` or ``not_eligible`` -> ``plan_in_place`` - one step every
``step_seconds`` (or at once by :meth:`AdultsCaseSystem.advance`). When a plan is in
place the system holds the young person's assessment, care package (with its weekly
cost) and allocation, which its REST collections serve like any other record.
"""

from __future__ import annotations

import random
import time
from datetime import date, timedelta
from typing import Any

from adapters.simulators.childrens_case import given_name, nhs_number
from adapters.simulators.json_api import JsonApi, Request
from adapters.simulators.uk_names import FAMILY_NAMES, PROVIDER_KINDS

COLLECTIONS = ("people", "referrals", "assessments", "care_packages", "reviews", "allocations", "intake")
STEPS = ("received", "assessment", "eligible", "plan_in_place")
SERVICES = (("HC", "home_care", "hour", "22.50", "10"), ("DAY", "day_care", "day", "65.00", "2"),
            ("RES", "residential", "week", "950.00", "1"), ("DP", "direct_payment", "hour", "18.00", "12"))


class AdultsCaseSystem(JsonApi):
    """The simulated adults' system; see the module."""

    name = "adults-case"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, step_seconds: float = 3600.0,
                 today: date | None = None, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self.step_seconds = step_seconds
        self.today = today or date.today()
        for collection in COLLECTIONS:
            self.collections[collection] = {}
        self.route("POST", "/api/v1/intake/transitions", self._intake)
        self.route("GET", "/api/v1/intake/transitions", self._intake_status)
        self.route("POST", "/api/v1/_sim/advance", self._advance_route)

    # -- the ordinary case records ------------------------------------------------------------------

    def add_adult(self, *, birth_date: date, seed: int, nhs: str | None = None) -> str:
        """One adult with a request, an assessment, a costed package, a review and an allocation; the id."""
        rng = random.Random(seed)
        person_id = self.next_id("A")
        sex = rng.choice("MF")
        self.put("people", {"id": person_id, "nhs_number": nhs or nhs_number(700_000 + seed), "first_name":
                            given_name(rng, sex, birth_date.year), "last_name": rng.choice(FAMILY_NAMES[:80]),
                            "date_of_birth": birth_date.isoformat(), "gender": sex,
                            "primary_support_reason": rng.choice(["PS-PHYS", "LD", "MH", "MEM", "SENS"])})
        start = self.today - timedelta(days=rng.randint(30, 900))
        self._case(person_id, start, rng)
        return person_id

    def _case(self, person_id: str, start: date, rng: random.Random) -> str:
        self.put("referrals", {"id": self.next_id("RQ"), "person_id": person_id, "received_date": start.isoformat(),
                               "route": rng.choice(["SELF", "GP", "HOSP", "FAM", "CSC"]), "outcome": "ASSESS"})
        assessment = self.next_id("AS")
        self.put("assessments", {"id": assessment, "person_id": person_id, "type": "NEEDS",
                                 "start_date": start.isoformat(),
                                 "completed_date": (start + timedelta(days=20)).isoformat(), "eligible": True})
        code, service, unit, cost, units = rng.choice(SERVICES)
        package = self.next_id("PK")
        provider = next(name for kind, name in PROVIDER_KINDS if kind in (code, "HC"))
        # the council's provider codes, as its ERP's supplier cross-reference knows them (DP00: direct payments)
        provider_code = "DP00" if service == "direct_payment" else f"P{rng.randint(1, 60):04d}"
        self.put("care_packages", {"id": package, "person_id": person_id, "service": service, "unit": unit,
                                   "unit_cost": cost, "units_per_week": units,
                                   "start_date": (start + timedelta(days=28)).isoformat(), "end_date": None,
                                   "provider": f"Ashcombe {provider}", "provider_code": provider_code,
                                   "status": "APPROVED",
                                   "approved_date": (start + timedelta(days=27)).isoformat(),
                                   "approved_by": f"AM{rng.randint(1, 4)}",
                                   "delivery": "DP" if service == "direct_payment" else "CM"})
        self.put("reviews", {"id": self.next_id("RV"), "person_id": person_id,
                             "review_date": (start + timedelta(days=120)).isoformat(), "outcome": "CONTINUE"})
        # ASC-E: the system's own code of its locality team, Adults East (the hub's mapping translates it)
        self.put("allocations", {"id": self.next_id("AL"), "person_id": person_id, "team_code": "ASC-E",
                                 "worker_id": f"AW{rng.randint(1, 9)}", "start_date": start.isoformat()})
        return package

    def seed(self, people: int, *, seed: int = 30) -> list[str]:
        """``people`` adults aged 18-95 with their care records; their ids."""
        rng = random.Random(seed)
        return [self.add_adult(birth_date=self.today - timedelta(days=rng.randint(18 * 365, 95 * 365)),
                               seed=seed * 1_000_003 + n) for n in range(people)]

    # -- intake -------------------------------------------------------------------------------------

    def _intake(self, request: Request) -> tuple[int, Any]:
        key = request.headers.get("Idempotency-Key")
        if not key:
            return 400, {"error": "an Idempotency-Key header is required"}
        body: dict[str, Any] = request.body if isinstance(request.body, dict) else {}
        person = body.get("person")
        with self.lock:
            if key in self.refused:
                return 422, {"error": self.refused[key]}
            if key in self.idempotent:
                return self.idempotent[key]
            if not person or not person.get("birth_date"):
                return 422, {"error": "a transition referral needs the person with a date of birth"}
            person_id = self.next_id("A")
            name = (person.get("names") or [{}])[0]
            self.put("people", {"id": person_id, "nhs_number": person.get("nhs_number"),
                                "first_name": " ".join(name.get("given", [])), "last_name": name.get("family"),
                                "date_of_birth": person["birth_date"], "gender": {"male": "M", "female": "F"}.get(
                                    person.get("sex", ""), "U"), "primary_support_reason": "LD",
                                "children_system_id": body.get("children_system_id")})
            items = [self._acknowledge(item) for item in body.get("items", [])]
            referral = self.put("intake", {
                "id": self.next_id("TR"), "idempotency_key": key, "person_id": person_id,
                "source_reference": body.get("source_reference"), "received_at": time.monotonic(), "steps": 0,
                "eligible": bool(body.get("likely_eligible", True)), "status": "received", "plan_id": None,
                "items": items})
            self.put("referrals", {"id": self.next_id("RQ"), "person_id": person_id,
                                   "received_date": self.today.isoformat(), "route": "CSC", "outcome": "ASSESS"})
            answer = (201, self._public(referral))
            self.idempotent[key] = answer
            return answer

    @staticmethod
    def _acknowledge(item: dict[str, Any]) -> dict[str, Any]:
        ref = str(item.get("ref"))
        if item.get("kind") == "document" and not item.get("document_id"):
            return {"ref": ref, "status": "refused", "reason": "a document needs its EDRMS id"}
        return {"ref": ref, "status": "accepted", "receipt": f"{item.get('kind')}:{ref[:8]}"}

    def _public(self, referral: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in referral.items() if k not in ("received_at", "steps")}

    def status_of(self, referral_id: str) -> dict[str, Any]:
        """A referral as it stands now (moving it on by the time passed)."""
        with self.lock:
            referral = self.collections["intake"][referral_id]
            elapsed = int((time.monotonic() - referral["received_at"]) / self.step_seconds)
            step = min(max(elapsed, referral["steps"]), len(STEPS) - 1)
            status = STEPS[step]
            if status in ("eligible", "plan_in_place") and not referral["eligible"]:
                status = "not_eligible"
            if status != referral["status"]:
                changes: dict[str, Any] = {"status": status}
                if status == "plan_in_place" and not referral.get("plan_id"):
                    changes["plan_id"] = self._case(referral["person_id"], self.today, random.Random(referral_id))
                referral = self.touch("intake", referral_id, **changes)
            return self._public(referral)

    def advance(self, referral_id: str, steps: int = 1) -> dict[str, Any]:
        """Move a referral on by ``steps`` at once."""
        with self.lock:
            referral = self.collections["intake"][referral_id]
            self.collections["intake"][referral_id] = {**referral, "steps": referral["steps"] + steps}
            self._writes += 1
        return self.status_of(referral_id)

    def _intake_status(self, request: Request) -> tuple[int, Any]:
        key = request.arg("idempotency_key")
        with self.lock:
            found = [r["id"] for r in self.collections["intake"].values() if r.get("idempotency_key") == key]
        if not found:
            return 404, {"error": "no referral with that key"}
        return 200, self.status_of(found[0])

    def _advance_route(self, request: Request) -> tuple[int, Any]:
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("id") not in self.collections["intake"]:
            return 404, {"error": "no such referral"}
        return 200, self.advance(str(body["id"]), int(body.get("steps", 1)))


def serve(host: str = "127.0.0.1", port: int = 0, people: int = 200, step_seconds: float = 20.0) -> None:
    """Serve a seeded adults' system until interrupted (``carehub simulate adults``); a referral moves on a
    stage every ``step_seconds``."""
    sim = AdultsCaseSystem(host, port, step_seconds=step_seconds)
    sim.seed(people)
    print(f"adults' case system at {sim.base_url} (token {sim.token_url}, client carehub/demo-secret)", flush=True)
    sim.serve_forever()

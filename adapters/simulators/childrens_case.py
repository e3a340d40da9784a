"""A children's case management system on loopback, shaped like a real product's data (synthetic only).

The shapes follow what councils' children's systems hold and return (``case-systems.md``:
the Standard Safeguarding Dataset's objects and the DfE children's social care API's
JSON): people with UPN, DfE ethnicity and disability codes; CIN episodes with the
primary need N0-N9; child protection plans with the category of abuse; looked-after
episodes in SSDA903 form (legal status, placement); care leavers; EHC plans;
allocations of workers and teams (team codes); contacts; relationships; workers.

Every collection is served at ``/api/v1/<collection>`` by :class:`JsonApi` (OAuth2,
``modified_since``, four paging styles, injected failures). ``people`` are generated
from a seed; :meth:`ChildrensCaseSystem.add_child` makes one young person with
exactly the involvement a test needs.
"""

from __future__ import annotations

import os
import random
from datetime import date, timedelta
from typing import Any

from adapters.simulators.json_api import JsonApi
from adapters.simulators.uk_names import ERA_BOUNDS, FAMILY_NAMES, GIVEN_FEMALE, GIVEN_MALE, LOCALITIES
from hub.model.validators import synthetic_nhs_number as nhs_number

COLLECTIONS = ("workers", "people", "relationships", "contacts", "cin_episodes", "cp_plans", "lac_episodes",
               "care_leavers", "ehc_plans", "allocations")
DFE_ETHNICITY = ("WBRI", "WBRI", "WBRI", "WBRI", "WIRI", "WOTH", "WROM", "MWBC", "MWBA", "MWAS", "MOTH", "AIND",
                 "APKN", "ABAN", "AOTH", "BCRB", "BAFR", "BOTH", "CHNE", "OOTH", "REFU", "NOBT")
DISABILITIES = ("MOB", "HAND", "PC", "INC", "COMM", "LD", "HEAR", "VIS", "BEH", "CON", "AUT", "DDA")
CP_CATEGORIES = ("NEG", "PHY", "EMO", "SAB", "MUL")
LEGAL_STATUSES = ("C1", "C2", "D1", "E1", "V2", "J2", "L1")
PLACEMENTS = ("U1", "U2", "U3", "U4", "U5", "U6", "K2", "R1", "P1", "H5")
TEAMS = (("CIN-N", "Children in Need North"), ("CIN-S", "Children in Need South"), ("CP-1", "Child Protection"),
         ("LAC-1", "Children Looked After"), ("LC-1", "Leaving Care"), ("CWD-1", "Children with Disabilities"),
         ("TRANS", "Transitions"))
CONTACT_SOURCES = ("1A", "1B", "2A", "2B", "3A", "3B", "4", "5A", "5B", "6", "7", "8", "9", "10")


def upn(seed: int) -> str:
    """A UPN of the right shape: a letter then 12 digits."""
    return f"{'ABCDEFGHJKLMNPQRTUVWXYZ'[seed % 23]}{(seed * 7919) % 10**12:012d}"


def given_name(rng: random.Random, sex: str, year: int) -> str:
    """A given name of the era a person was born in."""
    era = next(i for i, bound in enumerate(ERA_BOUNDS) if year < bound)
    return rng.choice((GIVEN_FEMALE if sex == "F" else GIVEN_MALE)[era])


class ChildrensCaseSystem(JsonApi):
    """The simulated children's system; see the module."""

    name = "childrens-case"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, require_auth: bool = True,
                 today: date | None = None, **kwargs: Any) -> None:
        super().__init__(host, port, require_auth=require_auth, **kwargs)
        self.today = today or date.today()
        for collection in COLLECTIONS:
            self.collections[collection] = {}
        for n, (code, team) in enumerate(TEAMS):
            for k in range(3):
                self.put("workers", {"id": f"W{n:02d}{k}", "name": f"Worker {k + 1} of {team}", "team_code": code,
                                     "role": "team_manager" if k == 0 else "social_worker",
                                     "registration": f"SW{100000 + n * 10 + k}"})

    # -- building records --------------------------------------------------------------------------

    def add_child(self, *, birth_date: date, seed: int | None = None, sex: str = "F", disabilities: list[str] | None =
                  None, cin: str | None = None, cp: str | None = None, lac: str | None = None,
                  care_leaver: bool = False, ehcp: bool = False, team: str | None = None,
                  closed: bool = False) -> str:
        """One young person with the involvement named: ``cin``/``lac`` the primary need, ``cp`` the category.

        Returns the person's id. ``closed`` ends every episode made (a past involvement).
        """
        person_id = self.next_id("C")
        number = int(person_id[1:])
        rng = random.Random(seed if seed is not None else number)
        postcode = f"{rng.choice(LOCALITIES)[1]} {rng.randint(1, 9)}{rng.choice('ABDEFGHJ')}{rng.choice('LNPQRS')}"
        self.put("people", {
            "id": person_id, "upn": upn(number), "nhs_number": nhs_number(500_000 + number),
            "first_name": given_name(rng, sex, birth_date.year), "last_name": rng.choice(FAMILY_NAMES[:60]),
            "dob": birth_date.isoformat(), "gender": sex, "ethnicity": rng.choice(DFE_ETHNICITY),
            "disabilities": disabilities or [], "uasc": False, "postcode": postcode,
            "first_language": "ENG", "interpreter": False,
        })
        start = min(self.today - timedelta(days=rng.randint(200, 2000)),
                    birth_date + timedelta(days=rng.randint(30, 400)))
        start = max(start, birth_date)
        end = max(self.today - timedelta(days=rng.randint(10, 150)), start) if closed else None
        team = team or ("CWD-1" if disabilities else "CIN-N")
        worker = f"W{[c for c, _ in TEAMS].index(team):02d}{rng.randint(1, 2)}"
        self.put("contacts", {"id": self.next_id("K"), "person_id": person_id, "contact_date": start.isoformat(),
                              "source": rng.choice(CONTACT_SOURCES), "outcome": "REF", "decision_date":
                              start.isoformat()})
        if cin:
            self.put("cin_episodes", {"id": self.next_id("CIN"), "person_id": person_id, "referral_date":
                                      start.isoformat(), "primary_need": cin, "referral_source":
                                      rng.choice(CONTACT_SOURCES), "closure_date": end and end.isoformat(),
                                      "reason_for_closure": "RC1" if end else None, "team_code": team,
                                      "worker_id": worker})
        if cp:
            self.put("cp_plans", {"id": self.next_id("CPP"), "person_id": person_id, "start_date": start.isoformat(),
                                  "end_date": end and end.isoformat(), "initial_category": cp, "latest_category": cp,
                                  "review_date": (start + timedelta(days=90)).isoformat(), "team_code": "CP-1"})
        if lac:
            placement_start = max(start, birth_date + timedelta(days=1))
            self.put("lac_episodes", {
                "id": self.next_id("LAC"), "person_id": person_id, "decom": placement_start.isoformat(),
                "rne": "S", "legal_status": rng.choice(LEGAL_STATUSES), "cin": lac,
                "place": rng.choice(PLACEMENTS), "place_provider": f"PR{rng.randint(1, 4)}",
                "home_post": postcode, "pl_post": f"AS{rng.randint(1, 9)} {rng.randint(1, 9)}AB",
                "urn": f"SC{rng.randint(100000, 999999)}", "dec": end and end.isoformat(),
                "rec": "E11" if end else None, "team_code": "LAC-1", "worker_id": "W031"})
        if care_leaver:
            left_care = min(birth_date + timedelta(days=18 * 365 + 5), self.today)
            self.put("care_leavers", {
                "id": self.next_id("CL"), "person_id": person_id, "start_date": left_care.isoformat(),
                "end_date": None, "personal_advisor": "W041",
                "pathway_plan_review": (self.today + timedelta(days=rng.randint(10, 180))).isoformat(),
                "in_touch": "YES", "accommodation": rng.choice(["S", "T", "U", "V"]),
                "activity": rng.choice(["F1", "F2", "P1", "G4"]), "team_code": "LC-1"})
        if ehcp:
            self.put("ehc_plans", {"id": self.next_id("EHC"), "person_id": person_id,
                                   "start_date": (birth_date + timedelta(days=6 * 365)).isoformat(),
                                   "end_date": None, "status": "active", "sen_type": rng.choice(["ASD", "SLCN", "MLD",
                                                                                                 "PD", "SEMH"])})
        self.put("allocations", {"id": self.next_id("AL"), "person_id": person_id, "team_code": team,
                                 "worker_id": worker, "start_date": start.isoformat(),
                                 "end_date": end and end.isoformat()})
        self.put("relationships", {"id": self.next_id("R"), "person_id": person_id, "related_name":
                                   f"{given_name(rng, 'F', birth_date.year - 30)} {rng.choice(FAMILY_NAMES[:60])}",
                                   "type": "MOT", "parental_responsibility": True, "next_of_kin": True})
        return person_id

    def seed(self, people: int, *, seed: int = 20) -> list[str]:
        """``people`` young people aged 0-25 with a realistic mix of involvement; their ids."""
        rng = random.Random(seed)
        made = []
        for n in range(people):
            age_days = rng.randint(0, 25 * 365)
            birth = self.today - timedelta(days=age_days)
            age = age_days // 365
            roll = rng.random()
            disabled = rng.random() < 0.2
            kwargs: dict[str, Any] = {"seed": seed * 1_000_003 + n, "sex": rng.choice("MF"),
                                      "disabilities": [rng.choice(DISABILITIES)] if disabled else []}
            if age >= 18:
                kwargs.update(care_leaver=roll < 0.5, lac="N1" if roll < 0.5 else None, closed=True,
                              ehcp=disabled and roll >= 0.5)
                if not kwargs["care_leaver"] and not kwargs["ehcp"]:
                    kwargs["cin"] = "N1"
            elif roll < 0.15:
                kwargs.update(lac=rng.choice(["N1", "N2", "N4"]))
            elif roll < 0.25:
                kwargs.update(cp=rng.choice(CP_CATEGORIES), cin="N1")
            else:
                kwargs.update(cin="N2" if disabled else rng.choice(["N1", "N3", "N4", "N5", "N6", "N8"]),
                              closed=roll > 0.85, ehcp=disabled and rng.random() < 0.6)
            made.append(self.add_child(birth_date=birth, **kwargs))
        return made


def serve(host: str = "127.0.0.1", port: int = 0, people: int = 300) -> None:
    """Serve a seeded children's system until interrupted (``carehub simulate children``; ``CAREHUB_SIM_PEOPLE``
    sets how many young people it holds)."""
    people = int(os.environ.get("CAREHUB_SIM_PEOPLE", people))
    sim = ChildrensCaseSystem(host, port)
    sim.seed(people)
    print(f"children's case system at {sim.base_url} (token {sim.token_url}, client carehub/demo-secret)",
          flush=True)
    sim.serve_forever()

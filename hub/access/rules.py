"""Who sees what of one person's record: role, then seal, legitimate relationship and consent.

:func:`caller_for` turns verified token claims and the request's purpose and
break-glass headers into a :class:`Caller`. :func:`decide` takes a caller and
the :class:`PersonFacts` of one person (seals, the teams working with them,
consent decisions) and says whether the person is visible at all, which entity
types the caller may read, and why anything is held back. Nothing here leaks a
record's content into a refusal: a sealed person is simply not found.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from sqlalchemy import String, bindparam, literal, select

from hub.access.policy import Policy
from hub.access.tokens import TokenClaims
from hub.errors import Forbidden, NotFound
from hub.store.db import PreparedStatement, Reader
from hub.store.tables import Entity

MIN_BREAK_GLASS_REASON = 10


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated person making a request, in one role, for one purpose."""

    user_id: str
    issuer: str
    role: str
    team: str | None
    purpose: str
    name: str | None = None
    break_glass: str | None = None


@dataclass(slots=True)
class PersonFacts:
    """What the access rules need to know about one person."""

    person_id: str
    seals: list[dict[str, Any]] = field(default_factory=list)
    teams: set[str] = field(default_factory=set)
    consents: dict[str, dict[str, Any]] = field(default_factory=dict)
    person: dict[str, Any] | None = None
    episodes: list[dict[str, Any]] = field(default_factory=list)
    transition_stage: str | None = None

    def note(self, entity_type: str, doc: dict[str, Any]) -> None:
        """Keep what the transitions cohort rule needs from one of the person's documents."""
        if entity_type == "Person":
            self.person = doc
        elif entity_type == "Episode":
            self.episodes.append(doc)
        elif entity_type == "Transition" and doc.get("stage") not in ("closed", None):
            self.transition_stage = doc["stage"]


@dataclass(frozen=True, slots=True)
class RecordView:
    """The outcome of the rules for one caller and one person."""

    person_id: str
    types: frozenset[str]
    sealed: bool = False
    consent_withheld: str | None = None
    relationship: bool = True
    break_glass: bool = False

    @property
    def restricted(self) -> bool:
        """True when consent held part of the record back."""
        return self.consent_withheld is not None


def caller_for(claims: TokenClaims, policy: Policy, *, role: str | None = None, purpose: str | None = None,
               break_glass: str | None = None) -> Caller:
    """The caller a token describes, in the role and for the purpose the request names (or their defaults)."""
    known = [r for r in claims.roles if policy.role(r) is not None]
    if role is not None:
        if role not in claims.roles:
            raise Forbidden(f"your token does not grant the role {role!r}")
        if policy.role(role) is None:
            raise Forbidden(f"the role {role!r} is not in the hub's policy")
        chosen = role
    elif known:
        chosen = known[0]
    else:
        raise Forbidden("your token carries no role the hub's policy knows")
    rule = policy.role(chosen)
    assert rule is not None
    stated = purpose or rule.purposes[0]
    if stated not in rule.purposes:
        raise Forbidden(f"the role {chosen} may not act for the purpose {stated!r}; "
                        f"allowed: {', '.join(rule.purposes)}")
    reason = break_glass.strip() if break_glass else None
    if reason is not None:
        if not rule.break_glass:
            raise Forbidden(f"the role {chosen} may not break glass")
        if len(reason) < MIN_BREAK_GLASS_REASON:
            raise Forbidden(f"a break-glass reason must say why, in at least {MIN_BREAK_GLASS_REASON} characters")
    return Caller(user_id=claims.subject, issuer=claims.issuer, role=chosen, team=claims.team, purpose=stated,
                  name=claims.name, break_glass=reason or None)


def require_read(policy: Policy, caller: Caller, entity_type: str) -> None:
    """Refuse (403) a caller whose role may never read this type, whoever the person."""
    if entity_type not in policy.readable_types(caller.role):
        section = policy.section_of(entity_type) or entity_type
        raise Forbidden(f"the role {caller.role} may not read {section}")


def require_write(policy: Policy, caller: Caller, entity_type: str) -> None:
    """Refuse (403) a caller whose role may not change this type."""
    if entity_type not in policy.writable_types(caller.role):
        section = policy.section_of(entity_type) or entity_type
        raise Forbidden(f"the role {caller.role} may not change {section}")


def seal_admits(seal: dict[str, Any], caller: Caller) -> bool:
    """True when the seal names the caller's role or team."""
    return caller.role in seal.get("allowed_roles", []) or (
        caller.team is not None and caller.team in seal.get("allowed_teams", []))


def is_hidden(facts: PersonFacts, caller: Caller) -> bool:
    """True when a seal hides the person from this caller (before any break glass)."""
    return any(not seal_admits(seal, caller) for seal in facts.seals)


def has_relationship(policy: Policy, facts: PersonFacts, caller: Caller) -> bool:
    """True when the role needs no relationship, or the caller's team works with the person (an open
    Episode of the team) or is named by the person's seal (the adoption team on a sealed adoption record)."""
    rule = policy.role(caller.role)
    if rule is None or not rule.requires_relationship:
        return True
    if caller.team is None:
        return False
    return caller.team in facts.teams or any(caller.team in seal.get("allowed_teams", []) for seal in facts.seals)


def in_transitions_cohort(facts: PersonFacts) -> bool:
    """True when the person is a young person the transitions team works with (hub.transitions.due)."""
    from hub.settings import get_settings
    from hub.transitions.due import cohort_of

    if facts.person is None:
        return False
    return bool(cohort_of(facts.person, facts.episodes, date.today(), get_settings().transitions,
                          facts.transition_stage))


def decide(policy: Policy, caller: Caller, facts: PersonFacts) -> RecordView:
    """What of this person's record the caller may read; NotFound/Forbidden when nothing."""
    require_read(policy, caller, "Person")
    rule = policy.role(caller.role)
    assert rule is not None
    glass = False
    sealed = bool(facts.seals)
    if is_hidden(facts, caller):
        if not caller.break_glass:
            raise NotFound(f"no person {facts.person_id}")
        glass = True
    related = has_relationship(policy, facts, caller)
    if related and rule.cohort == "transitions" and not in_transitions_cohort(facts):
        related = False
        if not caller.break_glass:
            raise Forbidden("this person is not in the transitions cohort (14 to 25 with children's social care "
                            "involvement); to open the record anyway, break glass with a stated reason "
                            "(header X-Break-Glass)")
    if not related:
        if not caller.break_glass:
            raise Forbidden("this person is not on your team's caseload; to open the record anyway, "
                            "break glass with a stated reason (header X-Break-Glass)")
        glass = True
    types = policy.readable_types(caller.role)
    withheld = None
    if rule.consent_scope:
        consent = facts.consents.get(rule.consent_scope)
        if consent is not None and consent.get("decision") is False:
            reason = consent.get("reason") or "no reason recorded"
            withheld = (f"{facts.person_id} declined consent to {rule.consent_scope.replace('_', ' ')} "
                        f"on {consent.get('recorded')}: {reason}. Only demographics are shown.")
            types = types & {"Person"}
    return RecordView(person_id=facts.person_id, types=frozenset(types), sealed=sealed, consent_withheld=withheld,
                      relationship=related, break_glass=glass)


@functools.lru_cache(maxsize=128)
def _people_and_facts(count: int) -> PreparedStatement:
    """Each of ``count`` people's document and what the rules need, by ``:p0`` ... (one statement per count,
    built once: a search page runs one, and SQLAlchemy building and running it cost more than SQLite did)."""
    return PreparedStatement(select(Entity.person_id, Entity.entity_type, Entity.document).where(
        Entity.person_id.in_([bindparam(f"p{n}", type_=String) for n in range(count)]),
        Entity.entity_type.in_([literal(t, String) for t in ("Person", "Seal", "Episode", "Consent", "Transition")])))


def load_people(session: Reader, person_ids: Iterable[str]) -> tuple[dict[str, dict[str, Any]],
                                                                       dict[str, PersonFacts]]:
    """Each person's document, and their seals, teams and latest consent per scope, in one query."""
    ids = list(dict.fromkeys(person_ids))
    facts = {pid: PersonFacts(pid) for pid in ids}
    people: dict[str, dict[str, Any]] = {}
    if not ids:
        return people, facts
    consents: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for pid, etype, document in _people_and_facts(len(ids)).all(session, {f"p{n}": pid for n, pid in enumerate(ids)}):
        if pid is None:
            continue
        doc = orjson.loads(document)
        facts[pid].note(etype, doc)
        if etype == "Person":
            people[pid] = doc
        elif etype == "Transition":
            continue
        elif etype == "Seal":
            facts[pid].seals.append(doc)
        elif etype == "Episode":
            if doc.get("team") and not doc.get("end"):
                facts[pid].teams.add(doc["team"])
        else:
            consents[pid][doc["scope"]].append(doc)
    for pid, scopes in consents.items():
        for scope, docs in scopes.items():
            facts[pid].consents[scope] = max(docs, key=lambda d: d.get("recorded", ""))
    return people, facts

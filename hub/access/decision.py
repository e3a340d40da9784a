"""The one access decision: what a caller may learn about a person, whatever route asks.

Every answer that reveals anything about a person goes through :class:`Access`:
search hits, record reads, FHIR reads and ``_id`` searches, merges and merge
history, identity links, relatives named in a record, identity reviews and their
evidence, quarantined source rows, and the words of an error. It answers with a
:class:`Disclosure` per person id, one of three outcomes:

``open``
    the caller may read the person (the :class:`~hub.access.rules.RecordView`
    says which sections);
``break_glass_required``
    the person exists and the caller may know it, but not read them without
    breaking glass (a social worker outside the caseload): a search shows a
    reduced entry, a read is refused with 403;
``unknown``
    answered exactly as an id the hub has never held: a sealed person the seal
    does not name, a registration merged into such a person, a person held for
    identity review beside such a person, or no person at all.

The facts behind it are loaded here, in one place: the person's seals, the teams
with an open episode, consents, whether the id was merged away (a merged-away id
is decided by its survivor's facts) and the seals of anyone the person is waiting
in the identity review queue to be matched with (a record that may be a sealed
person is sealed until a reviewer the seal names decides).

Break glass through any route is the same act: when the decision used the
caller's stated reason, :meth:`Access.note` puts it on the request's audit row,
which queues the break-glass review. Refusals note their real reason on the audit
row; the caller is told only what an unknown id would tell them.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

import orjson
from sqlalchemy import String, bindparam, literal, select, union_all

from hub.access.policy import Policy
from hub.access.rules import Caller, PersonFacts, RecordView, has_relationship, in_transitions_cohort, is_hidden
from hub.audit import AuditContext
from hub.errors import Forbidden, NotFound
from hub.store.bulk import PreparedStatement
from hub.store.db import Reader
from hub.store.identity import OPEN as REVIEW_OPEN
from hub.store.identity import MatchReview
from hub.store.tables import Entity

OPEN = "open"
BREAK_GLASS_REQUIRED = "break_glass_required"
UNKNOWN = "unknown"
# How far a chain of merges is followed (a merged person's survivor merged again...).
MERGE_DEPTH = 8
GLASS_NEEDED = ("this person is not on your team's caseload; to open the record anyway, "
                "break glass with a stated reason (header X-Break-Glass)")
NOT_IN_COHORT = "not in the transitions cohort"
COHORT_GLASS_NEEDED = ("this person is not in the transitions cohort (14 to 25 with children's social care "
                       "involvement); to open the record anyway, break glass with a stated reason "
                       "(header X-Break-Glass)")


def no_person(person_id: str) -> NotFound:
    """The one answer for a person the caller may not know exists (and for an id the hub never held)."""
    return NotFound(f"no person {person_id}")


@dataclass(frozen=True, slots=True)
class Disclosure:
    """What one caller may learn about one person id, and why (the why is for the audit row only)."""

    person_id: str
    outcome: str
    reason: str
    view: RecordView | None = None
    merged_into: str | None = None
    used_glass: bool = False
    exists: bool = True

    @property
    def visible(self) -> bool:
        """True when the caller may know the person exists."""
        return self.outcome != UNKNOWN

    @property
    def open(self) -> bool:
        """True when the caller may read the person."""
        return self.outcome == OPEN


@dataclass(slots=True)
class Subject:
    """The facts of one asked-about id: its own, or (merged away) its survivor's; ``exists`` False for none."""

    person_id: str
    exists: bool
    facts: PersonFacts
    document: dict[str, Any] | None = None
    merged_into: str | None = None


@functools.lru_cache(maxsize=128)
def _facts_statement(count: int) -> PreparedStatement:
    """Each of ``count`` people's Person document, seals, episodes, consents and transitions, by ``:p0`` ... (one
    statement per count, built once: a search page runs one)."""
    return PreparedStatement(select(Entity.person_id, Entity.entity_type, Entity.document).where(
        Entity.person_id.in_([bindparam(f"p{n}", type_=String) for n in range(count)]),
        Entity.entity_type.in_([literal(t, String) for t in ("Person", "Seal", "Episode", "Consent", "Transition")])))


@functools.lru_cache(maxsize=128)
def _reviews_statement(count: int) -> PreparedStatement:
    """The two people and the status of each identity review of any of ``count`` people: one arm per side of
    the pair, each on its own index (a person is in few reviews, so the status is checked on the rows)."""
    review = MatchReview
    arms = [select(review.person_a, review.person_b, review.status).where(
        side.in_([bindparam(f"p{n}", type_=String) for n in range(count)]))
        for side in (review.person_a, review.person_b)]
    return PreparedStatement(union_all(*arms))


@functools.lru_cache(maxsize=128)
def _seals_statement(count: int) -> PreparedStatement:
    """The seals of ``count`` people."""
    return PreparedStatement(select(Entity.person_id, Entity.document).where(
        Entity.person_id.in_([bindparam(f"p{n}", type_=String) for n in range(count)]),
        Entity.entity_type == literal("Seal", String)))


def _read_facts(session: Reader, ids: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, PersonFacts]]:
    facts = {pid: PersonFacts(pid) for pid in ids}
    people: dict[str, dict[str, Any]] = {}
    if not ids:
        return people, facts
    consents: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for pid, etype, document in _facts_statement(len(ids)).all(session, {f"p{n}": p for n, p in enumerate(ids)}):
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


def held_seals(session: Reader, person_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The seals each person inherits from an open identity review pairing them with a sealed person.

    One indexed query when the people wait in no review (nearly always); a second for the partners' seals
    when they do.
    """
    ids = list(dict.fromkeys(person_ids))
    held: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if not ids:
        return held
    wanted = set(ids)
    partners: dict[str, set[str]] = defaultdict(set)
    for a, b, status in _reviews_statement(len(ids)).all(session, {f"p{n}": p for n, p in enumerate(ids)}):
        if status != REVIEW_OPEN:
            continue
        if a in wanted:
            partners[b].add(a)
        if b in wanted:
            partners[a].add(b)
    if not partners:
        return held
    others = list(partners)
    for sealed, document in _seals_statement(len(others)).all(session, {f"p{n}": p for n, p in enumerate(others)}):
        for pid in partners[sealed]:
            held[pid].append({**orjson.loads(document), "held_for_review": True})
    return held


def load_subjects(session: Reader, person_ids: Iterable[str]) -> dict[str, Subject]:
    """The facts that decide each id: its own, its survivor's when it was merged away, with held seals."""
    ids = list(dict.fromkeys(person_ids))
    people, facts = _read_facts(session, ids)
    subjects: dict[str, Subject] = {}
    survivor_of: dict[str, str] = {}
    for pid in ids:
        doc = people.get(pid)
        survivor = doc.get("merged_into") if doc else None
        subjects[pid] = Subject(pid, doc is not None, facts[pid], doc, survivor)
        if survivor:
            survivor_of[pid] = survivor
    # Follow merges: the survivor's facts decide for the merged-away id.
    chase = dict(survivor_of)
    for _ in range(MERGE_DEPTH):
        if not chase:
            break
        more_people, more_facts = _read_facts(session, list(dict.fromkeys(chase.values())))
        nxt: dict[str, str] = {}
        for pid, survivor in chase.items():
            doc = more_people.get(survivor)
            if doc is None:
                subjects[pid].exists = False
            elif doc.get("merged_into"):
                nxt[pid] = doc["merged_into"]
            else:
                subjects[pid].facts = more_facts[survivor]
        chase = nxt
    for pid in chase:  # a chain too long to be real: treat as unknown
        subjects[pid].exists = False
    held = held_seals(session, {s.facts.person_id for s in subjects.values() if s.exists})
    for subject in subjects.values():
        extra = held.get(subject.facts.person_id)
        if extra:
            subject.facts = replace(subject.facts, seals=[*subject.facts.seals, *extra])
    return subjects


def disclose(policy: Policy, caller: Caller, person_id: str, facts: PersonFacts | None, *,
             exact: bool = True, merged_into: str | None = None) -> Disclosure:
    """The decision for one person: ``facts`` None when no such person exists.

    ``exact`` is True for a read or a search by an exact identifier; a name
    search (``exact`` False) never breaks glass: it leaves sealed people out and
    shows people outside the caseload as needing break glass.
    """
    if facts is None:
        return Disclosure(person_id, UNKNOWN, "no such person", exists=False)
    rule = policy.role(caller.role)
    if rule is None or "Person" not in policy.readable_types(caller.role):
        return Disclosure(person_id, UNKNOWN, f"the role {caller.role} may not read demographics")
    glass = False
    hidden = is_hidden(policy, facts, caller)
    if hidden:
        held = any(s.get("held_for_review") for s in facts.seals)
        why = ("held for identity review beside a sealed record the seal does not name the caller for" if held
               else "sealed: the seal does not name the caller's role or team")
        if not (caller.break_glass and exact):
            return Disclosure(person_id, UNKNOWN, why, merged_into=merged_into)
        glass = True
    related = has_relationship(policy, facts, caller)
    why_not = "not on the caller's team's caseload"
    if related and rule.cohort == "transitions" and not in_transitions_cohort(facts):
        related, why_not = False, NOT_IN_COHORT
    if not related:
        if not (caller.break_glass and exact):
            return Disclosure(person_id, BREAK_GLASS_REQUIRED, why_not, merged_into=merged_into)
        glass = True
    types = policy.readable_types(caller.role)
    withheld = None
    if rule.consent_scope:
        consent = facts.consents.get(rule.consent_scope)
        if consent is not None and consent.get("decision") is False:
            reason = consent.get("reason") or "no reason recorded"
            withheld = (f"{person_id} declined consent to {rule.consent_scope.replace('_', ' ')} "
                        f"on {consent.get('recorded')}: {reason}. Only demographics are shown.")
            types = types & {"Person"}
    view = RecordView(person_id=person_id, types=frozenset(types), sealed=bool(facts.seals),
                      consent_withheld=withheld, relationship=related, break_glass=glass)
    return Disclosure(person_id, OPEN, "break glass" if glass else "allowed", view, merged_into, glass)


@dataclass
class Access:
    """The access decision for one request: one caller, their audit row, the store they read."""

    session: Reader
    policy: Policy
    caller: Caller
    audit: AuditContext | None = None
    _cache: dict[tuple[str, bool], Disclosure] = field(default_factory=dict)

    def people(self, person_ids: Iterable[str], *, exact: bool = True) -> dict[str, Disclosure]:
        """The decision for each id (loaded together)."""
        ids = list(dict.fromkeys(person_ids))
        missing = [pid for pid in ids if (pid, exact) not in self._cache]
        if missing:
            for pid, subject in load_subjects(self.session, missing).items():
                self._cache[(pid, exact)] = self.decide(subject, exact=exact)
        return {pid: self._cache[(pid, exact)] for pid in ids}

    def person(self, person_id: str, *, exact: bool = True) -> Disclosure:
        """The decision for one id."""
        return self.people([person_id], exact=exact)[person_id]

    def decide(self, subject: Subject, *, exact: bool = True) -> Disclosure:
        """The decision for facts already loaded (the record read loads them with the record)."""
        return disclose(self.policy, self.caller, subject.person_id, subject.facts if subject.exists else None,
                        exact=exact, merged_into=subject.merged_into)

    def visible(self, person_ids: Iterable[str]) -> set[str]:
        """The ids among ``person_ids`` the caller may know exist (their break glass does not count: it opens
        only a person asked for directly)."""
        return {pid for pid, d in self.people(person_ids, exact=False).items() if d.visible}

    def hidden(self, ids: Iterable[str]) -> set[str]:
        """The ids among ``ids`` that are people the hub holds and the caller may not know of (an id that is no
        person, such as another entity's, is not hidden by this)."""
        return {pid for pid, d in self.people(ids, exact=False).items() if d.exists and not d.visible}

    def note(self, disclosure: Disclosure) -> Disclosure:
        """Put what the decision used on the audit row: the break-glass reason (which queues a review)."""
        if disclosure.used_glass and self.audit is not None:
            self.audit.break_glass_reason = self.caller.break_glass
        return disclosure

    def require(self, disclosure: Disclosure, *, shown_as: str | None = None) -> RecordView:
        """The view of an open person; otherwise the refusal, its real reason noted on the audit row.

        Unknown is the same NotFound an id never held gets (``shown_as`` names
        the id as the caller asked for it, e.g. a resource's id).
        """
        if disclosure.open:
            assert disclosure.view is not None
            self.note(disclosure)
            if disclosure.view.restricted and self.audit is not None:
                self.audit.reason = "consent withheld: only demographics shown"
            return disclosure.view
        self.refuse(disclosure, shown_as=shown_as)

    def refuse(self, disclosure: Disclosure, *, shown_as: str | None = None) -> NoReturn:
        """Refuse a person not open to the caller: 403 when they may know of them, else an unknown id's 404."""
        if disclosure.outcome == BREAK_GLASS_REQUIRED:
            self._deny(disclosure.reason, "denied")
            raise Forbidden(COHORT_GLASS_NEEDED if disclosure.reason == NOT_IN_COHORT else GLASS_NEEDED)
        # The audit row keeps the truth: a refusal of someone held is a denial, an id never held is not found.
        self._deny(disclosure.reason, "denied" if disclosure.exists else "not_found")
        raise NotFound(shown_as) if shown_as else no_person(disclosure.person_id)

    def open(self, person_id: str) -> RecordView:
        """The view of a person the caller reads directly; refused as :meth:`require` says."""
        if self.audit is not None:
            self.audit.touch_person(person_id)
        return self.require(self.person(person_id))

    def _deny(self, reason: str, outcome: str) -> None:
        if self.audit is not None:
            self.audit.deny(reason, outcome)

    # -- what an answer may name -------------------------------------------------------------------------

    def person_links(self, links: dict[str, Any]) -> dict[str, Any]:
        """Identity links without the decisions and merges that name someone the caller may not know of."""
        named = [d["other_person"] for d in links.get("decisions", [])]
        named += [p for m in links.get("merges", []) for p in (m["survivor"], m["merged"])]
        if not named:
            return links
        seen = self.visible(named)
        return {**links,
                "decisions": [d for d in links.get("decisions", []) if d["other_person"] in seen],
                "merges": [m for m in links.get("merges", []) if m["survivor"] in seen and m["merged"] in seen]}

    def relatives(self, documents: list[dict[str, Any]]) -> None:
        """Take out of relationship documents (in place) the related person id when the caller may not know
        of that person (their name as the source gave it stays, as for someone not on the hub)."""
        named = [d["related_person_id"] for d in documents if d.get("related_person_id")]
        if not named:
            return
        seen = self.visible(named)
        for doc in documents:
            if doc.get("related_person_id") and doc["related_person_id"] not in seen:
                doc["related_person_id"] = None

    def source_record(self, entity_type: str | None, person_id: str | None) -> str | None:
        """Why a raw source record (a quarantined payload) is withheld from the caller, or None to show it:
        a type the hub cannot tell, a section the role may not read, or a person the caller may not read."""
        if entity_type is None:
            return "withheld: the hub cannot tell what this record holds, so not whether your role may read it"
        if entity_type not in self.policy.readable_types(self.caller.role):
            section = self.policy.section_of(entity_type) or entity_type
            return f"withheld: the role {self.caller.role} may not read {section}"
        if person_id is not None and not self.person(person_id, exact=False).open:
            return "withheld: the record belongs to a person you may not read"
        return None

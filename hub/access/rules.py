"""Who sees what of one person's record: role, then seal, legitimate relationship and consent.

:func:`caller_for` turns verified token claims and the request's purpose and
break-glass headers into a :class:`Caller`. The rules here (seal, relationship)
are the pieces :mod:`hub.access.decision` puts together into the one decision
every route asks about a person.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from hub.access.policy import Policy
from hub.access.tokens import TokenClaims
from hub.errors import Forbidden

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
    role = role.strip() or None if role is not None else None  # an empty header is no header
    purpose = purpose.strip() or None if purpose is not None else None
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
    reason = break_glass_reason(break_glass)
    if break_glass is not None and (break_glass.strip() or reason):
        if not rule.break_glass:
            raise Forbidden(f"the role {chosen} may not break glass")
        if reason is None or sum(ch.isalnum() for ch in reason) < MIN_BREAK_GLASS_REASON:
            raise Forbidden(f"a break-glass reason must say why, in at least {MIN_BREAK_GLASS_REASON} letters or "
                            "digits")
    return Caller(user_id=claims.subject, issuer=claims.issuer, role=chosen, team=claims.team, purpose=stated,
                  name=claims.name, break_glass=reason or None)


def break_glass_reason(text: str | None) -> str | None:
    """A stated break-glass reason as it counts: control and invisible characters dropped, runs of spaces (and
    dots, dashes, underscores: padding) squeezed to one, trimmed; None when nothing is left."""
    if text is None:
        return None
    # HTTP hands headers over as Latin-1; a client's UTF-8 (a non-breaking space, a dash) reads as it was meant.
    with contextlib.suppress(UnicodeError):
        text = text.encode("latin-1").decode("utf-8")
    kept = "".join(" " if ch.isspace() else ch for ch in text
                   if ch.isspace() or unicodedata.category(ch)[0] not in ("C", "Z"))
    squeezed = re.sub(r"([\s._\-*=~#])\1+", r"\1", kept)
    squeezed = re.sub(r"\s+", " ", squeezed).strip(" ._-*=~#")
    return squeezed or None


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


def seal_admits(policy: Policy, seal: dict[str, Any], caller: Caller) -> bool:
    """True when the seal names the caller's role or team (teams compared by code)."""
    if caller.role in seal.get("allowed_roles", []):
        return True
    team = policy.team_code(caller.team)
    return team is not None and team in {policy.team_code(t) for t in seal.get("allowed_teams", [])}


def is_hidden(policy: Policy, facts: PersonFacts, caller: Caller) -> bool:
    """True when a seal hides the person from this caller (before any break glass)."""
    return any(not seal_admits(policy, seal, caller) for seal in facts.seals)


def has_relationship(policy: Policy, facts: PersonFacts, caller: Caller) -> bool:
    """True when the role needs no relationship, or the caller's team works with the person (an open
    Episode of the team) or is named by the person's seal (the adoption team on a sealed adoption record).
    Teams are compared by code: an episode or seal that names a team by its name counts as its code."""
    rule = policy.role(caller.role)
    if rule is None or not rule.requires_relationship:
        return True
    team = policy.team_code(caller.team)
    if team is None:
        return False
    named = {policy.team_code(t) for t in facts.teams}
    named |= {policy.team_code(t) for seal in facts.seals for t in seal.get("allowed_teams", [])}
    return team in named


def in_transitions_cohort(facts: PersonFacts) -> bool:
    """True when the person is a young person the transitions team works with (hub.transitions.due): from
    ``[transitions] from_age`` with an open children's involvement, or with a transition under way."""
    from hub.settings import get_settings
    from hub.transitions.due import cohort_of

    if facts.person is None:
        return False
    return bool(cohort_of(facts.person, facts.episodes, date.today(), get_settings().transitions,
                          facts.transition_stage))

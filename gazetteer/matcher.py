"""Free-text address to UPRN, with a confidence and the reason, from an in-memory gazetteer index.

:class:`AddressMatcher` loads the live addresses (approved, alternative and
provisional LPIs of properties that are not historical) once from the store
and indexes them by street name and building number, by postcode and by
name. A match:

1. takes the postcode out of the text (or the one given), normalises the rest
   (case, punctuation, ``St``/``Street``, ``14 A``/``14A``, ``12 - 14``);
2. finds the street: an exact street name in the text, else the streets at the
   postcode, else the nearest street name by rapidfuzz similarity;
3. reads the flat and building from what comes before the street (``Flat 2, 14``,
   ``14/2``, ``2/14``, ``14A``, ``12-14``, a building or organisation name) and
   tries each reading against the index;
4. scores every candidate (postcode, locality, names, how the street was found)
   and keeps the best per UPRN.

Being wrong is worse than being unmatched: when the best candidate scores
below :data:`ACCEPT`, or a different UPRN scores within :data:`MARGIN` of it,
no UPRN is returned and the reason names the candidates.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import and_, select

from gazetteer.address import AddressableObject, Bs7666Address
from gazetteer.normalise import (
    FLAT_WORDS,
    FLOOR_WORDS,
    Postcode,
    is_number,
    is_unit_id,
    pao_key,
    phrase,
    split_pair,
    take_postcode,
    tokens,
    unit_key,
)
from hub.model import Address
from hub.store.addressing import (
    Organisation,
    Property,
    PropertyAddress,
    StreetDescriptor,
    latest_applied_load_id,
)
from hub.store.db import Store

ACCEPT = 0.7
MARGIN = 0.1
STREET_CUTOFF = 82.0
LIVE_LPI = (1, 3, 6)
HISTORICAL = 8


@dataclass(slots=True)
class Entry:
    """One live address in the index, reduced to what matching compares."""

    uprn: int
    usrn: int | None
    status: int
    street: str
    pao: str
    sao: str
    name: str
    org: str
    locality: str
    postcode: str
    raw: tuple[Any, ...]
    towns: frozenset[str] = frozenset()  # the place names it answers to (set by the index)

    def address(self) -> Bs7666Address:
        """The BS7666 address of this entry, for rendering."""
        (s1, s2, s3, s4, st, p1, p2, p3, p4, pt, street, locality, town, postcode, org) = self.raw
        return Bs7666Address(
            sao=AddressableObject(s1, s2, s3, s4, st),
            pao=AddressableObject(p1, p2, p3, p4, pt),
            street=street,
            locality=locality,
            town=town,
            postcode=postcode,
            organisation=org or None,
            uprn=str(self.uprn),
            usrn=str(self.usrn) if self.usrn is not None else None,
        )


@dataclass
class Candidate:
    """A property the matcher considered, with its score and why."""

    uprn: str
    score: float
    address: str
    why: str


@dataclass
class AddressMatch:
    """The answer to one match: a UPRN (or None), how sure, the address for a letter, and why."""

    uprn: str | None
    usrn: str | None
    confidence: float
    lines: list[str]
    reason: str
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def address(self) -> str:
        """The matched address on one line (empty when unmatched)."""
        return ", ".join(self.lines)

    def as_json(self) -> dict[str, Any]:
        """The one object the CLI and API print: uprn, confidence, address, reason."""
        return {
            "uprn": self.uprn,
            "confidence": round(self.confidence, 3),
            "address": self.address,
            "reason": self.reason,
        }


@dataclass
class Query:
    """A free-text address taken apart."""

    postcode: Postcode
    words: list[str]
    places: set[str]


@dataclass(frozen=True)
class Reading:
    """One way to read the numbers before the street: which is the flat, which the building."""

    sao: str
    pao: str
    penalty: float
    note: str


class AddressMatcher:
    """Matches free-text addresses to UPRNs against an index of the gazetteer held in memory."""

    def __init__(self, entries: list[Entry], version: int = 0) -> None:
        self.version = version
        self.size = len(entries)
        self.by_street_pao: dict[tuple[str, str], list[Entry]] = {}
        self.named: dict[str, list[Entry]] = {}
        self.by_postcode: dict[str, list[Entry]] = {}
        self.streets_by_outward: dict[str, set[str]] = {}
        self.streets: set[str] = set()
        self.places: set[str] = set()
        self.localities: set[str] = set()
        # Properties known by a name (PAO text) or an organisation, wherever they are, and the
        # named properties of each place (locality or town): rural addresses often have no street.
        self.by_name: dict[str, list[Entry]] = {}
        # (name, postcode) and (name, place) -> the properties of that name there.
        self.by_name_near: dict[tuple[str, str], list[Entry]] = {}
        # (street, place) -> the named properties of that street in that place.
        self.named_near: dict[tuple[str, str], list[Entry]] = {}
        self.named_in_place: dict[str, list[Entry]] = {}
        for entry in entries:
            town = phrase(entry.raw[12])
            entry.towns = frozenset({entry.locality, town} if entry.locality else {town})
            for label in {entry.name, entry.org} - {""}:
                self.by_name.setdefault(label, []).append(entry)
                self.by_name_near.setdefault((label, entry.postcode), []).append(entry)
                for place in entry.towns:
                    self.by_name_near.setdefault((label, place), []).append(entry)
            if entry.name or entry.org:
                for place in self.towns_of(entry) - {""}:
                    self.named_in_place.setdefault(place, []).append(entry)
            self.streets.add(entry.street)
            self.by_street_pao.setdefault((entry.street, entry.pao), []).append(entry)
            if "-" in entry.pao:
                for part in entry.pao.split("-"):
                    self.by_street_pao.setdefault((entry.street, part), []).append(entry)
            if entry.name or entry.org:
                self.named.setdefault(entry.street, []).append(entry)
                for place in entry.towns:
                    self.named_near.setdefault((entry.street, place), []).append(entry)
            if entry.postcode:
                self.by_postcode.setdefault(entry.postcode, []).append(entry)
                self.streets_by_outward.setdefault(entry.postcode.split()[0], set()).add(
                    entry.street
                )
            if entry.locality:
                self.places.add(entry.locality)
                self.localities.add(entry.locality)
            town = entry.raw[12]
            if town:
                self.places.add(phrase(town))
        self.street_list = sorted(self.streets)
        self.longest_street = max((len(s.split()) for s in self.streets), default=1)
        self.longest_place = max((len(p.split()) for p in self.places), default=1)
        self.longest_name = max((len(n.split()) for n in self.by_name), default=1)
        self._labels: dict[str, list[str]] = {}
        self._pools: dict[tuple[str, str], tuple[list[Entry], list[str]]] = {}

    @classmethod
    def from_store(cls, store: Store) -> AddressMatcher:
        """Build the index from the store's live addresses (done once; rebuild after a load)."""
        lpi, prop, desc, org = (
            PropertyAddress.__table__,
            Property.__table__,
            StreetDescriptor.__table__,
            Organisation.__table__,
        )
        with store.session() as session:
            version = latest_applied_load_id(session)
            organisations: dict[int, str] = {}
            for uprn, name in session.execute(
                select(org.c.uprn, org.c.organisation).where(org.c.end_date.is_(None))
            ):
                organisations.setdefault(uprn, name)
            rows = session.execute(
                select(
                    lpi.c.uprn,
                    lpi.c.usrn,
                    lpi.c.logical_status,
                    lpi.c.sao_start_number,
                    lpi.c.sao_start_suffix,
                    lpi.c.sao_end_number,
                    lpi.c.sao_end_suffix,
                    lpi.c.sao_text,
                    lpi.c.pao_start_number,
                    lpi.c.pao_start_suffix,
                    lpi.c.pao_end_number,
                    lpi.c.pao_end_suffix,
                    lpi.c.pao_text,
                    desc.c.descriptor,
                    desc.c.locality,
                    lpi.c.post_town,
                    desc.c.town,
                    lpi.c.postcode,
                    prop.c.organisation,
                )
                .join(prop, prop.c.uprn == lpi.c.uprn)
                .outerjoin(desc, and_(desc.c.usrn == lpi.c.usrn, desc.c.language == lpi.c.language))
                .where(
                    lpi.c.logical_status.in_(LIVE_LPI),
                    lpi.c.end_date.is_(None),
                    prop.c.logical_status != HISTORICAL,
                    prop.c.end_date.is_(None),
                )
            )
            entries = [_entry(row, organisations) for row in rows]
        return cls(entries, version)

    # ---- matching ----

    def match(self, text: str, postcode: str | None = None) -> AddressMatch:
        """The UPRN for a free-text address (and optional postcode), or None with the reason."""
        query = self._parse(text, postcode)
        if not query.words:
            return _unmatched("no address text to match", [])
        found = self._candidates(query)
        return self._decide(found)

    def match_address(self, addr: Address) -> Address:
        """A copy of a canonical address with UPRN and USRN set when the match is confident.

        The source's ``text`` and structured fields are never changed; an
        address that does not match confidently comes back as it was.
        """
        text = addr.text or _canonical_text(addr)
        if not text:
            return addr.model_copy()
        found = self.match(text, addr.postcode)
        if found.uprn is None:
            return addr.model_copy()
        return addr.model_copy(update={"uprn": found.uprn, "usrn": found.usrn})

    def _parse(self, text: str, postcode: str | None) -> Query:
        rest, found = take_postcode(text)
        if postcode:
            given_rest, given = take_postcode(postcode)
            if given.full or given.outward:
                found = given if given.full or not found.full else found
        words = tokens(rest)
        return Query(found, words, set())

    def _street_spans(self, words: list[str]) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        n = len(words)
        for i in range(n):
            for j in range(i + 1, min(n, i + self.longest_street) + 1):
                if " ".join(words[i:j]) in self.streets:
                    spans.append((i, j))
        # Rightmost first (the street follows the flat and building), longer before shorter.
        spans.sort(key=lambda s: (-s[1], s[0]))
        return spans

    def _strip_places(self, words: list[str], query: Query) -> list[str]:
        kept: list[str] = []
        i = 0
        while i < len(words):
            for size in range(min(self.longest_place, len(words) - i), 0, -1):
                candidate = " ".join(words[i : i + size])
                if candidate in self.places:
                    query.places.add(candidate)
                    i += size
                    break
            else:
                kept.append(words[i])
                i += 1
        return kept

    def _candidates(self, query: Query) -> dict[int, tuple[float, Entry, str]]:
        words = query.words
        best: dict[int, tuple[float, Entry, str]] = {}
        for start, end in self._street_spans(words):
            street = " ".join(words[start:end])
            prefix = self._strip_places(words[:start], query)
            self._strip_places(words[end:], query)
            self._try_street(street, 0.0, "street found", prefix, query, best)
            if _settled(best):
                return best
        query.places.clear()
        self._named(query, best)
        if _settled(best):
            return best
        query.places.clear()
        rest = self._strip_places(words, query)
        prefix, street_words = _split_prefix(rest)
        if query.postcode.full and query.postcode.full in self.by_postcode:
            streets = {e.street for e in self.by_postcode[query.postcode.full]}
            wanted = " ".join(street_words)
            for street in streets:
                similarity = fuzz.ratio(wanted, street) if wanted else 0.0
                if similarity >= 60:
                    self._try_street(
                        street,
                        (100 - similarity) / 100 * 0.6,
                        f"street at postcode ({similarity:.0f}% like)",
                        prefix,
                        query,
                        best,
                    )
            if _settled(best):
                return best
        self._fuzzy_streets(rest, query, best)
        return best

    def _named(self, query: Query, best: dict[int, tuple[float, Entry, str]]) -> None:
        """Candidates by the property's own name or organisation, with or without its street.

        A name found word for word anywhere in the text is looked up wherever it is (the same
        house name recurs in other villages and on other streets); failing that, the named
        properties at the postcode or in the places the text names are compared by similarity.
        Each is scored by postcode, place, street and flat (:meth:`_score_named`).
        """
        words = query.words
        spans: list[tuple[int, int]] = []
        for i in range(len(words)):
            for j in range(min(len(words), i + self.longest_name), i, -1):
                if " ".join(words[i:j]) in self.by_name:
                    spans.append((i, j))
                    break
        streets = {
            " ".join(words[a:b]) for a, b in self._street_spans(words)
        }
        if spans:
            for start, end in spans:
                name = " ".join(words[start:end])
                prefix = words[:start]
                self._strip_places(words[end:], query)
                self._strip_places(prefix, query)
                held = self.by_name[name]
                if len(held) > 8 and (query.places or query.postcode.full):
                    # A common name (a pub, a "Rose Cottage"): those in the places or at the
                    # postcode given first; the others only when none of them is.
                    places = (query.places & self.localities) or query.places
                    near: dict[int, Entry] = {}
                    for key in [query.postcode.full or "", *places]:
                        near.update((e.uprn, e) for e in self.by_name_near.get((name, key), ()))
                    held = list(near.values()) or held
                for entry in held:
                    self._keep(best, entry, query, prefix, streets, 0.0, "name found", name)
            return
        # No name word for word: the named properties at the postcode, or in the most specific
        # places named (a village, else the post town when there is no postcode either).
        rest = self._strip_places(words, query)
        text = " ".join(w for w in rest if not _numberish(w) and w not in FLAT_WORDS)
        if not text:
            return
        prefix = [w for w in rest if _numberish(w) or w in FLAT_WORDS]
        places = query.places & self.localities
        if not places and not query.postcode.full:
            places = query.places
        pools: list[tuple[str, str]] = [("postcode", query.postcode.full)] if query.postcode.full else []
        pools += [("place", place) for place in sorted(places)]
        seen: set[int] = set()
        for pool_key in pools:
            entries, labels = self._pool(pool_key)
            for _, similarity, k in process.extract(
                text, labels, scorer=fuzz.token_set_ratio, score_cutoff=85, limit=None
            ):
                entry = entries[k]
                if entry.uprn in seen:
                    continue
                seen.add(entry.uprn)
                self._keep(
                    best, entry, query, prefix, streets, (100 - similarity) / 100 * 1.5,
                    f"name {similarity:.0f}% alike", entry.name or entry.org,
                )

    def _pool(self, key: tuple[str, str]) -> tuple[list[Entry], list[str]]:
        """The named properties at a postcode or in a place, with one label per name
        (a property with both a name and an organisation appears under each)."""
        held = self._pools.get(key)
        if held is None:
            kind, value = key
            source = self.by_postcode.get(value, []) if kind == "postcode" else self.named_in_place.get(value, [])
            entries: list[Entry] = []
            labels: list[str] = []
            for entry in source:
                for label in (entry.name, entry.org):
                    if label:
                        entries.append(entry)
                        labels.append(label)
            held = self._pools[key] = (entries, labels)
        return held

    def _keep(
        self,
        best: dict[int, tuple[float, Entry, str]],
        entry: Entry,
        query: Query,
        prefix: list[str],
        streets: set[str],
        penalty: float,
        how: str,
        name: str,
    ) -> None:
        score, why = self._score_named(entry, query, prefix, streets, penalty)
        if score <= 0:
            return
        held = best.get(entry.uprn)
        if held is None or score > held[0]:
            kind = "organisation" if name == entry.org else "property name"
            best[entry.uprn] = (score, entry, f"{how} ({kind}){why}")

    def _score_named(
        self, entry: Entry, query: Query, prefix: list[str], streets: set[str], penalty: float
    ) -> tuple[float, str]:
        """Score a property found by its name: flat, postcode, place and street must not disagree."""
        sao, numbers, _, _ = _read_prefix(prefix)
        if sao is None and entry.sao and numbers:
            sao, numbers = numbers[-1], numbers[:-1]  # "2 The Old School": flat 2 in it
        if (sao or "") != entry.sao:
            return 0.0, ""
        if numbers and entry.pao and numbers[-1] != entry.pao:
            return 0.0, ""
        score = 1.0 - penalty
        notes: list[str] = []
        pc_penalty, pc_note = _postcode_penalty(entry, query.postcode)
        # A name and a postcode are all a rural address has: a postcode that differs counts
        # for more than beside a street and number (the same name recurs a lane away), and
        # whether it differs by a sector or a district says nothing about which it is.
        if query.postcode.full and pc_penalty:
            pc_penalty = 0.25  # another unit, near or far: two such are equally (un)likely
        score -= pc_penalty
        if pc_note:
            notes.append(pc_note)
        towns = self.towns_of(entry)
        # The most specific place named decides: a village's name, else a post town that
        # covers many villages.
        named_localities = query.places & self.localities
        if named_localities:
            towns = frozenset({entry.locality})
        if query.places:
            if not (named_localities or query.places) & towns:
                score -= 0.3
                notes.append("place differs")
            else:
                notes.append("place agrees")
        elif not query.postcode.full:
            score -= 0.15
            notes.append("no place or postcode")
        if streets:
            if entry.street in streets:
                notes.append("street agrees")
            else:
                score -= 0.3
                notes.append("another street named")
        else:
            notes.append("no street given")
        score -= _status_penalty(entry, notes)
        return score, "; " + ", ".join(notes)

    def _fuzzy_streets(
        self, rest: list[str], query: Query, best: dict[int, tuple[float, Entry, str]]
    ) -> None:
        if query.postcode.outward and query.postcode.outward in self.streets_by_outward:
            pools = [sorted(self.streets_by_outward[query.postcode.outward]), self.street_list]
        else:
            pools = [self.street_list]
        last_number = max((i for i, w in enumerate(rest) if _numberish(w)), default=-1)
        tail = rest[last_number + 1 :]
        if not tail:
            return
        for pool in pools:
            tried: list[tuple[float, str, int]] = []
            for size in range(1, min(len(tail), self.longest_street + 1) + 1):
                wanted = " ".join(tail[-size:])
                for name, similarity, _ in process.extract(
                    wanted, pool, scorer=fuzz.ratio, limit=3, score_cutoff=STREET_CUTOFF
                ):
                    tried.append((similarity, name, size))
            for similarity, name, size in sorted(tried, reverse=True)[:4]:
                prefix = rest[: len(rest) - size]
                self._try_street(
                    name,
                    (100 - similarity) / 100 * 2.0,
                    f"street spelt differently ({similarity:.0f}% like {name})",
                    prefix,
                    query,
                    best,
                )
            if _settled(best):
                return

    def _try_street(
        self,
        street: str,
        street_penalty: float,
        how: str,
        prefix: list[str],
        query: Query,
        best: dict[int, tuple[float, Entry, str]],
    ) -> None:
        sao_hint, numbers, names, trailing = _read_prefix(prefix)
        name_text = " ".join(names)
        for reading in _readings(sao_hint, numbers, bool(names)):
            if reading.pao:
                pool = self.by_street_pao.get((street, reading.pao), [])
            else:
                pool = self.named.get(street, [])
                places = query.places & self.localities
                if len(pool) > 8 and places:
                    # A street name found in many places: its named properties in the place given
                    # (the others would lose for the place anyway), all of them when none is there.
                    near = [e for place in places for e in self.named_near.get((street, place), ())]
                    pool = near or pool
                if name_text and len(pool) > 8:
                    # Only a name at least 75% alike can score (see _score): find those in one call.
                    pool = self._named_alike(street, pool, name_text)
            for entry in pool:
                if entry.sao != reading.sao:
                    continue
                score, why = self._score(entry, query, name_text, trailing, reading, street_penalty)
                if score <= 0:
                    continue
                held = best.get(entry.uprn)
                if held is None or score > held[0]:
                    best[entry.uprn] = (score, entry, f"{how}; {reading.note}{why}")

    def _named_alike(self, street: str, pool: list[Entry], name_text: str) -> list[Entry]:
        if pool is self.named.get(street):
            labels = self._labels.get(street)
            if labels is None:
                labels = self._labels[street] = [f"{e.name} {e.org}".strip() for e in pool]
        else:
            labels = [f"{e.name} {e.org}".strip() for e in pool]
        found = process.extract(
            name_text, labels, scorer=fuzz.token_set_ratio, score_cutoff=75, limit=None
        )
        return [pool[k] for _, _, k in found]

    def _score(
        self,
        entry: Entry,
        query: Query,
        name_text: str,
        trailing: bool,
        reading: Reading,
        street_penalty: float,
    ) -> tuple[float, str]:
        score = 1.0 - reading.penalty - street_penalty
        notes: list[str] = []
        if "-" in entry.pao and reading.pao != entry.pao:
            score -= 0.15
            notes.append("number inside a range")
        pc_penalty, pc_note = _postcode_penalty(entry, query.postcode)
        score -= pc_penalty
        if pc_note:
            notes.append(pc_note)
        localities = query.places - self.towns_of(entry)
        if localities:
            score -= 0.12
            notes.append("locality differs")
        target = entry.name or entry.org
        if name_text:
            best_name = max(
                fuzz.token_set_ratio(name_text, entry.name) if entry.name else 0.0,
                fuzz.token_set_ratio(name_text, entry.org) if entry.org else 0.0,
            )
            if best_name >= 75:
                score -= (100 - best_name) / 100 * 1.5
                notes.append("name agrees" if best_name == 100 else f"name {best_name:.0f}% alike")
                if _extra_words(name_text, f"{entry.name} {entry.org}"):
                    # A name found inside longer text often means the rest belongs to
                    # the street ("HOLLY HOUSE, ALEXADRA WOOD ST" is not on "WOOD ST").
                    score -= 0.25
                    notes.append("words beside the name unexplained")
            elif not reading.pao:
                return 0.0, ""
            elif trailing:
                # Words between the number and the street usually mean the street's
                # name is longer than the one found ("14 LINDEN FARM LN" is not "FARM LN").
                score -= 0.3
                notes.append("words before the street unexplained")
            else:
                score -= 0.12
                notes.append("unexplained words")
        elif not reading.pao and not target:
            return 0.0, ""
        score -= _status_penalty(entry, notes)
        return score, (", " + ", ".join(notes)) if notes else ""

    def towns_of(self, entry: Entry) -> frozenset[str]:
        """The place names an entry answers to (its locality and town)."""
        return entry.towns

    def _decide(self, found: dict[int, tuple[float, Entry, str]]) -> AddressMatch:
        ranked = sorted(found.values(), key=lambda c: -c[0])
        candidates = [
            Candidate(str(e.uprn), round(max(0.0, min(1.0, s)), 3), e.address().single_line(), why)
            for s, e, why in ranked[:3]
        ]
        if not ranked:
            return _unmatched("no property in the gazetteer fits this address", candidates)
        score, entry, why = ranked[0]
        score = max(0.0, min(1.0, score))
        if score < ACCEPT:
            return _unmatched(
                f"unsure: the best candidate ({entry.uprn}) scores only {score:.2f} ({why})",
                candidates,
            )
        if len(ranked) > 1 and ranked[1][0] >= ranked[0][0] - MARGIN:
            other = ranked[1][1]
            return _unmatched(
                f"unsure: {entry.uprn} and {other.uprn} fit almost equally "
                f"({ranked[0][0]:.2f} vs {ranked[1][0]:.2f})",
                candidates,
            )
        address = entry.address()
        return AddressMatch(
            str(entry.uprn), address.usrn, round(score, 3), address.lines(), why, candidates
        )


def _status_penalty(entry: Entry, notes: list[str]) -> float:
    """What an address's LPI status takes off its score (an alternative or provisional address), with the note."""
    if entry.status == 3:
        notes.append("alternative address")
        return 0.02
    if entry.status == 6:
        notes.append("provisional address")
        return 0.04
    return 0.0


def _postcode_penalty(entry: Entry, pc: Postcode) -> tuple[float, str]:
    """What the postcode given (or its absence) takes off an entry's score, and the note."""
    if pc.full:
        if entry.postcode == pc.full:
            return 0.0, ""
        if entry.postcode[:-2] == pc.full[:-2]:
            return 0.12, "postcode differs (same sector)"
        if entry.postcode.split()[0] == pc.outward:
            return 0.1, "postcode differs (same district)"
        return 0.15, "postcode differs"
    if pc.outward:
        if entry.postcode.split()[0] != pc.outward:
            return 0.1, "postcode district differs"
        return 0.0, ""
    return 0.02, "no postcode"


def _extra_words(query_name: str, held: str) -> bool:
    """True when the query's name has a word the held name and organisation do not."""
    held_words = held.split()
    return any(
        word not in held_words and max((fuzz.ratio(word, h) for h in held_words), default=0) < 80
        for word in query_name.split()
    )


def _settled(best: dict[int, tuple[float, Entry, str]]) -> bool:
    """True once some candidate is good enough that looking further would only add noise."""
    return any(score >= ACCEPT for score, _, _ in best.values())


def _unmatched(reason: str, candidates: list[Candidate]) -> AddressMatch:
    return AddressMatch(None, None, 0.0, [], reason, candidates)


def _numberish(word: str) -> bool:
    return is_number(word) or split_pair(word) is not None


def _split_prefix(words: list[str]) -> tuple[list[str], list[str]]:
    """Without a known street: up to the last number is flat and building, then street."""
    last_number = max((i for i, w in enumerate(words) if _numberish(w)), default=-1)
    return words[: last_number + 1], words[last_number + 1 :]


def _read_prefix(prefix: list[str]) -> tuple[str | None, list[str], list[str], bool]:
    """Split what precedes the street into a flat id, building numbers and name words.

    The flag says whether name words come after the last number (right before the street).
    """
    sao: str | None = None
    numbers: list[str] = []
    names: list[str] = []
    trailing = False
    i = 0
    while i < len(prefix):
        word = prefix[i]
        if word in FLOOR_WORDS:
            j = i
            while j < len(prefix) and prefix[j] in FLOOR_WORDS:
                j += 1
            if j < len(prefix) and prefix[j] in FLAT_WORDS and sao is None:
                sao = " ".join(prefix[i:j])
                i = j + 1
                continue
        if word in FLAT_WORDS and i + 1 < len(prefix) and is_unit_id(prefix[i + 1]) and sao is None:
            sao = prefix[i + 1]
            i += 2
            continue
        pair = split_pair(word)
        if pair:
            numbers.extend(pair)
            trailing = False
        elif is_number(word):
            numbers.append(word)
            trailing = False
        elif word not in FLAT_WORDS:
            names.append(word)
            trailing = bool(numbers)
        i += 1
    return sao, numbers, names, trailing


def _readings(sao: str | None, numbers: list[str], has_names: bool) -> list[Reading]:
    """Every sensible way to read the flat and building from the numbers given."""
    readings: list[Reading] = []
    if sao is not None:
        if numbers:
            readings.append(Reading(sao, numbers[-1], 0.0, f"flat {sao} at {numbers[-1]}"))
        readings.append(
            Reading(sao, "", 0.0 if not numbers else 0.2, f"flat {sao} in a named building")
        )
        return readings
    if not numbers:
        return [Reading("", "", 0.0, "by name")]
    if len(numbers) == 1:
        number = numbers[0]
        readings.append(Reading("", number, 0.0, f"number {number}"))
        if number[-1].isalpha() and "-" not in number:
            readings.append(
                Reading(number[-1], number[:-1], 0.1, f"flat {number[-1]} at {number[:-1]}")
            )
        if "-" in number:
            start = number.split("-")[0]
            readings.append(Reading("", start, 0.1, f"number {start} of range {number}"))
        if has_names:
            readings.append(Reading(number, "", 0.05, f"flat {number} in a named building"))
        return readings
    first, second = numbers[-2], numbers[-1]
    readings.append(Reading(first, second, 0.0, f"flat {first} at {second}"))
    readings.append(Reading(second, first, 0.0, f"flat {second} at {first}"))
    return readings


def _entry(row: Any, organisations: dict[int, str]) -> Entry:
    (
        uprn,
        usrn,
        status,
        s1,
        s2,
        s3,
        s4,
        st,
        p1,
        p2,
        p3,
        p4,
        pt,
        street,
        locality,
        post_town,
        town,
        postcode,
        blpu_org,
    ) = row
    org = organisations.get(uprn) or blpu_org or ""
    town_name = post_town or town
    return Entry(
        uprn=uprn,
        usrn=usrn,
        status=status,
        street=phrase(street),
        pao=pao_key(p1, p2, p3, p4),
        sao=unit_key(s1, s2, s3, s4, st),
        name=phrase(pt),
        org=phrase(org),
        locality=phrase(locality),
        postcode=(postcode or "").upper(),
        raw=(s1, s2, s3, s4, st, p1, p2, p3, p4, pt, street, locality, town_name, postcode, org),
    )


def _canonical_text(addr: Address) -> str:
    parts = [addr.sao_text, addr.pao_text]
    number = f"{addr.pao_start_number or ''}{addr.pao_start_suffix or ''}"
    if addr.pao_end_number is not None:
        number = f"{number}-{addr.pao_end_number}"
    parts += [f"{number} {addr.street or ''}".strip(), addr.locality, addr.town]
    return ", ".join(p for p in parts if p)


class MatcherCache:
    """One matcher per store, rebuilt when a gazetteer load has been applied since it was built.

    Checking costs one indexed query; rebuilding happens once per load.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._matcher: AddressMatcher | None = None
        self._lock = threading.Lock()

    def get(self) -> AddressMatcher:
        """The current matcher, rebuilt first if the gazetteer changed."""
        with self.store.session() as session:
            version = latest_applied_load_id(session)
        with self._lock:
            if self._matcher is None or self._matcher.version != version:
                self._matcher = AddressMatcher.from_store(self.store)
            return self._matcher

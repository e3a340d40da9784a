"""The active persons' blocking keys and match fields, kept in memory for the length of a sync.

:class:`~hub.identity.resolver.PersonResolver` finds each new record's candidates by
looking its indexed blocking keys (:data:`~hub.identity.blocking.INDEXED_KEYS`) up in
``person_index`` and reading the candidates' match fields. In a migration that is a few
indexed reads per person, each returning whole blocks, and the blocks grow with the store:
the largest share of identity's cost at 100,000 people. During a sync
(``PersonResolver.remembering``) the resolver instead loads every active person's keys once
(at the sync's second batch: a one-batch incremental sync never pays for it), keeps them up
to date with the persons each batch writes, and answers the same lookups from memory: the
same candidates, counted against the same ``max_candidates_per_key``, so the same decisions.

The store stays the truth. Every writer of ``person_index`` and ``person_identifiers``
(the pipeline, a merge, an unmerge, a UPRN retirement: all through ``hub.store.writer``)
writes a ``Person`` event to the outbox in the same transaction with ``append_events``
(which takes the outbox-order lock first), so before
each batch the index checks, with two reads by primary key, that its own last batch
committed (its last event is where it left it) and that nobody has written a
``Person`` event since. Otherwise it is loaded again from the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy.orm import Session

from hub.identity.blocking import INDEXED_KEYS, NEVER_CAPPED
from hub.identity.table import MATCH_FORMAT, EncodedPersons, Encoder
from hub.model import Person
from hub.store.bulk import driver_rows, param_mark

ACTIVE = "active"

# person_index columns the index keeps, in this order.
_COLUMNS = ("person_id", "status", "nhs_number", "birth_date", "family_phonetic", "birth_year", "given_phonetic",
            "postcode", "given_name", "match_fields")


def _iso(value: Any) -> str | None:
    """A birth date as ISO text (SQLite returns text, PostgreSQL and the pipeline a date)."""
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


class PersonBlocks:
    """Blocking key -> active persons, person -> match fields and identifiers (see the module)."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[Any, set[str]]] = {kind: {} for kind in INDEXED_KEYS}
        self.given_year_all: dict[tuple[Any, Any], set[str]] = {}  # (sound, year): the block the cap counts
        self.rows: dict[str, tuple[Any, ...]] = {}  # person -> its person_index columns (_COLUMNS)
        self.fields: dict[str, list[Any] | None] = {}  # decoded match_fields, on first use
        self.identifier_owner: dict[tuple[str, str], str] = {}
        self.identifiers: dict[str, set[tuple[str, str]]] = {}
        self.mark: tuple[int, str | None] = (0, None)  # the outbox id and event id the index is current to
        # The persons encoded for comparison, kept with the index: a person's codes are reused until its
        # row changes (_put forgets it), and the batches' own records are encoded over the same vocabularies.
        self.encoded = EncodedPersons(Encoder())

    # -- loading and keeping up to date ----------------------------------------------------------

    @classmethod
    def load(cls, session: Session) -> PersonBlocks:
        """Every person of ``person_index`` and every local identifier, read from the store."""
        blocks = cls()
        blocks.mark = last_event(session)  # first: a change committed after it shows up beyond it
        for row in driver_rows(session, f"SELECT {', '.join(_COLUMNS)} FROM person_index"):
            blocks._put(tuple(row))
        for pid, system, value in driver_rows(session, "SELECT person_id, system, value FROM person_identifiers"):
            blocks._own(pid, (system, value))
        return blocks

    def current(self, session: Session) -> bool:
        """True when the store's persons are still those of the index (see the module)."""
        return persons_unchanged_since(session, self.mark)

    def written(self, session: Session, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                replaced: Iterable[str], identifiers: Iterable[tuple[str, str, str]]) -> None:
        """Take in what a batch wrote: index rows (new or changed, values of ``columns``), persons whose
        identifiers were replaced, and the identifiers inserted (person id, system, value); then move
        the mark to the batch's last event.

        Called after the batch's outbox rows, in its transaction. Each row written came with one
        ``Person`` event; any other ``Person`` event since the mark is another writer's (committed
        before this batch took the outbox lock, after the check at its start), and the index is
        marked stale, to be loaded again at the next batch.
        """
        others, latest = persons_written_since(session, self.mark, len(rows))
        if others:
            self.mark = (-1, "stale")
            return
        self.mark = latest
        at = [columns.index(c) if c in columns else None for c in _COLUMNS]
        if None in at:
            picked: Iterable[tuple[Any, ...]] = (tuple(row[i] if i is not None else None for i in at) for row in rows)
        else:  # the pipeline's rows carry every column: pick them in C
            picked = map(itemgetter(*at), rows)
        for row in picked:
            self._put(row)
        for pid in replaced:
            for key in self.identifiers.pop(pid, set()):
                if self.identifier_owner.get(key) == pid:
                    del self.identifier_owner[key]
        for pid, system, value in identifiers:
            self._own(pid, (system, value))

    def _put(self, row: tuple[Any, ...]) -> None:
        pid = row[0]
        old = self.rows.get(pid)
        if old is not None:
            for kind, key in _keys_of(old):
                bucket = self.keys[kind].get(key)
                if bucket is not None:
                    bucket.discard(pid)
            year_key = _year_key(old)
            if year_key is not None:
                self.given_year_all[year_key].discard(pid)
        self.rows[pid] = row
        self.fields.pop(pid, None)
        self.encoded.forget(pid)
        for kind, key in _keys_of(row):
            self.keys[kind].setdefault(key, set()).add(pid)
        year_key = _year_key(row)
        if year_key is not None:
            self.given_year_all.setdefault(year_key, set()).add(pid)

    def _own(self, pid: str, key: tuple[str, str]) -> None:
        self.identifier_owner[key] = pid
        self.identifiers.setdefault(pid, set()).add(key)

    # -- lookups --------------------------------------------------------------------------------

    def found(self, wanted: Mapping[str, Iterable[Any]], identifiers: Iterable[tuple[str, str]],
              cap: int) -> dict[str, dict[Any, Sequence[str]]]:
        """Per indexed key, the active persons of each wanted key value, and under ``"identifier"`` the
        active owner of each wanted local identifier, as the store's lookups
        (``PersonResolver._found_in_store``) find them: blocks over ``cap`` left out."""
        found: dict[str, dict[Any, Sequence[str]]] = {}
        for kind, values in wanted.items():
            table, into = self.keys[kind], found.setdefault(kind, {})
            if kind == "given_phonetic+birth_year":  # capped by the year's block, found by the month's
                for key in values:
                    year = self.given_year_all.get(key[:2])
                    if year and len(year) <= cap:
                        people = year if key[2] is None else table.get(key)
                        if people:
                            into[key] = people  # type: ignore[assignment]
                continue
            limit = None if kind in NEVER_CAPPED else cap
            for key in values:
                people = table.get(key)
                if people and (limit is None or len(people) <= limit):
                    into[key] = people  # type: ignore[assignment]
        into = found["identifier"] = {}
        for pair in identifiers:
            owner = self.identifier_owner.get(pair)
            row = self.rows.get(owner) if owner is not None else None
            if row is not None and row[1] == ACTIVE:  # joined to an active person, as the store's lookup
                into[pair] = (row[0],)
        return found

    def match_fields(self, person_id: str) -> list[Any] | None:
        """The person's kept match fields (None when the row has none in the current format)."""
        if person_id in self.fields:
            return self.fields[person_id]
        row = self.rows.get(person_id)
        fields = None
        if row is not None and row[9]:
            decoded = orjson.loads(row[9])
            fields = decoded if decoded[0] == MATCH_FORMAT else None
        self.fields[person_id] = fields
        return fields

    def identifiers_of(self, person_id: str) -> set[tuple[str, str]]:
        """The local identifiers ``person_identifiers`` holds for the person."""
        return self.identifiers.get(person_id, set())


def _keys_of(row: tuple[Any, ...]) -> list[tuple[str, Any]]:
    """The indexed blocking keys an index row is found by, as the resolver's records carry them
    (none unless the person is active)."""
    _, status, nhs, birth, family_sound, year, given_sound, postcode, given_name, _ = row
    if status != ACTIVE:
        return []
    out: list[tuple[str, Any]] = []
    if nhs is not None:
        out.append(("nhs_number", nhs))
    iso = _iso(birth)
    if iso is not None:
        out.append(("birth_date", iso))
    if family_sound is not None and year is not None:
        out.append(("family_phonetic+birth_year", (family_sound, year)))
    if given_sound is not None and year is not None and iso is not None:
        out.append(("given_phonetic+birth_year", (given_sound, year, int(iso[5:7]))))
    if postcode is not None and given_name:
        out.append(("postcode+given_initial", (postcode, given_name[0])))
    return out


def _year_key(row: tuple[Any, ...]) -> tuple[Any, Any] | None:
    status, given_sound, year = row[1], row[6], row[5]
    if status != ACTIVE or given_sound is None or year is None:
        return None
    return (given_sound, year)


# -- the outbox mark (shared with the pipeline's links in memory, hub.pipeline.Pipeline.remembering) ------------


def persons_unchanged_since(session: Session, mark: tuple[int, str | None]) -> bool:
    """True when the outbox event at ``mark`` is still the one it names (the writer's batch that
    took the mark committed) and no ``Person`` event was written after it: no person, index row,
    identifier or source link of a person has changed since (every writer of them writes one)."""
    outbox_id, event_id = mark
    if outbox_id < 0:
        return False
    param = param_mark(session.get_bind().dialect)
    found = driver_rows(session, f"SELECT event_id FROM outbox WHERE id = {param}", (outbox_id,))
    if (found[0][0] if found else None) != event_id:
        return False
    return not driver_rows(session, f"SELECT 1 FROM outbox WHERE id > {param} AND entity_type = {param} LIMIT 1",
                           (outbox_id, Person.entity_type))


def persons_written_since(session: Session, mark: tuple[int, str | None],
                          ours: int) -> tuple[int, tuple[int, str | None]]:
    """After a batch wrote ``ours`` ``Person`` events (in its transaction, after the outbox-order lock):
    how many other ``Person`` events were written after ``mark`` (another writer's, committed before
    the lock), and the outbox's last event, the batch's new mark."""
    param = param_mark(session.get_bind().dialect)
    ((count,),) = driver_rows(session, f"SELECT count(*) FROM outbox WHERE id > {param} AND entity_type = {param}",
                              (mark[0], Person.entity_type))
    return count - ours, last_event(session)


def last_event(session: Session) -> tuple[int, str | None]:
    """The outbox's last event (id, event id): a mark before anything a later commit writes."""
    found = driver_rows(session, "SELECT id, event_id FROM outbox ORDER BY id DESC LIMIT 1")
    return (found[0][0], found[0][1]) if found else (0, None)

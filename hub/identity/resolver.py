"""Which golden person is this record? The pipeline's entry to identity resolution.

:class:`IdentityResolver` finds candidate persons in the store through
``person_index`` and ``person_identifiers`` (the same blocking keys as the bulk
engine, as indexed SQL lookups), reads their documents, scores the record
against each with the shared :class:`~hub.identity.engine.Matcher`, skips pairs
a person has already ruled apart, and answers with a :class:`Resolution`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from itertools import chain, repeat
from typing import Any

import jellyfish
import numpy as np
import orjson
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from hub.identity import comparisons as cmp
from hub.identity import normalise
from hub.identity.blocks import PersonBlocks
from hub.identity.config import IdentityConfig, load_identity_config
from hub.identity.engine import GUARDS, NO_LINK_CODE, OUTCOMES, Evidence, GuardEvidence, Matcher, Outcome
from hub.identity.exact import Candidate, PersonCandidate, Resolution
from hub.identity.model import MatchModel
from hub.identity.record import MatchRecord
from hub.identity.table import MATCH_FORMAT, Encoder, RecordTable, normalised_fields
from hub.model import Person
from hub.store.bulk import param_mark
from hub.store.identity import ordered_pair, queue_reviews, record_links, remembered_decisions
from hub.store.tables import Entity, PersonIndex

ACTIVE = "active"
# The blocking keys the resolver looks candidates up by, besides local identifiers.
_KEY_KINDS = ("nhs", "birth", "family_year", "given_year", "postcode")
# Keys (and candidate ids) per lookup statement: well under SQLite's and PostgreSQL's bound-value limits.
_LOOKUP_CHUNK = 2000


def match_keys(person: Person) -> dict[str, Any]:
    """The blocking columns of ``person_index`` for a person (the pipeline stores them).

    ``family_phonetic`` and ``given_phonetic`` are Soundex codes, ``birth_year`` the year.
    """
    name = person.current_name
    return _keys(name.family, name.given[0] if name.given else None,
                 person.birth_date.year if person.birth_date else None)


def document_match_keys(document: dict[str, Any], fields: Sequence[Any] | None = None) -> dict[str, Any]:
    """``match_keys`` of a golden Person kept as a JSON document (the pipeline's form).

    Also ``match_fields``: the person's fields normalised for the matcher, so the resolver
    encodes a candidate from its ``person_index`` row instead of reading its document.
    ``fields`` are those fields when already computed (``normalised_fields`` of the validated
    Person's ``MatchRecord.from_person``: the record ``MatchRecord.from_document`` reads from
    its canonical document).
    """
    name = (document.get("names") or [{}])[0]
    birth = document.get("birth_date")
    keys = _keys(name.get("family"), (name.get("given") or [None])[0], int(birth[:4]) if birth else None)
    if fields is None:
        fields = normalised_fields(MatchRecord.from_document(document, ""))
    keys["match_fields"] = orjson.dumps(fields).decode()
    return keys


def _keys(family_name: str | None, given_name: str | None, birth_year: int | None) -> dict[str, Any]:
    family = normalise.family_name(family_name)
    given = normalise.given_name(given_name)
    return {
        "family_phonetic": jellyfish.soundex(family) if family else None,
        "given_phonetic": jellyfish.soundex(given) if given else None,
        "birth_year": birth_year,
    }


def _rows(conn: Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """A driver statement's rows as plain tuples, from the DBAPI cursor of the session's connection.

    Thousands of candidate rows per batch: SQLAlchemy's result rows cost more than the query.
    """
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day) if year and month and day else None
    except ValueError:
        return None


class IdentityResolver:
    """Resolves incoming person records against the golden persons in the store."""

    def __init__(self, config: IdentityConfig | None = None) -> None:
        self.config = config or load_identity_config()
        # m and u learned per source (ScoredResolver, during a sync); the prior is always the store's.
        self.models: dict[str, MatchModel] = {}

    def resolve(self, candidate: MatchRecord, store_session: Session) -> Resolution:
        """Resolve one record (see :meth:`resolve_many`)."""
        return self.resolve_many([candidate], store_session)[0]

    def resolve_many(
        self, candidates: Sequence[MatchRecord], store_session: Session
    ) -> list[Resolution]:
        """Resolve a batch of records with one set of queries and one vectorised scoring.

        A record's ``id`` may be a golden person's id (re-resolving a known person):
        that person is not its own candidate, and pairs already ruled apart by a
        reviewer (or an unmerge) are skipped.
        """
        if not candidates:
            return []
        session = store_session
        matcher = self._matcher(session, len(candidates))
        left, fields = self._encode(matcher, candidates)
        found = self._candidate_ids(session, candidates, fields)
        right = self._candidate_table(session, matcher, sorted({pid for ids in found for pid in ids}))
        person_ids = right.ids
        ruled_apart = {
            pair
            for pair, decision in remembered_decisions(session, [c.id for c in candidates]).items()
            if decision == Outcome.NO_LINK
        }
        column = {pid: k for k, pid in enumerate(person_ids)}
        li: list[int] = []
        ri: list[int] = []
        for row, (record, ids) in enumerate(zip(candidates, found, strict=True)):
            for pid in ids:
                if (
                    pid in column
                    and pid != record.id
                    and ordered_pair(record.id, pid) not in ruled_apart
                ):
                    li.append(row)
                    ri.append(column[pid])
        scored = matcher.score(
            left, right, np.array(li, dtype=np.int64), np.array(ri, dtype=np.int64)
        )
        per_record: list[list[Candidate]] = [[] for _ in candidates]
        for k, (row, col) in enumerate(zip(li, ri, strict=True)):
            per_record[row].append(
                Candidate(
                    person_ids[col],
                    float(scored.probability[k]),
                    scored.outcome(k),
                    scored.evidence(k),
                )
            )
        return [self._answer(sorted(c, key=lambda x: -x.score)) for c in per_record]

    def _matcher(self, session: Session, incoming: int, encoder: Encoder | None = None,
                 source: str | None = None) -> Matcher:
        """A matcher whose prior is the share of known people over the population they may be among.

        The population is the active persons plus the incoming records, and never fewer than
        ``estimation.population_floor``: an almost empty store must not make a weak match likely.
        ``encoder`` is one kept across batches (see :class:`~hub.identity.table.EncodedPersons`).
        """
        active = session.scalar(
            select(func.count()).select_from(PersonIndex).where(PersonIndex.status == ACTIVE)
        )
        cfg = self.config.estimation
        population = max(int(active or 0) + incoming, cfg.population_floor, 1)
        prior = min(cfg.expected_known_share / population, 0.5)
        learned = self.models.get(source) if source is not None else None
        model = (replace(learned, prior=prior) if learned is not None
                 else MatchModel.from_config(self.config, prior=prior))
        return Matcher(self.config, encoder=encoder, model=model)

    @staticmethod
    def _answer(ranked: list[Candidate]) -> Resolution:
        if not ranked:
            return Resolution(Outcome.NO_LINK, None, 0.0, None)
        best = ranked[0]
        links = [c for c in ranked if c.outcome == Outcome.LINK]
        if len(links) > 1:
            # Two golden persons both fit: never pick one silently.
            evidence = Evidence(
                best.evidence.score,
                best.evidence.match_weight,
                best.evidence.prior_weight,
                Outcome.REVIEW,
                best.evidence.fields,
                (*best.evidence.guards, GuardEvidence(*GUARDS[cmp.AMBIGUOUS])),
            )
            return Resolution(Outcome.REVIEW, best.person_id, best.score, evidence, tuple(ranked))
        return Resolution(
            best.outcome,
            best.person_id if best.outcome != Outcome.NO_LINK else None,
            best.score,
            best.evidence,
            tuple(ranked),
        )

    def _encode(self, matcher: Matcher, records: Sequence[MatchRecord],
                known: Sequence[Sequence[Any] | None] | None = None) -> tuple[RecordTable, list[Sequence[Any]]]:
        """The incoming records encoded, and their normalised fields (read again for their blocking keys);
        ``known`` gives a record's fields where they were already computed."""
        fields: list[Sequence[Any]] = [
            f if f is not None else normalised_fields(r)
            for r, f in zip(records, known if known is not None else [None] * len(records), strict=True)]
        identifiers = {row: frozenset(r.identifiers) for row, r in enumerate(records) if r.identifiers}
        return matcher.encoder.encode_normalised([r.id for r in records], fields, identifiers), fields

    def _candidate_ids(
        self, session: Session, records: Sequence[MatchRecord], fields: Sequence[Sequence[Any]] | None = None,
        blocks: PersonBlocks | None = None,
    ) -> list[set[str]]:
        """Active persons sharing at least one blocking key with each record.

        One indexed lookup per kind of key for the whole batch: the batch's keys are joined
        to ``person_index`` as a ``VALUES`` list, so each key seeks its composite index
        (a row-value ``IN`` inside an ``OR`` makes SQLite scan the table, which grows with
        the store). Raw driver statements: compiling thousands of bound values through
        SQLAlchemy costs more than the queries. ``fields`` are the records'
        :func:`~hub.identity.table.normalised_fields` when the caller has them. A key value
        (other than an NHS number or local identifier) shared by more than
        ``blocking.max_candidates_per_key`` active persons brings no candidates: it is a
        placeholder or too common to say anything, and would make a record's cost grow with the store.
        ``blocks`` answers the same lookups from memory (during a sync, see :mod:`hub.identity.blocks`).
        """
        if fields is None:
            fields = [normalised_fields(r) for r in records]
        keys: list[dict[str, Any]] = []
        for record, f in zip(records, fields, strict=True):
            given, family, year, month, day, postcode, nhs = f[1], f[2], f[3], f[4], f[5], f[7], f[12]
            birth = _date(year, month, day)
            keys.append(
                {
                    "nhs": nhs,
                    "birth": birth.isoformat() if birth else None,
                    "family_year": (jellyfish.soundex(family), year) if family and year else None,
                    # The given-name sound + year block is the largest (about 22 people at 100,000); the
                    # birth month narrows it to the people a given name and birth date could still match.
                    "given_year": (jellyfish.soundex(given), year, month or None) if given and year else None,
                    # person_index.given_name holds only the letters A-Z: no other initial can match it.
                    "postcode": (postcode, given[0].upper()) if postcode and given and "a" <= given[0] <= "z" else None,
                    "identifiers": list(record.identifiers),
                }
            )
        cap = self.config.blocking.max_candidates_per_key
        found = blocks.found(keys, cap) if blocks is not None else self._found_in_store(session, keys, cap)
        out: list[set[str]] = []
        # found holds only keys some record carries (never a missing one), so a missing key finds None.
        lookups = [(kind, found[kind].get) for kind in _KEY_KINDS]
        owner = found["identifier"].get
        for k in keys:
            blocks_found = [people for people in (get(k[kind]) for kind, get in lookups) if people]
            blocks_found.extend(people for people in map(owner, k["identifiers"]) if people)
            out.append(set().union(*blocks_found))
        return out

    @staticmethod
    def _found_in_store(session: Session, keys: list[dict[str, Any]], cap: int) -> dict[str, dict[Any, Any]]:
        """Per kind of key, the active persons of each of the records' keys, blocks over ``cap`` left out."""
        found: dict[str, dict[Any, list[str]]] = {kind: {} for kind in (*_KEY_KINDS, "identifier")}
        conn = session.connection()
        mark = param_mark(conn.dialect)
        active = f"p.status = '{ACTIVE}'"

        def each(kind: str, sql: str, width: int, values: set[Any]) -> None:
            into = found[kind]
            ordered = sorted(values)
            for start in range(0, len(ordered), _LOOKUP_CHUNK):
                chunk = ordered[start:start + _LOOKUP_CHUNK]
                row_marks = "(" + ", ".join([mark] * width) + ")"
                params = [v for item in chunk for v in (item if width > 1 else (item,))]
                statement = sql.format(values=", ".join([row_marks] * len(chunk)),
                                       marks=", ".join([mark] * len(chunk)))
                for *key, pid in _rows(conn, statement, params):
                    # A date comes back as text from SQLite and as a date from PostgreSQL: key both as text.
                    into.setdefault(tuple(key) if width > 1 else str(key[0]), []).append(pid)

        each("nhs", f"SELECT p.nhs_number, p.person_id FROM person_index p "
                    f"WHERE p.nhs_number IN ({{marks}}) AND {active}", 1, {k["nhs"] for k in keys if k["nhs"]})
        each("birth", f"SELECT p.birth_date, p.person_id FROM person_index p "
                      f"WHERE p.birth_date IN ({{marks}}) AND {active}", 1, {k["birth"] for k in keys if k["birth"]})
        each("family_year", f"WITH k(code, born) AS (VALUES {{values}}) SELECT k.code, k.born, p.person_id FROM k "
                            f"JOIN person_index p ON p.family_phonetic = k.code AND p.birth_year = k.born "
                            f"WHERE {active}",
             2, {k["family_year"] for k in keys if k["family_year"]})
        # The given-name block is read by (sound, year) with each person's birth month: the whole year's
        # block is what the cap counts, and a record with a birth month takes only that month's people.
        each("given_year", f"WITH k(code, born) AS (VALUES {{values}}) "
                           f"SELECT k.code, k.born, p.birth_date, p.person_id FROM k "
                           f"JOIN person_index p ON p.given_phonetic = k.code AND p.birth_year = k.born "
                           f"WHERE {active}",
             2, {k["given_year"][:2] for k in keys if k["given_year"]})
        # Seek (postcode, names from the initial up to the next letter) on the composite index; the initial
        # itself is checked too, whatever the collation's order.
        each("postcode", f"WITH k(code, initial, beyond) AS (VALUES {{values}}) "
                         f"SELECT k.code, k.initial, p.person_id FROM k JOIN person_index p ON p.postcode = k.code "
                         f"AND p.given_name >= k.initial AND p.given_name < k.beyond "
                         f"AND substr(p.given_name, 1, 1) = k.initial WHERE {active}",
             3, {(*k["postcode"], chr(ord(k["postcode"][1]) + 1)) for k in keys if k["postcode"]})
        # The postcode rows were keyed by (code, initial, beyond): key them as the records do.
        found["postcode"] = {(code, initial): ids for (code, initial, *_), ids in found["postcode"].items()}
        each("identifier", f"WITH k(sys, val) AS (VALUES {{values}}) SELECT k.sys, k.val, i.person_id FROM k "
                           f"JOIN person_identifiers i ON i.system = k.sys AND i.value = k.val "
                           f"JOIN person_index p ON p.person_id = i.person_id WHERE {active}",
             2, {pair for k in keys for pair in k["identifiers"]})
        by_year: dict[Any, list[str]] = {}
        by_month: dict[Any, list[str]] = {}
        for (code, born, birth_date), people in found["given_year"].items():
            by_year.setdefault((code, born, None), []).extend(people)
            if birth_date is not None:  # ISO text from SQLite, a date from PostgreSQL
                month = birth_date.month if isinstance(birth_date, date) else int(str(birth_date)[5:7])
                by_month.setdefault((code, born, month), []).extend(people)
        found["given_year"] = by_year | by_month
        for kind in ("birth", "family_year", "postcode"):
            found[kind] = {key: ids for key, ids in found[kind].items() if len(ids) <= cap}
        found["given_year"] = {key: people for key, people in found["given_year"].items()
                               if len(by_year[(*key[:2], None)]) <= cap}
        return found

    @staticmethod
    def _candidate_table(session: Session, matcher: Matcher, person_ids: list[str]) -> RecordTable:
        """The candidate persons encoded from their ``person_index`` rows (documents only for old rows)."""
        conn = session.connection()
        mark = param_mark(conn.dialect)
        kept: dict[str, list[Any]] = {}
        identifiers: dict[str, set[tuple[str, str]]] = {}
        for start in range(0, len(person_ids), _LOOKUP_CHUNK):
            chunk = tuple(person_ids[start:start + _LOOKUP_CHUNK])
            marks = ", ".join([mark] * len(chunk))
            for pid, text in _rows(
                conn, f"SELECT person_id, match_fields FROM person_index WHERE person_id IN ({marks})", chunk
            ):
                if text:
                    row = orjson.loads(text)
                    if row[0] == MATCH_FORMAT:
                        kept[pid] = row
            for pid, system, value in _rows(
                conn, f"SELECT person_id, system, value FROM person_identifiers WHERE person_id IN ({marks})", chunk
            ):
                identifiers.setdefault(pid, set()).add((system, value))
        documents = IdentityResolver._load(session, [pid for pid in person_ids if pid not in kept])
        ids: list[str] = []
        rows: list[list[Any]] = []
        idents: dict[int, frozenset[tuple[str, str]]] = {}
        for pid in person_ids:
            document = documents.get(pid)
            if document is not None:
                row, found = normalised_fields(document), set(document.identifiers)
            elif pid in kept:
                row, found = kept[pid], identifiers.get(pid, set())
            else:
                continue
            if found:
                idents[len(ids)] = frozenset(found)
            ids.append(pid)
            rows.append(row)
        return matcher.encoder.encode_normalised(ids, rows, idents)

    @staticmethod
    def _known_candidates(session: Session, blocks: PersonBlocks,
                          person_ids: Iterable[str]) -> tuple[RecordTable, dict[str, int]]:
        """The candidates as rows of the sync's table of encoded persons (``blocks.encoded``), each
        encoded the first time it is a candidate (or again after its fields changed); persons whose
        index row has no match fields in the current format are encoded from their documents
        every time, as :meth:`_candidate_table` does."""
        known = blocks.encoded
        column: dict[str, int] = {}
        fresh: list[str] = []
        rows: list[list[Any]] = []
        idents: dict[int, frozenset[tuple[str, str]]] = {}
        without: list[str] = []
        for pid in person_ids:
            row = known.row_of.get(pid)
            if row is not None:
                column[pid] = row
                continue
            fields = blocks.match_fields(pid)
            if fields is None:
                without.append(pid)
                continue
            found = blocks.identifiers_of(pid)
            if found:
                idents[len(fresh)] = frozenset(found)
            fresh.append(pid)
            rows.append(fields)
        if fresh:
            column.update(zip(fresh, known.add(fresh, rows, idents), strict=True))
        documents = IdentityResolver._load(session, sorted(without))
        if documents:
            ids = list(documents)
            column.update(zip(ids, known.add(
                ids, [normalised_fields(documents[pid]) for pid in ids],
                {k: frozenset(documents[pid].identifiers) for k, pid in enumerate(ids) if documents[pid].identifiers},
                remember=False), strict=True))
        return known.table, column

    @staticmethod
    def _load(session: Session, person_ids: list[str]) -> dict[str, MatchRecord]:
        """Candidate persons' documents as match records."""
        records: dict[str, MatchRecord] = {}
        if not person_ids:
            return records
        for entity_id, document in session.connection().execute(
            select(Entity.id, Entity.document).where(Entity.id.in_(person_ids))
        ):
            records[entity_id] = MatchRecord.from_document(orjson.loads(document), entity_id)
        return records


class ScoredResolver(IdentityResolver):
    """The pipeline's resolver: the scored engine behind :class:`~hub.identity.exact.PersonResolver`.

    For a batch of new person records it reads candidates from the store with one
    blocking query (plus one for local identifiers), scores them and the batch's
    own records against each other in one vectorised pass each, then decides in
    batch order, so a record may join a person an earlier record of the same batch
    created. A link joins the record to the person; a review leaves the record as
    a new person and queues the pair for a reviewer; guards cap what the score says.

    Within :meth:`remembering` (a sync), the candidates are looked up in memory from the sync's
    second batch on (:mod:`hub.identity.blocks`): the same candidates, the same decisions.
    """

    def __init__(self, config: IdentityConfig | None = None) -> None:
        super().__init__(config)
        self._remembering = 0
        self._batches = 0
        self._blocks: PersonBlocks | None = None
        self._learned: set[str] = set()  # sources whose model this sync has learned

    @contextmanager
    def remembering(self) -> Iterator[None]:
        """Keep the active persons' blocking keys in memory while the block runs (re-entrant)."""
        self._remembering += 1
        if self._remembering == 1:
            self._learned = set()
        try:
            yield
        finally:
            self._remembering -= 1
            if not self._remembering:
                self._blocks, self._batches = None, 0

    def _blocks_for(self, session: Session) -> PersonBlocks | None:
        """The in-memory index for this batch: none outside a sync or in its first batch, nor while
        two syncs share this resolver; loaded again whenever the store's persons are no longer those
        it holds."""
        if self._remembering != 1:
            self._blocks = None
            return None
        self._batches += 1
        if self._batches == 1:
            return None
        if self._blocks is None or not self._blocks.current(session):
            self._blocks = PersonBlocks.load(session)
        return self._blocks

    def persons_written(self, session: Session, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                        replaced: Iterable[str], identifiers: Iterable[tuple[str, str, str]]) -> None:
        """What a batch wrote to ``person_index`` (rows of ``columns``) and ``person_identifiers``
        ((person id, system, value)), after its outbox rows."""
        if self._blocks is not None and self._remembering == 1:
            self._blocks.written(session, columns, rows, replaced, identifiers)

    def resolve_batch(self, session: Session, candidates: Sequence[PersonCandidate]) -> list[Resolution]:
        """One resolution per candidate, in order (see the class)."""
        if not candidates:
            return []
        records = [c.record for c in candidates]
        blocks = self._blocks_for(session)
        sources = {c.source for c in candidates}
        source = next(iter(sources)) if len(sources) == 1 else None
        matcher = self._matcher(session, len(records), blocks.encoded.encoder if blocks is not None else None,
                                source)
        left, fields = self._encode(matcher, records, [c.fields for c in candidates])
        found = self._candidate_ids(session, records, fields, blocks)
        if blocks is not None:
            right, column = self._known_candidates(session, blocks, {pid for ids in found for pid in ids})
        else:
            right = self._candidate_table(session, matcher, sorted({pid for ids in found for pid in ids}))
            column = {pid: k for k, pid in enumerate(right.ids)}
        self._learn(matcher, source, left, right)
        person_ids = right.ids
        options: list[list[tuple[int, float, int, Evidence | None]]] = [[] for _ in records]
        # Against the store: keep only pairs worth a link or a review.
        if column:
            # Every (record, candidate) pair in the order found lists them, without a Python step per pair.
            total = sum(map(len, found))
            cols = np.fromiter(map(column.get, chain.from_iterable(found), repeat(-1)), dtype=np.int64, count=total)
            rows = np.repeat(np.arange(len(found), dtype=np.int64), list(map(len, found)))
            kept = cols >= 0
            lr, rr = rows[kept], cols[kept]
            scored = matcher.score(left, right, lr, rr)
            li, ri = lr.tolist(), rr.tolist()
            for k in np.flatnonzero(scored.decisions > NO_LINK_CODE).tolist():
                options[li[k]].append((-1 - ri[k], float(scored.probability[k]), int(scored.decisions[k]),
                                       scored.evidence(k)))
        # Within the batch: a pair is considered by its later record.
        for a, b, _ in matcher.blocker(left, None).chunks():
            if not len(a):
                continue
            scored = matcher.score(left, left, a, b)
            for k in np.flatnonzero(scored.decisions > NO_LINK_CODE).tolist():
                first, later = sorted((int(a[k]), int(b[k])))
                options[later].append((first, float(scored.probability[k]), int(scored.decisions[k]),
                                       scored.evidence(k)))
        assigned: list[str] = []
        out: list[Resolution] = []
        for row, candidate in enumerate(candidates):
            best: dict[str, Candidate] = {}
            for other, probability, decision, evidence in options[row]:
                pid = person_ids[-1 - other] if other < 0 else assigned[other]
                assert evidence is not None
                if pid not in best or best[pid].score < probability:
                    best[pid] = Candidate(pid, probability, OUTCOMES[decision], evidence)
            answer = self._answer(sorted(best.values(), key=lambda c: (-c.score, c.person_id)))
            out.append(answer)
            assigned.append(answer.joins or candidate.new_id)
        return out

    def _learn(self, matcher: Matcher, source: str | None, batch: RecordTable, known: RecordTable) -> None:
        """Learn (or refresh) the source's m and u once per sync, from its first batch large enough;
        the batch is then scored with them. Outside a sync the source's last learned model is used."""
        cfg = self.config.estimation
        if (source is None or not cfg.estimate or self._remembering != 1 or source in self._learned
                or len(batch) < cfg.min_source_records):
            return
        self._learned.add(source)
        learned = matcher.learn_source(batch, known)
        if learned is not None:
            self.models[source] = learned
            matcher.model = replace(learned, prior=matcher.model.prior)

    def record_batch(
        self, session: Session, candidates: Sequence[PersonCandidate], resolutions: Sequence[Resolution]
    ) -> None:
        """Keep every link with its score and evidence, and queue every review, one statement each."""
        links, reviews = [], []
        for candidate, resolution in zip(candidates, resolutions, strict=True):
            evidence = resolution.evidence.as_json() if resolution.evidence is not None else {}
            if resolution.joins is not None:
                links.append({"person_a": resolution.joins, "person_b": candidate.ref,
                              "score": resolution.score, "evidence": evidence})
            elif resolution.review_with is not None:
                reviews.append({"person_a": candidate.new_id, "person_b": resolution.review_with,
                                "score": resolution.score, "evidence": evidence})
        record_links(session, links)
        queue_reviews(session, reviews)

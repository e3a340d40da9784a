"""Which golden person is this record? Identity resolution as the pipeline calls it.

:class:`PersonResolver` takes a batch of person records no golden person holds yet
(:class:`~hub.identity.resolution.PersonCandidate`), finds each one's candidate persons by the
blocking keys ``person_index`` and ``person_identifiers`` are indexed for, scores the record
against them and against the batch's own records with the shared
:class:`~hub.identity.engine.Matcher`, and answers one :class:`~hub.identity.resolution.Resolution`
each: join a person, ask a reviewer, or a new person.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import date
from itertools import chain, repeat
from typing import Any

import jellyfish
import numpy as np
import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.identity import comparisons as cmp
from hub.identity import normalise
from hub.identity.blocking import INDEXED_KEYS, NEVER_CAPPED
from hub.identity.blocks import PersonBlocks
from hub.identity.config import IdentityConfig, load_identity_config
from hub.identity.engine import GUARDS, NO_LINK_CODE, OUTCOMES, Evidence, GuardEvidence, Matcher, Outcome
from hub.identity.model import MatchModel, model_fingerprint
from hub.identity.record import MatchRecord
from hub.identity.resolution import Candidate, PersonCandidate, Resolution
from hub.identity.table import MATCH_FORMAT, Encoder, RecordTable, normalised_fields
from hub.store.bulk import driver_rows, param_mark
from hub.store.identity import queue_reviews, record_links, save_model, stored_model
from hub.store.tables import Entity, PersonIndex

ACTIVE = "active"
# Keys (and candidate ids) per lookup statement: well under SQLite's and PostgreSQL's bound-value limits.
_LOOKUP_CHUNK = 2000


def document_match_keys(document: dict[str, Any], fields: Sequence[Any] | None = None) -> dict[str, Any]:
    """The blocking columns of ``person_index`` for a golden Person kept as a JSON document.

    ``family_phonetic`` and ``given_phonetic`` are Soundex codes, ``birth_year`` the year; also
    ``match_fields``: the person's fields normalised for the matcher, so the resolver
    encodes a candidate from its ``person_index`` row instead of reading its document.
    ``fields`` are those fields when already computed (``normalised_fields`` of the validated
    Person's ``MatchRecord.from_person``: the record ``MatchRecord.from_document`` reads from
    its canonical document).
    """
    name = (document.get("names") or [{}])[0]
    birth = document.get("birth_date")
    family = normalise.family_name(name.get("family"))
    given = normalise.given_name((name.get("given") or [None])[0])
    if fields is None:
        fields = normalised_fields(MatchRecord.from_document(document, ""))
    return {
        "family_phonetic": jellyfish.soundex(family) if family else None,
        "given_phonetic": jellyfish.soundex(given) if given else None,
        "birth_year": int(birth[:4]) if birth else None,
        "match_fields": orjson.dumps(fields).decode(),
    }


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day) if year and month and day else None
    except ValueError:
        return None


def _birth_date_key(f: Sequence[Any]) -> str | None:
    birth = _date(f[3], f[4], f[5])
    return birth.isoformat() if birth else None


def _family_year_key(f: Sequence[Any]) -> tuple[str, int] | None:
    return (jellyfish.soundex(f[2]), f[3]) if f[2] and f[3] else None


def _given_year_key(f: Sequence[Any]) -> tuple[str, int, int | None] | None:
    # The given-name sound + year block is the largest (about 22 people at 100,000); the birth month
    # narrows it to the people a given name and birth date could still match (the year's block is capped).
    return (jellyfish.soundex(f[1]), f[3], f[4] or None) if f[1] and f[3] else None


def _postcode_initial_key(f: Sequence[Any]) -> tuple[str, str] | None:
    # person_index.given_name holds only the letters A-Z: no other initial can match it.
    postcode, given = f[7], f[1]
    return (postcode, given[0].upper()) if postcode and given and "a" <= given[0] <= "z" else None


_RECORD_KEYS: dict[str, Callable[[Sequence[Any]], Any]] = {
    "nhs_number": lambda f: f[12],
    "birth_date": _birth_date_key,
    "family_phonetic+birth_year": _family_year_key,
    "given_phonetic+birth_year": _given_year_key,
    "postcode+given_initial": _postcode_initial_key,
}
"""A record's value of each indexed blocking key, from its normalised fields (as ``person_index`` keeps it)."""

# The store's lookup of each indexed key, and how many values make one key. The batch's keys are an
# IN list ({marks}) or are joined to person_index as a VALUES list ({values}), so each seeks its
# composite index (a row-value IN inside an OR makes SQLite scan the table); {mark} is the status.
_STORE_LOOKUPS: dict[str, tuple[str, int]] = {
    "nhs_number": ("SELECT p.nhs_number, p.person_id FROM person_index p "
                   "WHERE p.nhs_number IN ({marks}) AND p.status = {mark}", 1),
    "birth_date": ("SELECT p.birth_date, p.person_id FROM person_index p "
                   "WHERE p.birth_date IN ({marks}) AND p.status = {mark}", 1),
    "family_phonetic+birth_year": (
        "WITH k(code, born) AS (VALUES {values}) SELECT k.code, k.born, p.person_id FROM k "
        "JOIN person_index p ON p.family_phonetic = k.code AND p.birth_year = k.born WHERE p.status = {mark}", 2),
    # Read by (sound, year) with each person's birth date: the whole year's block is what the cap counts,
    # and a record with a birth month takes only that month's people.
    "given_phonetic+birth_year": (
        "WITH k(code, born) AS (VALUES {values}) SELECT k.code, k.born, p.birth_date, p.person_id FROM k "
        "JOIN person_index p ON p.given_phonetic = k.code AND p.birth_year = k.born WHERE p.status = {mark}", 2),
    # Seeks (postcode, names from the initial up to the next letter) on the composite index; the initial
    # itself is checked too, whatever the collation's order.
    "postcode+given_initial": (
        "WITH k(code, initial, beyond) AS (VALUES {values}) SELECT k.code, k.initial, p.person_id FROM k "
        "JOIN person_index p ON p.postcode = k.code AND p.given_name >= k.initial AND p.given_name < k.beyond "
        "AND substr(p.given_name, 1, 1) = k.initial WHERE p.status = {mark}", 3),
}
_IDENTIFIER_LOOKUP = ("WITH k(sys, val) AS (VALUES {values}) SELECT k.sys, k.val, i.person_id FROM k "
                      "JOIN person_identifiers i ON i.system = k.sys AND i.value = k.val "
                      "JOIN person_index p ON p.person_id = i.person_id WHERE p.status = {mark}")


class PersonResolver:
    """Decides, for a batch of new person records, which golden person each one is.

    :meth:`resolve_batch` finds each record's candidates (:meth:`candidate_ids`: the active persons
    sharing one of the indexed blocking keys ``blocking.passes`` names, or a local identifier), scores
    them and the batch's own records against each other in one vectorised pass each, then decides in
    batch order, so a record may join a person an earlier record of the same batch created. A link
    joins the record to the person; a review leaves the record as a new person and queues the pair for
    a reviewer; guards cap what the score says. :meth:`record_batch` keeps the links and queues the
    reviews in the batch's transaction.

    Within :meth:`remembering` (a sync), the candidates are looked up in memory from the sync's
    second batch on (:mod:`hub.identity.blocks`), told by :meth:`persons_written` what each batch
    wrote: the same candidates, the same decisions.
    """

    def __init__(self, config: IdentityConfig | None = None) -> None:
        self.config = config or load_identity_config()
        # The indexed blocking keys the configuration enables: looked up in the store or in memory.
        self.indexed_keys = tuple(k for k in INDEXED_KEYS if k in self.config.blocking.passes)
        # m and u learned per source during a sync, or read from the store (identity_models) the first
        # time a source's records are resolved; the prior is always the store's.
        self.models: dict[str, MatchModel] = {}
        self.fingerprint = model_fingerprint(self.config)
        self._read: set[str] = set()  # sources whose stored model this process has looked for
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

    def persons_written(self, session: Session, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                        replaced: Iterable[str], identifiers: Iterable[tuple[str, str, str]]) -> None:
        """What a batch wrote to ``person_index`` (rows of ``columns``) and ``person_identifiers``
        ((person id, system, value)), after its outbox rows."""
        if self._blocks is not None and self._remembering == 1:
            self._blocks.written(session, columns, rows, replaced, identifiers)

    def resolve_batch(self, session: Session, candidates: Sequence[PersonCandidate]) -> list[Resolution]:
        """One resolution per candidate, in order; a candidate may resolve to an earlier one of the batch
        (see the class)."""
        if not candidates:
            return []
        blocks = self._blocks_for(session)
        sources = {c.source for c in candidates}
        source = next(iter(sources)) if len(sources) == 1 else None
        matcher = self._matcher(session, len(candidates), blocks.encoded.encoder if blocks is not None else None,
                                source)
        fields = self._fields(candidates)
        left = self._encode(matcher, candidates, fields)
        found = self._candidate_ids(session, candidates, fields, blocks)
        if blocks is not None:
            right, column = self._known_candidates(session, blocks, {pid for ids in found for pid in ids})
        else:
            right = self._candidate_table(session, matcher, sorted({pid for ids in found for pid in ids}))
            column = {pid: k for k, pid in enumerate(right.ids)}
        self._learn(session, matcher, source, left, right)
        person_ids = right.ids
        options: list[list[tuple[int, float, int, Evidence | None]]] = [[] for _ in candidates]
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

    def candidate_ids(self, session: Session, candidates: Sequence[PersonCandidate]) -> list[set[str]]:
        """The persons :meth:`resolve_batch` compares each candidate with, as it finds them in the store.

        The active persons sharing at least one of :attr:`indexed_keys` (the blocking keys of
        :data:`~hub.identity.blocking.INDEXED_KEYS` that ``blocking.passes`` names) or a local identifier
        with the record. A key value other than an NHS number or local identifier shared by more than
        ``blocking.max_candidates_per_key`` active persons brings nobody: it is a placeholder or too
        common to say anything, and would make a record's cost grow with the store. During a sync the
        in-memory index answers the same lookups (:mod:`hub.identity.blocks`).
        """
        return self._candidate_ids(session, candidates, self._fields(candidates), None)

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

    def _learn(self, session: Session, matcher: Matcher, source: str | None, batch: RecordTable,
               known: RecordTable) -> None:
        """Learn (or refresh) the source's m and u once per sync, from its first batch large enough;
        the batch is then scored with them, and the model is kept in the store in the batch's
        transaction. Outside a sync the source's last learned model (this process's or the store's) is used."""
        cfg = self.config.estimation
        if (source is None or not cfg.estimate or self._remembering != 1 or source in self._learned
                or len(batch) < cfg.min_source_records):
            return
        self._learned.add(source)
        learned = matcher.learn_source(batch, known)
        if learned is not None:
            self.models[source] = learned
            matcher.model = replace(learned, prior=matcher.model.prior)
            save_model(session, source, learned.to_json(), self.fingerprint, len(batch))

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
        learned = self._model_of(session, source, prior) if source is not None else None
        model = (replace(learned, prior=prior) if learned is not None
                 else MatchModel.from_config(self.config, prior=prior))
        return Matcher(self.config, encoder=encoder, model=model)

    def _model_of(self, session: Session, source: str, prior: float) -> MatchModel | None:
        """The source's learned model: this process's, else the one the store keeps (read once per
        source per process, used only when learned under this configuration's fingerprint and
        ``estimation.estimate`` is on), else None (the configured weights)."""
        if source not in self.models and source not in self._read:
            self._read.add(source)
            stored = stored_model(session, source, self.fingerprint) if self.config.estimation.estimate else None
            # One written for other comparison levels is not read: the configured weights until the next sync.
            with suppress(ValueError, KeyError, TypeError):
                if stored is not None:
                    self.models[source] = MatchModel.from_json(stored, prior)
        return self.models.get(source)

    @staticmethod
    def _answer(ranked: list[Candidate]) -> Resolution:
        """The answer from the candidates worth a link or a review, best first."""
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
        return Resolution(best.outcome, best.person_id, best.score, best.evidence, tuple(ranked))

    @staticmethod
    def _encode(matcher: Matcher, candidates: Sequence[PersonCandidate],
                fields: Sequence[Sequence[Any]]) -> RecordTable:
        """The incoming records encoded from their normalised fields."""
        identifiers = {row: frozenset(c.record.identifiers) for row, c in enumerate(candidates)
                       if c.record.identifiers}
        return matcher.encoder.encode_normalised([c.record.id for c in candidates], fields, identifiers)

    @staticmethod
    def _fields(candidates: Sequence[PersonCandidate]) -> list[Sequence[Any]]:
        """Each candidate's normalised fields (computed here unless the sync's reader already did)."""
        return [c.fields if c.fields is not None else normalised_fields(c.record) for c in candidates]

    def _candidate_ids(self, session: Session, candidates: Sequence[PersonCandidate],
                       fields: Sequence[Sequence[Any]], blocks: PersonBlocks | None) -> list[set[str]]:
        """:meth:`candidate_ids`, from ``blocks`` (the sync's index) when given, else from the store.

        One lookup per indexed key for the whole batch, of the batch's distinct key values.
        """
        keys = {name: [_RECORD_KEYS[name](f) for f in fields] for name in self.indexed_keys}
        identifiers = [c.record.identifiers for c in candidates]
        wanted = {name: {k for k in column if k} for name, column in keys.items()}
        owned = {pair for pairs in identifiers for pair in pairs}
        cap = self.config.blocking.max_candidates_per_key
        found = (blocks.found(wanted, owned, cap) if blocks is not None
                 else self._found_in_store(session, wanted, owned, cap))
        # found holds only keys some record carries (never a missing one), so a missing key finds None.
        getters = [found[name].get for name in keys]
        owner = found["identifier"].get
        out: list[set[str]] = []
        for *record_keys, pairs in zip(*keys.values(), identifiers, strict=True):
            blocks_found = [people for get, key in zip(getters, record_keys, strict=True) if (people := get(key))]
            blocks_found.extend(people for people in map(owner, pairs) if people)
            out.append(set().union(*blocks_found))
        return out

    @staticmethod
    def _found_in_store(session: Session, wanted: Mapping[str, set[Any]], identifiers: set[tuple[str, str]],
                        cap: int) -> dict[str, dict[Any, list[str]]]:
        """Per indexed key, the active persons of each wanted key value (blocks over ``cap`` left out), and
        under ``"identifier"`` the active owner of each wanted local identifier.

        Raw driver statements: compiling thousands of bound values through SQLAlchemy costs more than
        the queries.
        """
        mark = param_mark(session.get_bind().dialect)

        def rows(sql: str, width: int, values: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
            ordered = sorted(values)
            row_marks = "(" + ", ".join([mark] * width) + ")"
            for start in range(0, len(ordered), _LOOKUP_CHUNK):
                chunk = ordered[start:start + _LOOKUP_CHUNK]
                params = [v for item in chunk for v in item] if width > 1 else list(chunk)
                statement = sql.format(values=", ".join([row_marks] * len(chunk)),
                                       marks=", ".join([mark] * len(chunk)), mark=mark)
                yield from driver_rows(session, statement, [*params, ACTIVE])

        found: dict[str, dict[Any, list[str]]] = {}
        for name, values in wanted.items():
            sql, width = _STORE_LOOKUPS[name]
            if name == "given_phonetic+birth_year":
                values = {key[:2] for key in values}  # the year's block, to count against the cap
            elif name == "postcode+given_initial":
                values = {(code, initial, chr(ord(initial) + 1)) for code, initial in values}
            into: dict[Any, list[str]] = {}
            for *key, pid in rows(sql, width, values):
                # A date comes back as text from SQLite and as a date from PostgreSQL: key both as text.
                into.setdefault(tuple(key) if len(key) > 1 else str(key[0]), []).append(pid)
            found[name] = into
        found["identifier"] = {}
        for system, value, pid in rows(_IDENTIFIER_LOOKUP, 2, identifiers):
            found["identifier"].setdefault((system, value), []).append(pid)
        if "given_phonetic+birth_year" in found:
            by_year: dict[Any, list[str]] = {}
            by_month: dict[Any, list[str]] = {}
            for (code, born, birth_date), people in found["given_phonetic+birth_year"].items():
                by_year.setdefault((code, born, None), []).extend(people)
                if birth_date is not None:  # ISO text from SQLite, a date from PostgreSQL
                    month = birth_date.month if isinstance(birth_date, date) else int(str(birth_date)[5:7])
                    by_month.setdefault((code, born, month), []).extend(people)
            found["given_phonetic+birth_year"] = {key: people for key, people in (by_year | by_month).items()
                                                   if len(by_year[(*key[:2], None)]) <= cap}
        for name in found.keys() - NEVER_CAPPED - {"identifier", "given_phonetic+birth_year"}:
            found[name] = {key: ids for key, ids in found[name].items() if len(ids) <= cap}
        return found

    @staticmethod
    def _candidate_table(session: Session, matcher: Matcher, person_ids: list[str]) -> RecordTable:
        """The candidate persons encoded from their ``person_index`` rows (documents only for old rows)."""
        mark = param_mark(session.get_bind().dialect)
        kept: dict[str, list[Any]] = {}
        identifiers: dict[str, set[tuple[str, str]]] = {}
        for start in range(0, len(person_ids), _LOOKUP_CHUNK):
            chunk = tuple(person_ids[start:start + _LOOKUP_CHUNK])
            marks = ", ".join([mark] * len(chunk))
            for pid, text in driver_rows(
                session, f"SELECT person_id, match_fields FROM person_index WHERE person_id IN ({marks})", chunk
            ):
                if text:
                    row = orjson.loads(text)
                    if row[0] == MATCH_FORMAT:
                        kept[pid] = row
            for pid, system, value in driver_rows(
                session, f"SELECT person_id, system, value FROM person_identifiers WHERE person_id IN ({marks})", chunk
            ):
                identifiers.setdefault(pid, set()).add((system, value))
        documents = PersonResolver._load(session, [pid for pid in person_ids if pid not in kept])
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
        documents = PersonResolver._load(session, sorted(without))
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

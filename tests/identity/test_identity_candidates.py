"""How the pipeline's resolver finds and reads candidates in the store (SQLite, PostgreSQL).

Candidates are encoded from ``person_index.match_fields`` (the matcher's normalised
fields, kept when the person is written); a person kept before that column existed is
read from its document and must be judged the same. A key value shared by more
persons than ``blocking.max_candidates_per_key`` (a legacy placeholder birth date)
brings no candidates, while the record's other keys still find the person. The keys looked
up are the indexed ones ``blocking.passes`` names.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, text

from hub.identity import MatchRecord, PersonCandidate, PersonResolver, load_identity_config
from hub.identity.blocking import BLOCKING_KEYS, INDEXED_KEYS
from hub.identity.config import IdentityConfig
from hub.identity.engine import Outcome
from hub.identity.table import Encoder, normalised_fields
from hub.pipeline import Pipeline
from hub.store.db import Store
from hub.store.identity import MatchReview
from hub.store.tables import PersonIndex
from hub.sync import sync_source
from tests.support.two_sources import ADULTS, ESCR, LIVE_ARTHUR, legacy, person_of


def _capped(cap: int) -> IdentityConfig:
    config = load_identity_config()
    return config.model_copy(update={"blocking": config.blocking.model_copy(update={"max_candidates_per_key": cap})})


def _passes(*passes: str) -> IdentityConfig:
    config = load_identity_config()
    return config.model_copy(update={"blocking": config.blocking.model_copy(update={"passes": passes})})


def _adults(source_id: int, record: MatchRecord) -> PersonCandidate:
    """A record of the adults' system no golden person holds yet, as the pipeline hands it to the resolver."""
    return PersonCandidate("adults", "clients", str(source_id), record, record.id)


def test_persons_kept_before_match_fields_are_read_from_their_documents(store: Store, tmp_path: Path) -> None:
    escr, adults = legacy(tmp_path, "escr", ESCR), legacy(tmp_path, "adults", [*ADULTS, LIVE_ARTHUR])
    sync_source(store, escr, Pipeline(), batch_size=50)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(PersonIndex).where(PersonIndex.match_fields.is_(None))) == 0
        s.execute(text("UPDATE person_index SET match_fields = NULL"))
    sync_source(store, adults, Pipeline(), batch_size=50)

    margaret, amy = person_of(store, "escr", 1), person_of(store, "escr", 2)
    assert person_of(store, "adults", 101) == margaret
    assert person_of(store, "adults", 102) == amy
    assert person_of(store, "adults", 103) == person_of(store, "escr", 5)
    dead, alive = person_of(store, "escr", 7), person_of(store, "adults", 106)
    assert dead != alive
    with store.session() as s:
        reviews = {frozenset((a, b)) for a, b in s.execute(select(MatchReview.person_a, MatchReview.person_b))}
        # persons written again get their matcher fields: the three joined, Grace and the live Arthur
        kept = select(func.count()).select_from(PersonIndex).where(PersonIndex.match_fields.is_not(None))
        assert s.scalar(kept) == 5
    assert frozenset((dead, alive)) in reviews
    escr.close()
    adults.close()


def test_a_placeholder_birth_date_brings_no_candidates_but_other_keys_still_do(store: Store, tmp_path: Path) -> None:
    placeholder = [
        (1, "Margaret", "Hawthorne", "01/01/1900", "F", "2", "Elm Court", "LS6 2AB"),
        (2, "Olu", "Adeyemi", "01/01/1900", "M", "40", "Park View", "LS9 8EE"),
        (3, "Grace", "Okafor", "01/01/1900", "F", "7", "Bank Street", "LS2 7HY"),
    ]
    escr = legacy(tmp_path, "escr", placeholder)
    sync_source(store, escr, Pipeline(), batch_size=50)
    peggy = _adults(101, MatchRecord("adults-101", "Peggy", "Hawthorne", "1900-01-01", "F", "2 Elm Court", None,
                                     "LS6 2AB"))
    uncapped, capped = PersonResolver(), PersonResolver(_capped(2))
    with store.session() as s:
        [everyone_found], [capped_found] = uncapped.candidate_ids(s, [peggy]), capped.candidate_ids(s, [peggy])
        [everyone] = uncapped.resolve_batch(s, [peggy])
        [capped_answer] = capped.resolve_batch(s, [peggy])
    margaret = person_of(store, "escr", 1)
    assert everyone_found == {person_of(store, "escr", i) for i in (1, 2, 3)}
    # three persons share the date: over the cap, it finds nobody; surname sound + year finds Margaret
    assert capped_found == {margaret}
    assert [c.person_id for c in capped_answer.candidates] == [c.person_id for c in everyone.candidates] == [margaret]
    assert capped_answer.person_id == everyone.person_id == margaret
    assert capped_answer.score == everyone.score
    escr.close()


def test_encoding_normalised_fields_gives_the_same_scores_as_encoding_records() -> None:
    from hub.identity import Matcher

    records = [
        MatchRecord("a", "Margaret", "Hawthorne", "1941-03-12", "F", "2 Elm Ct", "Leeds", "LS6 2AB", "9434765919",
                    True, identifiers=(("escr", "1"),)),
        MatchRecord("b", "Mrs Peggy", "HAWTHORNE", "12/03/1941", "female", "2 Elm Court", None, "ls62ab",
                    identifiers=(("escr", "2"),)),
        MatchRecord("c", "Amy", "Carter", "2001-05-05", "F", None, None, None, death_date=None, deceased=True),
        MatchRecord("d"),
    ]
    config = load_identity_config()
    rows, cols = [0, 0, 1, 2, 3], [1, 2, 2, 3, 0]
    plain = Matcher(config)
    expected = plain.score(plain.encoder.encode(records), plain.encoder.encode(records), _a(rows), _a(cols))
    kept = Matcher(config, encoder=Encoder())
    identifiers = {k: frozenset(r.identifiers) for k, r in enumerate(records) if r.identifiers}
    table = kept.encoder.encode_normalised([r.id for r in records], [normalised_fields(r) for r in records],
                                           identifiers)
    got = kept.score(table, table, _a(rows), _a(cols))
    assert got.probability.tolist() == expected.probability.tolist()
    assert got.decisions.tolist() == expected.decisions.tolist()
    assert [got.evidence(k).as_json() for k in range(len(rows))] == [
        expected.evidence(k).as_json() for k in range(len(rows))]


def _a(values: list[int]):  # type: ignore[no-untyped-def]
    import numpy as np

    return np.array(values, dtype=np.int64)


def test_the_given_name_block_takes_the_birth_month_and_is_capped_by_its_year(store: Store, tmp_path: Path) -> None:
    people = [  # all share Margaret's given-name sound and birth year, nothing else with the record below
        (1, "Margaret", "Hawthorne", "14/03/1950", "F", "2", "Elm Court", "LS6 2AB"),
        (2, "Margret", "Adeyemi", "02/03/1950", "F", "40", "Park View", "LS9 8EE"),
        (3, "Margaret", "Okafor", "20/11/1950", "F", "7", "Bank Street", "LS2 7HY"),
    ]
    escr = legacy(tmp_path, "escr", people)
    sync_source(store, escr, Pipeline(), batch_size=50)
    march = _adults(101, MatchRecord("adults-101", "Margaret", "Zielinski", "1950-03-09", "F", "9 Mill Lane", None,
                                     "BD1 1AA"))
    no_month = _adults(102, MatchRecord("adults-102", "Margaret", "Zielinski", "1950", "F", "9 Mill Lane", None,
                                        "BD1 1AA"))
    with store.session() as s:
        in_march, any_month = PersonResolver().candidate_ids(s, [march, no_month])
        [capped] = PersonResolver(_capped(2)).candidate_ids(s, [march])
        [answer] = PersonResolver(_capped(2)).resolve_batch(s, [march])
    assert in_march == {person_of(store, "escr", i) for i in (1, 2)}
    assert any_month == {person_of(store, "escr", i) for i in (1, 2, 3)}
    # three persons share the sound and year: over the cap, the month's two bring nobody either
    assert capped == set()
    assert (answer.outcome, answer.candidates) == (Outcome.NO_LINK, ())
    escr.close()


def test_the_resolver_looks_up_the_indexed_keys_the_passes_name(store: Store, tmp_path: Path) -> None:
    assert set(INDEXED_KEYS) <= set(BLOCKING_KEYS)
    assert set(INDEXED_KEYS) <= set(load_identity_config().blocking.passes)  # the shipped config looks up all
    people = [  # each shares exactly one indexed key with the record below
        (1, "Olu", "Adeyemi", "14/03/1950", "M", "40", "Park View", "LS9 8EE"),  # birth date
        (2, "Grace", "Zielinska", "02/07/1950", "F", "7", "Bank Street", "LS2 7HY"),  # surname sound + year
        (3, "Margaret", "Okafor", "20/03/1950", "F", "2", "Elm Court", "LS6 2AB"),  # given name sound + year, month
        (4, "Mary", "Quince", "05/05/1981", "F", "9", "Mill Lane", "BD1 1AA"),  # postcode + initial
    ]
    escr = legacy(tmp_path, "escr", people)
    sync_source(store, escr, Pipeline(), batch_size=50)
    record = _adults(101, MatchRecord("adults-101", "Margaret", "Zielinski", "1950-03-14", "F", "9 Mill Lane", None,
                                      "BD1 1AA"))
    found = {}
    with store.session() as s:
        for key in (*INDEXED_KEYS, "address_line"):
            [found[key]] = PersonResolver(_passes(key)).candidate_ids(s, [record])
        [shipped] = PersonResolver().candidate_ids(s, [record])
    olu, grace, margaret, mary = (person_of(store, "escr", i) for i in (1, 2, 3, 4))
    assert found == {"nhs_number": set(), "birth_date": {olu}, "family_phonetic+birth_year": {grace},
                     "given_phonetic+birth_year": {margaret}, "postcode+given_initial": {mary},
                     "address_line": set()}  # not indexed: it pairs the records of one batch only
    assert shipped == {olu, grace, margaret, mary}
    escr.close()

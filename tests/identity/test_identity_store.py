"""The resolver against a real store, the review queue, merge and unmerge (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import Conflict
from hub.identity import MatchRecord, Outcome, PersonCandidate, PersonResolver, Resolution
from hub.model import Address, Episode, Identifier, Person, PersonName
from hub.store.canonical import entity_id_for
from hub.store.db import Store
from hub.store.identity import MatchLink, MatchReview, PersonMerge, queue_review, record_link
from hub.store.merges import answer_review, merge, unmerge
from hub.store.tables import Entity, OutboxEvent, PersonIdentifier, PersonIndex, SourceLink
from hub.store.writer import Provenance, write_canonical
from tests.support.persons import add_person


def add_episode(session: Session, person_id: str) -> str:
    """A record belonging to the person (re-pointed by a merge)."""
    episode_id = str(uuid.uuid4())
    episode = Episode(id=episode_id, person_id=person_id, service_area="adults", kind="long_term_support",
                      start=date(2024, 1, 2), team="adults")
    write_canonical(session, episode, Provenance("adults_case", "episodes", episode_id))
    return episode_id


def state(session: Session, *ids: str) -> dict[str, Any]:
    """Everything a merge touches about these persons, for before/after comparison."""
    out: dict[str, Any] = {}
    for pid in ids:
        entity = session.get(Entity, pid)
        index = session.get(PersonIndex, pid)
        assert entity is not None and index is not None
        out[pid] = {
            "document": entity.document,
            "hash": entity.content_hash,
            "index": {c.key: getattr(index, c.key) for c in PersonIndex.__table__.columns},
            "records": sorted(
                session.scalars(select(Entity.document).where(Entity.person_id == pid, Entity.id != pid))
            ),
            "links": sorted(
                session.scalars(select(SourceLink.id).where(SourceLink.entity_id == pid))
            ),
            "identifiers": sorted(
                session.scalars(
                    select(PersonIdentifier.id).where(PersonIdentifier.person_id == pid)
                )
            ),
        }
    return out


def arriving(source_id: str, person: Person) -> PersonCandidate:
    """A hospital's new person record, as the pipeline's resolve stage hands it to the resolver."""
    new_id = entity_id_for("hospital", "patients", source_id)
    return PersonCandidate("hospital", "patients", source_id, MatchRecord.from_person(person, new_id), new_id)


def resolve(session: Session, candidate: PersonCandidate) -> Resolution:
    [resolution] = PersonResolver().resolve_batch(session, [candidate])
    return resolution


def test_resolver_links_peggy_to_margaret_and_explains_why(store: Store) -> None:
    with store.session() as session:
        margaret = add_person(session, "Margaret", "Hawthorne", date(1941, 3, 12))
        add_person(session, "Jane", "Hawthorne", date(1970, 1, 5))
        peter = add_person(session, "Peter", "Smith", date(1941, 3, 12), postcode="BD1 1AA")
    peggy = arriving("H-1", Person(names=[PersonName(given=["Peggy"], family="HAWTHORNE")],
                                   birth_date=date(1941, 3, 12), addresses=[Address(postcode="LS6 2AB")]))
    resolver = PersonResolver()
    with store.session() as session:
        compared = resolver.candidate_ids(session, [peggy])
        [resolution] = resolver.resolve_batch(session, [peggy])
        resolver.record_batch(session, [peggy], [resolution])
    assert compared == [{margaret, peter}]  # Jane shares no indexed key with her
    assert resolution.outcome == Outcome.LINK
    assert resolution.person_id == resolution.joins == margaret
    assert resolution.evidence is not None
    fields = {f["field"]: f["level"] for f in resolution.evidence.as_json()["fields"]}
    assert fields["given_name"] == "nickname"
    # Peter was compared and found to be someone else: only the persons worth a link or a review are listed.
    assert [c.person_id for c in resolution.candidates] == [margaret]
    with store.session() as session:
        link = session.scalars(select(MatchLink)).one()
    assert (link.person_a, link.person_b, link.decision) == (margaret, "hospital/patients/H-1", "link")
    assert link.evidence == resolution.evidence.as_json()


def test_resolver_finds_nothing_for_a_stranger_and_uses_identifiers(store: Store) -> None:
    with store.session() as session:
        known = add_person(session, "Margaret", "Hawthorne", date(1941, 3, 12))
    stranger = arriving("H-2", Person(names=[PersonName(given=["Zara"], family="Quince")],
                                      birth_date=date(2001, 1, 1)))
    by_id = arriving("H-3", Person(names=[PersonName(given=["M"], family="Hawthorne")],
                                   identifiers=[Identifier(system="legacy_escr", value=known[:8])]))
    with store.session() as session:
        nobody, found = PersonResolver().resolve_batch(session, [stranger, by_id])
    assert (nobody.outcome, nobody.person_id, nobody.evidence, nobody.candidates) == (Outcome.NO_LINK, None, None, ())
    assert found.outcome == Outcome.LINK
    assert found.person_id == known


def test_resolver_sends_a_record_matching_two_people_to_review(store: Store) -> None:
    with store.session() as session:
        ann = add_person(session, "Ann", "Hawthorne", date(1941, 3, 12))
        anna = add_person(session, "Anna", "Hawthorne", date(1941, 3, 12))
    record = arriving("H-4", Person(names=[PersonName(given=["Ann"], family="Hawthorne")],
                                    birth_date=date(1941, 3, 12),
                                    addresses=[Address(text="12 Rowan Road", postcode="LS6 2AB")]))
    resolver = PersonResolver()
    with store.session() as session:
        [resolution] = resolver.resolve_batch(session, [record])
        resolver.record_batch(session, [record], [resolution])
    assert resolution.outcome == Outcome.REVIEW and resolution.joins is None
    assert resolution.review_with in {ann, anna}
    assert {c.person_id for c in resolution.candidates} == {ann, anna}
    assert resolution.evidence is not None
    assert "ambiguous" in {g.guard for g in resolution.evidence.guards}
    with store.session() as session:  # the record lands as its own person, put before a reviewer
        review = session.scalars(select(MatchReview)).one()
    assert {review.person_a, review.person_b} == {record.new_id, resolution.review_with}


def test_verified_nhs_number_links_even_with_names_that_disagree(store: Store) -> None:
    with store.session() as session:
        known = add_person(
            session, "Margaret", "Hawthorne", date(1941, 3, 12), nhs="9434765919", verified=True
        )
    record = arriving("H-5", Person(names=[PersonName(given=["M"], family="Smith")], nhs_number="9434765919",
                                    nhs_number_status="01"))
    with store.session() as session:
        resolution = resolve(session, record)
    assert resolution.outcome == Outcome.LINK and resolution.person_id == known
    assert resolution.rule == "verified_nhs_number"


def test_review_decisions_are_remembered_and_never_asked_again(store: Store) -> None:
    with store.session() as session:
        a = add_person(session, "Margaret", "Hawthorne", date(1941, 3, 12))
        b = add_person(session, "Mary", "Hawthorne", date(1941, 3, 12))
        first = queue_review(session, b, a, 0.8, {"fields": []})
        again = queue_review(session, a, b, 0.9, {"fields": []})
        assert first is not None and again is not None and again.id == first.id
        answer_review(session, first.id, False, "reviewer")
        with pytest.raises(Conflict):
            answer_review(session, first.id, True, "reviewer")
    with store.session() as session:
        assert queue_review(session, a, b, 0.7, {}).status == "rejected"  # type: ignore[union-attr]


def test_a_pair_decided_by_link_is_not_queued(store: Store) -> None:
    with store.session() as session:
        a = add_person(session, "Margaret", "Hawthorne", date(1941, 3, 12))
        b = add_person(session, "Mary", "Hawthorne", date(1941, 3, 12))
        record_link(session, b, a, 0.1, {}, Outcome.NO_LINK, "reviewer")
        assert queue_review(session, a, b, 0.8, {}) is None


def test_merge_then_unmerge_restores_both_exactly_and_emits_events(store: Store) -> None:
    with store.session() as session:
        survivor = add_person(session, "Margaret", "Hawthorne", date(1941, 3, 12))
        merged = add_person(session, "Peggy", "Hawthorne", date(1941, 3, 12), system="hospital")
        add_episode(session, merged)
        add_episode(session, survivor)
    with store.session() as session:
        before = state(session, survivor, merged)
        history = merge(session, survivor, merged, "reviewer")
        merge_id = history.id
    with store.session() as session:
        during = state(session, survivor, merged)
        assert during[merged]["records"] == [] and during[merged]["links"] == []
        assert len(during[survivor]["records"]) == 2
        assert during[merged]["index"]["status"] == "merged"
        assert during[merged]["index"]["merged_into"] == survivor
        assert json.loads(during[merged]["document"])["merged_into"] == survivor
        survivor_doc = Person.model_validate_json(during[survivor]["document"])
        assert {i.system for i in survivor_doc.identifiers} == {"legacy_escr", "hospital"}
        with pytest.raises(Conflict):
            merge(session, survivor, merged, "reviewer")
    with store.session() as session:
        unmerge(session, merge_id, "reviewer")
        with pytest.raises(Conflict):
            unmerge(session, merge_id, "reviewer")
    with store.session() as session:
        assert state(session, survivor, merged) == before
        assert session.get(PersonMerge, merge_id).status == "unmerged"  # type: ignore[union-attr]
        events = session.scalars(select(OutboxEvent).where(OutboxEvent.kind != "created")
                                 .order_by(OutboxEvent.id)).all()
        assert [(e.kind, e.entity_id) for e in events] == [
            ("merged", survivor),
            ("merged", merged),
            ("unmerged", survivor),
            ("unmerged", merged),
        ]
        assert all(e.entity_type == "Person" and e.ordering_key == e.entity_id for e in events)
        assert events[0].version < events[2].version
        assert json.loads(events[0].payload)["merge_id"] == merge_id
        assert len({e.event_id for e in events}) == 4
        # Unmerged people are remembered as two: the resolver will not join them again.
        again = queue_review(session, survivor, merged, 0.99, {})
        assert again is None


def test_accepting_a_review_merges_into_the_longer_known_person(store: Store) -> None:
    with store.session() as session:
        older = add_person(session, "Margaret", "Hawthorne", date(1941, 3, 12))
    with store.session() as session:
        newer = add_person(session, "Peggy", "Hawthorne", date(1941, 3, 12))
        review = queue_review(session, newer, older, 0.9, {"fields": []})
        assert review is not None
        decided = answer_review(session, review.id, True, "reviewer")
        history = session.get(PersonMerge, decided.merge_id)
        assert history is not None
        assert (history.survivor_id, history.merged_id) == (older, newer)

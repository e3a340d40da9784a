"""The golden-record writer: one path for canonical entities and change events (SQLite, PostgreSQL).

UPRN retirement keeps identity's match fields in step (a person is matched again on the
successor UPRN); merge and unmerge write canonical JSON with deterministic event ids;
a link's :func:`write_canonical` keeps provenance, the person index and the outbox.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select

from hub.addresses import UprnChange, apply_uprn_changes
from hub.contract import MappedRecord, SourceRecord
from hub.model import Episode, Person
from hub.pipeline import Pipeline
from hub.store.canonical import canonical_json, content_hash, event_id_for
from hub.store.db import Store
from hub.store.identity import MatchLink
from hub.store.merges import merge, unmerge
from hub.store.tables import Entity, OutboxEvent, PersonIndex, RawRecord, SourceLink, lane_of
from hub.store.writer import Provenance, write_canonical

OLD, NEW = "100012345678", "100012349999"


def person(given: str, family: str, born: str, *, line: str, postcode: str, uprn: str | None) -> dict[str, Any]:
    """A Person document as a mapping would make it."""
    address: dict[str, Any] = {"text": line, "postcode": postcode}
    if uprn:
        address["uprn"] = uprn
    return {"names": [{"given": [given], "family": family}], "birth_date": born, "sex": "female",
            "addresses": [address]}


def as_is(record: SourceRecord) -> MappedRecord:
    """The test sources already speak the canonical shape."""
    return MappedRecord("Person", dict(record.payload))


def ingest(store: Store, source: str, key: str, document: dict[str, Any]) -> str:
    """One person record through the pipeline; the golden person it landed on."""
    with store.session() as session:
        Pipeline().ingest(session, source, [SourceRecord("clients", key, document)], as_is)
        return session.scalar(select(SourceLink.entity_id).where(SourceLink.source == source,
                                                                 SourceLink.source_id == key))


def rematch_case(store: Store, retire: bool) -> tuple[str, str]:
    """Ann lives at UPRN OLD (as the ESCR said); the gazetteer replaces OLD by NEW (when ``retire``); then a
    second system sends her with NEW, at an address written another way, a new postcode and only her birth
    year right: on its own, not enough to join her."""
    ann = ingest(store, "escr", "1", person("Ann", "Leigh", "1950-03-04", line="Flat 2, 9 Mill Lane",
                                               postcode="LS1 4AB", uprn=OLD))
    if retire:
        with store.session() as session:
            effects = apply_uprn_changes(session, [UprnChange(OLD, "replaced", (NEW,))])
            assert effects.moved == [ann]
    # the second system knows only her birth year (its form defaults to 1 January)
    other = ingest(store, "adults", "77", person("Ann", "Leigh", "1950-01-01", line="2/9 Mill Ln",
                                                 postcode="LS2 9ZZ", uprn=NEW))
    return ann, other


def test_uprn_retirement_moves_match_fields_and_the_person_is_matched_on_the_successor(store: Store) -> None:
    ann, other = rematch_case(store, retire=True)
    with store.session() as session:
        entity = session.get(Entity, ann)
        index = session.get(PersonIndex, ann)
        events = session.execute(select(OutboxEvent.event_id, OutboxEvent.kind, OutboxEvent.version,
                                        OutboxEvent.lane, OutboxEvent.source)
                                 .where(OutboxEvent.entity_id == ann).order_by(OutboxEvent.id)).all()
        link = session.scalar(select(MatchLink).where(MatchLink.person_b == "adults/clients/77"))
    assert entity is not None and index is not None
    assert orjson.loads(entity.document)["addresses"][0]["uprn"] == NEW
    assert entity.content_hash == content_hash(entity.document.encode())
    assert NEW in orjson.loads(index.match_fields or "[]") and OLD not in orjson.loads(index.match_fields or "[]")
    moved = next(e for e in events if e.source == "gazetteer")
    assert moved.event_id == event_id_for(ann, moved.version, "updated") and moved.lane == lane_of(ann)
    # the second system's Ann is the same person, joined on the successor UPRN
    assert other == ann
    assert link is not None and link.person_a == ann
    levels = {f["field"]: f["level"] for f in link.evidence["fields"]}
    assert levels.get("address") == "uprn"




def test_without_the_retirement_the_same_record_is_not_joined(store: Store) -> None:
    ann, other = rematch_case(store, retire=False)
    assert other != ann  # the UPRN is what joined her above


def test_merge_and_unmerge_write_canonical_json_with_deterministic_event_ids(store: Store) -> None:
    zoe = ingest(store, "escr", "5", person("Zoë", "Ærø", "1980-05-06", line="1 Quay", postcode="LS1 4AB", uprn=None))
    other = ingest(store, "adults", "6", person("Zoë", "Ærø", "1999-12-31", line="7 Dock Rd", postcode="LS6 1AA",
                                                uprn=None))
    assert zoe != other
    with store.session() as session:
        pipeline_doc = session.get(Entity, zoe).document  # type: ignore[union-attr]
        history = merge(session, zoe, other, "dq-officer")
        merge_id = history.id
    with store.session() as session:
        kept, gone = session.get(Entity, zoe), session.get(Entity, other)
        assert kept is not None and gone is not None
        for entity in (kept, gone):
            body = canonical_json(orjson.loads(entity.document))
            assert entity.document.encode() == body and entity.content_hash == content_hash(body)
            assert "Zoë".encode() in body and b"\\u" not in body
        assert canonical_json(orjson.loads(pipeline_doc)) == pipeline_doc.encode()
        index = session.get(PersonIndex, other)
        assert index is not None and index.status == "merged" and index.merged_into == zoe
    with store.session() as session:
        unmerge(session, merge_id, "dq-officer")
    with store.session() as session:
        events = session.execute(select(OutboxEvent.event_id, OutboxEvent.entity_id, OutboxEvent.kind,
                                        OutboxEvent.version, OutboxEvent.lane, OutboxEvent.payload)
                                 .where(OutboxEvent.kind.in_(["merged", "unmerged"])).order_by(OutboxEvent.id)).all()
        restored = session.get(Entity, zoe)
        assert restored is not None and restored.document == pipeline_doc
    assert [(e.entity_id, e.kind) for e in events] == [(zoe, "merged"), (other, "merged"), (zoe, "unmerged"),
                                                        (other, "unmerged")]
    for e in events:
        assert e.event_id == event_id_for(e.entity_id, e.version, e.kind) and e.lane == lane_of(e.entity_id)
        assert e.payload.encode() == canonical_json(orjson.loads(e.payload))


def test_a_link_writes_a_canonical_record_with_provenance_through_the_writer(store: Store) -> None:
    with store.session() as session:
        ann = Person.model_validate(person("Ann", "Leigh", "1950-03-04", line="9 Mill Lane", postcode="LS1 4AB",
                                           uprn=OLD))
        first = write_canonical(session, ann, Provenance("finance", "clients", "C1", payload={"ref": "C1"}))
        again = write_canonical(session, ann, Provenance("finance", "clients", "C1", payload={"ref": "C1"}))
        episode = Episode.model_validate({"person_id": first.entity_id, "service_area": "adults",
                                          "kind": "long_term_support", "start": "2024-01-02"})
        stay = write_canonical(session, episode, Provenance("finance", "episodes", "E1"))
        moved = ann.model_copy(update={"sex": "unknown"})
        second = write_canonical(session, moved, Provenance("finance", "clients", "C1", payload={"ref": "C1", "v": 2}))
    assert (first.kind, first.version) == ("created", 1) and again.kind == "unchanged" and again.event_id is None
    assert stay.kind == "created" and (second.kind, second.version) == ("updated", 2)
    assert second.entity_id == first.entity_id
    with store.session() as session:
        events = session.execute(select(OutboxEvent.event_id, OutboxEvent.entity_id, OutboxEvent.person_id,
                                        OutboxEvent.kind, OutboxEvent.version, OutboxEvent.lane)
                                 .order_by(OutboxEvent.id)).all()
        link = session.scalar(select(SourceLink).where(SourceLink.source_id == "E1"))
        raws = session.scalar(select(RawRecord.id).where(RawRecord.source == "finance").limit(1))
        index = session.get(PersonIndex, first.entity_id)
    assert [(e.kind, e.version) for e in events] == [("created", 1), ("created", 1), ("updated", 2)]
    assert [e.event_id for e in events] == [first.event_id, stay.event_id, second.event_id]
    assert all(e.event_id == event_id_for(e.entity_id, e.version, e.kind) for e in events)
    assert {e.lane for e in events} == {lane_of(first.entity_id)}  # one person, one lane
    assert events[1].person_id == first.entity_id
    assert link is not None and link.entity_id == stay.entity_id and raws is not None
    assert index is not None and index.sex == "unknown" and OLD in orjson.loads(index.match_fields or "[]")

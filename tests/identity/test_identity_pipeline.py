"""The pipeline resolves people by score across two sources (SQLite, PostgreSQL).

Two small legacy databases written here (the ESCR and an adults' system, read by
the real SQL adapter and mappings) describe some of the same people differently:
a nickname, twins, a parent and child at one address. The generated legacy ESCR
with its planted duplicates checks the same at a few hundred people.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, text

from adapters.simulators.legacy_escr import generate
from adapters.sql import SqlAdapter
from hub.pipeline import Pipeline
from hub.settings import SourceSettings
from hub.status import hub_status
from hub.store.db import Store
from hub.store.identity import MatchLink, MatchReview, person_links
from hub.store.tables import Entity, OutboxEvent, SourceLink
from hub.sync import sync_source
from tests.support.two_sources import ADULTS, ESCR, LIVE_ARTHUR, legacy, person_of


def test_two_sources_link_by_score_queue_twins_and_explain_every_link(store: Store, tmp_path: Path) -> None:
    escr, adults = legacy(tmp_path, "escr", ESCR), legacy(tmp_path, "adults", [*ADULTS, LIVE_ARTHUR])
    sync_source(store, escr, Pipeline(), batch_size=50)
    sync_source(store, adults, Pipeline(), batch_size=50)

    # Peggy Hawthorne in the adults' system is Margaret Hawthorne in the ESCR: one person, by score
    margaret = person_of(store, "escr", 1)
    assert person_of(store, "adults", 101) == margaret
    # the twins stay two people, and the adults' Amy joins Amy only
    amy, beth = person_of(store, "escr", 2), person_of(store, "escr", 3)
    assert amy != beth
    assert person_of(store, "adults", 102) == amy
    # father and son with one name at one address: two people; the adults' John (born 1991) is the son
    father, son = person_of(store, "escr", 4), person_of(store, "escr", 5)
    assert father != son
    assert person_of(store, "adults", 103) == son
    # a stranger is a new person
    assert person_of(store, "adults", 104) not in {margaret, amy, beth, father, son}
    # a live registration of a man who died lands as its own person, for a reviewer
    dead, alive = person_of(store, "escr", 7), person_of(store, "adults", 106)
    assert dead != alive

    with store.session() as s:
        persons = s.scalar(select(func.count()).select_from(Entity).where(Entity.entity_type == "Person"))
        reviews = s.execute(select(MatchReview.person_a, MatchReview.person_b, MatchReview.evidence)).all()
        links = {link.person_b: link for link in s.scalars(select(MatchLink))}
        why = person_links(s, margaret)
    assert persons == 9  # 7 in the ESCR, Grace, and Arthur's live record
    # the twins were put before a reviewer (never joined silently), with the guard that stopped them
    twin_review = next(r for r in reviews if {r.person_a, r.person_b} == {amy, beth})
    assert "twins" in [g["guard"] for g in twin_review.evidence["guards"]]
    assert not any({r.person_a, r.person_b} == {father, son} for r in reviews)
    arthur_review = next(r for r in reviews if {r.person_a, r.person_b} == {dead, alive})
    assert "deceased" in [g["guard"] for g in arthur_review.evidence["guards"]]
    # every link keeps its score and per-field evidence
    peggy = links["adults/clients/101"]
    assert peggy.person_a == margaret and peggy.decision == "link" and peggy.score >= 0.95
    levels = {f["field"]: f["level"] for f in peggy.evidence["fields"]}
    assert levels["given_name"] == "nickname" and levels["family_name"] == "exact"
    assert levels["birth_date"] == "exact"
    assert why["records"][0]["source"] == "adults" and why["records"][0]["source_id"] == "101"
    assert why["records"][0]["evidence"]["fields"]

    # a second sync changes nothing, and the status still reconciles
    with store.session() as s:
        events = s.scalar(select(func.count()).select_from(OutboxEvent))
        s.execute(text("DELETE FROM cursors"))
    again = sync_source(store, escr, Pipeline(), batch_size=50)
    again.add(sync_source(store, adults, Pipeline(), batch_size=50))
    assert again.accepted == 0 and again.created == 0 and again.events == 0
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == events
        assert s.scalar(select(func.count()).select_from(MatchReview)) == len(reviews)
        status = hub_status(s)
    for name, src in status["sources"].items():
        assert src["raw"] == src["accepted"] + src["quarantined"], name
    assert status["identity"] == {"linked_records": 3, "open_reviews": len(reviews), "merges": 0}
    escr.close()
    adults.close()


def test_the_legacy_escrs_planted_duplicates_link_or_queue(store: Store, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    summary = generate(url, people=400, seed=3)
    adapter = SqlAdapter("legacy_escr", SourceSettings(adapter="adapters.sql:SqlAdapter", mapping="legacy_escr.yaml",
                                                       options={"url": url}, batch_size=150))
    sync_source(store, adapter, Pipeline(), batch_size=150)
    adapter.close()
    with store.session() as s:
        owner = dict(s.execute(select(SourceLink.source_id, SourceLink.entity_id).where(
            SourceLink.source == "legacy_escr", SourceLink.stream == "clients")).all())
        queued = {frozenset((a, b)) for a, b in s.execute(select(MatchReview.person_a, MatchReview.person_b))}
    found = [(owner[a], owner[b]) for a, b in summary.duplicates if a in owner and b in owner]
    assert found, "the generator planted no duplicates that were accepted"
    linked = [pair for pair in found if pair[0] == pair[1]]
    asked = [pair for pair in found if frozenset(pair) in queued]
    assert len(linked) + len(asked) == len(found)
    assert len(linked) >= 0.8 * len(found)


def test_the_sync_learns_the_sources_weights_and_explains_links_with_them(store: Store, tmp_path: Path) -> None:
    import numpy as np

    from hub.identity.comparisons import COMPARISONS, FIELDS
    from hub.identity.config import load_identity_config
    from hub.identity.model import MatchModel
    from hub.identity.resolver import PersonResolver

    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    summary = generate(url, people=1200, seed=5)
    adapter = SqlAdapter("legacy_escr", SourceSettings(adapter="adapters.sql:SqlAdapter", mapping="legacy_escr.yaml",
                                                       options={"url": url}, batch_size=2000))
    resolver = PersonResolver()
    sync_source(store, adapter, Pipeline(resolver=resolver), batch_size=2000)
    adapter.close()
    learned = resolver.models["legacy_escr"]
    configured = MatchModel.from_config(load_identity_config())
    assert not np.allclose(learned.u, configured.u)
    weights = learned.level_weights()
    with store.session() as s:
        scored = [link.evidence for link in s.scalars(select(MatchLink)) if not link.evidence.get("guards")]
        owner = dict(s.execute(select(SourceLink.source_id, SourceLink.entity_id).where(
            SourceLink.source == "legacy_escr", SourceLink.stream == "clients")).all())
        queued = {frozenset((a, b)) for a, b in s.execute(select(MatchReview.person_a, MatchReview.person_b))}
    assert scored, "no link was made by score"
    # Each link is explained with the learned weights, field by field.
    for evidence in scored:
        for item in evidence["fields"]:
            f, level = FIELDS.index(item["field"]), COMPARISONS[item["field"]].index(item["level"])
            assert abs(item["weight"] - round(float(weights[f, level]), 3)) < 1e-3
    found = [(owner[a], owner[b]) for a, b in summary.duplicates if a in owner and b in owner]
    linked = [pair for pair in found if pair[0] == pair[1]]
    asked = [pair for pair in found if frozenset(pair) in queued]
    assert len(linked) + len(asked) == len(found) and len(linked) >= 0.8 * len(found)

"""The scheduled pull links documents to people and cases by the identifiers in their properties."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select

from hub.store.documents import EdrmsDocument, EdrmsLink
from hub.store.merges import merge
from hub.store.tables import Entity, OutboxEvent
from tests.support.edrms import PASSWORD, USER, EdrmsHub, make_edrms_hub


def by_key(hub: EdrmsHub) -> dict[str, EdrmsDocument]:
    """The hub's row of each seeded document, by the test's key."""
    with hub.store.session() as s:
        rows = {d.object_id: d for d in s.scalars(select(EdrmsDocument))}
        s.expunge_all()
    return {key: rows[obj.object_id] for key, obj in hub.docs.items() if obj.object_id in rows}


def canonical(hub: EdrmsHub, object_id: str) -> dict | None:
    """The DocumentLink the shared record holds for a document (with its person)."""
    with hub.store.session() as s:
        for pid, doc in s.execute(select(Entity.person_id, Entity.document).where(
                Entity.entity_type == "DocumentLink")):
            body = orjson.loads(doc)
            if body["document_id"] == object_id:
                return {"person_id": pid, **body}
    return None


def test_first_pull_links_by_each_identifier_and_lists_orphans(edrms_hub: EdrmsHub) -> None:
    result = edrms_hub.pull()
    assert result.mode == "query"
    assert result.read == 8 and result.pages == 3  # the repository caps pages at 3
    docs = by_key(edrms_hub)
    people, episodes = edrms_hub.people, edrms_hub.episodes
    assert docs["ann_nhs"].person_id == people["ann"] and docs["ann_nhs"].status == "linked"
    assert (docs["ann_case"].person_id, docs["ann_case"].episode_id) == (people["ann"], episodes["ann"][0])
    assert docs["tom_id"].person_id == people["tom"]
    assert docs["sky_nhs"].person_id == people["sealed"]
    assert {k: (d.status, d.orphan_reason) for k, d in docs.items() if d.status == "orphan"} == {
        "nora_none": ("orphan", "NO_IDENTIFIERS"), "wrong": ("orphan", "UNKNOWN_IDENTIFIERS"),
        "conflict": ("orphan", "CONFLICTING_IDENTIFIERS"), "sky_none": ("orphan", "NO_IDENTIFIERS")}
    assert result.linked == 4 and result.orphans == 4
    # each linked document is on its person's record, as a canonical DocumentLink with its retention
    link = canonical(edrms_hub, docs["ann_case"].object_id)
    assert link is not None and link["person_id"] == people["ann"]
    assert link["episode_id"] == episodes["ann"][0] and link["record_class"] == "adults"
    assert canonical(edrms_hub, docs["wrong"].object_id) is None  # an orphan is on no one's record
    with edrms_hub.store.session() as s:
        basis = dict(s.execute(select(EdrmsLink.document_id, EdrmsLink.basis)).all())
    assert basis[docs["ann_case"].id] == "client_id+case_id"
    assert basis[docs["ann_nhs"].id] == "nhs_number"


def test_a_second_pull_changes_nothing_and_a_repeat_of_the_same_page_is_not_read_twice(edrms_hub: EdrmsHub) -> None:
    edrms_hub.pull()
    with edrms_hub.store.session() as s:
        events = s.scalar(select(func.count()).select_from(OutboxEvent))
    again = edrms_hub.pull()
    # the change log starts at the token noted when the crawl began: that entry is read again, and changes nothing
    assert again.mode == "changes" and again.new == again.changed == again.linked == 0
    with edrms_hub.store.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == events


def test_changed_identifiers_move_the_link_and_the_old_link_is_ended_with_a_reason(edrms_hub: EdrmsHub) -> None:
    edrms_hub.pull()
    wrong = edrms_hub.docs["wrong"]
    edrms_hub.repo.touch(wrong.object_id, {"sc:clientId": "C-1004"})
    ann = edrms_hub.docs["ann_nhs"]
    edrms_hub.repo.touch(ann.object_id, {"sc:nhsNumber": None, "sc:clientId": "C-1002"})
    result = edrms_hub.pull()
    assert result.mode == "changes" and result.changed == 2
    docs = by_key(edrms_hub)
    assert docs["wrong"].person_id == edrms_hub.people["nora"] and docs["wrong"].status == "linked"
    assert docs["ann_nhs"].person_id == edrms_hub.people["tom"]
    with edrms_hub.store.session() as s:
        links = list(s.scalars(select(EdrmsLink).where(EdrmsLink.document_id == docs["ann_nhs"].id)
                               .order_by(EdrmsLink.id)))
    assert [(k.person_id, k.active) for k in links] == [(edrms_hub.people["ann"], False),
                                                        (edrms_hub.people["tom"], True)]
    assert links[0].ended_by == "edrms-pull" and "identifiers" in (links[0].end_reason or "")
    assert canonical(edrms_hub, ann.object_id)["person_id"] == edrms_hub.people["tom"]


def test_change_log_pages_overlap_and_entries_are_read_once(edrms_hub: EdrmsHub) -> None:
    edrms_hub.pull()
    for n in range(7):  # seven edits: three pages of three, each repeating the entry at its boundary
        edrms_hub.repo.touch(edrms_hub.docs["nora_none"].object_id, {"sc:author": f"editor{n}"})
    result = edrms_hub.pull()
    assert result.mode == "changes"
    assert result.duplicates >= 2  # the boundary entries came back and were dropped
    docs = by_key(edrms_hub)
    assert docs["nora_none"].author == "editor6"
    assert edrms_hub.pull().read == 0  # the boundary saved with the token is not read again


def test_without_a_change_log_the_pull_queries_by_modification_date(store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for hub in make_edrms_hub(store, tmp_path, changes=False):
        first = hub.pull()
        assert first.mode == "query" and first.read == 8
        hub.repo.touch(hub.docs["conflict"].object_id, {"sc:clientId": None})
        second = hub.pull()
        assert second.mode == "query" and second.read == 1 and second.linked == 1
        assert by_key(hub)["conflict"].person_id == hub.people["ann"]


def test_a_stale_person_id_follows_the_merge_to_the_survivor(edrms_hub: EdrmsHub) -> None:
    edrms_hub.pull()
    people = edrms_hub.people
    with edrms_hub.store.session() as s:
        merge(s, people["ann"], people["tom"], "dq.hughes")
        s.commit()
    edrms_hub.repo.touch(edrms_hub.docs["tom_id"].object_id, {"sc:documentType": "cin_plan"})
    edrms_hub.pull()
    assert by_key(edrms_hub)["tom_id"].person_id == people["ann"]


def test_a_document_that_loses_its_person_leaves_the_record(edrms_hub: EdrmsHub) -> None:
    edrms_hub.pull()
    tom = edrms_hub.docs["tom_id"]
    edrms_hub.repo.touch(tom.object_id, {"sc:personId": "no-such-person"})
    edrms_hub.pull()
    row = by_key(edrms_hub)["tom_id"]
    assert (row.status, row.orphan_reason) == ("orphan", "UNKNOWN_IDENTIFIERS")
    link = canonical(edrms_hub, tom.object_id)
    assert link is not None and link["person_id"] is None and "retain_until" not in link


def test_the_scheduled_job_pulls_then_refreshes(edrms_hub: EdrmsHub) -> None:
    from edrms.jobs import pull_documents
    from hub.scheduler import JobContext

    off = edrms_hub.settings.model_copy(update={"edrms": edrms_hub.settings.edrms.model_copy(
        update={"enabled": False})})
    assert "switched off" in pull_documents(JobContext(edrms_hub.store, off, "edrms_pull", "node-1"))["note"]
    done = pull_documents(JobContext(edrms_hub.store, edrms_hub.settings, "edrms_pull", "node-1"))
    assert done["read"] == 8 and done["linked"] == 4 and done["refresh"]["events"] > 0


def test_an_atompub_only_repository_is_pulled_by_query(edrms_hub: EdrmsHub) -> None:
    from edrms.cmis import Credentials, connect
    from edrms.pull import DocumentPull

    repository = connect(edrms_hub.simulator.atom_url, Credentials(USER, PASSWORD))
    try:
        assert repository.binding_name == "atompub"
        result = DocumentPull(edrms_hub.store, repository, edrms_hub.settings.edrms, edrms_hub.schedule()).run()
    finally:
        repository.close()
    assert result.mode == "query" and result.read == 8 and result.linked == 4
    assert by_key(edrms_hub)["ann_case"].person_id == edrms_hub.people["ann"]

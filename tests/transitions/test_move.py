"""The move end to end: children's system synced, a transition started, the adult referral made once through the
outbox however often the push is retried, status followed to the plan in place, the children's case kept open
until then, a young person without consent held with the reason."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select

from adapters.adults_case import AdultsCaseClient
from adapters.simulators.adults_case import AdultsCaseSystem
from adapters.simulators.childrens_case import ChildrensCaseSystem
from hub.contract import ChangeEvent
from hub.errors import Conflict
from hub.pipeline import Pipeline
from hub.store.db import Store
from hub.store.tables import Entity
from hub.sync import sync_source
from hub.transitions import move
from tests.support.delivery import drain
from tests.support.transitions import TODAY, born, delivered, hub_person, intake_loop, rest_source


def request(person_id: str, **changes: object) -> move.StartRequest:
    values: dict[str, object] = {"person_id": person_id, "likely_needs_after_18": True, "significant_benefit": True,
                                 "significant_benefit_reason": "Year 12; time to plan support before 18",
                                 "consent_route": "consent", "consent_given": True, "has_capacity": True}
    values.update(changes)
    return move.StartRequest(**values)  # type: ignore[arg-type]


def test_the_move_creates_the_referral_once_and_follows_it_to_the_plan(
        store: Store, children: ChildrensCaseSystem, adults: AdultsCaseSystem) -> None:
    child = children.add_child(birth_date=born(17, 30), cin="N2", disabilities=["LD", "COMM"], ehcp=True)
    sync_source(store, rest_source(children, "childrens_case", "childrens_case.yaml"), Pipeline(), batch_size=50)
    person = hub_person(store, child)
    with store.session() as s:
        tid = move.start(s, request(person), "tw.ali", TODAY)
        with pytest.raises(Conflict):
            move.start(s, request(person), "tw.ali", TODAY)  # one under way at a time
    with store.session() as s:
        shown = move.view(s, tid)
    assert shown["stage"] == "referral_requested"
    kinds = {i["kind"] for i in shown["reconciliation"]["items"]}
    assert {"person", "contact", "relationship", "episode"} <= kinds
    assert shown["reconciliation"]["pending"] == shown["reconciliation"]["sent"] > 3

    adults.fail_next(503, 2)  # the intake is busy: delivery retries
    loop = intake_loop(store, adults)
    try:
        drain(loop, lambda: delivered(store) >= 1, timeout=30)
        assert adults.count("intake") == 1
        # the same referral pushed again (a replay, a second version) is recognised, not made twice
        target = loop.adapters["adults_case"]
        with store.session() as s:
            entity = s.get(Entity, tid)
            assert entity is not None
        again = ChangeEvent(event_id="replay", entity_type="Transition", entity_id=tid, person_id=person,
                            kind="updated", version=entity.version + 1,
                            payload={"id": tid, **orjson.loads(entity.document)}, created_at=entity.updated_at)
        assert all(r.accepted for r in target.push([again]))
        assert adults.count("intake") == 1
        referral = next(iter(adults.collections["intake"].values()))
        assert referral["idempotency_key"] == f"transition:{tid}"
        adult_person = adults.get("people", referral["person_id"])
        assert adult_person is not None and adult_person["children_system_id"] == child
        assert adult_person["nhs_number"] == children.get("people", child)["nhs_number"]

        client = AdultsCaseClient({"base_url": adults.base_url, "auth": "oauth2", "token_url": adults.token_url,
                                   "client_id": adults.client_id, "client_secret": adults.client_secret})
        with store.session() as s:
            assert move.follow(s, client, TODAY)["acknowledged"] == shown["reconciliation"]["sent"]
        with store.session() as s:
            followed = move.view(s, tid)
            assert followed["stage"] == "received" and followed["adults_system_id"] == referral["id"]
            assert followed["reconciliation"]["acknowledged"] == followed["reconciliation"]["sent"]
            with pytest.raises(Conflict, match="s66"):
                move.close_childrens_case(s, tid, "tw.ali")
        adults.advance(referral["id"], 3)
        with store.session() as s:
            move.follow(s, client, TODAY)
        with store.session() as s:
            done = move.view(s, tid)
            assert done["stage"] == "plan_in_place" and done["adults_episode_id"]
            move.close_childrens_case(s, tid, "tw.ali")
        with store.session() as s:
            closed = move.view(s, tid)
        assert closed["stage"] == "closed"
        assert [h["stage"] for h in closed["history"]] == [
            "identified", "referral_requested", "received", "plan_in_place", "closed"]
        drain(loop, lambda: delivered(store) >= 4, timeout=30)
        assert adults.count("intake") == 1  # later versions of the transition make no second referral
        client.close()
    finally:
        loop.close()


def test_without_consent_the_transition_is_held_with_the_reason(store: Store, children: ChildrensCaseSystem) -> None:
    child = children.add_child(birth_date=born(17), lac="N1")
    sync_source(store, rest_source(children, "childrens_case", "childrens_case.yaml"), Pipeline(), batch_size=50)
    person = hub_person(store, child)
    with store.session() as s:
        tid = move.start(s, request(person, consent_given=False), "tw.ali", TODAY)
    with store.session() as s:
        held = move.view(s, tid)
    assert held["stage"] == "held" and "not consented" in held["hold_reason"] and "s58(4)" in held["hold_reason"]
    assert held["reconciliation"]["sent"] == 0
    with store.session() as s:  # the abuse/neglect override proceeds despite the refusal
        overridden = move.start(s, request(person, consent_given=False, consent_route="abuse_neglect_override"),
                                "tw.ali", TODAY)
        assert move.view(s, overridden)["stage"] == "referral_requested"


def test_a_declined_request_needs_written_reasons(store: Store, children: ChildrensCaseSystem) -> None:
    child = children.add_child(birth_date=born(15), lac="N1")
    sync_source(store, rest_source(children, "childrens_case", "childrens_case.yaml"), Pipeline(), batch_size=50)
    person = hub_person(store, child)
    with store.session() as s, pytest.raises(move.TransitionRefused, match="s58"):
        move.start(s, request(person, significant_benefit=False, requested_by="parent"), "tw.ali", TODAY)
    with store.session() as s:
        tid = move.start(s, request(person, significant_benefit=False, requested_by="parent",
                                    written_reasons="GCSEs this year; assess in Year 12",
                                    advice_given="Local offer leaflet and PfA advice"), "tw.ali", TODAY)
        shown = move.view(s, tid)
    assert shown["stage"] == "held" and shown["written_reasons"].startswith("GCSEs")


def test_a_young_person_of_18_without_an_adult_plan_gets_a_continuity_flag(
        store: Store, children: ChildrensCaseSystem) -> None:
    child = children.add_child(birth_date=born(18, 10), cin="N2", disabilities=["MOB"])
    sync_source(store, rest_source(children, "childrens_case", "childrens_case.yaml"), Pipeline(), batch_size=50)
    person = hub_person(store, child)
    with store.session() as s:
        tid = move.start(s, request(person), "tw.ali", TODAY)
    with store.session() as s:
        assert move.raise_continuity_flags(s, TODAY) == 1
    with store.session() as s:
        assert move.raise_continuity_flags(s, TODAY) == 0
        assert move.view(s, tid)["continuity_flag"] is True
        flags = [e for e in s.scalars(select(Entity).where(Entity.person_id == person, Entity.entity_type == "Flag"))]
    assert len(flags) == 1 and "s66" in flags[0].document

"""The adults' case system's hooks: where it differs from a plain REST source and target.

* :class:`TransitionIntake` - the delivery target that makes the adult referral: a
  :class:`~adapters.rest.RestTarget` whose hooks send only a Transition at stage
  ``referral_requested`` with its handover, as the product's intake document, under the
  transition's own idempotency key (one referral per transition however often it is pushed).
* :class:`AdultsCaseClient` - how the hub follows a referral
  (:class:`hub.transitions.move.AdultsSystem`): ``GET intake/transitions?idempotency_key=``.

The adults' records themselves (people, requests, assessments, care packages, reviews,
allocations) are read by the plain :class:`~adapters.rest.RestSource` with
``mappings/adults_case.yaml``.
"""

from __future__ import annotations

from typing import Any

from adapters.http import HttpClient, RestRefused
from adapters.rest import RestTarget
from hub.contract import ChangeEvent
from hub.transitions.move import referral_key


class TransitionIntake(RestTarget):
    """Posts transition referrals to the adults' system's intake (options as RestTarget; ``paths`` default
    ``{"Transition": "intake/transitions"}``)."""

    def __init__(self, name: str, settings: Any) -> None:
        options = {"paths": {"Transition": "intake/transitions"}, **settings.options}
        super().__init__(name, settings.model_copy(update={"options": options}))

    def body(self, event: ChangeEvent) -> dict[str, Any] | None:
        """The intake document for a referral to be made; None for every other event."""
        payload = event.payload
        handover = payload.get("handover")
        if event.entity_type != "Transition" or payload.get("stage") != "referral_requested" or not handover:
            return None
        person = handover.get("person") or {}
        children_id = next((i.get("value") for i in person.get("identifiers", [])
                            if i.get("system") == "childrens_case"), None)
        items = []
        for section in ("contacts", "relationships", "plans", "costs", "risks", "documents", "episodes"):
            for entry in handover.get(section, []):
                items.append({"kind": section.rstrip("s"), **entry})
        return {
            "source_reference": event.entity_id, "children_system_id": children_id,
            "person": {k: v for k, v in person.items() if k != "ref"},
            "decisions": {k: payload.get(k) for k in ("likely_needs_after_18", "significant_benefit",
                                                      "significant_benefit_reason", "consent_route", "decided")},
            "likely_eligible": True,
            "items": [{"kind": "person", "ref": person.get("ref")}, *items],
        }

    def idempotency_key(self, event: ChangeEvent) -> str:
        """One key per transition: a referral is made once, whatever the event's version."""
        return referral_key(event.entity_id)


class AdultsCaseClient:
    """Follows transition referrals in the adults' system (``[transitions.adults_system]`` options:
    ``base_url`` and the auth keys of :class:`~adapters.http.HttpClient`)."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.client = HttpClient.from_options(options, "transitions.adults_system")

    def referral(self, idempotency_key: str) -> dict[str, Any] | None:
        """The referral made with this key, or None when the adults' system has none yet."""
        try:
            answer = self.client.json("GET", "intake/transitions", params={"idempotency_key": idempotency_key})
        except RestRefused as exc:
            if exc.status == 404:
                return None
            raise
        return answer if isinstance(answer, dict) else None

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

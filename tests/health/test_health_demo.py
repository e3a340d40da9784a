"""The demo's hospital day: ADT replayed over MLLP and a FHIR pull land on people the hub knows."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from health_link.demo import replay_hospital_day
from health_link.simulator import synthetic_nhs_number
from hub.api.app import create_app
from hub.api.deps import COOKIE
from hub.contract import MappedRecord, SourceRecord
from hub.pipeline import Pipeline
from hub.settings import Settings
from hub.store.db import Store
from hub.store.tables import Entity, SourceLink


def test_hospital_day_joins_known_people_and_shows_on_their_record_page(store: Store, tmp_path: Path) -> None:
    people = [SourceRecord("people", f"A{i}", {
        "names": [{"family": f"Family{chr(65 + i)}", "given": ["Given"]}], "birth_date": f"19{50 + i}-03-0{1 + i}",
        "nhs_number": synthetic_nhs_number(7000 + i), "nhs_number_status": "01",
        "addresses": [{"text": f"{i} Chapel Row, Carmarthen, SA31 1AA", "postcode": "SA31 1AA"}]}) for i in range(6)]
    with store.session() as session:
        Pipeline().ingest(session, "adults_case", people, lambda r: MappedRecord("Person", dict(r.payload)))
    settings = Settings(database_url=store.url, data_dir=tmp_path / "var")
    summary = replay_hospital_day(settings, patients=6)
    assert "for 6 people (AA " in summary and "AE" not in summary and "AR" not in summary
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Entity).where(Entity.entity_type == "Person")) == 6
        assert int(s.scalar(select(func.count()).select_from(Entity).where(
            Entity.entity_type == "HealthEvent")) or 0) >= 6
        person = s.scalar(select(SourceLink.entity_id).where(SourceLink.source == "adults_case",
                                                             SourceLink.source_id == "A0"))
        addresses = s.scalar(select(Entity.document).where(Entity.id == person))
    assert addresses is not None and "Chapel Row" in addresses  # the council's address stays
    with TestClient(create_app(settings, store)) as client:
        token = client.app.state.demo_issuer.issue("dr.patel", "clinician", "ICT-1", ttl=600)  # type: ignore[attr-defined]
        client.cookies.set(COOKIE, token)
        page = client.get(f"/persons/{person}")
    assert page.status_code == 200
    assert "Health: " in page.text and " at RDEMO" in page.text

"""Pipeline helpers shared by tests: a tiny legacy source, and the store's whole state after a sync."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from adapters.sql import SqlAdapter
from hub.settings import SourceSettings
from hub.store.db import Store
from tests.support.small_legacy import MAPPING, make_legacy


def tiny_adapter(tmp_path: Path) -> SqlAdapter:
    """The small legacy database (tests.support.small_legacy) behind the real SQL adapter, batches of 3."""
    mapping = tmp_path / "tiny.yaml"
    mapping.write_text(MAPPING)
    url = make_legacy(tmp_path / "legacy.db")
    return SqlAdapter("tiny", SourceSettings(adapter="adapters.sql:SqlAdapter", mapping=str(mapping),
                                              options={"url": url}, batch_size=3))


READ_AHEAD_STATE = {
    "raw": "SELECT source, stream, source_id, content_hash, payload, source_modified, status FROM raw_records",
    "links": "SELECT stream, source_id, entity_type, entity_id, content_hash, document, version FROM source_links",
    "entities": "SELECT id, entity_type, person_id, version, content_hash, document FROM entities",
    "outbox": "SELECT event_id, entity_id, person_id, kind, version, ordering_key, payload FROM outbox",
    "quarantine": "SELECT stream, source_id, reason, message, field, status, attempts FROM quarantine",
    "cursors": "SELECT source, stream, value FROM cursors",
    "persons": "SELECT person_id, nhs_number, family_name, given_name, birth_date, postcode, match_fields "
               "FROM person_index",
    "identifiers": "SELECT person_id, system, value FROM person_identifiers",
}


def store_state(store: Store) -> dict[str, set[tuple[str, ...]]]:
    """Every row of the tables a sync writes, as comparable text (SQLite and PostgreSQL alike)."""

    def plain(value: object) -> str:  # a JSON column reads as text from SQLite, as a dict from PostgreSQL
        return json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)

    with store.engine.connect() as conn:
        state = {name: {tuple(plain(v) for v in row) for row in conn.execute(text(sql))}
                 for name, sql in READ_AHEAD_STATE.items()}
    state["cursors"] = {(s, n, json.dumps(json.loads(v), sort_keys=True)) for s, n, v in state["cursors"]}
    return state

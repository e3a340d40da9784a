"""The raw-SQL seam (hub.store.bulk): values round-trip exactly as the ORM would store them, on both stores.

On PostgreSQL a batch of COPY_ROWS rows or more goes by COPY, a smaller one by executemany; on SQLite by
executemany; inserts answering their ids by SQLAlchemy's insertmanyvalues, in the rows' order.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from hub.store.bulk import COPY_ROWS, bulk_insert, bulk_update, insert_returning, param_mark, rows_in
from hub.store.db import Store
from hub.store.tables import Entity, PersonIndex, Quarantine, RawRecord

WHEN = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


RAW_COLUMNS = ("source", "stream", "source_id", "content_hash", "payload", "received_at", "source_modified", "status")


def raw_rows(n: int) -> list[list[object]]:
    return [["s", "t", str(i), f"{i:064d}", "{}", WHEN, None, "accepted"] for i in range(n)]


def entity_rows(n: int) -> list[list[object]]:
    return [[f"00000000-0000-0000-0000-{i:012d}", "Person", None, 1, "h" * 64, '{"names":[{"family":"Zoë"}]}',
             WHEN + timedelta(seconds=i), WHEN] for i in range(n)]


@pytest.mark.parametrize("n", [3, COPY_ROWS + 5])
def test_bulk_insert_and_update_round_trip(store: Store, n: int) -> None:
    columns = ("id", "entity_type", "person_id", "version", "content_hash", "document", "created_at", "updated_at")
    with store.session() as session:
        bulk_insert(session, Entity, columns, entity_rows(n))
        bulk_insert(session, PersonIndex, ("person_id", "nhs_verified", "birth_date", "family_name", "status",
                                           "match_fields"),
                    [[f"00000000-0000-0000-0000-{i:012d}", i % 2 == 0, date(1950, 1, 1) + timedelta(days=i),
                      None if i % 3 else "ZOË", "active", '[1,"zoe"]'] for i in range(n)])
        bulk_update(session, Entity, [{"id": "00000000-0000-0000-0000-000000000001", "version": 2}])
        raw_ids = [r[0] for r in insert_returning(session, RawRecord, RAW_COLUMNS, raw_rows(n), ("id",))]
        bulk_insert(session, Quarantine, ("raw_record_id", "source", "stream", "source_id", "reason", "message",
                                          "status", "attempts", "history", "created_at", "updated_at"),
                    [[raw_ids[i], "s", "t", str(i), "R", "m", "open", 1, [{"at": "x"}], WHEN, WHEN] for i in range(n)])
    with store.session() as session:
        entities = session.scalars(select(Entity).order_by(Entity.id)).all()
        index = session.scalars(select(PersonIndex).order_by(PersonIndex.person_id)).all()
        history = session.scalars(select(Quarantine.history)).all()
    assert len(entities) == n and entities[3 % n].document == '{"names":[{"family":"Zoë"}]}'
    assert entities[2].created_at == WHEN + timedelta(seconds=2) and entities[1].version == 2
    assert [r.nhs_verified for r in index[:2]] == [True, False] and index[1].birth_date == date(1950, 1, 2)
    assert index[0].family_name == "ZOË" and index[1].family_name is None
    assert history == [[{"at": "x"}]] * n


def test_insert_returning_answers_ids_in_the_rows_order(store: Store) -> None:
    with store.session() as session:
        ids = [row[0] for row in insert_returning(session, RawRecord, RAW_COLUMNS, raw_rows(50), ("id",))]
        keys = dict(session.execute(select(RawRecord.id, RawRecord.source_id)).all())
    assert [keys[i] for i in ids] == [str(i) for i in range(50)]


def test_rows_in_binds_every_value(store: Store) -> None:
    with store.session() as session:
        bulk_insert(session, Entity, ("id", "entity_type", "version", "content_hash", "document", "created_at",
                                      "updated_at"), [r[:2] + r[3:] for r in entity_rows(700)])
        wanted = [f"00000000-0000-0000-0000-{i:012d}" for i in range(0, 700, 7)] + ["x'); DROP TABLE entities; --"]
        found = list(rows_in(session, "SELECT id FROM entities WHERE entity_type = {m} AND id IN ({in})",
                             ("Person",), wanted))
        mark = param_mark(session.get_bind().dialect)
    assert sorted(i for (i,) in found) == wanted[:-1]
    assert mark in ("?", "%s")

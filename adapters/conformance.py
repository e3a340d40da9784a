"""Conformance fixtures of the generic adapters: SQL (a SQLite file) and REST (a JSON API on loopback).

See :mod:`adapters.testing`; ``tests/conformance/`` runs every registered fixture.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.rest import RestSource
from adapters.simulators.json_api import JsonApi
from adapters.simulators.uk_names import FAMILY_NAMES
from adapters.sql import SqlAdapter
from adapters.testing import SourceCase, SourceFixture, TargetCase, source_fixture, target_fixture
from hub.delivery.config import TargetSettings
from hub.settings import SourceSettings

SQL_MAPPING = """
source: conformance_sql
description: one table of clients, for the conformance suite
streams:
  clients:
    entity: Person
    table: CLIENT
    key: CLIENT_ID
    cursor: LAST_UPDATED
    fields:
      names[0].family: {from: SURNAME, transform: [trim, title], required: true}
      birth_date: {from: DOB, transform: [{date: "%Y-%m-%d"}]}
      sex: {from: GENDER, transform: [trim, upper], map: {M: male, F: female}, on_unmapped: quarantine}
      identifiers[0].system: {value: conformance_sql}
      identifiers[0].value: {from: CLIENT_ID, transform: [string]}
"""

REST_MAPPING = """
source: conformance_rest
description: people from a JSON API, for the conformance suite
streams:
  people:
    entity: Person
    table: people
    key: id
    cursor: modified_at
    fields:
      names[0].family: {from: last_name, transform: [trim, title], required: true}
      birth_date: {from: dob, transform: [{date: "%Y-%m-%d"}]}
      sex: {from: gender, transform: [trim, upper], map: {M: male, F: female}, on_unmapped: quarantine}
      identifiers[0].system: {value: conformance_rest}
      identifiers[0].value: {from: id, transform: [string]}
"""

INITIAL = 7


@source_fixture("sql")
@contextmanager
def sql_source(tmp: Path) -> Iterator[SourceCase]:
    """A SQLite source; a transient failure is another connection's exclusive lock (the sync fails retryably)."""
    path = tmp / "conformance_source.db"
    mapping = tmp / "conformance_sql.yaml"
    mapping.write_text(SQL_MAPPING)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE CLIENT (CLIENT_ID INTEGER PRIMARY KEY, SURNAME TEXT, DOB TEXT, GENDER TEXT, "
                   "LAST_UPDATED TIMESTAMP)")
    clock = itertools.count()
    base = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(days=1)
    ids = itertools.count(1)

    def write(sql: str, *args: Any) -> None:
        with sqlite3.connect(path) as db:
            db.execute(sql, args)

    def insert(gender: str = "F") -> tuple[str, str]:
        n = next(ids)
        write("INSERT INTO CLIENT VALUES (?, ?, ?, ?, ?)", n, FAMILY_NAMES[n * 5 % len(FAMILY_NAMES)],
              f"{1940 + n * 2}-{n % 12 + 1:02d}-{n % 27 + 1:02d}", gender,
              (base + timedelta(seconds=next(clock))).isoformat(sep=" "))
        return "clients", str(n)

    def change() -> tuple[str, str]:
        write("UPDATE CLIENT SET SURNAME = 'changed', LAST_UPDATED = ? WHERE CLIENT_ID = 1",
              (base + timedelta(seconds=next(clock))).isoformat(sep=" "))
        return "clients", "1"

    def bad() -> tuple[str, str, str]:
        stream, key = insert(gender="X")
        return stream, key, "CODE_UNMAPPED"

    for _ in range(INITIAL):
        insert()
    locks: list[sqlite3.Connection] = []

    def lock(_: int) -> None:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        locks.append(holder)

    def heal() -> None:
        while locks:
            holder = locks.pop()
            holder.execute("ROLLBACK")
            holder.close()

    def drop_table() -> None:
        write("ALTER TABLE CLIENT RENAME TO CLIENT_GONE")

    def adapter() -> SqlAdapter:
        return SqlAdapter("conformance_sql", SourceSettings(
            adapter="adapters.sql:SqlAdapter", mapping=str(mapping),
            options={"url": f"sqlite:///{path}?timeout=0.2", "timezone": "UTC"}))

    try:
        yield SourceCase(adapter=adapter(), initial=INITIAL, add=insert, change=change, add_bad=bad,
                         fail_transiently=lock, heal=heal, fail_permanently=drop_table, retries_in_place=False,
                         make_adapter=adapter)
    finally:
        heal()


def rest_settings(api: JsonApi, mapping: Path, **options: Any) -> SourceSettings:
    """Source settings for a REST source of ``api`` with OAuth2 client credentials."""
    return SourceSettings(adapter="adapters.rest:RestSource", mapping=str(mapping), options={
        "base_url": api.base_url, "auth": "oauth2", "token_url": api.token_url, "client_id": api.client_id,
        "client_secret": api.client_secret, "backoff_seconds": 0.01, "page_size": 3, **options})


@contextmanager
def _rest_source(tmp: Path, paging: str) -> Iterator[SourceCase]:
    mapping = tmp / "conformance_rest.yaml"
    mapping.write_text(REST_MAPPING)
    api = JsonApi().start()
    api.collections["people"] = {}

    def person(gender: str = "F") -> tuple[str, str]:
        pid = api.next_id("P")
        n = int(pid[1:])
        api.put("people", {"id": pid, "last_name": FAMILY_NAMES[n * 7 % len(FAMILY_NAMES)],
                           "dob": f"{1950 + n * 3}-{n % 12 + 1:02d}-{n % 27 + 1:02d}", "gender": gender})
        return "people", pid

    def change() -> tuple[str, str]:
        api.touch("people", "P0000001", last_name="changed")
        return "people", "P0000001"

    def bad() -> tuple[str, str, str]:
        stream, key = person(gender="X")
        return stream, key, "CODE_UNMAPPED"

    def permanent() -> None:
        api.fail_next(403, 100)

    def heal() -> None:
        with api.lock:
            api.failures.clear()

    for _ in range(INITIAL):
        person()
    try:
        yield SourceCase(adapter=RestSource("conformance_rest", rest_settings(api, mapping, paging=paging)),
                         initial=INITIAL, add=person, change=change, add_bad=bad,
                         fail_transiently=lambda n: api.fail_next(503, n), heal=heal, fail_permanently=permanent,
                         make_adapter=lambda: RestSource("conformance_rest",
                                                         rest_settings(api, mapping, paging=paging)))
    finally:
        api.stop()


def _rest_fixture(paging: str) -> SourceFixture:
    """The REST source's fixture for one paging style."""
    return lambda tmp: _rest_source(tmp, paging)


for _paging in ("page", "offset", "cursor", "next_link"):
    source_fixture(f"rest-{_paging}")(_rest_fixture(_paging))


@target_fixture("rest")
@contextmanager
def rest_target(tmp: Path) -> Iterator[TargetCase]:
    """A JSON API taking people by POST, once per Idempotency-Key; no retries in the client (delivery retries)."""
    api = JsonApi().start()
    api.collections["people"] = {}
    settings = TargetSettings(adapter="adapters.rest:RestTarget", options={
        "base_url": api.base_url, "auth": "oauth2", "token_url": api.token_url, "client_id": api.client_id,
        "client_secret": api.client_secret, "retries": 0, "paths": {"Person": "people"}})

    def refuse_next() -> None:
        api.fail_next(422)

    try:
        yield TargetCase(settings=settings, event=lambda n: ("Person", {"names": [{"family": f"p{n}"}]}),
                         held=lambda: api.count("people"), fail_transiently=lambda n: api.fail_next(503, n),
                         refuse_next=refuse_next, refusal="422")
    finally:
        api.stop()

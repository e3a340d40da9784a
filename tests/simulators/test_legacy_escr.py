"""The synthetic legacy ESCR: reproducible, legacy-shaped, dirty exactly where it says, syncable.

The generator writes real databases (SQLite always, PostgreSQL too when
CAREHUB_TEST_DATABASE_URL is set); the last tests run the hub's own SQL adapter
and pipeline over it and check the quarantine holds exactly the planted faults.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import DateTime, Integer, MetaData, Numeric, String, create_engine, func, select

from adapters.simulators import legacy_escr_schema as schema
from adapters.simulators.legacy_escr import (
    AS_OF,
    DIRT_KINDS,
    GenerationSummary,
    generate,
    seed_demo,
    touch,
)
from adapters.sql import SqlAdapter
from hub.contract import StreamCursor
from hub.model.validators import is_valid_nhs_number
from hub.pipeline import Pipeline
from hub.settings import DemoSettings, Settings, SourceSettings
from hub.store.db import Store, normalise_url
from hub.store.tables import Entity, Quarantine, RawRecord
from hub.sync import sync_source
from tests.support.postgres import BACKENDS, fresh_database

ROOT = Path(__file__).resolve().parents[2]
STREAM_OF_TABLE = {
    "CLIENT": "clients", "RELATIONSHIP": "relationships", "REFERRAL": "referrals",
    "ASSESSMENT": "assessments", "INVOLVEMENT": "involvements", "CARE_PLAN": "plans",
    "PLAN_SERVICE": "plan_services",
}


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every ESCR table, in key order, as plain tuples.

    NUMERIC values are read as floats: SQLite hands back 7 where PostgreSQL gives 7.0.
    """
    engine = create_engine(normalise_url(url))
    out = {}
    with engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            key = next(iter(table.primary_key.columns))
            numeric = [isinstance(c.type, Numeric) for c in table.columns]
            out[table.name] = [
                tuple(float(v) if is_num and v is not None else v for v, is_num in zip(r, numeric, strict=True))
                for r in conn.execute(select(table).order_by(key))
            ]
    engine.dispose()
    return out


def digest(rows: dict[str, list[tuple[Any, ...]]]) -> str:
    """A fingerprint of a dump: equal digests mean equal bytes of every value."""
    return hashlib.sha256(repr(sorted(rows.items())).encode()).hexdigest()


def adapter_for(url: str) -> SqlAdapter:
    """The hub's SQL adapter over a legacy ESCR at ``url``, with the shipped mapping."""
    settings = SourceSettings(adapter="adapters.sql:SqlAdapter", mapping="legacy_escr.yaml",
                              options={"url": url}, batch_size=500)
    return SqlAdapter("legacy_escr", settings)


@pytest.fixture(params=BACKENDS)
def legacy_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database for a legacy ESCR: a SQLite file, or a fresh PostgreSQL database."""
    with fresh_database(request.param, tmp_path, "legacy_escr") as url:
        yield url


@pytest.fixture(scope="module")
def escr(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, GenerationSummary]:
    """One default-sized ESCR (2,000 people) shared by the read-only tests."""
    url = f"sqlite:///{tmp_path_factory.mktemp('escr') / 'legacy.db'}"
    return url, generate(url, people=2000)


# --- reproducibility --------------------------------------------------------------------------


def test_same_seed_gives_identical_rows_and_another_seed_does_not(tmp_path: Path) -> None:
    first, second, other = (f"sqlite:///{tmp_path / n}" for n in ("a.db", "b.db", "c.db"))
    summary_a = generate(first, people=300, seed=11)
    summary_b = generate(second, people=300, seed=11)
    summary_c = generate(other, people=300, seed=12)
    assert digest(dump(first)) == digest(dump(second))
    assert summary_a == summary_b
    assert digest(dump(first)) != digest(dump(other))
    assert summary_a.dirt != summary_c.dirt


def test_generating_again_over_the_same_database_replaces_it(legacy_url: str, tmp_path: Path) -> None:
    generate(legacy_url, people=120, seed=5)
    generate(legacy_url, people=120, seed=5)
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    generate(reference, people=120, seed=5)
    assert digest(dump(legacy_url)) == digest(dump(reference))


# --- shape and counts -------------------------------------------------------------------------


def test_schema_reflects_as_a_legacy_schema(escr: tuple[str, GenerationSummary]) -> None:
    url, _ = escr
    reflected = MetaData()
    reflected.reflect(create_engine(url))
    assert set(reflected.tables) == {t.name for t in schema.metadata.sorted_tables}
    for table in reflected.tables.values():
        assert table.name == table.name.upper()
        assert all(c.name == c.name.upper() for c in table.columns)
        assert isinstance(table.c.LAST_UPDATED.type, DateTime)
    for table, key in schema.DATA_TABLES:
        column = reflected.tables[table.name].c[key]
        assert column.primary_key and isinstance(column.type, Integer)
    assert isinstance(reflected.tables["CLIENT"].c.DOB.type, String)
    assert isinstance(reflected.tables["ASSESSMENT"].c.START_DATE.type, String)
    assert isinstance(reflected.tables["INVOLVEMENT"].c.START_DT.type, DateTime)


def test_counts_match_the_database_with_about_four_related_rows_a_person(
    escr: tuple[str, GenerationSummary],
) -> None:
    url, summary = escr
    engine = create_engine(url)
    with engine.connect() as conn:
        counted = {t.name: conn.scalar(select(func.count()).select_from(t)) for t, _ in schema.DATA_TABLES}
        stamps = conn.scalar(select(func.max(schema.CLIENT.c.LAST_UPDATED)))
    assert counted == summary.rows
    assert summary.rows["CLIENT"] == 2000 + len(summary.duplicates) + len(summary.deleted_clients)
    assert 3.8 <= summary.related_rows / summary.people <= 4.2
    assert stamps <= datetime(AS_OF.year, AS_OF.month, AS_OF.day, 23, 59)
    assert all(summary.rows[t] > 100 for t in summary.rows)


def test_a_client_is_stamped_no_earlier_than_its_addresses(escr: tuple[str, GenerationSummary]) -> None:
    url, _ = escr
    client, address = schema.CLIENT, schema.CLIENT_ADDRESS
    engine = create_engine(url)
    with engine.connect() as conn:
        older = conn.scalar(
            select(func.count()).select_from(client.join(address, client.c.CLIENT_ID == address.c.CLIENT_ID))
            .where(address.c.LAST_UPDATED > client.c.LAST_UPDATED)
        )
    assert older == 0


def test_related_rows_follow_the_requested_average(tmp_path: Path) -> None:
    summary = generate(f"sqlite:///{tmp_path / 'busy.db'}", people=2000, related_per_person=6.0)
    assert 5.6 <= summary.related_rows / summary.people <= 6.4


def test_names_addresses_and_nhs_numbers_look_real(escr: tuple[str, GenerationSummary]) -> None:
    url, summary = escr
    engine = create_engine(url)
    with engine.connect() as conn:
        clients = conn.execute(select(schema.CLIENT)).all()
        postcodes = conn.scalars(select(schema.CLIENT_ADDRESS.c.POSTCODE)).all()
        streets = set(conn.scalars(select(schema.CLIENT_ADDRESS.c.STREET)).all())
    bad_nhs = set(summary.dirt_ids("bad_nhs_check_digit"))
    numbers = [(str(c.CLIENT_ID), c.NHS_NO.replace(" ", "")) for c in clients if c.NHS_NO]
    assert all(n.startswith("999") and len(n) == 10 for _, n in numbers)
    assert all(is_valid_nhs_number(n) != (cid in bad_nhs) for cid, n in numbers)
    people = [c for c in clients if c.RECORD_STATUS != "D"]
    missing = sum(1 for c in people if not c.NHS_NO) / len(people)
    assert 0.15 <= missing <= 0.25
    assert any(" " in (c.NHS_NO or "") for c in clients)
    assert len(Counter(c.SURNAME for c in clients)) > 150
    assert len(Counter(c.FORENAMES.split()[0] for c in clients if c.FORENAMES)) > 150
    assert len(streets) > 250
    padded = set(summary.dirt_ids("padded_mixed_case", "CLIENT_ADDRESS"))
    assert sum(1 for p in postcodes if re.fullmatch(r"AS\d \d[A-Z]{2}", p)) >= len(postcodes) - len(padded)


def test_siblings_share_their_parents_address_and_surname(escr: tuple[str, GenerationSummary]) -> None:
    url, summary = escr
    engine = create_engine(url)
    with engine.connect() as conn:
        surnames = {r.CLIENT_ID: (r.SURNAME or "").strip().lower() for r in conn.execute(select(schema.CLIENT))}
        current: dict[int, tuple[str, ...]] = {}
        for r in conn.execute(select(schema.CLIENT_ADDRESS).where(schema.CLIENT_ADDRESS.c.END_DATE.is_(None))):
            current[r.CLIENT_ID] = (r.FLAT or "", r.HOUSE_NO or "", r.HOUSE_NAME or "",
                                    r.STREET.strip().lower(), r.POSTCODE.replace(" ", "").upper())
        ties = conn.execute(select(schema.RELATIONSHIP).where(
            schema.RELATIONSHIP.c.RELATED_CLIENT_ID.is_not(None),
            schema.RELATIONSHIP.c.REL_TYPE.in_(["BRO", "SIS", "MOT", "FAT"]))).all()
    nameless = {int(i) for i in summary.dirt_ids("missing_mandatory", "CLIENT")}
    siblings = [t for t in ties if t.REL_TYPE in ("BRO", "SIS")]
    assert len(siblings) > 300
    for tie in ties:
        assert current[tie.CLIENT_ID] == current[tie.RELATED_CLIENT_ID]
        if tie.CLIENT_ID not in nameless and tie.RELATED_CLIENT_ID not in nameless:
            assert surnames[tie.CLIENT_ID] == surnames[tie.RELATED_CLIENT_ID]


# --- dirt -------------------------------------------------------------------------------------


def _is_text_date(value: str | None) -> bool:
    try:
        datetime.strptime(value or "", "%d/%m/%Y")
    except ValueError:
        return False
    return True


def test_every_kind_of_dirt_is_planted_at_the_promised_rate(escr: tuple[str, GenerationSummary]) -> None:
    url, summary = escr
    assert set(summary.dirt) == {k.name for k in DIRT_KINDS}
    assert all(count >= 10 for count in summary.dirt_counts.values()), summary.dirt_counts
    assert abs(summary.dirt_rate - 0.03) < 0.004
    planted = [(r.table, r.key) for rows in summary.dirt.values() for r in rows]
    assert len(planted) == len(set(planted)), "a row carries one fault at most"

    db = dump(url)
    by_key = {name: {str(row[0]): dict(zip([c.name for c in table.columns], row, strict=True))
                     for row in db[name]}
              for name, table in ((t.name, t) for t, _ in schema.DATA_TABLES)}
    today = date.today()
    for kind, rows in summary.dirt.items():
        for dirty in rows:
            row = by_key[dirty.table][dirty.key]
            value = row[dirty.column]
            if kind == "impossible_date":
                assert not _is_text_date(value)
            elif kind == "future_birth":
                assert datetime.strptime(value, "%d/%m/%Y").date() > today
            elif kind == "end_before_start":
                start = {"INVOLVEMENT": "START_DT", "CARE_PLAN": "START_DATE", "PLAN_SERVICE": "START_DATE",
                         "REFERRAL": "REF_DATE"}[dirty.table]
                begin, end = row[start], value
                if isinstance(end, str):
                    end = datetime.strptime(end, "%d/%m/%Y")
                    begin = begin if isinstance(begin, datetime) else datetime.strptime(begin, "%d/%m/%Y")
                assert end < begin
            elif kind == "bad_nhs_check_digit":
                assert not is_valid_nhs_number(value.replace(" ", ""))
            elif kind == "missing_mandatory":
                assert value is None or not value.strip()
            elif kind == "padded_mixed_case":
                tidy = value.strip()
                assert value != tidy or tidy in (tidy.upper(), tidy.lower()) and tidy != tidy.title() \
                    or not re.fullmatch(r"AS\d \d[A-Z]{2}", tidy)
            elif kind == "unknown_code":
                assert value in schema.UNKNOWN_CODES[dirty.column]
    originals = dict(summary.duplicates)
    for kind in ("duplicate_verified_nhs", "duplicate_name_variant"):
        for dup in summary.dirt_ids(kind):
            copy, first = by_key["CLIENT"][dup], by_key["CLIENT"][originals[dup]]
            assert copy["DOB"] == first["DOB"]
            if kind == "duplicate_verified_nhs":
                assert copy["NHS_NO"].replace(" ", "") == first["NHS_NO"].replace(" ", "")
                assert copy["NHS_VERIFIED"] == first["NHS_VERIFIED"] == "Y"
            else:
                assert copy["NHS_NO"] is None
                assert (copy["FORENAMES"], copy["SURNAME"]) != (first["FORENAMES"], first["SURNAME"])


def test_clean_data_has_no_dirt(tmp_path: Path) -> None:
    summary = generate(f"sqlite:///{tmp_path / 'clean.db'}", people=300, dirt=0.0)
    assert summary.dirty_rows == 0
    assert all(not ids for ids in summary.quarantine_expected.values())


# --- touching ---------------------------------------------------------------------------------


def test_touch_changes_clients_and_an_incremental_read_sees_exactly_them(legacy_url: str) -> None:
    generate(legacy_url, people=300, seed=3)
    adapter = adapter_for(legacy_url)
    first = list(adapter.pull("clients", StreamCursor(), datetime.now(UTC)))
    before = {r.source_id: r.payload for r in first}
    touched = touch(legacy_url, count=12, seed=9)
    assert len(touched) == len(set(touched)) == 12
    again = list(adapter.pull("clients", first[-1].cursor, datetime.now(UTC)))
    adapter.close()
    assert sorted(r.source_id for r in again) == sorted(touched)
    for record in again:
        old = before[record.source_id]
        assert record.modified is not None and old["LAST_UPDATED"] < record.modified
        moved = len(record.payload["addresses"]) > len(old["addresses"])
        renamed = record.payload["PREV_SURNAME"] == old["SURNAME"].strip() \
            and record.payload["SURNAME"] != old["SURNAME"]
        assert moved or renamed


def test_touching_a_client_twice_in_a_day_keeps_its_addresses_in_order(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    generate(url, people=40, seed=6)
    first = set(touch(url, count=30, seed=1))
    again = set(touch(url, count=30, seed=1))
    assert first == again
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(schema.CLIENT_ADDRESS)).all()
    for row in rows:
        if row.END_DATE:
            begin = datetime.strptime(row.START_DATE, "%d/%m/%Y")
            assert datetime.strptime(row.END_DATE, "%d/%m/%Y") >= begin


def test_touch_picks_the_same_clients_for_the_same_seed(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path / n}" for n in ("a.db", "b.db")]
    picked = []
    for url in urls:
        generate(url, people=200, seed=4)
        picked.append(touch(url, count=5, seed=2))
    assert picked[0] == picked[1]


# --- through the hub --------------------------------------------------------------------------


def test_a_sync_quarantines_exactly_the_planted_faults(store: Store, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    summary = generate(url, people=400, seed=21)
    adapter = adapter_for(url)
    result = sync_source(store, adapter, Pipeline(), batch_size=500)
    adapter.close()
    with store.session() as s:
        raw = s.scalar(select(func.count()).select_from(RawRecord))
        quarantined = {(stream, sid): reason
                       for stream, sid, reason in s.execute(select(Quarantine.stream, Quarantine.source_id,
                                                                   Quarantine.reason))}
        persons = s.scalar(select(func.count()).select_from(Entity).where(Entity.entity_type == "Person"))
    assert raw == result.received == summary.total_rows
    expected = {(STREAM_OF_TABLE[t], sid) for t, ids in summary.quarantine_expected.items() for sid in ids}
    assert set(quarantined) == expected
    reasons = {
        "impossible_date": {"DATE_INVALID"}, "bad_nhs_check_digit": {"NHS_NUMBER_CHECK_DIGIT"},
        "end_before_start": {"DATES_OUT_OF_ORDER"}, "missing_mandatory": {"MISSING_FIELD"},
        "unknown_code": {"CODE_UNMAPPED"}, "future_birth": {"DATE_IN_FUTURE"},
    }
    for kind, allowed in reasons.items():
        seen = {quarantined[(STREAM_OF_TABLE[r.table], r.key)] for r in summary.dirt[kind]}
        assert seen == allowed, kind
    planted = {(STREAM_OF_TABLE[r.table], r.key) for k in DIRT_KINDS if k.quarantined for r in summary.dirt[k.name]}
    assert {quarantined[k] for k in expected - planted} == {"UNRESOLVED_REFERENCE"}
    clients = summary.rows["CLIENT"] - len(summary.deleted_clients) - len(summary.quarantine_expected["CLIENT"])
    # every planted duplicate is joined to its original: by the verified NHS number, or by score (name variants)
    duplicates = len(summary.dirt["duplicate_verified_nhs"]) + len(summary.dirt["duplicate_name_variant"])
    assert persons == clients - duplicates


def test_generate_writes_the_same_rows_to_any_database(legacy_url: str, tmp_path: Path) -> None:
    summary = generate(legacy_url, people=250, seed=8)
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    assert generate(reference, people=250, seed=8) == summary
    assert digest(dump(legacy_url)) == digest(dump(reference))


# --- entry points -----------------------------------------------------------------------------


def test_module_entry_point_writes_a_database_and_prints_counts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    out = subprocess.run([sys.executable, "-m", "adapters.simulators.legacy_escr", "--url", url,
                          "--people", "60", "--seed", "1"], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    printed = json.loads(out.stdout)
    assert printed["people"] == 60 and printed["rows"]["CLIENT"] >= 60
    assert set(printed["dirt"]) == {k.name for k in DIRT_KINDS}


def test_seed_demo_writes_where_the_source_reads(tmp_path: Path) -> None:
    source = SourceSettings(adapter="adapters.sql:SqlAdapter", mapping="legacy_escr.yaml",
                            options={"url": "sqlite:///{data_dir}/legacy_escr.db"})
    settings = Settings(data_dir=tmp_path, sources={"legacy_escr": source}, demo=DemoSettings(people=80))
    message = seed_demo(settings)
    assert message.startswith("seeded legacy ESCR: 80 people")
    assert (tmp_path / "legacy_escr.db").exists()

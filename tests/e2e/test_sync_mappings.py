"""`carehub sync` against mappings with typos, as an analyst would make them: each is refused before a row is
read, naming the file, the line and the field; a stream that accepts nothing fails the sync, saying why; a name
the canonical model refuses is quarantined by the same validator the HL7 feed uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from adapters.simulators.legacy_escr import generate
from tests.support.cli import carehub, hub_env, status

MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "legacy_escr.yaml"


def setup(database_url: str, tmp_path: Path, old: str | None = None, new: str = "") -> dict[str, str]:
    """A small legacy ESCR in the data folder, the shipped mapping with ``old`` replaced by ``new``."""
    data = tmp_path / "var"
    data.mkdir()
    generate(f"sqlite:///{data / 'legacy_escr.db'}", people=40, dirt=0)
    mapping = tmp_path / "legacy_escr.yaml"
    body = MAPPING.read_text()
    if old is not None:
        assert body.count(old) == 1, old
        body = body.replace(old, new)
    mapping.write_text(body)
    env = hub_env(database_url, data, CAREHUB_SOURCES__LEGACY_ESCR__MAPPING=str(mapping),
                  CAREHUB_PIPELINE__ENRICHERS="[]")
    carehub("db", "upgrade", env=env)
    return env


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize(("old", "new", "says"), [
    # a misspelt column: every person would lose their NHS number
    ("nhs_number: {from: NHS_NO,", "nhs_number: {from: NHS_NUMBR,", ["no column 'NHS_NUMBR'", "'nhs_number'"]),
    # a misspelt column of a join and of a collection
    ("ethnicity: {from: eth.NHS_CODE}", "ethnicity: {from: eth.NHS_COD}", ["no column 'NHS_COD'", "'ethnicity'"]),
    ("postcode: {from: POSTCODE, transform: [trim, upper]}", "postcode: {from: POSTCDE, transform: [trim, upper]}",
     ["no column 'POSTCDE'", "'postcode'"]),
    # a misspelt stream key: deleted clients would be migrated
    ("    where: \"\\\"RECORD_STATUS\\\" <> 'D'\"", "    wher: \"\\\"RECORD_STATUS\\\" <> 'D'\"",
     ["unknown key 'wher'", "'wher'"]),
    # a misspelt nested path, and one inside a collection's fields
    ("names[0].family:", "names[0].famly:", ["no field 'famly'", "'names[0].famly'"]),
    ("          locality: {from: LOCALITY", "          localty: {from: LOCALITY", ["no field 'localty'"]),
    # a misspelt key of a join
    ("{table: LK_ETHNICITY, alias: eth,", "{table: LK_ETHNICITY, alais: eth,", ["unknown key 'alais'"]),
])
def test_a_mapping_typo_stops_the_sync_naming_file_line_and_field(database_url: str, tmp_path: Path, old: str,
                                                                  new: str, says: list[str]) -> None:
    env = setup(database_url, tmp_path, old, new)
    proc = carehub("sync", env=env, check=False)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    mapping = tmp_path / "legacy_escr.yaml"
    where = f"{mapping}:{line_of(mapping, new.strip())}"
    assert where in proc.stderr, proc.stderr
    for said in says:
        assert said in proc.stderr, proc.stderr
    assert status(env)["canonical"].get("Person", 0) == 0  # nothing read before the refusal


def test_a_stream_that_accepts_nothing_fails_the_sync_and_says_why(database_url: str, tmp_path: Path) -> None:
    env = setup(database_url, tmp_path, "map: {M: male, F: female, U: unknown, I: other}, on_unmapped: quarantine",
                "map: {Q: male}, on_unmapped: quarantine")
    proc = carehub("sync", env=env, check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "legacy_escr.clients accepted nothing" in proc.stderr and "CODE_UNMAPPED" in proc.stderr, proc.stderr
    assert "carehub quarantine list --source legacy_escr" in proc.stderr
    # the providers stream was fine: it is not reported
    assert "legacy_escr.providers accepted nothing" not in proc.stderr


def test_the_shipped_mapping_syncs_and_exits_zero_then_again(database_url: str, tmp_path: Path) -> None:
    env = setup(database_url, tmp_path)
    first = carehub("sync", env=env)
    assert "error" not in first.stderr
    again = carehub("sync", env=env)  # nothing new: nothing accepted, and that is no failure
    assert "0 read" in again.stdout or "0 accepted" in again.stdout


@pytest.mark.parametrize(("surname", "reason"), [
    ("Hale\u202e", "CONTROL_CHARACTER"), ("Ha\x00le", "CONTROL_CHARACTER"), ("Hale\u2067", "CONTROL_CHARACTER"),
])
def test_legacy_names_pass_the_same_validator_as_hl7(database_url: str, tmp_path: Path, surname: str,
                                                    reason: str) -> None:
    env = setup(database_url, tmp_path)
    legacy = create_engine(f"sqlite:///{tmp_path / 'var' / 'legacy_escr.db'}")
    with legacy.begin() as conn:
        client = conn.execute(text('SELECT "CLIENT_ID" FROM "CLIENT" WHERE "RECORD_STATUS" <> \'D\' '
                                   'ORDER BY "CLIENT_ID" LIMIT 1')).scalar_one()
        conn.execute(text('UPDATE "CLIENT" SET "SURNAME" = :s WHERE "CLIENT_ID" = :c'), {"s": surname, "c": client})
    legacy.dispose()
    carehub("sync", env=env)
    listed = json.loads(carehub("quarantine", "list", "--reason", reason, "--json", env=env).stdout)
    assert [q["source_id"] for q in listed if q["stream"] == "clients"] == [str(client)]
    assert all(surname not in q["message"] for q in listed)

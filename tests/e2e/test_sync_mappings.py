"""`carehub sync` against mappings with typos, as an analyst would make them: each is refused before a row is
read, naming the file, the line and the field; a stream that accepts nothing fails the sync, saying why; a name
the canonical model refuses is quarantined by the same validator the HL7 feed uses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from adapters.simulators.legacy_escr import generate
from tests.support.cli import carehub, hub_env, status

pytestmark = pytest.mark.slow  # one of the suite's longest (make test runs it)

MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "legacy_escr.yaml"


@pytest.fixture(scope="module")
def legacy_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small legacy ESCR, generated once for the module (each test copies it)."""
    path = tmp_path_factory.mktemp("legacy") / "legacy_escr.db"
    generate(f"sqlite:///{path}", people=40, dirt=0)
    return path


def setup(database_url: str, tmp_path: Path, legacy: Path, old: str | None = None, new: str = "",
          mapping_name: str = "legacy_escr.yaml") -> dict[str, str]:
    """The legacy ESCR in the data folder, the shipped mapping with ``old`` replaced by ``new``."""
    data = tmp_path / "var"
    data.mkdir(exist_ok=True)
    if not (data / "legacy_escr.db").exists():
        shutil.copy(legacy, data / "legacy_escr.db")
    mapping = tmp_path / mapping_name
    body = MAPPING.read_text()
    if old is not None:
        assert body.count(old) == 1, old
        body = body.replace(old, new)
    mapping.write_text(body)
    env = hub_env(database_url, data, CAREHUB_SOURCES__LEGACY_ESCR__MAPPING=str(mapping),
                  CAREHUB_PIPELINE__ENRICHERS="[]")
    return env


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


TYPOS = [
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
]


def test_a_mapping_typo_stops_the_sync_naming_file_line_and_field(database_url: str, tmp_path: Path,
                                                                  legacy_template: Path) -> None:
    for n, (old, new, says) in enumerate(TYPOS):
        env = setup(database_url, tmp_path, legacy_template, old, new, mapping_name=f"typo{n}.yaml")
        if n == 0:
            carehub("db", "upgrade", env=env)
        proc = carehub("sync", env=env, check=False)
        assert proc.returncode == 2, (new, proc.stdout, proc.stderr)
        mapping = tmp_path / f"typo{n}.yaml"
        assert f"{mapping}:{line_of(mapping, new.strip())}" in proc.stderr, proc.stderr
        for said in says:
            assert said in proc.stderr, proc.stderr
    assert status(env)["canonical"].get("Person", 0) == 0  # nothing read before any refusal


def test_a_stream_that_accepts_nothing_fails_the_sync_and_says_why(database_url: str, tmp_path: Path,
                                                                    legacy_template: Path) -> None:
    env = setup(database_url, tmp_path, legacy_template,
                "map: {M: male, F: female, U: unknown, I: other}, on_unmapped: quarantine",
                "map: {Q: male}, on_unmapped: quarantine")
    carehub("db", "upgrade", env=env)
    proc = carehub("sync", env=env, check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "legacy_escr.clients accepted nothing" in proc.stderr and "CODE_UNMAPPED" in proc.stderr, proc.stderr
    assert "carehub quarantine list --source legacy_escr" in proc.stderr
    # the providers stream was fine: it is not reported
    assert "legacy_escr.providers accepted nothing" not in proc.stderr


def test_the_shipped_mapping_syncs_and_exits_zero_then_again(database_url: str, tmp_path: Path,
                                                              legacy_template: Path) -> None:
    env = setup(database_url, tmp_path, legacy_template)
    carehub("db", "upgrade", env=env)
    first = carehub("sync", env=env)
    assert "error" not in first.stderr
    again = carehub("sync", env=env)  # nothing new: nothing accepted, and that is no failure
    assert "0 read" in again.stdout or "0 accepted" in again.stdout


def test_legacy_names_pass_the_same_validator_as_hl7(database_url: str, tmp_path: Path,
                                                    legacy_template: Path) -> None:
    env = setup(database_url, tmp_path, legacy_template)
    carehub("db", "upgrade", env=env)
    surnames = ["Hale\u202e", "Ha\x00le", "Hale\u2067", "H" * 101]
    legacy = create_engine(f"sqlite:///{tmp_path / 'var' / 'legacy_escr.db'}")
    with legacy.begin() as conn:
        clients = conn.execute(text('SELECT "CLIENT_ID" FROM "CLIENT" WHERE "RECORD_STATUS" <> \'D\' '
                                    'ORDER BY "CLIENT_ID" LIMIT 4')).scalars().all()
        for client, surname in zip(clients, surnames, strict=True):
            conn.execute(text('UPDATE "CLIENT" SET "SURNAME" = :s WHERE "CLIENT_ID" = :c'),
                         {"s": surname, "c": client})
    legacy.dispose()
    carehub("sync", env=env)
    refused = {q["source_id"]: q for q in json.loads(carehub("quarantine", "list", "--json", env=env).stdout)
               if q["stream"] == "clients"}
    assert {refused[str(c)]["reason"] for c in clients[:3]} == {"CONTROL_CHARACTER"}
    assert refused[str(clients[3])]["reason"] == "TOO_LONG"
    assert all(s not in q["message"] for q in refused.values() for s in surnames)

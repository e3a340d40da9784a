"""`carehub gazetteer load` and `match`, through typer's runner and the installed command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gazetteer.cli import app
from hub.settings import reload_settings
from tests.support.gazetteer import TownFiles, U

runner = CliRunner()


@pytest.fixture
def configured(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the CLI's settings at the test store."""
    monkeypatch.setenv("CAREHUB_DATABASE_URL", database_url)
    reload_settings()
    yield database_url
    monkeypatch.delenv("CAREHUB_DATABASE_URL")
    reload_settings()


def test_load_prints_counts_and_rejects_with_exit_code(
    configured: str, town_files: TownFiles, tmp_path: Path
) -> None:
    loaded = runner.invoke(app, ["load", str(town_files.full)])
    assert loaded.exit_code == 0, loaded.output
    assert "full applied" in loaded.output and "properties:" in loaded.output
    again = runner.invoke(app, ["load", str(town_files.full)])
    assert again.exit_code == 0 and "already loaded" in again.output
    bad = tmp_path / "bad.csv"
    bad.write_text(town_files.cou.read_text().replace("\n99,0,", "\n99,0,1"))
    rejected = runner.invoke(app, ["load", str(bad)])
    assert rejected.exit_code == 2
    assert "CAREHUB-E518" in rejected.output and "bad.csv" in rejected.output


def test_match_json_is_one_object(configured: str, tiny_file: Path) -> None:
    assert runner.invoke(app, ["load", str(tiny_file)]).exit_code == 0
    found = runner.invoke(app, ["match", "Flat 2, 14 High St", "--postcode", "ZT1 1AA", "--json"])
    assert found.exit_code == 0, found.output
    body = json.loads(found.output)
    assert set(body) == {"uprn", "confidence", "address", "reason"}
    assert body["uprn"] == str(U + 2) and isinstance(body["uprn"], str)
    assert 0.0 <= body["confidence"] <= 1.0
    assert body["address"] == "Flat 2, 14 High Street, EXAMPLETOWN, ZT1 1AA"
    unsure = json.loads(runner.invoke(app, ["match", "3/5 Mill Rd", "--json"]).output)
    assert unsure["uprn"] is None and "unsure" in unsure["reason"]
    plain = runner.invoke(app, ["match", "9 mill rd"])
    assert f"UPRN:       {U + 10}" in plain.output


def test_installed_command_finds_the_sub_command(configured: str, tiny_file: Path) -> None:
    env = {**os.environ, "CAREHUB_DATABASE_URL": configured}
    carehub = Path(sys.executable).with_name("carehub")
    subprocess.run(
        [str(carehub), "gazetteer", "load", str(tiny_file)],
        env=env,
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [str(carehub), "gazetteer", "match", "14A High St", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(done.stdout)["uprn"] == str(U + 4)

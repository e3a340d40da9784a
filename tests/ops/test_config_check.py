"""One settings object: the shipped configuration loads whole; a key in the wrong table is refused.

``carehub config check`` prints the effective settings with secrets masked, or every problem
with its file and key and exits 1; every other command refuses to start on such a configuration.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.config_check import MASK, check_config, mask
from hub.settings import PROJECT_ROOT, Settings, reload_settings

SHIPPED = PROJECT_ROOT / "config"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped config folder, named by CAREHUB_CONFIG."""
    folder = tmp_path / "config"
    shutil.copytree(SHIPPED, folder)
    monkeypatch.setenv("CAREHUB_CONFIG", str(folder / "hub.toml"))
    for name in ("CAREHUB_DATABASE_URL", "CAREHUB_AUTH__DEMO", "CAREHUB_IDENTITY_FILE"):
        monkeypatch.delenv(name, raising=False)
    yield folder
    monkeypatch.delenv("CAREHUB_CONFIG")
    reload_settings()


def test_the_shipped_configuration_loads_every_file_it_names(config: Path) -> None:
    report = check_config(Settings)
    assert report.problems == []
    assert set(report.files) == {"hub.toml", "survivorship_file", "identity_file", "subscriptions_file",
                                 "schedules_file", "auth.policy_file", "auth.teams_file", "finance.mapping_file",
                                 "edrms.retention_file"}
    assert all(Path(p).exists() for p in report.files.values())
    settings = Settings()
    # the keys that once sat inside the last [[auth.demo_users]] table are top-level settings now
    assert settings.subscriptions_file == "subscriptions.toml" and settings.schedules_file == "schedules.toml"
    assert settings.pipeline.enrichers == ["gazetteer.enrich:address_enricher"]


def test_a_key_in_the_wrong_table_is_named_with_its_file(config: Path) -> None:
    hub = config / "hub.toml"
    hub.write_text(hub.read_text() + '\n[[auth.demo_users]]\nuser = "x"\nname = "X"\nrole = "admin"\n'
                   'schedules_file = "other.toml"\n')
    report = check_config(Settings)
    assert [(p.file, p.key) for p in report.problems] == [(str(hub), "auth.demo_users.10.schedules_file")]
    result = CliRunner().invoke(app, ["config", "check"])
    assert result.exit_code == 1
    assert f"{hub}: auth.demo_users.10.schedules_file: Extra inputs are not permitted" in result.output
    refused = CliRunner().invoke(app, ["status"])
    assert refused.exit_code != 0 and "schedules_file" in str(refused.exception or refused.output)


@pytest.mark.parametrize(("file", "text", "key"), [
    ("survivorship.toml", '[Person]\norder = ["a"]\nordre = ["b"]\n', "Person.ordre"),
    ("survivorship.toml", '[Persn]\norder = ["a"]\n', "Persn"),
    ("subscriptions.toml", '[targets.crm]\nadapter = "x:Y"\nbatchsize = 5\n', "targets.crm.batchsize"),
    ("identity.toml", "[thresholds]\nlinkk = 0.9\n", "thresholds.linkk"),
    ("schedules.toml", '[jobs.a]\ncall = "x:y"\nevery_seconds = 5\nevry = 1\n', "jobs.a.evry"),
    ("teams.toml", '[[teams]]\ncode = "CP"\nname = "Child Protection"\nservice = "childrens"\n', "teams.0.service"),
    ("policy.toml", 'teams_file = "teams.toml"\n', "teams_file"),
])
def test_every_named_file_refuses_unknown_keys(config: Path, file: str, text: str, key: str) -> None:
    (config / file).write_text(text)
    report = check_config(Settings)
    assert len(report.problems) == 1
    (problem,) = report.problems
    assert problem.file == str(config / file) and key in problem.message


def test_every_problem_at_once(config: Path) -> None:
    (config / "identity.toml").write_text("[thresholds]\nlinkk = 0.9\n")
    (config / "policy.toml").unlink()
    report = check_config(Settings)
    assert sorted(Path(p.file).name for p in report.problems) == ["identity.toml", "policy.toml"]


def test_the_teams_file_is_named_by_the_settings_and_may_be_switched_off(config: Path) -> None:
    hub = config / "hub.toml"
    hub.write_text(hub.read_text().replace('teams_file = "teams.toml"', 'teams_file = "council-teams.toml"'))
    report = check_config(Settings)
    assert [(Path(p.file).name, p.message) for p in report.problems] == [
        ("council-teams.toml", report.problems[0].message)] and "cannot read the teams" in report.problems[0].message
    (config / "teams.toml").rename(config / "council-teams.toml")
    assert check_config(Settings).ok
    hub.write_text(hub.read_text().replace('teams_file = "council-teams.toml"', 'teams_file = ""'))  # no teams
    report = check_config(Settings)
    assert report.ok and "auth.teams_file" not in report.files


def test_config_check_prints_the_effective_settings_with_secrets_masked(
        config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREHUB_DATABASE_URL", "postgresql+psycopg://carehub:s3cret-pw@db.internal/carehub")
    result = CliRunner().invoke(app, ["config", "check"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["settings"]["database_url"] == f"postgresql+psycopg://carehub:{MASK}@db.internal/carehub"
    assert "s3cret-pw" not in result.output
    assert body["files"]["identity_file"] == str(config / "identity.toml")


def test_mask_hides_secret_keys_at_any_depth() -> None:
    masked = mask({"sources": {"crm": {"options": {"client_secret": "abc", "api_key": "k", "page_size": 100}}}})
    assert masked == {"sources": {"crm": {"options": {"client_secret": MASK, "api_key": MASK, "page_size": 100}}}}


def test_config_check_builds_every_adapter_and_loads_every_import_path(config: Path) -> None:
    """What start-up does not reach (an enricher, a target, a job, a source's mapping) is named by its key."""
    hub = config / "hub.toml"
    mapping = config / "childrens_case.yaml"
    mapping.write_text((PROJECT_ROOT / "mappings" / "childrens_case.yaml").read_text().replace("LC-1: LEAVING",
                                                                                                 "LC-1: LEAVNG"))
    text = hub.read_text()
    assert 'mapping = "childrens_case.yaml"' in text
    hub.write_text(text.replace('enrichers = ["gazetteer.enrich:address_enricher"]',
                                'enrichers = ["gazetteer.enrich:address_enrichr"]')
                   .replace('mapping = "childrens_case.yaml"', f'mapping = "{mapping}"'))
    schedules = config / "schedules.toml"
    schedules.write_text(schedules.read_text().replace('"hub.scheduler:poll_sources"', '"hub.schedular:poll_sources"'))
    subscriptions = config / "subscriptions.toml"
    subscriptions.write_text(subscriptions.read_text().replace('"adapters.http_target:HttpTarget"',
                                                               '"adapters.http_target:HttpTargt"'))
    assert check_config(Settings).ok  # start-up's check reads the files only
    report = check_config(Settings, built=True)
    found = {(Path(p.file).name, p.key): p.message for p in report.problems}
    assert set(found) == {("hub.toml", "pipeline.enrichers.0"), ("hub.toml", "sources.childrens_case"),
                          ("subscriptions.toml", "targets.counting"),
                          ("schedules.toml", "jobs.poll_sources.call")}
    assert "address_enrichr" in found[("hub.toml", "pipeline.enrichers.0")]
    assert "LEAVNG" in found[("hub.toml", "sources.childrens_case")]
    assert "HttpTargt" in found[("subscriptions.toml", "targets.counting")]
    result = CliRunner().invoke(app, ["config", "check"])
    assert result.exit_code == 1 and "problem:" in result.output and "hub.schedular" in result.output


def test_config_check_builds_the_shipped_configuration(config: Path) -> None:
    report = check_config(Settings, built=True)
    assert report.problems == []

"""Teams as pages show them (Policy.team_label over config/teams.toml): the name with the code, whichever way the
team was named; a team the reference data does not know as it came; nothing for no team."""

from __future__ import annotations

from pathlib import Path

from hub.access.policy import Policy

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_a_team_is_shown_by_its_name_and_code() -> None:
    policy = Policy.load(CONFIG / "policy.toml", CONFIG / "teams.toml")
    assert policy.team_label("CP") == "Child Protection (CP)"
    assert policy.team_label("Looked After Children") == "Children Looked After (LAC)"   # another spelling
    assert policy.team_label(" children with disabilities ") == "Children with Disabilities (CWD)"
    assert policy.team_label("YOT-9") == "YOT-9"
    assert policy.team_label(None) == policy.team_label("") == ""
    assert policy.team_name("ASC-E") == "Adults East" and policy.team_name("YOT-9") == "YOT-9"

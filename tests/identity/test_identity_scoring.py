"""Scoring units: nicknames, dates, guards, verified NHS numbers, evidence, config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hub.errors import ConfigError
from hub.identity import Matcher, MatchRecord, Outcome, load_identity_config
from hub.identity.config import read_identity_config
from hub.identity.engine import Evidence
from hub.identity.nicknames import are_nicknames, nickname_groups

HOME = {"address_line": "12 Rowan Road", "locality": "Leeds", "postcode": "LS6 2AB"}


def score(a: MatchRecord, b: MatchRecord) -> Evidence:
    """Evidence for one pair under the shipped default weights."""
    matcher = Matcher(load_identity_config())
    left = matcher.encoder.encode([a])
    right = matcher.encoder.encode([b])
    return matcher.score(left, right, np.array([0]), np.array([0])).evidence(0)


def person(record_id: str, given: str, family: str, born: str, **extra: object) -> MatchRecord:
    """A record at the shared test address unless told otherwise."""
    fields: dict[str, object] = {**HOME, "sex": "F"} | extra
    return MatchRecord(
        id=record_id, given_name=given, family_name=family, birth_date=born, **fields
    )  # type: ignore[arg-type]


def level_of(evidence: Evidence, field: str) -> str:
    """The comparison level a field fell into."""
    return next(f.level for f in evidence.fields if f.field == field)


def guards_of(evidence: Evidence) -> set[str]:
    """Names of the guards that fired."""
    return {g.guard for g in evidence.guards}


def test_nickname_list_is_shipped_with_the_common_uk_pairs() -> None:
    pairs = sum(len(f) for f in nickname_groups().values()) - len(
        {f for fs in nickname_groups().values() for f in fs}
    )
    assert pairs >= 150
    for a, b in [
        ("peggy", "margaret"),
        ("bill", "william"),
        ("jack", "john"),
        ("betty", "elizabeth"),
        ("bob", "robert"),
        ("peggy", "meg"),
    ]:
        assert are_nicknames(a, b) and are_nicknames(b, a)
    assert not are_nicknames("mary", "margaret")


def test_peggy_hawthorne_is_margaret_hawthorne() -> None:
    evidence = score(
        person("a", "Margaret", "Hawthorne", "1941-03-12"),
        person("b", "Mrs Peggy", "HAWTHORNE", "12/03/1941", postcode="ls62ab"),
    )
    assert level_of(evidence, "given_name") == "nickname"
    assert level_of(evidence, "family_name") == "exact"
    assert level_of(evidence, "birth_date") == "exact"
    assert evidence.outcome == Outcome.LINK


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        ("1941-12-03", "transposed"),
        ("1947-03-12", "one_digit"),
        ("1941-03-13", "one_digit"),
        ("1941-07-30", "same_year"),
        ("1941", "same_year"),
        ("1962-08-01", "different"),
    ],
)
def test_birth_date_levels(other: str, expected: str) -> None:
    evidence = score(
        person("a", "Margaret", "Hawthorne", "1941-03-12"),
        person("b", "Margaret", "Hawthorne", other, address_line="3 Elm Close", postcode="BD1 1AA"),
    )
    assert level_of(evidence, "birth_date") == expected


def test_a_transposed_date_still_links() -> None:
    evidence = score(
        person("a", "Margaret", "Hawthorne", "1941-03-12"),
        person("b", "Margaret", "Hawthorn", "1941-12-03"),
    )
    assert level_of(evidence, "birth_date") == "transposed"
    assert evidence.outcome == Outcome.LINK


@pytest.mark.parametrize(
    ("given_a", "given_b"), [("Mary", "Jane"), ("Amy", "Amelia"), ("Jack", "Jacob")]
)
def test_twins_are_never_auto_linked(given_a: str, given_b: str) -> None:
    evidence = score(
        person("a", given_a, "Hawthorne", "1941-03-12"),
        person("b", given_b, "Hawthorne", "1941-03-12"),
    )
    assert evidence.outcome != Outcome.LINK
    if evidence.outcome == Outcome.REVIEW:
        assert "twins" in guards_of(evidence)


def test_twins_of_different_sex_without_a_given_name_are_not_linked() -> None:
    evidence = score(
        person("a", "", "Hawthorne", "1941-03-12", sex="M"),
        person("b", "Margaret", "Hawthorne", "1941-03-12", sex="F"),
    )
    assert evidence.outcome != Outcome.LINK
    assert "twins" in guards_of(evidence)


def test_a_typo_in_a_given_name_is_not_a_twin() -> None:
    evidence = score(
        person("a", "Margaret", "Hawthorne", "1941-03-12"),
        person("b", "Margret", "Hawthorne", "1941-03-12"),
    )
    assert "twins" not in guards_of(evidence)
    assert evidence.outcome == Outcome.LINK


def test_parent_and_child_with_one_name_are_told_apart_by_birth_date() -> None:
    evidence = score(
        person("a", "John", "Smith", "1950-06-01", sex="M"),
        person("b", "John", "Smith", "1979-02-17", sex="M"),
    )
    assert evidence.outcome == Outcome.NO_LINK
    assert "parent_child" in guards_of(evidence)


def test_a_deceased_person_is_not_linked_to_a_live_record_without_review() -> None:
    dead = MatchRecord(
        id="a",
        given_name="Margaret",
        family_name="Hawthorne",
        birth_date="1941-03-12",
        deceased=True,
        **HOME,
    )
    evidence = score(dead, person("b", "Margaret", "Hawthorne", "1941-03-12"))
    assert evidence.outcome == Outcome.REVIEW
    assert "deceased" in guards_of(evidence)
    assert evidence.score > 0.99


def test_verified_nhs_numbers_decide() -> None:
    same = score(
        MatchRecord(id="a", given_name="Peggy", nhs_number="9434765919", nhs_verified=True),
        MatchRecord(id="b", family_name="Hawthorne", nhs_number="943 476 5919", nhs_verified=True),
    )
    assert same.outcome == Outcome.LINK and same.score == 1.0
    different = score(
        person(
            "a", "Margaret", "Hawthorne", "1941-03-12", nhs_number="9434765919", nhs_verified=True
        ),
        person(
            "b", "Margaret", "Hawthorne", "1941-03-12", nhs_number="9990000018", nhs_verified=True
        ),
    )
    assert different.outcome == Outcome.NO_LINK
    assert "nhs_number_verified" in guards_of(different)


def test_swapped_given_and_family_names_are_recognised() -> None:
    evidence = score(
        person("a", "Margaret", "Hawthorne", "1941-03-12"),
        person("b", "Hawthorne", "Margaret", "1941-03-12"),
    )
    assert level_of(evidence, "given_name") == "swapped"
    assert evidence.outcome == Outcome.LINK


def test_evidence_is_json_with_levels_and_weights_only() -> None:
    evidence = score(
        person("a", "Margaret", "Hawthorne", "1941-03-12"),
        person("b", "Peggy", "Hawthorne", "1941-03-12"),
    ).as_json()
    text = json.dumps(evidence)
    assert "Hawthorne" not in text and "1941" not in text
    assert {f["field"] for f in evidence["fields"]} >= {"given_name", "family_name", "birth_date"}
    assert all(isinstance(f["weight"], float) for f in evidence["fields"])
    assert evidence["outcome"] == "link"


def test_config_rejects_review_above_link(tmp_path: Path) -> None:
    path = tmp_path / "identity.toml"
    path.write_text("[thresholds]\nlink = 0.5\nreview = 0.9\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="review"):
        read_identity_config(path)
    path.write_text("[blocking]\npasses = ['shoe_size']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="shoe_size"):
        read_identity_config(path)

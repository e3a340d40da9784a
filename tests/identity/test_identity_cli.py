"""`carehub match`, `dedupe` and `identity review` on small files and a real store."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from hub.cli import app
from hub.identity.synthetic import dedupe_task, evaluate, linkage_task, write_csv
from hub.settings import reload_settings
from hub.store.db import Store
from hub.store.identity import MatchReview, PersonMerge, queue_review, save_model
from hub.store.tables import OutboxEvent
from tests.support.persons import add_person

runner = CliRunner()


def read_links(path: Path) -> list[dict[str, str]]:
    """The rows of an output file, checking its header."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["left_id", "right_id", "score", "decision"]
        return list(reader)


def test_match_links_two_files(tmp_path: Path) -> None:
    task = linkage_task(400, 400, seed=3)
    write_csv(tmp_path / "left.csv", task.left)
    write_csv(tmp_path / "right.csv", task.right)
    result = runner.invoke(
        app,
        [
            "match",
            str(tmp_path / "left.csv"),
            str(tmp_path / "right.csv"),
            "--out",
            str(tmp_path / "out.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = read_links(tmp_path / "out.csv")
    assert {r["decision"] for r in rows} <= {"match", "review"}
    matched = [(r["left_id"], r["right_id"]) for r in rows if r["decision"] == "match"]
    scores = evaluate(matched, task.truth)
    assert scores.precision > 0.98 and scores.recall > 0.9
    assert not set(matched) & task.relatives


@pytest.mark.parametrize(
    "columns",
    [
        ("id", "given_name", "family_name", "birth_date"),
        ("family_name", "postcode", "given_name"),
        ("id", "birth_date", "postcode", "address_line", "sex"),
    ],
)
def test_match_accepts_any_subset_of_columns(tmp_path: Path, columns: tuple[str, ...]) -> None:
    task = linkage_task(200, 200, seed=4)
    write_csv(tmp_path / "left.csv", task.left, columns)
    write_csv(
        tmp_path / "right.csv",
        task.right,
        ("id", "given_name", "family_name", "birth_date", "postcode"),
    )
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app, ["match", str(tmp_path / "left.csv"), str(tmp_path / "right.csv"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    for row in read_links(out):
        assert 0.0 <= float(row["score"]) <= 1.0


def test_dedupe_finds_people_recorded_twice(tmp_path: Path) -> None:
    task = dedupe_task(600, seed=5)
    write_csv(tmp_path / "file.csv", task.left)
    out = tmp_path / "links.csv"
    result = runner.invoke(app, ["dedupe", str(tmp_path / "file.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = read_links(out)
    assert all(r["left_id"] != r["right_id"] for r in rows)
    matched = [(r["left_id"], r["right_id"]) for r in rows if r["decision"] == "match"]
    scores = evaluate(matched, task.truth, ordered=False)
    assert scores.precision > 0.97 and scores.recall > 0.8


def test_a_record_matching_both_twins_is_left_for_review(tmp_path: Path) -> None:
    header = "id,given_name,family_name,birth_date,address_line,postcode\n"
    (tmp_path / "left.csv").write_text(
        header
        + "1,Ann,Hawthorne,1941-03-12,12 Rowan Road,LS6 2AB\n"
        + "2,Anna,Hawthorne,1941-03-12,12 Rowan Road,LS6 2AB\n",
        encoding="utf-8",
    )
    (tmp_path / "right.csv").write_text(
        header + "9,Ann,Hawthorne,1941-03-12,12 Rowan Rd,LS62AB\n", encoding="utf-8"
    )
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app,
        [
            "match",
            str(tmp_path / "left.csv"),
            str(tmp_path / "right.csv"),
            "-o",
            str(out),
            "--no-estimate",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = read_links(out)
    assert rows and all(r["decision"] == "review" for r in rows)


def test_an_empty_file_gives_an_empty_result(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("id,given_name\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["dedupe", str(tmp_path / "empty.csv"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert read_links(out) == []


@pytest.fixture
def configured(store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """The CLI pointed at the test store."""
    monkeypatch.setenv("CAREHUB_DATABASE_URL", database_url)
    reload_settings()
    yield store
    monkeypatch.delenv("CAREHUB_DATABASE_URL")
    reload_settings()


def test_review_list_accept_and_reject(configured: Store) -> None:
    with configured.session() as session:
        a = add_person(session, "Margaret", "Hawthorne", date(1941, 3, 12))
        b = add_person(session, "Peggy", "Hawthorne", date(1941, 3, 12))
        c = add_person(session, "Mary", "Hawthorne", date(1941, 3, 12))
        first = queue_review(
            session,
            a,
            b,
            0.9,
            {"fields": [{"field": "given_name", "level": "nickname", "weight": 5.1}]},
        )
        second = queue_review(session, a, c, 0.6, {"fields": [], "guards": [{"guard": "twins"}]})
        assert first is not None and second is not None
        ids = first.id, second.id
    listed = runner.invoke(app, ["identity", "review", "list"])
    assert listed.exit_code == 0, listed.output
    assert "given_name=nickname" in listed.output
    accepted = runner.invoke(
        app, ["identity", "review", "accept", str(ids[0]), "--user", "dq-officer"]
    )
    assert accepted.exit_code == 0, accepted.output
    rejected = runner.invoke(
        app, ["identity", "review", "reject", str(ids[1]), "--user", "dq-officer"]
    )
    assert rejected.exit_code == 0, rejected.output
    with configured.session() as session:
        statuses = {r.id: (r.status, r.decided_by) for r in session.query(MatchReview)}
    assert statuses == {ids[0]: ("accepted", "dq-officer"), ids[1]: ("rejected", "dq-officer")}
    empty = runner.invoke(app, ["identity", "review", "list", "--json"])
    assert empty.exit_code == 0 and empty.output.strip() == ""

    with configured.session() as session:
        merge_id = session.get(MatchReview, ids[0]).merge_id  # type: ignore[union-attr]
    undone = runner.invoke(app, ["identity", "unmerge", str(merge_id), "--user", "dq-officer"])
    assert undone.exit_code == 0, undone.output
    assert "two people again" in undone.output
    merged = runner.invoke(app, ["identity", "merge", a, c, "--user", "dq-officer"])
    assert merged.exit_code == 0, merged.output
    with configured.session() as session:
        kinds = [k for (k,) in session.execute(select(OutboxEvent.kind).where(OutboxEvent.entity_id == c))]
        history = session.scalars(select(PersonMerge).order_by(PersonMerge.id)).all()
    assert kinds == ["created", "merged"]  # created through the writer, then merged
    assert [(h.survivor_id, h.merged_id, h.status) for h in history][-1] == (a, c, "merged")
    assert history[0].status == "unmerged" and history[0].unmerged_by == "dq-officer"


def test_models_lists_the_learned_models_and_which_are_stale(configured: Store) -> None:
    import json

    from hub.identity.config import load_identity_config
    from hub.identity.model import MatchModel, model_fingerprint

    config = load_identity_config()
    model = MatchModel.from_config(config).to_json()
    with configured.session() as session:
        save_model(session, "adults", model, model_fingerprint(config), 1200)
        save_model(session, "escr", model, "learned-under-another-config", 3000)
        save_model(session, "escr", model, "learned-under-another-config", 3100)  # replaces, one row a source
    listed = runner.invoke(app, ["identity", "models", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [(r["source"], r["records"], r["current"]) for r in rows] == [("adults", 1200, True),
                                                                         ("escr", 3100, False)]
    shown = runner.invoke(app, ["identity", "models"])
    assert shown.exit_code == 0 and "stale" in shown.output


def _nhs(nine: str) -> str:
    """A valid NHS number from nine digits (a check digit of 10 is skipped by the caller)."""
    total = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    assert check != 10
    return nine + str(check)


@pytest.mark.parametrize("verified", [("", ""), ("1", ""), ("", "1")])
def test_two_different_valid_nhs_numbers_are_never_matched(
    tmp_path: Path, verified: tuple[str, str]
) -> None:
    columns = "id,given_name,family_name,birth_date,sex,address_line,postcode,nhs_number,nhs_verified\n"
    first, second = _nhs("999031337"), _nhs("999052115")
    (tmp_path / "left.csv").write_text(
        columns + f"L1,Megan,Pritchard,1947-03-02,F,12 Mill Road,SA31 1AA,{first},{verified[0]}\n",
        encoding="utf-8",
    )
    (tmp_path / "right.csv").write_text(
        columns + f"R1,Megen,Pritchard,1947-03-02,F,12 Mill Road,SA31 1AA,{second},{verified[1]}\n"
        + f"R2,Megan,Pritchard,1947-03-02,F,12 Mill Road,SA31 1AA,{first},{verified[0]}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app, ["match", str(tmp_path / "left.csv"), str(tmp_path / "right.csv"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    decisions = {(r["left_id"], r["right_id"]): r["decision"] for r in read_links(out)}
    assert decisions.get(("L1", "R1")) == "review"
    assert decisions.get(("L1", "R2")) == "match"

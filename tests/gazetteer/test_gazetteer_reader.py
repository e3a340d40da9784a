"""DTF 7.3 files load whole or not at all, COUs apply in order, and a file twice changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from gazetteer.dtf import FeedRejected
from gazetteer.load import load_file, retired_uprns
from gazetteer.simulator import write_full
from hub.store.addressing import (
    GAZETTEER_TABLES,
    GazetteerLoad,
    Property,
    PropertyAddress,
    Successor,
)
from hub.store.db import Store
from tests.support.gazetteer import (
    HIGH,
    TownFiles,
    U,
    blpu,
    descriptor,
    lpi,
    pao,
    street,
    successor,
    write_dtf,
)


def table_counts(store: Store) -> dict[str, int]:
    with store.session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in GAZETTEER_TABLES
        }


def test_full_then_cou(store: Store, town_files: TownFiles) -> None:
    full = load_file(store, town_files.full)
    assert full.outcome == "applied" and full.file_type == "full"
    town = town_files.town
    live_before = sum(1 for p in town.properties if p.uprn not in town_files.summary.inserted_uprns)
    assert full.counts["properties"] == live_before + 1  # the property the COU later deletes
    assert full.trailer_convention == "all records including header and trailer"

    cou = load_file(store, town_files.cou)
    summary = town_files.summary
    assert cou.file_type == "cou"
    assert cou.trailer_convention == "records between header and trailer"
    retired = {r.uprn: r for r in retired_uprns(cou)}
    assert retired[str(summary.retired_uprn)].reason == "historical"
    assert retired[str(summary.retired_uprn)].successors == [str(u) for u in summary.successors]
    assert retired[str(summary.deleted_uprn)].reason == "deleted"
    assert str(summary.renamed_uprn) in cou.readdressed
    with store.session() as session:
        assert session.get(Property, summary.retired_uprn).logical_status == 8
        assert session.get(Property, summary.deleted_uprn) is None
        assert session.get(PropertyAddress, summary.deleted_lpi_key) is None
        for uprn in summary.inserted_uprns:
            assert session.get(Property, uprn) is not None
        renamed = session.scalars(
            select(PropertyAddress).where(PropertyAddress.uprn == summary.renamed_uprn)
        ).one()
        assert renamed.pao_text == "THE LINDENS"
        held = session.scalars(
            select(Successor.successor).where(Successor.uprn == summary.retired_uprn)
        )
        assert sorted(held) == sorted(summary.successors)


def test_cou_applies_deletes_first_then_pro_order(store: Store, tmp_path: Path) -> None:
    load_file(
        store,
        write_dtf(
            tmp_path / "full.csv",
            "F",
            [
                street("I", 1, HIGH),
                descriptor("I", 2, HIGH, "HIGH STREET", None),
                blpu("I", 3, U + 1),
                lpi("I", 4, U + 1, "9999L000000001", HIGH, "ZT1 1AA", pao=pao(14)),
            ],
        ),
    )
    # The re-insert comes first in the file and the delete last: deletes go first, so the
    # key ends up held with the new values; the two updates apply in PRO_ORDER, not file order.
    cou = write_dtf(
        tmp_path / "cou.csv",
        "C",
        [
            lpi("I", 2, U + 1, "9999L000000001", HIGH, "ZT1 1AA", pao=pao(16)),
            lpi("U", 4, U + 1, "9999L000000001", HIGH, "ZT1 1AA", pao=pao(20)),
            lpi("U", 3, U + 1, "9999L000000001", HIGH, "ZT1 1AA", pao=pao(18)),
            lpi("D", 1, U + 1, "9999L000000001", HIGH, "ZT1 1AA", pao=pao(14)),
        ],
    )
    result = load_file(store, cou)
    assert result.warnings == []
    with store.session() as session:
        assert session.get(PropertyAddress, "9999L000000001").pao_start_number == 20


def test_bad_trailer_rejects_the_whole_file_and_applies_nothing(
    store: Store, town_files: TownFiles
) -> None:
    load_file(store, town_files.full)
    before = table_counts(store)
    lines = town_files.cou.read_text().splitlines()
    trailer = lines[-1].split(",")
    trailer[2] = str(int(trailer[2]) + 5)
    lines[-1] = ",".join(trailer)
    bad = town_files.cou.with_name("bad-cou.csv")
    bad.write_text("\n".join(lines) + "\n")

    with pytest.raises(FeedRejected) as caught:
        load_file(store, bad)
    assert caught.value.reason == "TRAILER_COUNT"
    assert caught.value.code == "CAREHUB-E518"
    assert caught.value.line == len(lines) and caught.value.field == "RECORD_COUNT"
    assert str(caught.value).startswith(f"CAREHUB-E518: bad-cou.csv:{len(lines)}:")
    assert table_counts(store) == before
    with store.session() as session:
        assert session.get(Property, town_files.summary.retired_uprn).logical_status == 1
        outcomes = session.scalars(select(GazetteerLoad.outcome).order_by(GazetteerLoad.id)).all()
    assert outcomes == ["applied", "rejected"]


def test_full_supply_with_bad_trailer_leaves_store_empty(
    store: Store, town_files: TownFiles, tmp_path: Path
) -> None:
    bad = write_full(town_files.town, tmp_path / "bad-full.csv", count_error=-1)
    with pytest.raises(FeedRejected, match="rejected whole"):
        load_file(store, bad)
    assert set(table_counts(store).values()) == {0}


@pytest.mark.parametrize("convention", ["all", "data"])
def test_both_trailer_conventions_are_accepted(
    store: Store, town_files: TownFiles, tmp_path: Path, convention: str
) -> None:
    path = write_full(
        town_files.town, tmp_path / f"full-{convention}.csv", trailer_counts=convention
    )
    assert load_file(store, path).outcome == "applied"


@pytest.mark.parametrize("error", [1, -3])
def test_any_other_trailer_count_is_rejected(
    store: Store, town_files: TownFiles, tmp_path: Path, error: int
) -> None:
    path = write_full(town_files.town, tmp_path / "full.csv", count_error=error)
    with pytest.raises(FeedRejected) as caught:
        load_file(store, path)
    assert caught.value.reason == "TRAILER_COUNT"


def test_same_file_twice_is_a_no_op(store: Store, town_files: TownFiles) -> None:
    first = load_file(store, town_files.full)
    counts = table_counts(store)
    again = load_file(store, town_files.full)
    assert again.outcome == "already_loaded" and again.load_id == first.load_id
    assert table_counts(store) == counts
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(GazetteerLoad)) == 1


def _records_with(bad: list[object]) -> list[list[object]]:
    return [street("I", 1, HIGH), descriptor("I", 2, HIGH, "HIGH STREET", None), bad]


@pytest.mark.parametrize(
    ("record", "reason", "field"),
    [
        (blpu("I", 3, U + 1, status=3), "FIELD_INVALID", "LOGICAL_STATUS"),
        (
            lpi("I", 3, U + 1, "9999L000000001", HIGH, "ZT1 1AA", status=2),
            "FIELD_INVALID",
            "LOGICAL_STATUS",
        ),
        (
            [*blpu("I", 3, U + 1)[:6], "2024-13-01", *blpu("I", 3, U + 1)[7:]],
            "FIELD_INVALID",
            "BLPU_STATE_DATE",
        ),
        ([21, "I", 3, "1234567890123", *blpu("I", 3, U)[4:]], "FIELD_INVALID", "UPRN"),
        (blpu("X", 3, U + 1), "CHANGE_TYPE_INVALID", "CHANGE_TYPE"),
        (blpu("U", 3, U + 1), "CHANGE_TYPE_INVALID", "CHANGE_TYPE"),
        (blpu("I", 3, U + 1)[:-1], "COLUMN_COUNT", None),
        ([27, "I", 3, 1], "RECORD_UNKNOWN", "RECORD_IDENTIFIER"),
    ],
)
def test_errors_name_file_line_and_field(
    store: Store, tmp_path: Path, record: list[object], reason: str, field: str | None
) -> None:
    path = write_dtf(tmp_path / "broken.csv", "F", _records_with(record))
    with pytest.raises(FeedRejected) as caught:
        load_file(store, path)
    assert caught.value.reason == reason
    assert caught.value.file == "broken.csv" and caught.value.line == 4
    assert caught.value.field == field
    assert "broken.csv:4" in str(caught.value)
    assert set(table_counts(store).values()) == {0}


def test_file_type_comes_from_the_header(store: Store, tmp_path: Path) -> None:
    with pytest.raises(FeedRejected) as caught:
        load_file(store, write_dtf(tmp_path / "odd.csv", "X", _records_with(blpu("I", 3, U + 1))))
    assert caught.value.reason == "HEADER_INVALID" and caught.value.field == "FILE_TYPE"
    assert caught.value.line == 1


def test_missing_trailer_is_rejected(store: Store, tmp_path: Path) -> None:
    path = write_dtf(tmp_path / "cut.csv", "F", _records_with(blpu("I", 3, U + 1)))
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(FeedRejected) as caught:
        load_file(store, path)
    assert caught.value.reason == "TRAILER_MISSING"


def test_successor_in_a_cou_names_the_replacement(store: Store, tmp_path: Path) -> None:
    load_file(
        store,
        write_dtf(
            tmp_path / "full.csv",
            "F",
            [
                street("I", 1, HIGH),
                descriptor("I", 2, HIGH, "HIGH STREET", None),
                blpu("I", 3, U + 1),
            ],
        ),
    )
    result = load_file(
        store,
        write_dtf(
            tmp_path / "cou.csv",
            "C",
            [
                blpu("I", 1, U + 2),
                successor("I", 2, U + 1, "9999S000000001", U + 2),
            ],
            count=2,
        ),
    )
    assert [(r.uprn, r.reason, r.successors) for r in result.retired] == [
        (str(U + 1), "replaced", [str(U + 2)])
    ]


def test_a_new_full_supply_retires_what_it_no_longer_holds(
    store: Store, town_files: TownFiles, tiny_file: Path
) -> None:
    load_file(store, town_files.full)
    result = load_file(store, tiny_file)
    retired = {r.uprn for r in result.retired}
    held_before = next(
        p
        for p in town_files.town.properties
        if p.uprn > U + 13
        and p.logical_status == 1
        and p.uprn not in town_files.summary.inserted_uprns
    )
    assert str(held_before.uprn) in retired
    assert str(U + 1) not in retired  # the tiny gazetteer reuses the town's first UPRNs
    assert all(r.reason == "absent_or_historical_in_full_supply" for r in result.retired)
    assert table_counts(store)["properties"] == 13

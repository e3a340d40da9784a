"""Apply a DTF 7.3 file to the store: all of it in one transaction, or none of it.

A full supply (FILE_TYPE F) replaces the gazetteer: on its first volume every
gazetteer table is emptied, then its records are bulk inserted in chunks while
the file streams. A change-only update (FILE_TYPE C) is read whole (COUs are
small), then applied deletes first, then inserts and updates, each in
PRO_ORDER; an insert of a row that exists replaces it and an update of a row
that does not exist inserts it, and both are noted in the report.

Either way the trailer's count is checked before the transaction commits, so a
file that fails any check leaves the store exactly as it was. The load is
recorded in ``gazetteer_loads`` with the file's sha256: a file already applied
is not applied again.

The result lists the UPRNs the file retired (deleted, made historical,
end-dated, or absent from a new full supply) and their successors, so the
pipeline can update or flag the persons who live there.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from gazetteer.dtf import LAYOUTS, DtfReader, DtfRecord, FeedRejected, FileType, Layout
from hub.errors import SourceUnavailable
from hub.store.addressing import GAZETTEER_TABLES, GazetteerLoad, Property, Successor, applied_load
from hub.store.bulk import insert_rows
from hub.store.db import Store
from hub.store.tables import utcnow

log = logging.getLogger(__name__)

CHUNK = 5000
HISTORICAL = 8


@dataclass
class RetiredUprn:
    """A UPRN a load took out of use, why, and what replaced it (strings, as the model wants)."""

    uprn: str
    reason: str
    successors: list[str] = field(default_factory=list)


@dataclass
class LoadResult:
    """What one gazetteer file did to the store.

    ``outcome`` is ``applied`` or ``already_loaded`` (the same content was
    applied before; nothing changed). A rejected file raises
    :class:`~gazetteer.dtf.FeedRejected` instead of returning.
    """

    file_name: str
    sha256: str
    outcome: str
    file_type: str | None = None
    load_id: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    retired: list[RetiredUprn] = field(default_factory=list)
    readdressed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    trailer_convention: str | None = None
    header: dict[str, str] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        """The result as plain JSON-ready data (for the load record and report files)."""
        return asdict(self)


def retired_uprns(result: LoadResult) -> list[RetiredUprn]:
    """The UPRNs a load retired or replaced, so the persons living there can be updated."""
    return list(result.retired)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise FeedRejected(
            "FILE_UNREADABLE", f"cannot read the file: {exc.strerror}", file=path.name
        ) from exc
    return digest.hexdigest()


_TABLES: dict[str, Any] = {model.__tablename__: model.__table__ for model in GAZETTEER_TABLES}
_LAYOUT_OF: dict[str, Layout] = {layout.table: layout for layout in LAYOUTS.values()}


def load_file(store: Store, path: Path) -> LoadResult:
    """Load one DTF 7.3 file (full supply or COU, from its header) into the store.

    Returns the result; raises :class:`FeedRejected` (after recording the
    rejection) when the file fails any check, with nothing applied.
    """
    path = Path(path)
    sha = file_sha256(path)
    try:
        with store.session() as session:
            previous = applied_load(session, sha)
    except OperationalError as exc:
        raise SourceUnavailable(f"the store cannot be reached: {type(exc.orig).__name__}") from exc
    if previous is not None:
        return LoadResult(
            path.name,
            sha,
            "already_loaded",
            previous.file_type,
            previous.id,
            dict(previous.counts),
        )
    try:
        with DtfReader(path) as reader:
            result = LoadResult(
                path.name,
                sha,
                "applied",
                reader.header.file_type.value,
                header=reader.header.fields,
            )
            try:
                with store.engine.begin() as conn:
                    if reader.header.file_type is FileType.FULL:
                        _apply_full(conn, reader, result)
                    else:
                        _apply_cou(conn, reader, result)
                    result.counts = {
                        **reader.counts,
                        **{f"skipped_{k}": v for k, v in reader.skipped.items()},
                    }
                    result.trailer_convention = reader.trailer_convention
                    result.load_id = _record(
                        conn, result, "applied", json.dumps(result.report(), default=str)
                    )
            except OperationalError as exc:
                raise SourceUnavailable(
                    f"the store failed during the load: {type(exc.orig).__name__}"
                ) from exc
            except SQLAlchemyError as exc:
                cause = getattr(exc, "orig", None) or exc
                raise FeedRejected(
                    "STORE_REFUSED",
                    f"the store refused the file: {type(cause).__name__}: {cause}",
                    file=path.name,
                ) from exc
    except FeedRejected as exc:
        with store.engine.begin() as conn:
            report = {
                "reason": exc.reason,
                "code": exc.code,
                "message": str(exc),
                "line": exc.line,
                "field": exc.field,
            }
            _record(conn, LoadResult(path.name, sha, "rejected"), "rejected", json.dumps(report))
        log.warning("gazetteer file rejected: %s", exc.code)
        raise
    log.info("gazetteer file applied: load %s, %s", result.load_id, result.counts)
    return result


def _record(conn: Connection, result: LoadResult, outcome: str, report: str) -> int:
    row = conn.execute(
        insert(GazetteerLoad)
        .values(
            file_name=result.file_name[:255],
            sha256=result.sha256,
            file_type=result.file_type,
            counts=result.counts,
            applied_at=utcnow(),
            outcome=outcome,
            report=report,
        )
        .returning(GazetteerLoad.id)
    ).scalar_one()
    return int(row)


def _live_uprns(conn: Connection) -> set[int]:
    props = Property.__table__
    return set(
        conn.execute(select(props.c.uprn).where(props.c.logical_status != HISTORICAL)).scalars()
    )


def _insert_many(conn: Connection, layout: Layout, rows: list[tuple[Any, ...]]) -> None:
    """Positional rows straight to the driver (COPY on PostgreSQL): the bulk path of a full supply.

    The reader has already checked and converted every value, so SQLAlchemy's
    per-value processing is skipped; dates travel as checked ISO text.
    """
    insert_rows(conn, layout.table, layout.store_columns, rows)


def _apply_full(conn: Connection, reader: DtfReader, result: LoadResult) -> None:
    before = _live_uprns(conn)
    if reader.header.volume_number <= 1:
        for model in reversed(GAZETTEER_TABLES):
            conn.execute(delete(model))
    buffers: dict[str, list[tuple[Any, ...]]] = {name: [] for name in _TABLES}
    seen: dict[str, set[tuple[Any, ...]]] = {name: set() for name in _TABLES}
    live_now: set[int] = set()
    successors: dict[int, list[int]] = {}
    for record in reader:
        table = record.layout.table
        key = record.key()
        if key in seen[table]:
            raise FeedRejected(
                "DUPLICATE_KEY",
                f"{record.layout.name} {key} appears twice in a full supply",
                file=reader.name,
                line=record.line,
                field=record.layout.key[0].upper(),
            )
        seen[table].add(key)
        values = record.values
        if record.record_type == 21 and values["logical_status"] != HISTORICAL:
            live_now.add(values["uprn"])
        elif record.record_type == 30:
            successors.setdefault(values["uprn"], []).append(values["successor"])
        buffer = buffers[table]
        buffer.append(tuple(values.values()))
        if len(buffer) >= CHUNK:
            _insert_many(conn, record.layout, buffer)
            buffer.clear()
    for table, buffer in buffers.items():
        if buffer:
            _insert_many(conn, _LAYOUT_OF[table], buffer)
    if reader.header.volume_number <= 1:
        gone = sorted(before - live_now)
        result.retired = [
            RetiredUprn(
                str(uprn),
                "absent_or_historical_in_full_supply",
                [str(s) for s in successors.get(uprn, [])],
            )
            for uprn in gone
        ]


def _apply_cou(conn: Connection, reader: DtfReader, result: LoadResult) -> None:
    records = list(reader)
    # Deletes first, then inserts and updates; each group in PRO_ORDER (ties keep file order).
    records.sort(key=lambda r: (r.change_type != "D", r.pro_order))
    touched = {r.values["uprn"] for r in records if r.record_type in (21, 24)}
    before = _property_states(conn, touched)
    retired: dict[int, RetiredUprn] = {}
    readdressed: set[int] = set()
    for record in records:
        table = _TABLES[record.layout.table]
        condition = and_(
            *(
                table.c[name] == value
                for name, value in zip(record.layout.key, record.key(), strict=True)
            )
        )
        existed = conn.execute(delete(table).where(condition)).rowcount > 0
        if record.change_type == "D":
            if not existed:
                result.warnings.append(
                    f"line {record.line}: delete of a {record.layout.name} not held"
                )
        else:
            if record.change_type == "I" and existed:
                result.warnings.append(
                    f"line {record.line}: insert of a {record.layout.name} already held (replaced)"
                )
            elif record.change_type == "U" and not existed:
                result.warnings.append(
                    f"line {record.line}: update of a {record.layout.name} not held (inserted)"
                )
            _insert_many(conn, record.layout, [tuple(record.values.values())])
        _note_effect(record, before, retired, readdressed)
    _attach_successors(conn, retired)
    result.retired = [retired[u] for u in sorted(retired)]
    result.readdressed = [str(u) for u in sorted(readdressed - set(retired))]


def _property_states(conn: Connection, uprns: Iterable[int]) -> dict[int, tuple[int, Any]]:
    props = Property.__table__
    found: dict[int, tuple[int, Any]] = {}
    wanted = sorted(uprns)
    for start in range(0, len(wanted), 500):
        rows = conn.execute(
            select(props.c.uprn, props.c.logical_status, props.c.end_date).where(
                props.c.uprn.in_(wanted[start : start + 500])
            )
        )
        for uprn, status, end in rows:
            found[uprn] = (status, end)
    return found


def _note_effect(
    record: DtfRecord,
    before: dict[int, tuple[int, Any]],
    retired: dict[int, RetiredUprn],
    readdressed: set[int],
) -> None:
    values = record.values
    uprn = values.get("uprn")
    if record.record_type == 21 and uprn is not None:
        was = before.get(uprn)
        was_live = was is not None and was[0] != HISTORICAL and was[1] is None
        if not was_live:
            return
        if record.change_type == "D":
            retired[uprn] = RetiredUprn(str(uprn), "deleted")
        elif values["logical_status"] == HISTORICAL:
            retired[uprn] = RetiredUprn(str(uprn), "historical")
        elif values["end_date"] is not None:
            retired[uprn] = RetiredUprn(str(uprn), "end_dated")
    elif record.record_type == 30 and record.change_type != "D" and uprn is not None:
        entry = retired.setdefault(uprn, RetiredUprn(str(uprn), "replaced"))
        successor = str(values["successor"])
        if successor not in entry.successors:
            entry.successors.append(successor)
    elif record.record_type == 24 and uprn in before:
        readdressed.add(uprn)


def _attach_successors(conn: Connection, retired: dict[int, RetiredUprn]) -> None:
    """Successors already held (from earlier files) are named too."""
    if not retired:
        return
    table = Successor.__table__
    rows = conn.execute(
        select(table.c.uprn, table.c.successor).where(table.c.uprn.in_(sorted(retired)))
    )
    for uprn, successor in rows:
        entry = retired[uprn]
        if str(successor) not in entry.successors:
            entry.successors.append(str(successor))


def load_history(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent gazetteer loads, newest first, for operators."""
    with store.session() as session:
        loads = session.scalars(
            select(GazetteerLoad).order_by(GazetteerLoad.id.desc()).limit(limit)
        )
        return [
            {
                "id": load.id,
                "file_name": load.file_name,
                "file_type": load.file_type,
                "outcome": load.outcome,
                "applied_at": load.applied_at.isoformat(),
                "counts": load.counts,
            }
            for load in loads
        ]


__all__ = ["LoadResult", "RetiredUprn", "load_file", "load_history", "retired_uprns"]

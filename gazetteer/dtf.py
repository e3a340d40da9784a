"""Reader for GeoPlace DTF 7.3 gazetteer files (CSV, one record per line).

A DTF file is a header (record 10), an optional metadata record (29), data
records (11 street, 15 street descriptor, 21 BLPU, 23 application cross
reference, 24 LPI, 30 successor, 31 organisation, 32 classification; 12 and 22
are recognised and skipped) and a trailer (99) whose RECORD_COUNT must agree
with the file. Every data record starts RECORD_IDENTIFIER, CHANGE_TYPE,
PRO_ORDER; the header, metadata and trailer carry no change type.

Each record type has exactly one column map (:data:`LAYOUTS`); a record with
any other number of columns is refused rather than guessed at. OS AddressBase
reuses the record numbers with different columns, so it is not read here.

The reader streams: :class:`DtfReader` yields validated :class:`DtfRecord`\\ s
one at a time and checks the trailer when the file ends. Every problem raises
:class:`FeedRejected` naming the file, the line and the field.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

from hub.errors import HubError

# Stable codes for the ways a gazetteer file can be refused (the CLI and the
# pickup report show them; operators search for them).
REASON_CODES = {
    "FILE_UNREADABLE": "CAREHUB-E510",
    "HEADER_INVALID": "CAREHUB-E511",
    "RECORD_UNKNOWN": "CAREHUB-E512",
    "COLUMN_COUNT": "CAREHUB-E513",
    "FIELD_INVALID": "CAREHUB-E514",
    "CHANGE_TYPE_INVALID": "CAREHUB-E515",
    "DUPLICATE_KEY": "CAREHUB-E516",
    "TRAILER_MISSING": "CAREHUB-E517",
    "TRAILER_COUNT": "CAREHUB-E518",
    "STORE_REFUSED": "CAREHUB-E519",
}


class FeedRejected(HubError):
    """A gazetteer file was refused whole; nothing in it was applied.

    ``reason`` is a stable upper-case code (see :data:`REASON_CODES`); ``file``,
    ``line`` and ``field`` say where the problem is when it has a place.
    """

    http_status = 422

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        file: str,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        where = f"{file}:{line}" if line is not None else file
        suffix = f" (field {field})" if field else ""
        super().__init__(f"{where}: {message}{suffix}", code=REASON_CODES[reason])
        self.reason = reason
        self.file = file
        self.line = line
        self.field = field
        self.detail = message


class FileType(StrEnum):
    """Whether a file replaces the gazetteer (full supply) or changes it (COU)."""

    FULL = "full"
    COU = "cou"


# FILE_TYPE values in the header, upper-cased. AddressBase writes F and C;
# DTF 7.3 producers are not confirmed, so the spelled-out forms are accepted too.
FILE_TYPES = {"F": FileType.FULL, "FULL": FileType.FULL, "C": FileType.COU, "COU": FileType.COU}
CHANGE_TYPES = frozenset({"I", "U", "D"})
LPI_STATUSES = frozenset({1, 3, 6, 8})
BLPU_STATUSES = frozenset({1, 6, 8})
SKIPPED_RECORDS = frozenset({12, 22})


Converter = Callable[[str], Any]


def _text(max_len: int | None, required: bool) -> Converter:
    def convert(value: str) -> str | None:
        if not value:
            if required:
                raise ValueError("is required")
            return None
        if max_len is not None and len(value) > max_len:
            raise ValueError(f"is longer than {max_len} characters")
        return value

    return convert


def _integer(max_digits: int | None, required: bool, allowed: frozenset[int] | None) -> Converter:
    def convert(value: str) -> int | None:
        if not value:
            if required:
                raise ValueError("is required")
            return None
        if max_digits is not None and len(value) > max_digits:
            raise ValueError(f"has more than {max_digits} digits")
        number = int(value)
        if allowed is not None and number not in allowed:
            raise ValueError(f"{number} is not one of {sorted(allowed)}")
        return number

    return convert


def _date(required: bool) -> Converter:
    # The checked text is kept: YYYY-MM-DD is what the store's date columns hold on
    # SQLite and what PostgreSQL casts to a date, so bulk inserts skip a conversion.
    def convert(value: str) -> str | None:
        if not value:
            if required:
                raise ValueError("is required")
            return None
        if len(value) != 10 or value[4] != "-":
            raise ValueError(f"{value!r} is not a YYYY-MM-DD date")
        date.fromisoformat(value)
        return value

    return convert


def _decimal(required: bool) -> Converter:
    def convert(value: str) -> float | None:
        if not value:
            if required:
                raise ValueError("is required")
            return None
        return float(value)

    return convert


@dataclass(frozen=True)
class Column:
    """One column of a record: its DTF name, the store column it fills, and its check."""

    name: str
    convert: Converter
    store: str | None = None

    @property
    def column(self) -> str:
        """The store column name (the DTF name in lower case unless given)."""
        return self.store or self.name.lower()


def text(
    name: str, max_len: int | None = None, *, required: bool = False, store: str | None = None
) -> Column:
    """A text column."""
    return Column(name, _text(max_len, required), store)


def integer(
    name: str,
    max_digits: int | None = None,
    *,
    required: bool = False,
    allowed: frozenset[int] | None = None,
    store: str | None = None,
) -> Column:
    """A whole-number column, optionally limited in digits or to a set of values."""
    return Column(name, _integer(max_digits, required, allowed), store)


def day(name: str, *, required: bool = False, store: str | None = None) -> Column:
    """A YYYY-MM-DD date column (the value is kept as checked ISO text)."""
    return Column(name, _date(required), store)


def decimal(name: str, *, store: str | None = None) -> Column:
    """A coordinate or version number."""
    return Column(name, _decimal(False), store)


@dataclass(frozen=True)
class Layout:
    """The column map of one data record type and the store table it fills.

    ``key`` names the store columns that identify a row, for updates and deletes.
    """

    record_type: int
    name: str
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    converters: tuple[Converter, ...] = field(init=False)
    store_columns: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "converters", tuple(c.convert for c in self.columns))
        object.__setattr__(self, "store_columns", tuple(c.column for c in self.columns))

    @property
    def width(self) -> int:
        """Columns on the line, counting RECORD_IDENTIFIER, CHANGE_TYPE and PRO_ORDER."""
        return len(self.columns) + 3


UPRN = 12
USRN = 8

LAYOUTS: dict[int, Layout] = {
    layout.record_type: layout
    for layout in (
        Layout(
            11,
            "street",
            "streets",
            (
                integer("USRN", USRN, required=True),
                integer("RECORD_TYPE"),
                integer("SWA_ORG_REF_NAMING"),
                integer("STATE"),
                day("STATE_DATE"),
                integer("STREET_SURFACE"),
                integer("STREET_CLASSIFICATION"),
                integer("VERSION"),
                day("RECORD_ENTRY_DATE"),
                day("LAST_UPDATE_DATE"),
                day("STREET_START_DATE", store="start_date"),
                day("STREET_END_DATE", store="end_date"),
                decimal("STREET_START_X", store="start_x"),
                decimal("STREET_START_Y", store="start_y"),
                decimal("STREET_END_X", store="end_x"),
                decimal("STREET_END_Y", store="end_y"),
                integer("STREET_TOLERANCE", store="tolerance"),
            ),
            ("usrn",),
        ),
        Layout(
            15,
            "street descriptor",
            "street_descriptors",
            (
                integer("USRN", USRN, required=True),
                text("STREET_DESCRIPTOR", 100, required=True, store="descriptor"),
                text("LOCALITY_NAME", 35, store="locality"),
                text("TOWN_NAME", 30, store="town"),
                text("ADMINISTRATIVE_AREA", 30),
                text("LANGUAGE", 3, required=True),
            ),
            ("usrn", "language"),
        ),
        Layout(
            21,
            "BLPU",
            "properties",
            (
                integer("UPRN", UPRN, required=True),
                integer("LOGICAL_STATUS", required=True, allowed=BLPU_STATUSES),
                integer("BLPU_STATE"),
                day("BLPU_STATE_DATE"),
                text("BLPU_CLASS", 6),
                integer("PARENT_UPRN", UPRN),
                decimal("X_COORDINATE"),
                decimal("Y_COORDINATE"),
                integer("RPC"),
                integer("LOCAL_CUSTODIAN_CODE"),
                day("START_DATE"),
                day("END_DATE"),
                day("LAST_UPDATE_DATE"),
                day("ENTRY_DATE"),
                text("ORGANISATION", 100),
                text("WARD_CODE", 10),
                text("PARISH_CODE", 10),
                integer("CUSTODIAN_ONE"),
                integer("CUSTODIAN_TWO"),
                text("CAN_KEY", 14),
            ),
            ("uprn",),
        ),
        Layout(
            23,
            "application cross reference",
            "cross_references",
            (
                integer("UPRN", UPRN, required=True),
                text("XREF_KEY", 14, required=True),
                text("CROSS_REFERENCE", 50, required=True),
                integer("VERSION"),
                text("SOURCE", 6),
                day("START_DATE"),
                day("END_DATE"),
                day("LAST_UPDATE_DATE"),
                day("ENTRY_DATE"),
            ),
            ("xref_key",),
        ),
        Layout(
            24,
            "LPI",
            "property_addresses",
            (
                integer("UPRN", UPRN, required=True),
                text("LPI_KEY", 14, required=True),
                text("LANGUAGE", 3, required=True),
                integer("LOGICAL_STATUS", required=True, allowed=LPI_STATUSES),
                day("START_DATE"),
                day("END_DATE"),
                day("ENTRY_DATE"),
                day("LAST_UPDATE_DATE"),
                integer("SAO_START_NUMBER", 4),
                text("SAO_START_SUFFIX", 2),
                integer("SAO_END_NUMBER", 4),
                text("SAO_END_SUFFIX", 2),
                text("SAO_TEXT", 90),
                integer("PAO_START_NUMBER", 4),
                text("PAO_START_SUFFIX", 2),
                integer("PAO_END_NUMBER", 4),
                text("PAO_END_SUFFIX", 2),
                text("PAO_TEXT", 90),
                integer("USRN", USRN),
                text("LEVEL", 30),
                text("POSTAL_ADDRESS", 1),
                text("POSTCODE", 8),
                text("POST_TOWN", 30),
                text("OFFICIAL_FLAG", 1),
                integer("CUSTODIAN_ONE"),
                integer("CUSTODIAN_TWO"),
                text("CAN_KEY", 14),
            ),
            ("lpi_key",),
        ),
        Layout(
            30,
            "successor",
            "successors",
            (
                integer("UPRN", UPRN, required=True),
                text("SUCC_KEY", 14, required=True),
                day("START_DATE"),
                day("END_DATE"),
                day("LAST_UPDATE_DATE"),
                day("ENTRY_DATE"),
                integer("SUCCESSOR", UPRN, required=True),
            ),
            ("succ_key",),
        ),
        Layout(
            31,
            "organisation",
            "organisations",
            (
                integer("UPRN", UPRN, required=True),
                text("ORG_KEY", 14, required=True),
                text("ORGANISATION", 100, required=True),
                text("LEGAL_NAME", 60),
                day("START_DATE"),
                day("END_DATE"),
                day("LAST_UPDATE_DATE"),
                day("ENTRY_DATE"),
            ),
            ("org_key",),
        ),
        Layout(
            32,
            "classification",
            "classifications",
            (
                integer("UPRN", UPRN, required=True),
                text("CLASS_KEY", 14, required=True),
                text("CLASSIFICATION_CODE", 6, required=True),
                text("CLASS_SCHEME", 60),
                decimal("SCHEME_VERSION"),
                day("START_DATE"),
                day("END_DATE"),
                day("LAST_UPDATE_DATE"),
                day("ENTRY_DATE"),
            ),
            ("class_key",),
        ),
    )
}

HEADER = (
    "CUSTODIAN_NAME",
    "LOCAL_CUSTODIAN_CODE",
    "PROCESS_DATE",
    "VOLUME_NUMBER",
    "ENTRY_DATE",
    "TIME_STAMP",
    "VERSION",
    "FILE_TYPE",
)
METADATA = (
    "GAZ_NAME",
    "GAZ_SCOPE",
    "TER_OF_USE",
    "LINKED_DATA",
    "GAZ_OWNER",
    "NGAZ_FREQ",
    "CUSTODIAN_NAME",
    "CUSTODIAN_UPRN",
    "LOCAL_CUSTODIAN_CODE",
    "CO_ORD_SYSTEM",
    "CO_ORD_UNIT",
    "META_DATE",
    "CLASS_SCHEME",
    "GAZ_DATE",
    "LANGUAGE",
    "CHARACTER_SET",
)
TRAILER = ("NEXT_VOLUME_NUMBER", "RECORD_COUNT", "ENTRY_DATE", "TIME_STAMP")


@dataclass(slots=True)
class DtfRecord:
    """One validated data record: its type, change, order, line and store-ready values."""

    record_type: int
    change_type: str
    pro_order: int
    line: int
    values: dict[str, Any]

    @property
    def layout(self) -> Layout:
        """The column map the record was read with."""
        return LAYOUTS[self.record_type]

    def key(self) -> tuple[Any, ...]:
        """The values that identify the row this record inserts, updates or deletes."""
        return tuple(self.values[name] for name in self.layout.key)


@dataclass
class Header:
    """The file's header record, with the file type it declares."""

    fields: dict[str, str]
    file_type: FileType
    volume_number: int


class DtfReader:
    """Streams one DTF 7.3 file: ``header`` is read on opening, records by iterating.

    After the iteration ends, ``trailer``, ``metadata``, ``counts`` and
    ``trailer_convention`` describe the file. Any problem raises
    :class:`FeedRejected`; a caller that applies records as they come must do so
    in a transaction it rolls back on that error.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self.metadata: dict[str, str] | None = None
        self.trailer: dict[str, str] | None = None
        self.counts: dict[str, int] = {}
        self.skipped: dict[str, int] = {}
        self.trailer_convention: str | None = None
        self._records = 0
        try:
            self._handle = path.open("r", encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise FeedRejected(
                "FILE_UNREADABLE", f"cannot open the file: {exc.strerror}", file=self.name
            ) from exc
        self._rows = self._numbered_rows()
        self.header = self._read_header()

    def close(self) -> None:
        """Release the file."""
        self._handle.close()

    def __enter__(self) -> DtfReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _numbered_rows(self) -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(self._handle, strict=True)
        try:
            for row in reader:
                if row:
                    yield reader.line_num, row
        except csv.Error as exc:
            raise FeedRejected(
                "FILE_UNREADABLE", f"not valid CSV: {exc}", file=self.name, line=reader.line_num
            ) from exc
        except UnicodeDecodeError as exc:
            raise FeedRejected(
                "FILE_UNREADABLE", "not UTF-8 text", file=self.name, line=reader.line_num + 1
            ) from exc

    def _fail(
        self, reason: str, message: str, line: int | None, field: str | None = None
    ) -> FeedRejected:
        return FeedRejected(reason, message, file=self.name, line=line, field=field)

    def _read_header(self) -> Header:
        first = next(self._rows, None)
        if first is None:
            raise self._fail("HEADER_INVALID", "the file is empty", None)
        line, row = first
        if row[0].strip() != "10":
            raise self._fail(
                "HEADER_INVALID",
                "the first record must be a header (10)",
                line,
                "RECORD_IDENTIFIER",
            )
        if len(row) != len(HEADER) + 1:
            raise self._fail(
                "HEADER_INVALID",
                f"a header has {len(HEADER) + 1} columns, this has {len(row)}",
                line,
            )
        fields = dict(zip(HEADER, (v.strip() for v in row[1:]), strict=True))
        file_type = FILE_TYPES.get(fields["FILE_TYPE"].upper())
        if file_type is None:
            raise self._fail(
                "HEADER_INVALID",
                f"FILE_TYPE {fields['FILE_TYPE']!r} is not F (full supply) or C (change-only "
                "update)",
                line,
                "FILE_TYPE",
            )
        try:
            volume = int(fields["VOLUME_NUMBER"] or "1")
        except ValueError as exc:
            raise self._fail(
                "HEADER_INVALID", "VOLUME_NUMBER is not a number", line, "VOLUME_NUMBER"
            ) from exc
        self._records = 1
        return Header(fields, file_type, volume)

    def __iter__(self) -> Iterator[DtfRecord]:
        full = self.header.file_type is FileType.FULL
        counts = self.counts
        for line, row in self._rows:
            self._records += 1
            if self.trailer is not None:
                raise self._fail("TRAILER_MISSING", "a record follows the trailer", line)
            ident = row[0].strip()
            try:
                record_type = int(ident)
            except ValueError:
                raise self._fail(
                    "RECORD_UNKNOWN",
                    f"record identifier {ident!r} is not a number",
                    line,
                    "RECORD_IDENTIFIER",
                ) from None
            layout = LAYOUTS.get(record_type)
            if layout is None:
                self._other_record(record_type, line, row)
                continue
            if len(row) != layout.width:
                raise self._fail(
                    "COLUMN_COUNT",
                    f"a DTF 7.3 {layout.name} record ({record_type}) has {layout.width} columns, "
                    f"this has {len(row)}",
                    line,
                )
            change = row[1]
            if change not in CHANGE_TYPES:
                raise self._fail(
                    "CHANGE_TYPE_INVALID",
                    f"change type {change!r} is not I, U or D",
                    line,
                    "CHANGE_TYPE",
                )
            if full and change != "I":
                raise self._fail(
                    "CHANGE_TYPE_INVALID",
                    f"a full supply sends every record as I, this one is {change!r}",
                    line,
                    "CHANGE_TYPE",
                )
            try:
                pro_order = int(row[2])
            except ValueError:
                raise self._fail(
                    "FIELD_INVALID", f"{row[2]!r} is not a number", line, "PRO_ORDER"
                ) from None
            try:
                values = [conv(v) for conv, v in zip(layout.converters, row[3:], strict=True)]
            except ValueError:
                raise self._field_error(layout, line, row) from None
            counts[layout.table] = counts.get(layout.table, 0) + 1
            yield DtfRecord(
                record_type,
                change,
                pro_order,
                line,
                dict(zip(layout.store_columns, values, strict=True)),
            )
        self._check_trailer()

    def _field_error(self, layout: Layout, line: int, row: list[str]) -> FeedRejected:
        for column, value in zip(layout.columns, row[3:], strict=True):
            try:
                column.convert(value)
            except ValueError as exc:
                detail = str(exc)
                if detail.startswith("invalid literal") or "Invalid isoformat" in detail:
                    detail = f"{value!r} is not valid"
                return self._fail("FIELD_INVALID", f"{layout.name} {detail}", line, column.name)
        return self._fail("FIELD_INVALID", f"{layout.name} record is invalid", line)

    def _other_record(self, record_type: int, line: int, row: list[str]) -> None:
        if record_type == 99:
            if len(row) != len(TRAILER) + 1:
                raise self._fail(
                    "COLUMN_COUNT",
                    f"a trailer has {len(TRAILER) + 1} columns, this has {len(row)}",
                    line,
                )
            self.trailer = dict(zip(TRAILER, (v.strip() for v in row[1:]), strict=True))
            self._trailer_line = line
        elif record_type == 29:
            if len(row) != len(METADATA) + 1:
                raise self._fail(
                    "COLUMN_COUNT",
                    f"a metadata record has {len(METADATA) + 1} columns, this has {len(row)}",
                    line,
                )
            self.metadata = dict(zip(METADATA, (v.strip() for v in row[1:]), strict=True))
        elif record_type in SKIPPED_RECORDS:
            key = str(record_type)
            self.skipped[key] = self.skipped.get(key, 0) + 1
        elif record_type == 10:
            raise self._fail("HEADER_INVALID", "a second header record", line, "RECORD_IDENTIFIER")
        else:
            raise self._fail(
                "RECORD_UNKNOWN",
                f"record type {record_type} is not a DTF 7.3 record",
                line,
                "RECORD_IDENTIFIER",
            )

    def _check_trailer(self) -> None:
        if self.trailer is None:
            raise self._fail(
                "TRAILER_MISSING", "the file has no trailer record (99); it may be truncated", None
            )
        line = self._trailer_line
        try:
            declared = int(self.trailer["RECORD_COUNT"])
        except ValueError:
            raise self._fail(
                "TRAILER_COUNT", "RECORD_COUNT is not a number", line, "RECORD_COUNT"
            ) from None
        with_ends = self._records
        between = self._records - 2
        if declared == with_ends:
            self.trailer_convention = "all records including header and trailer"
        elif declared == between:
            self.trailer_convention = "records between header and trailer"
        else:
            raise self._fail(
                "TRAILER_COUNT",
                f"the trailer declares {declared} records but the file holds {with_ends} "
                f"({between} between header and trailer); the file is rejected whole",
                line,
                "RECORD_COUNT",
            )

"""The SQL adapter: reads any legacy database through SQLAlchemy reflection.

Each stream of the mapping names a table, its key and a modified-time cursor
column. A read is incremental in keyset order ``(cursor, key)`` after the saved
cursor and never past the moment the sync began (less ``lag_seconds``, for
sources whose clocks or commits lag). Many-to-one ``joins`` add ``ALIAS.COLUMN``
values; one-to-many ``collections`` attach child rows as lists. Values reach the
mapping as JSON (dates as ISO strings), the same form kept as the raw record,
so a quarantined record can be re-mapped later from what was kept.

Options (``[sources.NAME.options]``): ``url`` (SQLAlchemy URL of the source),
``timezone`` (of the source's naive timestamps, default Europe/London),
``lag_seconds`` (default 0).
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Column,
    MetaData,
    Select,
    Table,
    and_,
    create_engine,
    or_,
    select,
    text,
)
from sqlalchemy.exc import NoSuchTableError, OperationalError, SQLAlchemyError

from adapters.base import BaseAdapter
from hub.contract import SourceRecord, StreamCursor, StreamSpec
from hub.errors import ConfigError, MappingError, SourceUnavailable
from hub.settings import SourceSettings
from mappings.engine import FieldRule, StreamMapping

_CHILD_CHUNK = 500
_PLAIN = (str, int, float, bool)
_PLAIN_OR_NONE = frozenset({*_PLAIN, type(None)})


def json_value(value: Any) -> Any:
    """A database value as JSON keeps it: ISO dates, exact decimals as strings."""
    if value is None or type(value) in _PLAIN:
        return value
    exact = _BY_TYPE.get(type(value))
    if exact is not None:
        return exact(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


# what json_value does to a value of exactly these types (subclasses go through its isinstance checks)
_BY_TYPE: dict[type, Callable[[Any], str]] = {datetime: datetime.isoformat, date: date.isoformat,
                                              time: time.isoformat, Decimal: str}


def _payloads(keys: list[str], rows: Iterable[Any], converted: tuple[int, ...]) -> list[dict[str, Any]]:
    """Rows as JSON keeps them, by column name (or ``ALIAS.COLUMN`` label): each value as :func:`json_value`
    gives it, plain values as they are.

    ``converted``: the columns whose type reads values that are not plain (dates, decimals): those are
    converted first, and a row whose values are then all plain is taken as it is (checked in C, without
    a Python step per value); any other row goes value by value.
    """
    payloads = []
    for row in rows:
        if converted:
            row = list(row)
            for i in converted:
                value = row[i]
                if value is not None:
                    row[i] = json_value(value)
        if not set(map(type, row)) <= _PLAIN_OR_NONE:
            row = [value if value is None or type(value) in _PLAIN else json_value(value) for value in row]
        payloads.append(dict(zip(keys, row)))  # noqa: B905 - a row has a value for every key
    return payloads


def _converted(columns: Iterable[Any]) -> tuple[int, ...]:
    """The positions of the columns whose values are read as something JSON does not keep as it is."""
    positions = []
    for i, column in enumerate(columns):
        try:
            python_type = column.type.python_type
        except NotImplementedError:  # unknown: the row's check converts its values if need be
            continue
        if python_type not in _PLAIN:
            positions.append(i)
    return tuple(positions)


class SqlAdapter(BaseAdapter):
    """Pulls the streams of a mapping file from a relational database."""

    def __init__(self, name: str, settings: SourceSettings) -> None:
        super().__init__(name, settings)
        url = self.option("url")
        if not url:
            raise ConfigError(f"source {name!r}: options.url is required for the SQL adapter")
        self.engine = create_engine(url)
        self.zone = ZoneInfo(self.option("timezone", "Europe/London"))
        self.lag = timedelta(seconds=float(self.option("lag_seconds", 0)))
        self._meta = MetaData()
        self.batch_size = settings.batch_size
        self._checked = False

    def close(self) -> None:
        """Close the source's connection pool."""
        self.engine.dispose()

    def can_read_ahead(self) -> bool:
        """A source a second process can open too: any but an in-memory SQLite database."""
        url = self.engine.url
        return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))

    def after_fork(self) -> None:
        """The reader opens connections of its own; the parent's pooled ones stay the parent's."""
        self.engine.dispose(close=False)

    def streams(self) -> list[StreamSpec]:
        """The mapping's streams, once every column the mapping reads is known to be in its table."""
        if not self._checked:
            for spec in self.mapping.streams.values():
                self.check_columns(spec)
            self._checked = True
        return super().streams()

    def check_columns(self, spec: StreamMapping) -> None:
        """MappingError (file, line, field) for the first rule reading a column its table does not have: a
        misspelt ``from`` would otherwise read nothing, and silently empty the field of every record."""
        try:
            base = self._table(spec.table)
            joined = {j.alias: self._table(j.table) for j in spec.joins}
            children = {c.name: self._table(c.table) for c in spec.collections}
        except ConfigError:  # a missing table: reading the stream reports it (after the streams before it)
            return

        def check(rules: list[FieldRule], table: Table) -> None:
            for rule in rules:
                if rule.each is not None:
                    check(rule.nested, children[rule.each])
                    continue
                for column in rule.columns:
                    alias, dot, name = column.partition(".")
                    owner, wanted = (joined[alias], name) if dot and alias in joined else (table, column)
                    if wanted not in owner.c:
                        raise MappingError(
                            f"stream {spec.name!r}: table {owner.name} has no column {wanted!r} "
                            f"(it has: {', '.join(c.name for c in owner.c)})",
                            file=self.mapping.file, line=rule.line, field=rule.target)

        check(spec.rules, base)

    def _table(self, name: str) -> Table:
        if name not in self._meta.tables:
            try:
                Table(name, self._meta, autoload_with=self.engine)
            except NoSuchTableError as exc:
                raise ConfigError(f"source {self.name!r}: table {name!r} does not exist") from exc
            except OperationalError as exc:
                raise SourceUnavailable(f"source {self.name!r} cannot be reached: {exc.orig}") from exc
        return self._meta.tables[name]

    def _column(self, table: Table, name: str, stream: str) -> Column[Any]:
        if name not in table.c:
            raise ConfigError(f"source {self.name!r} stream {stream!r}: {table.name} has no column {name!r}")
        return table.c[name]

    def _query(self, spec: StreamMapping, cursor: StreamCursor, until: datetime) -> Select[Any]:
        base = self._table(spec.table)
        key = self._column(base, spec.key, spec.name)
        columns: list[Any] = list(base.c)
        query_from: Any = base
        for join in spec.joins:
            other = self._table(join.table).alias(join.alias)
            cond = and_(*(self._column(base, left, spec.name) == other.c[right] for left, right in join.on.items()))
            query_from = query_from.outerjoin(other, cond)
            columns.extend(c.label(f"{join.alias}.{c.name}") for c in other.c)
        query = select(*columns).select_from(query_from)
        if spec.where:
            query = query.where(text(spec.where))
        if spec.cursor:
            modified = self._column(base, spec.cursor, spec.name)
            bound = (until - self.lag).astimezone(self.zone).replace(tzinfo=None)
            query = query.where(modified <= bound)
            if cursor.modified is not None:
                since = datetime.fromisoformat(cursor.modified)
                last_key = _as_key(cursor.key, key)
                query = query.where(or_(modified > since, and_(modified == since, key > last_key)))
            query = query.order_by(modified, key)
        else:
            if cursor.key is not None:
                query = query.where(key > _as_key(cursor.key, key))
            query = query.order_by(key)
        return query

    def pull(self, stream: str, cursor: StreamCursor, until: datetime) -> Iterator[SourceRecord]:
        """Yield the stream's rows after ``cursor`` and not after ``until``, in keyset order."""
        spec = self.mapping.streams[stream]
        query = self._query(spec, cursor, until)
        try:
            with self.engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=self.batch_size).execute(query)
                keys = list(map(str, result.keys()))
                converted = _converted(query.selected_columns)
                for rows in result.partitions():
                    payloads = _payloads(keys, rows, converted)
                    self._attach_collections(conn, spec, payloads)
                    for payload in payloads:
                        modified = payload.get(spec.cursor) if spec.cursor else None
                        yield SourceRecord(stream=stream, source_id=str(payload[spec.key]),
                                           payload=payload, modified=modified)
        except OperationalError as exc:
            raise SourceUnavailable(f"source {self.name!r} failed while reading {stream}: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise ConfigError(f"source {self.name!r} stream {stream!r}: {exc}") from exc

    def _attach_collections(self, conn: Any, spec: StreamMapping, payloads: list[dict[str, Any]]) -> None:
        for coll in spec.collections:
            child = self._table(coll.table)
            fk = self._column(child, coll.foreign_key, spec.name)
            keys = [p[spec.key] for p in payloads]
            grouped: dict[Any, list[dict[str, Any]]] = defaultdict(list)
            converted = _converted(child.c)
            for start in range(0, len(keys), _CHILD_CHUNK):
                query = select(child).where(fk.in_(keys[start:start + _CHILD_CHUNK]))
                order = [_order(child, o, spec.name, self) for o in coll.order_by]
                result = conn.execute(query.order_by(fk, *order))
                names = list(map(str, result.keys()))
                for values in _payloads(names, result, converted):
                    grouped[values[coll.foreign_key]].append(values)
            for payload in payloads:
                payload[coll.name] = grouped.get(payload[spec.key], [])


def _order(table: Table, spec: str, stream: str, adapter: SqlAdapter) -> Any:
    name, _, direction = spec.partition(" ")
    col = adapter._column(table, name, stream)
    return col.desc() if direction.strip().lower() == "desc" else col.asc()


def _as_key(value: str | None, column: Column[Any]) -> Any:
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return value
    return python_type(value) if python_type in (int, Decimal) and value is not None else value

"""The one seam for raw driver SQL: bulk inserts, updates and keyed lookups at migration volumes.

The pipeline and the golden-record writer (:mod:`hub.store.writer`) move tens of
thousands of rows a second; SQLAlchemy's per-row parameter handling costs more
than the write itself there, so these helpers hand rows straight to the DB-API
cursor, each value converted by its column's own bind processor (values stay
identical to what the ORM would store): ``executemany`` on SQLite, ``COPY ... FROM
STDIN`` on PostgreSQL for a batch of :data:`COPY_ROWS` rows or more. Inserts that must
answer their new ids use SQLAlchemy 2's own "insertmanyvalues" (:func:`insert_returning`).

Other ways to the driver, for statements where SQLAlchemy's execution costs more than the
database's answer: :func:`driver_rows` runs a statement and answers plain DB-API tuples
(identity's candidate lookups and its in-memory index); :class:`PreparedStatement` (a
SQLAlchemy statement compiled once per dialect and run on the caller's connection: a record
open, the access decision's facts) and :class:`DriverStatements` (``:name`` statements on a
raw autocommit PostgreSQL connection of their own: the delivery lanes).

Table and column names come from the ORM's metadata or the caller's constants, never from
input; values always travel as bound parameters (or COPY data). :func:`param_mark` and
:func:`driver_sql` are the one place that knows each driver's paramstyle.
"""

from __future__ import annotations

import re
import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from hub.store.db import Reader

CHUNK = 500
"""Values per ``IN (...)`` lookup."""

COPY_ROWS = 200
"""From this many rows a PostgreSQL bulk insert goes by ``COPY`` (below it, ``executemany`` costs less)."""


def param_mark(dialect: Dialect) -> str:
    """The DB-API parameter marker of the dialect's driver (``?`` for sqlite3, ``%s`` for psycopg)."""
    return "?" if dialect.paramstyle == "qmark" else "%s"


_NAMED = re.compile(r"(?<![:\w]):(\w+)")


def driver_sql(sql: str, dialect: Dialect) -> str:
    """A statement written with ``:name`` parameters, in the driver's own paramstyle (``%(name)s`` for psycopg;
    sqlite3 takes ``:name`` as written)."""
    if dialect.paramstyle in ("pyformat", "format"):
        return _NAMED.sub(r"%(\1)s", sql)
    return sql


def marks(session: Session, n: int) -> str:
    """``n`` parameter markers, comma-separated, for the session's driver."""
    return ", ".join([param_mark(session.get_bind().dialect)] * n)


def driver_rows(session: Session, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of one statement run straight on the driver, as the DB-API cursor gives them: plain tuples.

    ``sql`` writes a :func:`param_mark` for each value of ``params``; values are never part of the text.
    For reads of thousands of rows: SQLAlchemy's result rows cost more than such a query does. Values
    come back as the driver gives them (a date is text from sqlite3, a ``date`` from psycopg).
    """
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return cast("list[tuple[Any, ...]]", cursor.fetchall())
    finally:
        cursor.close()


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """``items`` in slices of ``size``."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def bulk_insert(session: Session, entity: Any, columns: Sequence[str], rows: list[list[Any]]) -> None:
    """executemany INSERT straight to the driver, values prepared by each column's own type.

    Each row lists its values in the order of ``columns`` (converted in place). The ORM's and
    Core's per-row parameter handling cost more than the write itself at migration volumes, and
    so did building a dict per row; the column types' bind processors keep values identical to
    what the ORM would store.
    """
    if not rows:
        return
    table = entity.__table__
    if len(rows) >= COPY_ROWS and session.get_bind().dialect.name == "postgresql":
        _copy(session, table, columns, rows)
        return
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks(session, len(columns))})"
    _executemany(session, sql, [table.c[c] for c in columns], rows)


def insert_rows(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Rows whose values are already in the form the driver takes (checked and converted by the caller), into
    ``table``: ``COPY`` on PostgreSQL from :data:`COPY_ROWS` rows, else one ``executemany``."""
    if not rows:
        return
    if len(rows) >= COPY_ROWS and conn.dialect.name == "postgresql":
        _copy_rows(conn, table, columns, rows)
        return
    mark = param_mark(conn.dialect)
    conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})",
                         list(rows))


def _copy(session: Session, table: Any, columns: Sequence[str], rows: list[list[Any]]) -> None:
    """PostgreSQL: the rows, each value converted by its column's type, by ``COPY ... FROM STDIN``."""
    _bind(session, [table.c[c] for c in columns], rows)
    _copy_rows(session.connection(), table.name, columns, rows)


def _copy_rows(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """PostgreSQL: ``rows`` into ``table`` by ``COPY ... FROM STDIN`` (psycopg adapts each value)."""
    cursor = conn.connection.cursor()
    try:
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


def insert_returning(session: Session, entity: Any, columns: Sequence[str], rows: list[list[Any]],
                     returning: Sequence[str]) -> list[tuple[Any, ...]]:
    """As :func:`bulk_insert`, answering the ``returning`` columns of every row inserted, in the rows' order.

    SQLAlchemy 2's "insertmanyvalues": one ``INSERT ... VALUES (...), (...) RETURNING`` per page
    of rows, so the ids come back with the insert instead of a second lookup of every row by its key.
    """
    if not rows:
        return []
    table = entity.__table__
    statement = insert(table).returning(*(table.c[c] for c in returning), sort_by_parameter_order=True)
    result = session.execute(statement, [dict(zip(columns, row, strict=True)) for row in rows])
    return [tuple(row) for row in result]


def rowids_of_last_insert(session: Session, entity: Any, count: int) -> list[int] | None:
    """SQLite: the ids of the ``count`` rows the connection has just inserted into ``entity``'s table with one
    ``executemany``, in insertion order; None when they cannot be known so (look them up instead).

    A row inserted without an id gets one more than the table's largest (the usual algorithm for an
    ``INTEGER PRIMARY KEY``), and the transaction holds the write lock from its first insert, so the rows
    take consecutive ids ending at ``last_insert_rowid()``. Once the largest possible id is taken, SQLite
    picks free ids at random instead; the table's largest id then differs from the last one inserted.
    Cheaper than ``INSERT ... RETURNING`` (:func:`insert_returning`): ``executemany`` binds rows in C.
    """
    ((last, largest),) = driver_rows(session, f"SELECT last_insert_rowid(), max(id) FROM {entity.__table__.name}")
    if last is None or last != largest:
        return None
    return list(range(last - count + 1, last + 1))


def bulk_update(session: Session, entity: Any, rows: list[dict[str, Any]]) -> None:
    """executemany UPDATE by primary key straight to the driver; each row names its key and new values."""
    if not rows:
        return
    table = entity.__table__
    (pk,) = table.primary_key.columns
    columns = [c for c in rows[0] if c != pk.name]
    mark = marks(session, 1)
    sql = f"UPDATE {table.name} SET {', '.join(f'{c} = {mark}' for c in columns)} WHERE {pk.name} = {mark}"
    _executemany(session, sql, [*(table.c[c] for c in columns), pk],
                 [[*(row[c] for c in columns), row[pk.name]] for row in rows])


def _executemany(session: Session, sql: str, columns: list[Any], rows: list[list[Any]]) -> None:
    _bind(session, columns, rows)
    cursor = session.connection().connection.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def _bind(session: Session, columns: list[Any], rows: list[list[Any]]) -> None:
    """Convert each row's values in place, as each column's type binds them."""
    conn = session.connection()
    processors = [c.type.dialect_impl(conn.dialect).bind_processor(conn.dialect) for c in columns]
    for i, proc in enumerate(processors):
        if proc is None:
            continue
        memo: dict[Any, Any] = {}  # a batch's rows share their timestamps: convert each once
        for row in rows:
            value = row[i]
            if isinstance(value, datetime):
                if value not in memo:
                    memo[value] = proc(value)
                row[i] = memo[value]
            else:
                row[i] = proc(value)


def by_stream_key(
    session: Session, columns: tuple[Any, ...], entity: Any, source: str, keys: Sequence[tuple[str, str]],
    where: str = "",
) -> Iterable[Any]:
    """Rows of ``entity`` for (stream, source id) keys of one source, looked up stream by stream.

    A plain ``IN`` per stream uses the (source, stream, source_id) index. ``where`` adds a
    literal SQL condition (a constant of the caller's code, never a value). Rows are plain
    tuples in the order of ``columns``.
    """
    by_stream: dict[str, list[str]] = defaultdict(list)
    for stream, source_id in keys:
        by_stream[stream].append(source_id)
    names = ", ".join(c.name for c in columns)
    select_sql = (f"SELECT {names} FROM {entity.__table__.name} "
                  f"WHERE source = {{m}} AND stream = {{m}} AND source_id IN ({{in}}){where}")
    for stream, ids in by_stream.items():
        yield from rows_in(session, select_sql, (source, stream), ids)


def rows_in(session: Session, select_sql: str, params: Sequence[Any], values: Sequence[Any]) -> Iterable[Any]:
    """Rows of ``select_sql`` for ``values``, :data:`CHUNK` at a time, straight to the driver.

    ``select_sql`` writes ``{m}`` for each marker of ``params`` and ``{in}`` where the values'
    markers go. SQLAlchemy's expanding ``IN`` coerced each of hundreds of values again on
    every call, which cost more than the indexed lookup itself; its result rows (a ``Row`` and a
    ``fetchone`` each) cost more again, so rows come back from the DB-API cursor as plain tuples.
    Only for columns whose values need no conversion by their type (text, integers).
    """
    mark = param_mark(session.get_bind().dialect)
    for chunk in chunks(values, CHUNK):
        yield from driver_rows(session, select_sql.format(m=mark, **{"in": ", ".join([mark] * len(chunk))}),
                               (*params, *chunk))


class DriverStatements:
    """Statements written with ``:name`` parameters, each committed at once, on one raw psycopg connection of
    ``engine`` (PostgreSQL), with ``setup`` run on each new connection.

    For a loop that runs a few small statements per batch: the ORM's and Core's per-statement work would
    cost more than the statements themselves. Errors are the driver's; :attr:`errors` names them.
    """

    def __init__(self, engine: Engine, setup: Sequence[str] = ()) -> None:
        self.engine = engine
        self.setup = tuple(setup)
        self.errors: tuple[type[BaseException], ...] = (engine.dialect.loaded_dbapi.Error,)
        self._raw: Any = None
        self._sql: dict[str, str] = {}

    def _conn(self) -> Any:
        if self._raw is None:
            self._raw = self.engine.raw_connection()
            conn = self._raw.driver_connection
            conn.autocommit = True
            for statement in self.setup:
                conn.execute(statement)
        return self._raw.driver_connection

    def _driver(self, sql: str) -> str:
        converted = self._sql.get(sql)
        if converted is None:
            converted = self._sql[sql] = driver_sql(sql, self.engine.dialect)
        return converted

    def all(self, sql: str, params: dict[str, Any]) -> list[Any]:
        """The statement's rows (binary: times and numbers arrive without text to parse)."""
        return list(self._conn().execute(self._driver(sql), params, binary=True).fetchall())

    def count(self, sql: str, params: dict[str, Any]) -> int:
        """The statement's row count."""
        return int(self._conn().execute(self._driver(sql), params).rowcount)

    def close(self) -> None:
        """Give the connection back (after an error: dropped, so the next statement reconnects)."""
        if self._raw is not None:
            try:
                self._raw.invalidate()
            finally:
                self._raw = None


class PreparedStatement:
    """A statement built once and run straight on the DB-API cursor of the caller's connection.

    For the hot paths (a record open runs three SELECTs, the audit writer two
    INSERTs per group commit): SQLAlchemy's execution — the compiled-cache
    lookup, an execution context, result metadata, a Row per row, a parameter
    dict per row — cost several times what SQLite takes to answer. This
    compiles the statement once per dialect and keeps only the conversions the
    dialect's types need (bind and result processors: SQLite timestamps
    written and parsed, JSON encoded, and decoded where the driver does not).
    It runs in the connection's transaction like any other statement; rows
    come back as plain tuples in the order of the SELECT list.
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._types = [column.type for column in getattr(statement, "selected_columns", ())]
        self._prepared: weakref.WeakKeyDictionary[Any, _Prepared] = weakref.WeakKeyDictionary()

    def all(self, reader: Reader, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Every row for ``params`` (values of the statement's bind parameters, by name)."""
        connection, prepared = self._on(reader)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(prepared.sql, prepared.arguments(params))
            rows = cursor.fetchall()
            processors = prepared.results(self._types, cursor.description)
        finally:
            cursor.close()
        if not processors:
            return rows  # type: ignore[return-value]
        converted = []
        for row in rows:
            values = list(row)
            for index, process in processors:
                if values[index] is not None:
                    values[index] = process(values[index])
            converted.append(tuple(values))
        return converted

    def many(self, reader: Reader, rows: list[dict[str, Any]]) -> None:
        """Run the statement once per row (``executemany``), each row giving the bind parameters by name."""
        if rows:
            connection, prepared = self._on(reader)
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.executemany(prepared.sql, [prepared.arguments(row) for row in rows])  # type: ignore[arg-type]
            finally:
                cursor.close()

    def _on(self, reader: Reader) -> tuple[Connection, _Prepared]:
        connection = reader.connection() if isinstance(reader, Session) else reader
        prepared = self._prepared.get(connection.dialect)
        if prepared is None:
            prepared = self._prepared[connection.dialect] = _Prepared(self.statement, connection.dialect)
        return connection, prepared


_MISSING = object()


class _Prepared:
    """One statement compiled for one dialect: its SQL, how to pass its parameters, how to read its columns."""

    def __init__(self, statement: Any, dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.positional = tuple(compiled.positiontup) if compiled.positional else None
        # Each parameter as the SQL names it, the key a caller gives its value by, the statement's own value
        # (a literal's) and the driver conversion of its type: SQLAlchemy's construct_params, less what these
        # statements never use, cost a tenth of a record open.
        self.params = [(name, bind.key, _MISSING if bind.required else bind.effective_value,
                        bind.type.dialect_impl(dialect).bind_processor(dialect))
                       for bind, name in compiled.bind_names.items()]
        self.dialect = dialect
        self._results: list[tuple[int, Any]] | None = None

    def arguments(self, params: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """The driver's parameters: the statement's own values (literals) with ``params``, each converted."""
        values = {}
        for name, key, default, process in self.params:
            value = params.get(key, default)
            if value is _MISSING:
                raise KeyError(f"no value for the bind parameter {key!r}")
            values[name] = process(value) if process is not None and value is not None else value
        if self.positional is not None:
            return tuple(values[name] for name in self.positional)
        return values

    def results(self, types: list[Any], description: Any) -> list[tuple[int, Any]]:
        """The columns that need converting, with their converters (from the first answer's column types: some
        processors depend on the driver's type codes)."""
        if self._results is None:
            processors = [type_.dialect_impl(self.dialect).result_processor(self.dialect, column[1])
                          for type_, column in zip(types, description, strict=True)]
            self._results = [(index, process) for index, process in enumerate(processors) if process is not None]
        return self._results

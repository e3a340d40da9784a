"""The declarative REST adapters: a source whose streams are declarations, and a target that posts events.

A council whose case system offers a REST/JSON API (its own, or one built over the
system's reporting database) writes two things and no Python: a mapping file in
``mappings/`` and the stream declarations in ``[sources.NAME.options]``. The mapping's
stream names the resource path (its ``table``), the primary key (``key``) and the
replication key (``cursor``); the options say how the API pages and authenticates:

.. code-block:: toml

    [sources.childrens_case]
    adapter = "adapters.rest:RestSource"
    mapping = "childrens_case.yaml"
    [sources.childrens_case.options]
    base_url = "http://127.0.0.1:8101/api/v1"
    auth = "oauth2"                      # none | bearer | oauth2 (client credentials)
    token_url = "http://127.0.0.1:8101/oauth/token"
    client_id = "carehub"
    client_secret_env = "CHILDRENS_CASE_SECRET"
    paging = "cursor"                    # page | offset | cursor | next_link
    records = "data"                     # where the list is in a page (dotted; "" = the page is a list)
    since_param = "modified_since"       # the server's filter: records modified at or after
    [sources.childrens_case.options.streams.placements]
    paging = "next_link"                 # any option, per stream

Paging, the cursor, retries with backoff (:mod:`adapters.http`) and quarantine live here
and in the hub, once. Where a product differs, subclass :class:`RestSource` and override
a hook (:meth:`RestSource.request_params`, :meth:`RestSource.records_of`,
:meth:`RestSource.next_page`, :meth:`RestSource.prepare`), the way singer-sdk streams do.

A pull asks for records modified at or after the saved cursor, keeps those strictly
after it in ``(modified, key)`` order and not after the moment the sync began, and
yields them in that order (``sorted = true`` when the server already sorts so; else a
stream's window is read, then sorted). A record without its key or replication key is
yielded under a key made from its content, and mapping it quarantines it with
``MISSING_KEY``: nothing is dropped. The next page is fetched on a thread while the
hub works on this one (``prefetch = false`` to read one page at a time).

:class:`RestTarget` posts each change event of the entity types it is given a path for,
with an ``Idempotency-Key`` header (the event's key, or a hook's), so a retried push is
recognised by the server; 429/503 are retried here, other 4xx are a permanent refusal
(a dead letter with the server's reason).
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from adapters.base import BaseAdapter
from adapters.http import HttpClient, RestRefused
from hub.contract import ChangeEvent, MappedRecord, PushResult, SourceRecord, StreamCursor, not_sent
from hub.delivery.config import TargetSettings
from hub.errors import ConfigError, QuarantineError, RetryableError
from hub.settings import SourceSettings

Paging = Literal["page", "offset", "cursor", "next_link"]
PAGING = ("page", "offset", "cursor", "next_link")
_UNKEYED = "_carehub_unkeyed"
# options read per stream (the source's value is the default)
_STREAM_OPTIONS: dict[str, Any] = {
    "path": None, "paging": "page", "records": "data", "page_size": 100, "since_param": "modified_since",
    "page_param": "page", "size_param": "page_size", "first_page": 1, "offset_param": "offset",
    "limit_param": "limit", "cursor_param": "cursor", "cursor_path": "next_cursor", "next_path": "links.next",
    "sorted": False, "params": {},
}


@dataclass(frozen=True, slots=True)
class RestStream:
    """One stream of a REST source: where it is read and how it pages (the declaration, resolved)."""

    name: str
    path: str
    primary_key: str
    replication_key: str | None
    paging: Paging
    records: str
    page_size: int
    since_param: str | None
    page_param: str
    size_param: str
    first_page: int
    offset_param: str
    limit_param: str
    cursor_param: str
    cursor_path: str
    next_path: str
    sorted: bool
    params: dict[str, Any] = field(default_factory=dict)


def dotted(value: Any, path: str) -> Any:
    """``a.b.c`` of a JSON value (None where a part is missing); the empty path is the value itself."""
    if not path:
        return value
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def instant(value: Any) -> datetime | None:
    """An ISO date-time (``Z`` or an offset; naive read as UTC) as an aware datetime; None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ahead(pages: Iterator[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    """The same pages, the next one fetched on a thread while the caller works on this one (the wait on the
    server overlaps the pipeline's work; at most one page is held ahead). Errors arrive in order."""
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def fetch() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        handoff.put(("page", page), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put(("end", None))
        except BaseException as exc:  # handed to the caller, raised there
            handoff.put(("error", exc))

    worker = threading.Thread(target=fetch, name="rest-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join(timeout=30)


def key_order(key: str | None) -> tuple[int, int, str]:
    """Keys in the order servers sort them: numbers numerically, before text keys in text order."""
    if key is None:
        return (0, 0, "")
    return (1, int(key), "") if key.isdigit() else (2, 0, key)


class RestSource(BaseAdapter):
    """Pulls the streams of a mapping file from a REST/JSON API; see the module for the declaration."""

    def __init__(self, name: str, settings: SourceSettings) -> None:
        super().__init__(name, settings)
        self.client = HttpClient.from_options(settings.options, f"source {name!r}")
        declared = settings.options.get("streams", {})
        unknown = set(declared) - set(self.mapping.streams)
        if unknown:
            raise ConfigError(f"source {name!r}: options.streams names streams the mapping lacks: {sorted(unknown)}")
        self.declarations = {s: self._declare(s, declared.get(s, {})) for s in self.mapping.streams}

    def _declare(self, stream: str, own: dict[str, Any]) -> RestStream:
        spec = self.mapping.streams[stream]
        unknown = set(own) - set(_STREAM_OPTIONS)
        if unknown:
            raise ConfigError(f"source {self.name!r} stream {stream!r}: unknown options {sorted(unknown)}")
        values = {k: own.get(k, self.settings.options.get(k, default)) for k, default in _STREAM_OPTIONS.items()}
        if values["paging"] not in PAGING:
            raise ConfigError(f"source {self.name!r} stream {stream!r}: paging is one of {', '.join(PAGING)}, "
                              f"not {values['paging']!r}")
        return RestStream(name=stream, path=str(values.pop("path") or spec.table), primary_key=spec.key,
                          replication_key=spec.cursor, **values)  # type: ignore[arg-type]

    # -- hooks -------------------------------------------------------------------------------------

    def request_params(self, stream: RestStream, cursor: StreamCursor) -> dict[str, Any]:
        """Query parameters of the first page: the stream's own, and the incremental filter."""
        params = dict(stream.params)
        if stream.since_param and cursor.modified:
            params[stream.since_param] = cursor.modified
        if stream.paging == "page":
            params[stream.page_param], params[stream.size_param] = stream.first_page, stream.page_size
        elif stream.paging == "offset":
            params[stream.offset_param], params[stream.limit_param] = 0, stream.page_size
        elif stream.paging in ("cursor", "next_link"):
            params[stream.size_param] = stream.page_size
        return params

    def records_of(self, stream: RestStream, body: Any) -> list[dict[str, Any]]:
        """The records of one page."""
        found = dotted(body, stream.records)
        if not isinstance(found, list):
            raise RetryableError(f"source {self.name!r} stream {stream.name!r}: a page without a list at "
                                 f"{stream.records!r}")
        return found

    def next_page(self, stream: RestStream, params: dict[str, Any], body: Any, headers: Any,
                  count: int) -> tuple[str, dict[str, Any]] | None:
        """The path and parameters of the page after this one, or None after the last."""
        if stream.paging == "page":
            if count < stream.page_size:
                return None
            return stream.path, {**params, stream.page_param: int(params[stream.page_param]) + 1}
        if stream.paging == "offset":
            if count < stream.page_size:
                return None
            return stream.path, {**params, stream.offset_param: int(params[stream.offset_param]) + count}
        if stream.paging == "cursor":
            token = dotted(body, stream.cursor_path)
            return (stream.path, {**params, stream.cursor_param: token}) if token else None
        link = dotted(body, stream.next_path) or _link_header(headers)
        return (str(link), {}) if link else None

    def prepare(self, stream: RestStream, record: dict[str, Any]) -> dict[str, Any]:
        """A record as kept and mapped (a product may flatten or rename here); the default keeps it as sent."""
        return record

    # -- the core ----------------------------------------------------------------------------------

    def pages(self, stream: RestStream, cursor: StreamCursor) -> Iterator[list[dict[str, Any]]]:
        """Every page of the stream after the cursor's filter, as the server sends them."""
        path: str = stream.path
        params = self.request_params(stream, cursor)
        while True:
            response = self.client.request("GET", path, params=params or None)
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError as exc:
                raise RetryableError(f"source {self.name!r}: a page of {stream.name} was not JSON") from exc
            records = self.records_of(stream, body)
            yield records
            following = self.next_page(stream, params, body, response.headers, len(records))
            if following is None:
                return
            path, params = following

    def pull(self, stream: str, cursor: StreamCursor, until: datetime) -> Iterator[SourceRecord]:
        """Records after ``cursor`` and not after ``until``, in ``(modified, key)`` order."""
        declared = self.declarations[stream]
        after = (instant(cursor.modified), key_order(cursor.key)) if cursor.modified or cursor.key else None
        floor = datetime.min.replace(tzinfo=UTC)
        kept: list[tuple[tuple[datetime, tuple[int, int, str]], SourceRecord]] = []
        pages = self.pages(declared, cursor)
        for page in (ahead(pages) if self.settings.options.get("prefetch", True) else pages):
            for raw in page:
                record = self._record(declared, self.prepare(declared, raw))
                moment = instant(record.modified) if declared.replication_key else None
                if declared.replication_key and record.modified is not None and moment is None:
                    moment = floor  # an unreadable modified time: kept, and quarantined when mapped
                if moment is not None and moment > until:
                    continue
                order = (moment or floor, key_order(record.source_id))
                if after is not None and order <= (after[0] or floor, after[1]):
                    continue
                if declared.sorted:
                    yield record
                else:
                    kept.append((order, record))
        kept.sort(key=lambda pair: pair[0])
        for _, record in kept:
            yield record

    def _record(self, stream: RestStream, payload: dict[str, Any]) -> SourceRecord:
        key = dotted(payload, stream.primary_key)
        modified = dotted(payload, stream.replication_key) if stream.replication_key else None
        if key is None or key == "" or (stream.replication_key and modified is None):
            digest = hashlib.sha1(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()  # noqa: S324
            missing = stream.primary_key if key in (None, "") else stream.replication_key
            return SourceRecord(stream.name, f"unkeyed-{digest}", {**payload, _UNKEYED: missing}, None)
        return SourceRecord(stream.name, str(key), payload, None if modified is None else str(modified))

    def map(self, record: SourceRecord) -> MappedRecord:
        """Apply the stream's mapping; a record that came without its key is quarantined first."""
        missing = record.payload.get(_UNKEYED)
        if missing:
            raise QuarantineError("MISSING_KEY", f"the record has no {missing!r}", field=str(missing))
        if record.modified is not None and self.declarations[record.stream].replication_key and \
                instant(record.modified) is None:
            raise QuarantineError("DATE_INVALID", f"modified time {record.modified!r} is not ISO 8601",
                                  field=self.declarations[record.stream].replication_key)
        return super().map(record)

    def can_read_ahead(self) -> bool:
        """A REST source can be read from a forked reader process (``hub.sync``: pull, map and validate there,
        on a second core, a batch ahead of the store)."""
        return True

    def after_fork(self) -> None:
        """The reader's own HTTP connections."""
        self.client.after_fork()

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()


def _link_header(headers: Any) -> str | None:
    """The ``rel="next"`` URL of an RFC 8288 Link header."""
    value = headers.get("Link") if headers is not None else None
    if not value:
        return None
    for part in str(value).split(","):
        url, _, rest = part.partition(";")
        if 'rel="next"' in rest or "rel=next" in rest:
            return url.strip().strip("<>")
    return None


class RestTarget:
    """Posts change events to a REST API, one request per event, with an idempotency key.

    Options: ``base_url`` and the auth keys of :class:`~adapters.http.HttpClient`;
    ``paths`` (entity type -> path; events of other types are accepted without being
    sent, receipt ``not sent``); ``receipt_path`` (where the server's id for what it
    made is in its answer, default ``id``); ``idempotency_header`` (default
    ``Idempotency-Key``).
    """

    def __init__(self, name: str, settings: TargetSettings) -> None:
        self.name = name
        self.settings = settings
        options = dict(settings.options)
        options.setdefault("timeout_seconds", settings.timeout_seconds)
        self.client = HttpClient.from_options(options, f"target {name!r}")
        self.paths: dict[str, str] = {str(k): str(v) for k, v in options.get("paths", {}).items()}
        if not self.paths:
            raise ConfigError(f"target {name!r} needs options.paths (entity type -> path)")
        self.receipt_path = str(options.get("receipt_path", "id"))
        self.header = str(options.get("idempotency_header", "Idempotency-Key"))

    # -- hooks -------------------------------------------------------------------------------------

    def body(self, event: ChangeEvent) -> dict[str, Any] | None:
        """The JSON the server is sent for an event (None: nothing to send); the default is the payload."""
        return {"id": event.entity_id, "version": event.version, "kind": event.kind, **event.payload}

    def idempotency_key(self, event: ChangeEvent) -> str:
        """The key the server recognises a repeat by; the default is the event's (entity id and version)."""
        return event.idempotency_key

    # -- the core ----------------------------------------------------------------------------------

    def push(self, batch: list[ChangeEvent]) -> list[PushResult]:
        """Send each event in order; a transient failure fails the rest of the batch (retried later)."""
        results: list[PushResult] = []
        for event in batch:
            path = self.paths.get(event.entity_type)
            body = self.body(event) if path else None
            if path is None or body is None:
                results.append(PushResult(event.event_id, True, receipt="not sent"))
                continue
            try:
                answer = self.client.json("POST", path, data=orjson.dumps(body), headers={
                    "Content-Type": "application/json", self.header: self.idempotency_key(event)})
            except RestRefused as exc:
                if exc.status == 409:
                    results.append(PushResult(event.event_id, True, receipt=str(dotted(exc.body, self.receipt_path))))
                else:
                    results.append(PushResult(event.event_id, False, error=exc.message, permanent=True))
                continue
            except RetryableError:
                if not results:
                    raise
                results.extend(not_sent(batch[len(results):]))
                break
            receipt = dotted(answer, self.receipt_path)
            results.append(PushResult(event.event_id, True, receipt=None if receipt is None else str(receipt)))
        return results

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

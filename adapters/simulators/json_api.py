"""What the case-system simulators share: a JSON API on loopback with OAuth2, paging and injected failures.

:class:`JsonApi` keeps collections of records (each with an ``id`` and a
``modified_at``), serves them at ``/api/v1/<collection>`` filtered by
``modified_since`` and ordered by ``(modified_at, id)``, in any of the paging
styles the REST adapter reads: ``page``/``page_size``, ``offset``/``limit``, an
opaque ``cursor`` (``next_cursor`` in the page), and a ``links.next`` URL in every
page. ``/oauth/token`` grants client-credentials tokens; with ``require_auth`` every
API call needs one. :meth:`JsonApi.fail_next` answers the next requests with 429 or
503 (``Retry-After: 0``), or a permanent status, so retries can be tested at the
protocol boundary. Subclasses add routes (``route``) for what else they serve.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import secrets
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from hub.loopback import LoopbackServer, SimulatorHandler

Handler = Callable[["Request"], tuple[int, Any]]


class Request:
    """One request as a route sees it: method, path parts, query, JSON body and headers."""

    def __init__(self, method: str, path: str, query: dict[str, list[str]], body: Any, headers: Any) -> None:
        self.method, self.path, self.query, self.body, self.headers = method, path, query, body, headers

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default


class JsonApi(LoopbackServer):
    """A JSON API simulator; see the module."""

    name = "json-api"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, require_auth: bool = True,
                 client_id: str = "carehub", client_secret: str = "demo-secret") -> None:  # noqa: S107 - synthetic
        self.collections: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        # Each collection in (modified, id) order, kept while the collection is unchanged (version, size).
        self._writes = 0
        self._ordered: dict[str, tuple[tuple[int, int], list[dict[str, Any]], list[str]]] = {}
        self.lock = threading.RLock()
        self.require_auth = require_auth
        self.client_id, self.client_secret = client_id, client_secret
        self.tokens: set[str] = set()
        self.failures: list[int] = []
        self.refused: dict[str, str] = {}  # idempotency key -> the reason a POST with it is refused (422)
        self.idempotent: dict[str, tuple[int, Any]] = {}  # idempotency key -> the answer first given
        self.requests = 0
        self.routes: list[tuple[str, str, Handler]] = []
        self._clock = datetime.now(UTC) - timedelta(days=1)
        self._ids: dict[str, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        super().__init__(_Handler, host, port)

    # -- where -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's root URL."""
        return self.origin

    @property
    def base_url(self) -> str:
        """The API's base URL (the collections are under it)."""
        return f"{self.url}/api/v1"

    @property
    def token_url(self) -> str:
        """The OAuth2 token endpoint."""
        return f"{self.url}/oauth/token"

    # -- data --------------------------------------------------------------------------------------

    def tick(self) -> str:
        """A strictly rising modified time (a millisecond a write at least)."""
        with self.lock:
            self._clock = max(self._clock + timedelta(milliseconds=1), datetime.now(UTC) - timedelta(days=1))
            return self._clock.isoformat(timespec="microseconds")

    def next_id(self, prefix: str) -> str:
        """A new id with a prefix, zero padded so text order is number order."""
        return f"{prefix}{next(self._ids[prefix]):07d}"

    def put(self, collection: str, record: dict[str, Any]) -> dict[str, Any]:
        """Add or replace a record (it must carry ``id``); stamps ``modified_at``."""
        with self.lock:
            stored = {**record, "modified_at": self.tick()}
            self.collections[collection][str(record["id"])] = stored
            self._writes += 1
            return stored

    def put_raw(self, collection: str, record: dict[str, Any]) -> None:
        """Add a record exactly as given (no stamping): how a test plants a malformed one."""
        with self.lock:
            key = str(record.get("id") or f"raw-{len(self.collections[collection])}")
            self.collections[collection][key] = record
            self._writes += 1

    def touch(self, collection: str, record_id: str, **changes: Any) -> dict[str, Any]:
        """Change a record's fields and stamp it as modified now."""
        with self.lock:
            return self.put(collection, {**self.collections[collection][record_id], **changes})

    def get(self, collection: str, record_id: str) -> dict[str, Any] | None:
        """One record, or None."""
        return self.collections.get(collection, {}).get(record_id)

    def count(self, collection: str) -> int:
        """How many records a collection holds."""
        return len(self.collections.get(collection, {}))

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` API requests with ``status`` (429/503 carry Retry-After: 0)."""
        with self.lock:
            self.failures.extend([status] * times)

    def refuse(self, key: str, reason: str) -> None:
        """Refuse (422, for good) a POST carrying this idempotency key."""
        with self.lock:
            self.refused[key] = reason

    def create(self, collection: str, request: Request) -> tuple[int, Any]:
        """``POST /api/v1/<collection>``: a new record from the body, once per ``Idempotency-Key``.

        A repeated key answers what the first request was answered (the record is not made again)."""
        key = request.headers.get("Idempotency-Key")
        with self.lock:
            if key and key in self.refused:
                return 422, {"error": self.refused[key]}
            if key and key in self.idempotent:
                return self.idempotent[key]
            if not isinstance(request.body, dict):
                return 400, {"error": "the body must be a JSON object"}
            record = self.put(collection, {**request.body, "id": self.next_id(collection[:2].upper()),
                                           "idempotency_key": key})
            answer = (201, record)
            if key:
                self.idempotent[key] = answer
            return answer

    def route(self, method: str, prefix: str, handler: Handler) -> None:
        """Serve ``method`` requests whose path starts with ``prefix`` by ``handler``."""
        self.routes.append((method, prefix, handler))

    # -- serving -----------------------------------------------------------------------------------

    def list_page(self, collection: str, request: Request) -> dict[str, Any]:
        """One page of a collection, in any paging style (see the module)."""
        since = request.arg("modified_since")
        ordered, stamps = self._in_order(collection)
        if since:
            first = bisect.bisect_left(stamps, since)
            records = [r for r in ordered[first:] if isinstance(r.get("modified_at"), str)]
        else:
            records = ordered
        size = int(request.arg("page_size") or request.arg("limit") or 100)
        if request.arg("offset") is not None:
            start = int(request.arg("offset") or 0)
        elif request.arg("page") is not None:
            start = (int(request.arg("page") or 1) - 1) * size
        elif request.arg("cursor"):
            start = int(base64.urlsafe_b64decode(str(request.arg("cursor")).encode()).decode())
        else:
            start = 0
        page = records[start:start + size]
        more = start + size < len(records)
        body: dict[str, Any] = {"data": page, "meta": {"total": len(records)}, "next_cursor": None,
                                "links": {"next": None}}
        if more:
            token = base64.urlsafe_b64encode(str(start + size).encode()).decode()
            body["next_cursor"] = token
            query = {"cursor": token, "page_size": size, **({"modified_since": since} if since else {})}
            body["links"]["next"] = f"{self.base_url}/{collection}?{urlencode(query)}"
        return body

    def _in_order(self, collection: str) -> tuple[list[dict[str, Any]], list[str]]:
        """The collection sorted by (modified, id), and its modified times (sorted once per change, not per page:
        a server's index, so paging a large collection costs what a real API's would)."""
        with self.lock:
            records = self.collections.get(collection, {})
            stamp = (self._writes, len(records))
            cached = self._ordered.get(collection)
            if cached is not None and cached[0] == stamp:
                return cached[1], cached[2]
            ordered = sorted(records.values(), key=lambda r: (str(r.get("modified_at") or ""), str(r.get("id") or "")))
            stamps = [str(r.get("modified_at") or "") for r in ordered]
            self._ordered[collection] = (stamp, ordered, stamps)
            return ordered, stamps

    def handle(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        """Route one request; returns status, JSON body and headers."""
        if request.method == "POST" and request.path == "/oauth/token":
            return self._token(request)
        self.requests += 1
        with self.lock:
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            headers = {"Retry-After": "0"} if failure in (429, 503) else {}
            return failure, {"error": "injected failure"}, headers
        if self.require_auth and not self._authorised(request):
            return 401, {"error": "a bearer token is required"}, {"WWW-Authenticate": "Bearer"}
        for method, prefix, handler in self.routes:
            if request.method == method and request.path.startswith(prefix):
                status, body = handler(request)
                return status, body, {}
        if request.method == "GET" and request.path.startswith("/api/v1/"):
            parts = request.path.removeprefix("/api/v1/").strip("/").split("/")
            if len(parts) == 1 and parts[0] in self.collections:
                return 200, self.list_page(parts[0], request), {}
            if len(parts) == 2 and parts[0] in self.collections:
                found = self.get(parts[0], parts[1])
                return (200, found, {}) if found else (404, {"error": f"no {parts[0]} {parts[1]}"}, {})
        if request.method == "POST" and request.path.startswith("/api/v1/"):
            parts = request.path.removeprefix("/api/v1/").strip("/").split("/")
            if len(parts) == 1:
                status, body = self.create(parts[0], request)
                return status, body, {}
        return 404, {"error": f"no route {request.method} {request.path}"}, {}

    def _authorised(self, request: Request) -> bool:
        header = str(request.headers.get("Authorization") or "")
        return header.startswith("Bearer ") and header.removeprefix("Bearer ") in self.tokens

    def _token(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        header = str(request.headers.get("Authorization") or "")
        form = request.body if isinstance(request.body, dict) else {}
        client = (form.get("client_id"), form.get("client_secret"))
        if header.startswith("Basic "):
            user, _, secret = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
            client = (user, secret)
        if form.get("grant_type") != "client_credentials" or client != (self.client_id, self.client_secret):
            return 401, {"error": "invalid_client"}, {}
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}, {}


class _Handler(SimulatorHandler[JsonApi]):
    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            if "application/x-www-form-urlencoded" in str(self.headers.get("Content-Type")):
                body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            else:
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    self._send(400, {"error": "the body is not JSON"}, {})
                    return
        request = Request(method, parts.path, parse_qs(parts.query), body, self.headers)
        try:
            status, answer, headers = self.server.simulator.handle(request)
        except Exception as exc:  # noqa: BLE001 - a simulator answers 500 like a real server would
            status, answer, headers = 500, {"error": f"{type(exc).__name__}: {exc}"}, {}
        self._send(status, answer, headers)

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        data = orjson.dumps(body) if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("POST")

    def do_PATCH(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("PATCH")

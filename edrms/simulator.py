"""A CMIS 1.1 repository on loopback: the council's EDRMS as the hub meets it, with synthetic documents.

:class:`Repository` holds documents, relationships and a change log in memory.
:class:`CmisSimulator` serves it over the two CMIS bindings councils run:

* the **browser binding** (JSON) at ``/alfresco/api/-default-/public/cmis/versions/1.1/browser``, laid out as
  Alfresco lays it out (repository info under ``-default-``, object actions posted to ``.../root``):
  ``cmisselector=query|contentChanges|object|content|relationships``, ``cmisaction=query|update|
  createRelationship``; properties succinct or in full; dates as epoch milliseconds;
* the **AtomPub binding** (XML) at ``.../versions/1.1/atom``: the service document with its collections and
  URI templates, queries posted as ``application/cmisquery+xml`` answered by an Atom feed, objects by id.

CMIS-SQL covers what a crawler asks: ``SELECT * | columns FROM cmis:document [WHERE ...] [ORDER BY ...]``
with ``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``, ``IS [NOT] NULL`` and ``AND`` over strings and
``TIMESTAMP '...'`` literals. Pages are capped at ``page_limit`` items whatever ``maxItems`` asks.
Updates need the current ``changeToken`` (a stale one is a 409 ``updateConflict``). The change log
(``capabilityChanges = properties`` when switched on, ``none`` as Alfresco ships) is paged by token and,
as real repositories do, repeats the entry at a page boundary on the next page.

:func:`synthetic_documents` writes a few hundred documents about a population of subjects: most with the
council's identifiers in custom properties, some without any, some with wrong or stale ones, some about
sealed people. ``carehub simulate edrms --port P`` runs it alone.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import json
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from lxml import etree

from hub.loopback import LoopbackServer, SimulatorHandler

SERVICE_PATH = "/alfresco/api/-default-/public/cmis/versions/1.1"
BROWSER_PATH = f"{SERVICE_PATH}/browser"
ATOM_PATH = f"{SERVICE_PATH}/atom"
REPOSITORY_ID = "-default-"
ROOT_ID = "workspace://SpacesStore/00000000-0000-4000-8000-000000000001"
DOCUMENT_TYPE = "D:sc:caseDocument"
SOCIAL_CARE_ASPECT = "P:sc:socialCare"

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "app": "http://www.w3.org/2007/app",
    "cmis": "http://docs.oasis-open.org/ns/cmis/core/200908/",
    "cmisra": "http://docs.oasis-open.org/ns/cmis/restatom/200908/",
}

# Each custom property and its CMIS type; the council's metadata lives in the sc: namespace.
CUSTOM_PROPERTIES: dict[str, str] = {
    "sc:personId": "string",       # the hub's person id, once the hub has written it back
    "sc:nhsNumber": "string",
    "sc:clientId": "string",       # the legacy social care system's client id
    "sc:caseId": "string",
    "sc:documentType": "string",
    "sc:recordClass": "string",
    "sc:retentionDate": "datetime",
    "sc:legalHold": "boolean",
    "sc:author": "string",
}
STANDARD_TYPES: dict[str, str] = {
    "cmis:objectId": "id", "cmis:baseTypeId": "id", "cmis:objectTypeId": "id", "cmis:name": "string",
    "cmis:createdBy": "string", "cmis:creationDate": "datetime", "cmis:lastModifiedBy": "string",
    "cmis:lastModificationDate": "datetime", "cmis:changeToken": "string", "cmis:contentStreamMimeType": "string",
    "cmis:contentStreamLength": "integer", "cmis:contentStreamFileName": "string", "cmis:versionSeriesId": "id",
    "cmis:isLatestVersion": "boolean", "cmis:secondaryObjectTypeIds": "id", "cmis:sourceId": "id",
    "cmis:targetId": "id", "cmis:description": "string",
}
PROPERTY_TYPES = {**STANDARD_TYPES, **CUSTOM_PROPERTIES}
MULTI_VALUED = {"cmis:secondaryObjectTypeIds"}
XML_PROPERTY = {"id": "propertyId", "string": "propertyString", "datetime": "propertyDateTime",
                "boolean": "propertyBoolean", "integer": "propertyInteger", "decimal": "propertyDecimal"}


class CmisFault(Exception):
    """A CMIS exception as the browser binding names it (``objectNotFound``, ``updateConflict``...)."""

    STATUS = {"invalidArgument": 400, "permissionDenied": 403, "unauthorized": 401, "objectNotFound": 404,
              "notSupported": 405, "updateConflict": 409, "runtime": 500}

    def __init__(self, exception: str, message: str) -> None:
        super().__init__(message)
        self.exception, self.message = exception, message

    @property
    def status(self) -> int:
        """The HTTP status the binding answers with."""
        return self.STATUS.get(self.exception, 500)


def epoch_ms(moment: datetime) -> int:
    """A datetime as the browser binding sends it: milliseconds since the epoch."""
    return int(moment.timestamp() * 1000)


def from_epoch_ms(value: int) -> datetime:
    """Milliseconds since the epoch as a UTC datetime."""
    return datetime.fromtimestamp(value / 1000, UTC)


def iso(moment: datetime) -> str:
    """A datetime as CMIS XML and CMIS-SQL write it: ``2025-01-01T00:00:00.000Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    """An ISO 8601 instant (``Z`` or an offset) as a UTC datetime."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class StoredObject:
    """A document or relationship the repository holds: its properties and content-stream bytes."""

    properties: dict[str, Any]
    content: bytes = b""

    @property
    def object_id(self) -> str:
        """cmis:objectId."""
        return str(self.properties["cmis:objectId"])


@dataclass(frozen=True)
class ChangeLogEntry:
    """One entry of the change log: the token it sits at, what changed and when."""

    token: int
    object_id: str
    change_type: str
    change_time: datetime


@dataclass
class Repository:
    """The repository's state: objects, the change log and the knobs tests turn.

    ``page_limit`` caps every page; ``interleave_edits`` makes that many coming updates meet a user's edit
    saved just before them (a 409 for a token read earlier); ``changes`` switches the change log on (capabilityChanges
    ``properties``) or off (``none``, as Alfresco ships); ``credentials`` are the Basic user and
    password and ``bearer`` a token the repository accepts (neither set: anyone may call).
    """

    page_limit: int = 100
    changes: bool = True
    credentials: tuple[str, str] | None = None
    bearer: str | None = None
    objects: dict[str, StoredObject] = field(default_factory=dict)
    change_log: list[ChangeLogEntry] = field(default_factory=list)
    updates: int = 0
    conflicts: int = 0
    interleave_edits: int = 0
    _order: list[tuple[float, str]] = field(default_factory=list)
    _order_dirty: bool = True
    clock: datetime = field(default_factory=lambda: datetime(2024, 1, 1, tzinfo=UTC))
    lock: threading.RLock = field(default_factory=threading.RLock)

    # -- writing -----------------------------------------------------------------------------

    def tick(self) -> datetime:
        """The repository's clock: now (to the millisecond, as CMIS carries times), and always after the
        last change."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self.clock = max(self.clock + timedelta(milliseconds=1), now)
        return self.clock

    def _log(self, object_id: str, change_type: str, when: datetime) -> None:
        token = len(self.change_log) + 1
        self.change_log.append(ChangeLogEntry(token, object_id, change_type, when))

    def add_document(self, name: str, properties: dict[str, Any], *, content: bytes = b"",
                     mime_type: str = "application/pdf", created: datetime | None = None,
                     object_id: str | None = None) -> StoredObject:
        """Create a document (a new version series) with custom properties; logged as ``created``."""
        with self.lock:
            when = created or self.tick()
            self.clock = max(self.clock, when)
            oid = object_id or f"workspace://SpacesStore/{uuid.uuid4()}"
            props: dict[str, Any] = {
                "cmis:objectId": oid, "cmis:baseTypeId": "cmis:document", "cmis:objectTypeId": DOCUMENT_TYPE,
                "cmis:secondaryObjectTypeIds": [SOCIAL_CARE_ASPECT], "cmis:name": name,
                "cmis:createdBy": properties.get("sc:author") or "system", "cmis:creationDate": when,
                "cmis:lastModifiedBy": properties.get("sc:author") or "system", "cmis:lastModificationDate": when,
                "cmis:changeToken": "1", "cmis:contentStreamMimeType": mime_type,
                "cmis:contentStreamLength": len(content), "cmis:contentStreamFileName": name,
                "cmis:versionSeriesId": oid.rsplit("/", 1)[-1], "cmis:isLatestVersion": True,
            }
            for key, value in properties.items():
                if key not in CUSTOM_PROPERTIES:
                    raise ValueError(f"unknown property {key}")
                props[key] = value
            stored = StoredObject(props, content)
            self.objects[oid] = stored
            self._order_dirty = True
            self._log(oid, "created", when)
            return stored

    def get(self, object_id: str) -> StoredObject:
        """The object, or an ``objectNotFound`` fault."""
        found = self.objects.get(object_id)
        if found is None:
            raise CmisFault("objectNotFound", f"object {object_id} not found")
        return found

    def update(self, object_id: str, values: dict[str, Any], change_token: str | None,
               by: str = "carehub") -> StoredObject:
        """Set properties; a ``changeToken`` other than the current one is an ``updateConflict``."""
        with self.lock:
            stored = self.get(object_id)
            if change_token is not None and self.interleave_edits > 0:  # a user saved the document just before
                self.interleave_edits -= 1
                stored.properties["cmis:changeToken"] = str(int(stored.properties["cmis:changeToken"]) + 1)
                stored.properties["cmis:lastModificationDate"] = self.tick()
                self._order_dirty = True
                self._log(object_id, "updated", stored.properties["cmis:lastModificationDate"])
            if change_token is not None and change_token != stored.properties["cmis:changeToken"]:
                self.conflicts += 1
                raise CmisFault("updateConflict", f"object {object_id} is not current (change token "
                                                  f"{change_token}, now {stored.properties['cmis:changeToken']})")
            for key, value in values.items():
                if key not in CUSTOM_PROPERTIES and key not in ("cmis:name", "cmis:description"):
                    raise CmisFault("invalidArgument", f"property {key} is not updatable")
                stored.properties[key] = _typed(key, value)
            when = self.tick()
            stored.properties["cmis:lastModificationDate"] = when
            stored.properties["cmis:lastModifiedBy"] = by
            stored.properties["cmis:changeToken"] = str(int(stored.properties["cmis:changeToken"]) + 1)
            self.updates += 1
            self._order_dirty = True
            self._log(object_id, "updated", when)
            return stored

    def touch(self, object_id: str, values: dict[str, Any], by: str = "records.officer") -> StoredObject:
        """A user's edit in the EDRMS (no change token: the user holds the current version)."""
        return self.update(object_id, values, None, by=by)

    def create_relationship(self, type_id: str, source_id: str, target_id: str) -> StoredObject:
        """A relationship between two objects that exist."""
        with self.lock:
            self.get(source_id)
            self.get(target_id)
            when = self.tick()
            oid = f"workspace://SpacesStore/{uuid.uuid4()}"
            props = {"cmis:objectId": oid, "cmis:baseTypeId": "cmis:relationship", "cmis:objectTypeId": type_id,
                     "cmis:sourceId": source_id, "cmis:targetId": target_id, "cmis:creationDate": when,
                     "cmis:lastModificationDate": when, "cmis:changeToken": "1", "cmis:createdBy": "carehub"}
            stored = StoredObject(props)
            self.objects[oid] = stored
            self._log(oid, "created", when)
            return stored

    def relationships(self, object_id: str) -> list[StoredObject]:
        """Relationships whose source or target is the object."""
        self.get(object_id)
        return [o for o in self.objects.values() if o.properties["cmis:baseTypeId"] == "cmis:relationship"
                and object_id in (o.properties["cmis:sourceId"], o.properties["cmis:targetId"])]

    # -- reading -----------------------------------------------------------------------------

    def documents(self) -> list[StoredObject]:
        """Every document."""
        return [o for o in self.objects.values() if o.properties["cmis:baseTypeId"] == "cmis:document"]

    def query(self, statement: str, max_items: int | None, skip_count: int
              ) -> tuple[list[dict[str, Any]], int | None, bool]:
        """Run a CMIS-SQL statement; one page of selected properties, the total (None when not counted) and
        whether more follow."""
        parsed = parse_query(statement)
        size = min(max_items or self.page_limit, self.page_limit)
        with self.lock:
            if parsed.table in ("cmis:document", DOCUMENT_TYPE) and parsed.order == [
                    ("cmis:lastModificationDate", False), ("cmis:objectId", False)]:
                matched, more = self._by_modification(parsed, skip_count, size)
                return [self._select(o, parsed) for o in matched], None, more
            base = "cmis:relationship" if parsed.table == "cmis:relationship" else "cmis:document"
            rows = [o for o in self.objects.values() if o.properties["cmis:baseTypeId"] == base
                    and (parsed.table in (base, DOCUMENT_TYPE) or o.properties["cmis:objectTypeId"] == parsed.table)
                    and all(cond(o.properties) for cond in parsed.conditions)]
            for column, descending in reversed(parsed.order):
                rows.sort(key=lambda o, c=column: _sort_key(o.properties.get(c)),  # type: ignore[misc]
                          reverse=descending)
            page = rows[skip_count:skip_count + size]
            return [self._select(o, parsed) for o in page], len(rows), skip_count + len(page) < len(rows)

    @staticmethod
    def _select(stored: StoredObject, parsed: ParsedQuery) -> dict[str, Any]:
        return {k: v for k, v in stored.properties.items() if parsed.columns is None or k in parsed.columns}

    def _by_modification(self, parsed: ParsedQuery, skip: int, size: int) -> tuple[list[StoredObject], bool]:
        """Documents in (modification time, id) order from an index, as a crawler's keyset query reads them."""
        if self._order_dirty:
            self._order = sorted((o.properties["cmis:lastModificationDate"].timestamp(), o.object_id)
                                 for o in self.documents())
            self._order_dirty = False
        start = 0
        for prop, op, value in parsed.comparisons:
            if prop == "cmis:lastModificationDate" and op in (">=", ">") and isinstance(value, datetime):
                start = bisect.bisect_left(self._order, (value.timestamp(), ""))
        matched: list[StoredObject] = []
        skipped = 0
        for _, oid in itertools.islice(self._order, start, None):
            stored = self.objects[oid]
            if not all(cond(stored.properties) for cond in parsed.conditions):
                continue
            if skipped < skip:
                skipped += 1
                continue
            if len(matched) == size:
                return matched, True
            matched.append(stored)
        return matched, False

    def content_changes(self, token: str | None, max_items: int | None) -> tuple[list[ChangeLogEntry], str, bool]:
        """Change-log entries from ``token`` (inclusive: the boundary entry repeats), the token to ask for next
        and whether more follow; ``notSupported`` while the log is off."""
        if not self.changes:
            raise CmisFault("notSupported", "the change log is not enabled (audit.cmischangelog.enabled=false)")
        with self.lock:
            start = int(token) if token else 1
            size = min(max_items or self.page_limit, self.page_limit)
            page = self.change_log[start - 1:start - 1 + size]
            more = start - 1 + size < len(self.change_log)
            latest = str(page[-1].token if page else len(self.change_log) + 1)
            return page, latest, more

    def latest_change_token(self) -> str:
        """The token of the newest change-log entry."""
        return str(len(self.change_log))


def _typed(key: str, value: Any) -> Any:
    kind = PROPERTY_TYPES.get(key, "string")
    if value in (None, ""):
        return None
    if kind == "datetime":
        if isinstance(value, datetime):
            return value
        text = str(value)
        return from_epoch_ms(int(text)) if text.lstrip("-").isdigit() else parse_iso(text)
    if kind == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if kind == "integer":
        return int(value)
    return str(value)


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, datetime):
        return (1, value.timestamp())
    return (1, value)


# -- CMIS-SQL ---------------------------------------------------------------------------------

@dataclass
class ParsedQuery:
    """A CMIS-SQL statement as the simulator runs it."""

    columns: set[str] | None
    table: str
    conditions: list[Callable[[dict[str, Any]], bool]]
    order: list[tuple[str, bool]]
    comparisons: list[tuple[str, str, Any]] = field(default_factory=list)


_QUERY = re.compile(r"^\s*SELECT\s+(?P<cols>.+?)\s+FROM\s+(?P<table>[\w:]+)(?:\s+(?!WHERE\b|ORDER\b)\w+)?"
                    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>.+?))?\s*$", re.I | re.S)
_CONDITION = re.compile(r"^\s*(?P<prop>[\w:]+)\s*(?:(?P<op><=|>=|<>|=|<|>)\s*"
                        r"(?P<value>TIMESTAMP\s+'[^']*'|'(?:[^']|'')*'|-?\d+(?:\.\d+)?|TRUE|FALSE)"
                        r"|IS\s+(?P<not>NOT\s+)?NULL)\s*$", re.I)


def parse_query(statement: str) -> ParsedQuery:
    """Parse the CMIS-SQL subset; ``invalidArgument`` for anything else."""
    found = _QUERY.match(statement)
    if not found:
        raise CmisFault("invalidArgument", "not a CMIS-SQL SELECT statement")
    cols = found["cols"].strip()
    columns = None if cols == "*" else {c.strip() for c in cols.split(",")}
    conditions = []
    comparisons: list[tuple[str, str, Any]] = []
    if found["where"]:
        for part in re.split(r"\s+AND\s+", found["where"], flags=re.I):
            conditions.append(_condition(part, comparisons))
    order = []
    if found["order"]:
        for part in found["order"].split(","):
            words = part.split()
            order.append((words[0], len(words) > 1 and words[1].upper() == "DESC"))
    return ParsedQuery(columns, found["table"], conditions, order, comparisons)


def _condition(text: str, comparisons: list[tuple[str, str, Any]]) -> Callable[[dict[str, Any]], bool]:
    found = _CONDITION.match(text)
    if not found:
        raise CmisFault("invalidArgument", f"unsupported condition: {text.strip()}")
    prop = found["prop"]
    if found["op"] is None:
        wanted_null = found["not"] is None
        return lambda p: (p.get(prop) in (None, [])) == wanted_null
    raw = found["value"]
    value: Any
    if raw.upper().startswith("TIMESTAMP"):
        value = parse_iso(raw.split("'")[1])
    elif raw.startswith("'"):
        value = raw[1:-1].replace("''", "'")
    elif raw.upper() in ("TRUE", "FALSE"):
        value = raw.upper() == "TRUE"
    else:
        value = float(raw)
    op = found["op"]
    comparisons.append((prop, op, value))
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b, "<>": lambda a, b: a != b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
    test = compare[op]

    def check(props: dict[str, Any]) -> bool:
        have = props.get(prop)
        if have is None:
            return False
        try:
            return test(have, value)
        except TypeError:
            return False
    return check


# -- JSON and XML forms of objects --------------------------------------------------------------

def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return epoch_ms(value)
    return value


def object_json(props: dict[str, Any], succinct: bool, allowable: bool = False) -> dict[str, Any]:
    """An object as the browser binding answers it (succinct or with full property definitions)."""
    body: dict[str, Any]
    if succinct:
        body = {"succinctProperties": {k: _json_value(v) for k, v in props.items()}}
    else:
        body = {"properties": {k: {"id": k, "localName": k.split(":", 1)[-1], "displayName": k, "queryName": k,
                                   "type": PROPERTY_TYPES.get(k, "string"),
                                   "cardinality": "multi" if k in MULTI_VALUED else "single",
                                   "value": _json_value(v)} for k, v in props.items()}}
    if allowable:
        body["allowableActions"] = {"canGetProperties": True, "canUpdateProperties": True,
                                    "canCreateRelationship": True, "canGetContentStream": True,
                                    "canGetObjectRelationships": True}
    return body


def _xml_value(value: Any) -> str:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _atom_entry(parent: etree._Element | None, props: dict[str, Any], base: str) -> etree._Element:
    tag = f"{{{NS['atom']}}}entry"
    entry = etree.SubElement(parent, tag) if parent is not None else etree.Element(tag, nsmap=NS)
    oid = str(props["cmis:objectId"])
    etree.SubElement(entry, f"{{{NS['atom']}}}id").text = f"urn:uuid:{oid.rsplit('/', 1)[-1]}"
    etree.SubElement(entry, f"{{{NS['atom']}}}title").text = str(props.get("cmis:name") or oid)
    modified = props.get("cmis:lastModificationDate")
    etree.SubElement(entry, f"{{{NS['atom']}}}updated").text = iso(modified) if modified else ""
    self_url = f"{base}/id?{urlencode({'id': oid})}"
    for rel in ("self", "edit"):
        etree.SubElement(entry, f"{{{NS['atom']}}}link", rel=rel, href=self_url,
                         type="application/atom+xml;type=entry")
    if props.get("cmis:baseTypeId") == "cmis:document":
        etree.SubElement(entry, f"{{{NS['atom']}}}content", src=f"{base}/content?{urlencode({'id': oid})}",
                         type=str(props.get("cmis:contentStreamMimeType") or "application/octet-stream"))
    obj = etree.SubElement(entry, f"{{{NS['cmisra']}}}object")
    container = etree.SubElement(obj, f"{{{NS['cmis']}}}properties")
    for key, value in props.items():
        kind = PROPERTY_TYPES.get(key, "string")
        element = etree.SubElement(container, f"{{{NS['cmis']}}}{XML_PROPERTY[kind]}",
                                   propertyDefinitionId=key, queryName=key)
        for item in value if isinstance(value, list) else ([] if value is None else [value]):
            etree.SubElement(element, f"{{{NS['cmis']}}}value").text = _xml_value(item)
    return entry


def _xml(element: etree._Element) -> bytes:
    return bytes(etree.tostring(element, xml_declaration=True, encoding="UTF-8"))


# -- HTTP ---------------------------------------------------------------------------------------

class _CmisHandler(SimulatorHandler["CmisSimulator"]):
    @property
    def repo(self) -> Repository:
        return self.server.simulator.repository

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), "application/json; charset=UTF-8")

    def _fault(self, fault: CmisFault, atom: bool) -> None:
        if atom:
            self._send(fault.status, fault.message.encode(), "text/plain; charset=UTF-8")
        else:
            self._json(fault.status, {"exception": fault.exception, "message": fault.message})

    def _authorised(self) -> bool:
        repo = self.repo
        if repo.credentials is None and repo.bearer is None:
            return True
        header = self.headers.get("Authorization", "")
        if repo.bearer is not None and header == f"Bearer {repo.bearer}":
            return True
        if repo.credentials is not None and header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
            return (user, password) == repo.credentials
        return False

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        atom = url.path.startswith(ATOM_PATH)
        if not self._authorised():
            self._send(401, b"", "text/plain", {"WWW-Authenticate": 'Basic realm="Alfresco"'})
            return
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if url.path.startswith(BROWSER_PATH):
                if method == "POST":
                    params.update(self._form())
                self._browser(method, url.path[len(BROWSER_PATH):], params)
            elif atom:
                self._atom(method, url.path[len(ATOM_PATH):], params)
            else:
                self._json(404, {"exception": "objectNotFound", "message": f"no such path {url.path}"})
        except CmisFault as fault:
            self._fault(fault, atom)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self._route("POST")

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        self._route("PUT")

    def _form(self) -> dict[str, str]:
        body = self._body()
        kind = self.headers.get("Content-Type", "")
        if kind.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {kind}\r\n\r\n".encode() + body)
            form: dict[str, str] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if name:
                    payload = part.get_payload(decode=True)
                    form[str(name)] = payload.decode() if isinstance(payload, bytes) else str(payload or "")
            return form
        return {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}

    # -- browser binding --------------------------------------------------------------------

    def _base(self) -> str:
        return f"http://{self.headers.get('Host') or '127.0.0.1'}"

    def repository_info(self) -> dict[str, Any]:
        base = self._base()
        repo = self.repo
        return {
            "repositoryId": REPOSITORY_ID, "repositoryName": "Ashcombe Council EDRMS (simulated)",
            "repositoryDescription": "Synthetic social care documents", "vendorName": "Alfresco",
            "productName": "Alfresco Community (Care Hub simulator)", "productVersion": "6.1.2",
            "rootFolderId": ROOT_ID, "latestChangeLogToken": repo.latest_change_token(),
            "cmisVersionSupported": "1.1", "changesIncomplete": False, "changesOnType": ["cmis:document"],
            "principalIdAnonymous": "guest", "principalIdAnyone": "GROUP_EVERYONE",
            "thinClientURI": f"{base}/share/page/document-details?nodeRef=",
            "capabilities": {"capabilityChanges": "properties" if repo.changes else "none",
                             "capabilityQuery": "metadataonly", "capabilityJoin": "none",
                             "capabilityContentStreamUpdatability": "anytime", "capabilityACL": "none"},
            "repositoryUrl": f"{base}{BROWSER_PATH}", "rootFolderUrl": f"{base}{BROWSER_PATH}/root",
        }

    def _browser(self, method: str, rest: str, params: dict[str, str]) -> None:
        succinct = params.get("succinct", "false").lower() == "true"
        selector, action = params.get("cmisselector"), params.get("cmisaction")
        if method == "GET" and rest in ("", "/") and selector is None:
            self._json(200, {REPOSITORY_ID: self.repository_info()})
            return
        if selector == "repositoryInfo":
            self._json(200, {REPOSITORY_ID: self.repository_info()})
            return
        if selector == "query" or action == "query":
            self._query_json(params, succinct)
            return
        if selector == "contentChanges":
            self._changes_json(params, succinct)
            return
        object_id = params.get("objectId")
        if rest.startswith("/root") and object_id is None and selector in (None, "object"):
            object_id = ROOT_ID
            if object_id not in self.repo.objects:
                self._json(200, object_json({"cmis:objectId": ROOT_ID, "cmis:baseTypeId": "cmis:folder",
                                             "cmis:objectTypeId": "cmis:folder", "cmis:name": "Company Home"},
                                            succinct))
                return
        if action == "update":
            values = _form_properties(params)
            stored = self.repo.update(_required(params, "objectId"), values, params.get("changeToken"))
            self._json(200, object_json(stored.properties, succinct))
            return
        if action == "createRelationship":
            values = _form_properties(params)
            stored = self.repo.create_relationship(str(values.get("cmis:objectTypeId") or "R:sc:relatedTo"),
                                                   str(values.get("cmis:sourceId")), str(values.get("cmis:targetId")))
            self._json(201, object_json(stored.properties, succinct))
            return
        if action is not None:
            raise CmisFault("notSupported", f"action {action} is not supported")
        if object_id is None:
            raise CmisFault("invalidArgument", "objectId is required")
        stored = self.repo.get(object_id)
        if selector in (None, "object", "properties"):
            body = object_json(stored.properties, succinct,
                               params.get("includeAllowableActions", "").lower() == "true")
            self._json(200, body if selector != "properties" else body.get("properties", body))
        elif selector == "content":
            self._send(200, stored.content, str(stored.properties.get("cmis:contentStreamMimeType")))
        elif selector == "relationships":
            rels = self.repo.relationships(object_id)
            self._json(200, {"objects": [object_json(r.properties, succinct) for r in rels],
                             "numItems": len(rels), "hasMoreItems": False})
        else:
            raise CmisFault("notSupported", f"selector {selector} is not supported")

    def _query_json(self, params: dict[str, str], succinct: bool) -> None:
        statement = params.get("q") or params.get("statement")
        if not statement:
            raise CmisFault("invalidArgument", "q is required")
        rows, total, more = self.repo.query(statement, _int(params.get("maxItems")), _int(params.get("skipCount")) or 0)
        self._json(200, {"results": [object_json(r, succinct) for r in rows], "numItems": total, "hasMoreItems": more})

    def _changes_json(self, params: dict[str, str], succinct: bool) -> None:
        entries, token, more = self.repo.content_changes(params.get("changeLogToken"), _int(params.get("maxItems")))
        with_props = params.get("includeProperties", "false").lower() == "true"
        objects = []
        for entry in entries:
            stored = self.repo.objects.get(entry.object_id)
            props = (stored.properties if stored is not None and with_props
                     else {"cmis:objectId": entry.object_id})
            body = object_json(props, succinct)
            body["changeEventInfo"] = {"changeType": entry.change_type, "changeTime": epoch_ms(entry.change_time)}
            objects.append(body)
        self._json(200, {"objects": objects, "hasMoreItems": more, "changeLogToken": token,
                         "numItems": len(self.repo.change_log)})

    # -- AtomPub ----------------------------------------------------------------------------

    def _atom(self, method: str, rest: str, params: dict[str, str]) -> None:
        base = f"{self._base()}{ATOM_PATH}"
        if method == "GET" and rest in ("", "/"):
            self._send(200, _xml(self._service_document(base)), "application/atomsvc+xml;charset=UTF-8")
        elif method == "POST" and rest == "/query":
            self._atom_query(base)
        elif method == "GET" and rest == "/id":
            stored = self.repo.get(_required(params, "id"))
            self._send(200, _xml(_atom_entry(None, stored.properties, base)), "application/atom+xml;type=entry")
        elif method == "PUT" and rest == "/id":
            self._atom_update(base, _required(params, "id"), params.get("changeToken"))
        elif method == "GET" and rest == "/content":
            stored = self.repo.get(_required(params, "id"))
            self._send(200, stored.content, str(stored.properties.get("cmis:contentStreamMimeType")))
        else:
            raise CmisFault("notSupported", f"{method} {rest or '/'} is not supported")

    def _service_document(self, base: str) -> etree._Element:
        info = self.repository_info()
        service = etree.Element(f"{{{NS['app']}}}service", nsmap=NS)
        workspace = etree.SubElement(service, f"{{{NS['app']}}}workspace")
        etree.SubElement(workspace, f"{{{NS['atom']}}}title").text = info["repositoryName"]
        ri = etree.SubElement(workspace, f"{{{NS['cmisra']}}}repositoryInfo")
        for key in ("repositoryId", "repositoryName", "repositoryDescription", "vendorName", "productName",
                    "productVersion", "rootFolderId", "latestChangeLogToken", "cmisVersionSupported"):
            etree.SubElement(ri, f"{{{NS['cmis']}}}{key}").text = str(info[key])
        caps = etree.SubElement(ri, f"{{{NS['cmis']}}}capabilities")
        for key, value in info["capabilities"].items():
            etree.SubElement(caps, f"{{{NS['cmis']}}}{key}").text = str(value)
        for kind, href in (("root", f"{base}/children?id={ROOT_ID}"), ("types", f"{base}/types"),
                           ("query", f"{base}/query"), ("checkedout", f"{base}/checkedout")):
            coll = etree.SubElement(workspace, f"{{{NS['app']}}}collection", href=href)
            etree.SubElement(coll, f"{{{NS['cmisra']}}}collectionType").text = kind
            etree.SubElement(coll, f"{{{NS['atom']}}}title").text = kind
        template = etree.SubElement(workspace, f"{{{NS['cmisra']}}}uritemplate")
        etree.SubElement(template, f"{{{NS['cmisra']}}}template").text = f"{base}/id?id={{id}}"
        etree.SubElement(template, f"{{{NS['cmisra']}}}type").text = "objectbyid"
        etree.SubElement(template, f"{{{NS['cmisra']}}}mediatype").text = "application/atom+xml;type=entry"
        return service

    def _atom_query(self, base: str) -> None:
        try:
            query = etree.fromstring(self._body())
        except etree.XMLSyntaxError as exc:
            raise CmisFault("invalidArgument", f"query is not XML: {exc}") from exc
        statement = query.findtext("cmis:statement", namespaces=NS)
        if not statement:
            raise CmisFault("invalidArgument", "cmis:statement is required")
        max_items = _int(query.findtext("cmis:maxItems", namespaces=NS))
        skip = _int(query.findtext("cmis:skipCount", namespaces=NS)) or 0
        rows, total, more = self.repo.query(statement, max_items, skip)
        feed = etree.Element(f"{{{NS['atom']}}}feed", nsmap=NS)
        etree.SubElement(feed, f"{{{NS['atom']}}}title").text = "query"
        etree.SubElement(feed, f"{{{NS['atom']}}}updated").text = iso(datetime.now(UTC))
        if total is not None:
            etree.SubElement(feed, f"{{{NS['cmisra']}}}numItems").text = str(total)
        if more:
            etree.SubElement(feed, f"{{{NS['atom']}}}link", rel="next", href=f"{base}/query",
                             type="application/atom+xml;type=feed")
        for row in rows:
            _atom_entry(feed, row, base)
        self._send(201, _xml(feed), "application/atom+xml;type=feed")

    def _atom_update(self, base: str, object_id: str, change_token: str | None) -> None:
        try:
            entry = etree.fromstring(self._body())
        except etree.XMLSyntaxError as exc:
            raise CmisFault("invalidArgument", f"entry is not XML: {exc}") from exc
        values: dict[str, Any] = {}
        for prop in entry.iterfind("cmisra:object/cmis:properties/*", namespaces=NS):
            key = prop.get("propertyDefinitionId")
            if key == "cmis:changeToken":
                change_token = prop.findtext("cmis:value", namespaces=NS)
                continue
            if key:
                items = [v.text for v in prop.iterfind("cmis:value", namespaces=NS)]
                values[key] = items[0] if items else None
        stored = self.repo.update(object_id, values, change_token)
        self._send(200, _xml(_atom_entry(None, stored.properties, base)), "application/atom+xml;type=entry")


def _int(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError as exc:
        raise CmisFault("invalidArgument", f"{value!r} is not an integer") from exc


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise CmisFault("invalidArgument", f"{name} is required")
    return value


_PROPERTY_ID = re.compile(r"^propertyId\[(\d+)\]$")
_PROPERTY_VALUE = re.compile(r"^propertyValue\[(\d+)\](?:\[(\d+)\])?$")


def _form_properties(params: dict[str, str]) -> dict[str, Any]:
    """``propertyId[n]``/``propertyValue[n]`` (or ``propertyValue[n][m]`` for multi-valued) pairs."""
    ids: dict[int, str] = {}
    values: dict[int, Any] = {}
    for key, value in params.items():
        if found := _PROPERTY_ID.match(key):
            ids[int(found[1])] = value
        elif found := _PROPERTY_VALUE.match(key):
            n = int(found[1])
            if found[2] is None:
                values[n] = value
            else:
                values.setdefault(n, []).append(value)
    return {ids[n]: values.get(n) for n in sorted(ids)}


class CmisSimulator(LoopbackServer):
    """The repository served on loopback (port 0 picks a free port); a context manager."""

    name = "cmis"

    def __init__(self, repository: Repository | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.repository = repository or Repository()
        super().__init__(_CmisHandler, host, port)

    @property
    def browser_url(self) -> str:
        """The browser binding's service URL."""
        return f"{self.origin}{BROWSER_PATH}"

    @property
    def atom_url(self) -> str:
        """The AtomPub binding's service document URL."""
        return f"{self.origin}{ATOM_PATH}"


# -- synthetic documents ------------------------------------------------------------------------

@dataclass(frozen=True)
class Subject:
    """A person the council's documents are about, with the identifiers the EDRMS may carry."""

    given: str
    family: str
    birth_date: date | None
    person_id: str | None = None
    nhs_number: str | None = None
    client_id: str | None = None
    case_ids: tuple[str, ...] = ()
    stale_ids: tuple[str, ...] = ()
    sealed: bool = False


DOCUMENT_KINDS: tuple[tuple[str, str, str], ...] = (
    ("Child in need plan", "cin_plan", "childrens"),
    ("Child protection conference minutes", "cp_conference", "childrens"),
    ("Looked-after review", "lac_review", "looked_after_child"),
    ("Placement agreement", "placement_agreement", "looked_after_child"),
    ("Pathway plan", "pathway_plan", "looked_after_child"),
    ("Care Act needs assessment", "needs_assessment", "adults"),
    ("Support plan", "support_plan", "adults"),
    ("Safeguarding enquiry report", "s42_enquiry", "adults"),
    ("Financial assessment", "financial_assessment", "adults"),
    ("Court report", "court_report", "childrens"),
)
AUTHORS = ("amira.khan", "owen.price", "beth.evans", "sam.ali", "helen.clarke")


def synthetic_documents(repository: Repository, subjects: Sequence[Subject], count: int = 300, *,
                        seed: int = 19, start: datetime | None = None) -> dict[str, int]:
    """Add ``count`` documents about ``subjects``; the counts of each kind of identification written.

    Kinds: ``person_id`` (the hub's id), ``nhs_number``, ``client_id`` (legacy), ``case_id`` alone,
    ``none`` (title and description only: an orphan), ``wrong`` (an id no one has), ``conflict`` (NHS
    number of one subject, client id of another), ``stale`` (an id the hub has since merged away).
    Some modification times are shared by several documents, as bulk imports leave them.
    """
    rng = random.Random(seed)
    when = start or datetime(2024, 1, 1, 9, tzinfo=UTC)
    kinds: dict[str, int] = {}
    weights = (("person_id", 20), ("nhs_number", 18), ("client_id", 18), ("case_id", 10), ("none", 10),
               ("wrong", 6), ("conflict", 5), ("stale", 5), ("all", 8))
    names, cum = [k for k, _ in weights], [w for _, w in weights]
    for n in range(count):
        subject = subjects[rng.randrange(len(subjects))]
        kind = rng.choices(names, cum)[0]
        if kind == "stale" and not subject.stale_ids:
            kind = "client_id"
        if kind == "case_id" and not subject.case_ids:
            kind = "nhs_number"
        if kind in ("nhs_number", "conflict") and not subject.nhs_number:
            kind = "client_id"
        if kind == "client_id" and not subject.client_id:
            kind = "none"
        title, doc_type, record_class = DOCUMENT_KINDS[rng.randrange(len(DOCUMENT_KINDS))]
        props: dict[str, Any] = {"sc:documentType": doc_type, "sc:author": AUTHORS[rng.randrange(len(AUTHORS))]}
        if rng.random() < 0.5:
            props["sc:recordClass"] = record_class
        if kind in ("person_id", "all") and subject.person_id:
            props["sc:personId"] = subject.person_id
        if kind in ("nhs_number", "all") and subject.nhs_number:
            props["sc:nhsNumber"] = subject.nhs_number
        if kind in ("client_id", "all") and subject.client_id:
            props["sc:clientId"] = subject.client_id
        if kind in ("case_id", "all") and subject.case_ids:
            props["sc:caseId"] = subject.case_ids[rng.randrange(len(subject.case_ids))]
        if kind == "wrong":
            props["sc:clientId"] = f"X{rng.randrange(10**6, 10**7)}"
        if kind == "conflict":
            other = subjects[(subjects.index(subject) + 1) % len(subjects)]
            props["sc:nhsNumber"] = subject.nhs_number
            props["sc:clientId"] = other.client_id or f"X{rng.randrange(10**6, 10**7)}"
        if kind == "stale":
            props["sc:personId"] = subject.stale_ids[0]
        born = subject.birth_date.strftime("%d/%m/%Y") if subject.birth_date else ""
        name = f"{title} - {subject.given} {subject.family} ({born}).pdf" if kind == "none" else \
            f"{title} {n:05d}.pdf"
        if rng.random() < 0.85:  # a bulk import stamps several documents with one time
            when += timedelta(seconds=rng.randrange(1, 3600))
        body = f"%PDF-1.4 synthetic document {n} ({doc_type})".encode()
        repository.add_document(name, props, content=body, created=when)
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def synthetic_subjects(count: int = 60, *, seed: int = 7) -> list[Subject]:
    """Made-up subjects with legacy client ids and test-range NHS numbers, for the simulator alone."""
    from adapters.simulators.uk_names import FAMILY_NAMES, GIVEN_FEMALE, GIVEN_MALE
    from health_link.simulator import synthetic_nhs_number

    rng = random.Random(seed)
    subjects = []
    for n in range(count):
        pool = GIVEN_FEMALE if n % 2 else GIVEN_MALE
        born = date(rng.randint(1940, 2020), rng.randint(1, 12), rng.randint(1, 28))
        subjects.append(Subject(
            given=rng.choice(pool[-1]), family=FAMILY_NAMES[rng.randrange(len(FAMILY_NAMES))], birth_date=born,
            nhs_number=synthetic_nhs_number(5000 + n), client_id=str(100000 + n),
            case_ids=(f"CASE-{100000 + n}",), sealed=n % 25 == 0))
    return subjects


def serve(host: str = "127.0.0.1", port: int = 0, documents: int = 300, *, page_limit: int = 100,
          changes: bool = True, subjects: Iterable[Subject] | None = None,
          announce: Callable[[str], None] = print) -> None:
    """Run the simulator in the foreground with synthetic documents until interrupted (``carehub simulate
    edrms``): prints the browser binding's and AtomPub's service URLs."""
    repository = Repository(page_limit=page_limit, changes=changes)
    synthetic_documents(repository, list(subjects or synthetic_subjects()), documents)
    simulator = CmisSimulator(repository, host=host, port=port)
    announce(f"EDRMS (CMIS 1.1) simulator: {len(repository.documents())} documents, page limit {page_limit}, "
             f"change log {'on' if changes else 'off'}")
    announce(f"browser binding: {simulator.browser_url}")
    announce(f"AtomPub:         {simulator.atom_url}")
    simulator.serve_forever()

"""A CMIS 1.1 client: the browser binding (JSON) first, AtomPub (XML, lxml) for repositories that offer only that.

:func:`connect` reads the service URL and returns a :class:`Repository` speaking whichever binding answered:
a JSON document keyed by repository id is the browser binding, an ``app:service`` document AtomPub
(SharePoint on-premises offers only CMIS 1.0 AtomPub). Both give the same typed answers:
:class:`RepositoryInfo`, :class:`QueryPage` (``maxItems``/``skipCount``/``hasMoreItems``),
:class:`CmisObject` (properties with Python types; content-stream metadata), :class:`ChangesPage`.

:meth:`Repository.set_properties` updates with the object's change token and, when the repository says the
object is no longer current (409 ``updateConflict``), reads it again and retries with the new token.
Authentication is Basic or a bearer token. Every ``requests`` and ``lxml`` error, and every CMIS error
status, becomes a hub error in one place (:meth:`Transport.send`), grouped by what the caller does next.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import quote

import orjson
import requests
from lxml import etree

from hub.errors import ConfigError, Conflict, NotFound, SourceUnavailable

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "app": "http://www.w3.org/2007/app",
    "cmis": "http://docs.oasis-open.org/ns/cmis/core/200908/",
    "cmisra": "http://docs.oasis-open.org/ns/cmis/restatom/200908/",
}


class CmisUnavailable(SourceUnavailable):
    """The repository could not be reached, timed out, or answered 5xx/429: try again later."""

    code = "CAREHUB-E701"


class CmisNotFound(NotFound):
    """The repository has no such object (``objectNotFound``)."""

    code = "CAREHUB-E702"


class CmisConflict(Conflict):
    """The object changed since it was read (``updateConflict``), and stayed changing over every retry."""

    code = "CAREHUB-E703"


class CmisRefused(ConfigError):
    """The repository refused the hub's credentials (401) or the action (403): fix the account."""

    code = "CAREHUB-E704"


class CmisInvalid(ConfigError):
    """The repository refused the request as invalid or unsupported (400, 405), or answered what CMIS
    does not allow: a bug or a repository the hub does not fit."""

    code = "CAREHUB-E705"


# -- values -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RepositoryInfo:
    """What the repository says about itself (getRepositoryInfo)."""

    repository_id: str
    name: str
    vendor: str
    product: str
    version: str
    cmis_version: str
    root_folder_id: str
    latest_change_token: str | None
    capability_changes: str
    capability_query: str
    thin_client_uri: str | None = None

    @property
    def changes_available(self) -> bool:
        """True when getContentChanges may be used (capabilityChanges is not ``none``)."""
        return self.capability_changes not in ("", "none")


@dataclass(frozen=True)
class CmisObject:
    """One object: its properties with Python types (datetimes aware, UTC)."""

    properties: dict[str, Any]

    @property
    def object_id(self) -> str:
        """cmis:objectId."""
        return str(self.properties["cmis:objectId"])

    @property
    def change_token(self) -> str | None:
        """cmis:changeToken: what an update must quote."""
        token = self.properties.get("cmis:changeToken")
        return None if token is None else str(token)

    @property
    def modified(self) -> datetime | None:
        """cmis:lastModificationDate."""
        value = self.properties.get("cmis:lastModificationDate")
        return value if isinstance(value, datetime) else None

    @property
    def content(self) -> ContentStream | None:
        """The content stream's metadata (no bytes), when the object has one."""
        mime = self.properties.get("cmis:contentStreamMimeType")
        if mime is None:
            return None
        length = self.properties.get("cmis:contentStreamLength")
        return ContentStream(str(mime), int(length) if length is not None else None,
                             self.properties.get("cmis:contentStreamFileName"))


@dataclass(frozen=True)
class ContentStream:
    """A document's content-stream metadata."""

    mime_type: str
    length: int | None
    file_name: str | None


@dataclass(frozen=True)
class QueryPage:
    """One page of a query: the objects, the total if the repository said it, and whether more follow."""

    objects: list[CmisObject]
    num_items: int | None
    has_more: bool


@dataclass(frozen=True)
class ChangeEntry:
    """One change-log entry; ``key`` is what de-duplicates entries repeated across pages."""

    object_id: str
    change_type: str
    change_time: datetime
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, datetime, str]:
        """(objectId, changeTime, changeType)."""
        return (self.object_id, self.change_time, self.change_type)


@dataclass(frozen=True)
class ChangesPage:
    """One page of getContentChanges: entries, whether more follow, and the token to ask for next."""

    entries: list[ChangeEntry]
    has_more: bool
    next_token: str | None


# -- transport ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    """Basic (user and password) or bearer-token authentication."""

    user: str | None = None
    password: str | None = None
    token: str | None = None

    def header(self) -> dict[str, str]:
        """The Authorization header, if any."""
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.user is not None:
            basic = base64.b64encode(f"{self.user}:{self.password or ''}".encode()).decode()
            return {"Authorization": f"Basic {basic}"}
        return {}


class Transport:
    """HTTP to one repository with the hub's credentials; the one place errors are translated."""

    def __init__(self, credentials: Credentials | None = None, *, timeout: float = 30.0,
                 session: requests.Session | None = None) -> None:
        self.session = session or requests.Session()
        self.session.headers.update((credentials or Credentials()).header())
        self.session.headers["User-Agent"] = "carehub-edrms/1"
        self.timeout = timeout

    def send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send a request; a hub error for anything but 2xx."""
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise CmisUnavailable(f"EDRMS not reachable: {type(exc).__name__}") from exc
        if response.status_code < 300:
            return response
        raise _error(response)

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        """A JSON answer."""
        response = self.send(method, url, **kwargs)
        try:
            return orjson.loads(response.content)  # several times faster than requests' json for a page of 1,000
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
            raise CmisInvalid(f"EDRMS answered {method} with something other than JSON") from exc

    def xml(self, method: str, url: str, **kwargs: Any) -> etree._Element:
        """An XML answer, parsed by lxml."""
        response = self.send(method, url, **kwargs)
        try:
            return etree.fromstring(response.content)
        except etree.XMLSyntaxError as exc:
            raise CmisInvalid(f"EDRMS answered {method} with XML lxml could not read: {exc}") from exc

    def close(self) -> None:
        """Release connections."""
        self.session.close()


def _error(response: requests.Response) -> Exception:
    status = response.status_code
    exception, message = "", ""
    try:
        body = response.json()
        if isinstance(body, dict):
            exception, message = str(body.get("exception", "")), str(body.get("message", ""))
    except ValueError:
        message = response.text[:200]
    detail = f"EDRMS answered {status}" + (f" {exception}" if exception else "") + (f": {message}" if message else "")
    if status == 404 or exception == "objectNotFound":
        return CmisNotFound(detail)
    if status == 409 or exception in ("updateConflict", "versioning"):
        return CmisConflict(detail)
    if status in (401, 403) or exception == "permissionDenied":
        return CmisRefused(detail)
    if status == 429 or status >= 500:
        return CmisUnavailable(detail)
    return CmisInvalid(detail)


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _quoted(text: str) -> str:
    """``quote(text, safe='')``, without its cost for the usual ids: plain, or a store's prefix and a plain tail
    (``workspace://SpacesStore/<uuid>``; quoting is character by character, so the prefix is quoted once)."""
    if _UNRESERVED.fullmatch(text):
        return text
    head, sep, tail = text.rpartition("/")
    if sep and _UNRESERVED.fullmatch(tail):
        return _quoted_prefix(head + sep) + tail
    return quote(text, safe="")


@lru_cache(maxsize=64)
def _quoted_prefix(prefix: str) -> str:
    return quote(prefix, safe="")


# -- property values ----------------------------------------------------------------------------

def _from_json(value: Any, kind: str | None) -> Any:
    if isinstance(value, list):
        return [_from_json(v, kind) for v in value]
    if value is None:
        return None
    if kind == "datetime" or (kind is None and isinstance(value, int) and value > 10**11):
        return datetime.fromtimestamp(int(value) / 1000, UTC) if isinstance(value, int) else _parse_instant(value)
    return value


def _parse_instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def cmis_instant(moment: datetime) -> str:
    """A datetime as CMIS-SQL and the forms want it: ``2025-01-01T00:00:00.000Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _form_value(value: Any) -> str:
    if isinstance(value, datetime):
        return cmis_instant(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def properties_from_json(body: dict[str, Any]) -> dict[str, Any]:
    """An object's properties from a browser-binding answer, succinct or full."""
    if "succinctProperties" in body:
        return {k: _from_json(v, None) for k, v in body["succinctProperties"].items()}
    return {k: _from_json(p.get("value"), p.get("type")) for k, p in (body.get("properties") or {}).items()}


_XML_TYPES = {"propertyDateTime": "datetime", "propertyBoolean": "boolean", "propertyInteger": "integer",
              "propertyDecimal": "decimal"}


def properties_from_xml(entry: etree._Element) -> dict[str, Any]:
    """An object's properties from an AtomPub entry's ``cmisra:object``."""
    props: dict[str, Any] = {}
    for prop in entry.iterfind("cmisra:object/cmis:properties/*", namespaces=NS):
        key = prop.get("propertyDefinitionId")
        if not key:
            continue
        kind = _XML_TYPES.get(etree.QName(prop).localname)
        values = [_xml_value(v.text or "", kind) for v in prop.iterfind("cmis:value", namespaces=NS)]
        props[key] = values if key == "cmis:secondaryObjectTypeIds" else (values[0] if values else None)
    return props


def _xml_value(text: str, kind: str | None) -> Any:
    if kind == "datetime":
        return _parse_instant(text)
    if kind == "boolean":
        return text == "true"
    if kind == "integer":
        return int(text)
    return text


# -- the repository -----------------------------------------------------------------------------

class Binding(Protocol):
    """What each binding implements; :class:`Repository` adds the retries and paging on top."""

    def info(self) -> RepositoryInfo:
        """getRepositoryInfo."""
        ...

    def query(self, statement: str, max_items: int, skip_count: int) -> QueryPage:
        """One page of a CMIS-SQL query."""
        ...

    def get_object(self, object_id: str) -> CmisObject:
        """getObject."""
        ...

    def update_properties(self, object_id: str, values: dict[str, Any], change_token: str | None) -> CmisObject:
        """updateProperties with the change token."""
        ...

    def content_changes(self, token: str | None, max_items: int) -> ChangesPage:
        """One page of getContentChanges."""
        ...

    def create_relationship(self, type_id: str, source_id: str, target_id: str) -> CmisObject:
        """createRelationship."""
        ...

    def relationships(self, object_id: str) -> list[CmisObject]:
        """getObjectRelationships."""
        ...

    def object_url(self, object_id: str) -> str:
        """Where a person opens the object (the repository's thin client when it names one)."""
        ...


class BrowserBinding:
    """The CMIS 1.1 browser binding: JSON over GET and form POSTs."""

    def __init__(self, transport: Transport, repository: dict[str, Any]) -> None:
        self.transport = transport
        self.raw = repository
        self.repository_url = str(repository["repositoryUrl"])
        self.root_url = str(repository["rootFolderUrl"])

    def info(self) -> RepositoryInfo:
        """getRepositoryInfo, from the service document read at connect."""
        r, caps = self.raw, self.raw.get("capabilities") or {}
        return RepositoryInfo(
            repository_id=str(r["repositoryId"]), name=str(r.get("repositoryName", "")),
            vendor=str(r.get("vendorName", "")), product=str(r.get("productName", "")),
            version=str(r.get("productVersion", "")), cmis_version=str(r.get("cmisVersionSupported", "")),
            root_folder_id=str(r.get("rootFolderId", "")),
            latest_change_token=None if r.get("latestChangeLogToken") is None else str(r["latestChangeLogToken"]),
            capability_changes=str(caps.get("capabilityChanges") or "none"),
            capability_query=str(caps.get("capabilityQuery") or "none"),
            thin_client_uri=r.get("thinClientURI"))

    def query(self, statement: str, max_items: int, skip_count: int) -> QueryPage:
        """POST cmisaction=query (the statement in the form, paging in the form too)."""
        body = self.transport.json("POST", self.repository_url, data={
            "cmisaction": "query", "q": statement, "statement": statement, "succinct": "true",
            "maxItems": str(max_items), "skipCount": str(skip_count)})
        try:
            objects = [CmisObject(properties_from_json(o)) for o in body["results"]]
            return QueryPage(objects, body.get("numItems"), bool(body.get("hasMoreItems")))
        except (KeyError, TypeError) as exc:
            raise CmisInvalid("EDRMS query answer has no results list") from exc

    def get_object(self, object_id: str) -> CmisObject:
        """GET cmisselector=object."""
        body = self.transport.json("GET", self.root_url, params={
            "objectId": object_id, "cmisselector": "object", "succinct": "true"})
        return CmisObject(properties_from_json(body))

    def update_properties(self, object_id: str, values: dict[str, Any], change_token: str | None) -> CmisObject:
        """POST cmisaction=update with propertyId[n]/propertyValue[n] pairs and the change token."""
        form: dict[str, str] = {"cmisaction": "update", "objectId": object_id, "succinct": "true"}
        if change_token is not None:
            form["changeToken"] = change_token
        for n, (key, value) in enumerate(values.items()):
            form[f"propertyId[{n}]"] = key
            if isinstance(value, list):
                for m, item in enumerate(value):
                    form[f"propertyValue[{n}][{m}]"] = _form_value(item)
            else:
                form[f"propertyValue[{n}]"] = _form_value(value)
        return CmisObject(properties_from_json(self.transport.json("POST", self.root_url, data=form)))

    def content_changes(self, token: str | None, max_items: int) -> ChangesPage:
        """GET cmisselector=contentChanges from a change-log token."""
        params = {"cmisselector": "contentChanges", "maxItems": str(max_items), "includeProperties": "true",
                  "succinct": "true"}
        if token:
            params["changeLogToken"] = token
        body = self.transport.json("GET", self.repository_url, params=params)
        entries = []
        for obj in body.get("objects") or []:
            props = properties_from_json(obj)
            event = obj.get("changeEventInfo") or {}
            when = _from_json(event.get("changeTime"), "datetime")
            entries.append(ChangeEntry(str(props.get("cmis:objectId")), str(event.get("changeType")), when, props))
        token_out = body.get("changeLogToken")
        return ChangesPage(entries, bool(body.get("hasMoreItems")), None if token_out is None else str(token_out))

    def create_relationship(self, type_id: str, source_id: str, target_id: str) -> CmisObject:
        """POST cmisaction=createRelationship to the repository URL."""
        form = {"cmisaction": "createRelationship", "succinct": "true"}
        for n, (key, value) in enumerate((("cmis:objectTypeId", type_id), ("cmis:sourceId", source_id),
                                          ("cmis:targetId", target_id))):
            form[f"propertyId[{n}]"], form[f"propertyValue[{n}]"] = key, value
        return CmisObject(properties_from_json(self.transport.json("POST", self.repository_url, data=form)))

    def relationships(self, object_id: str) -> list[CmisObject]:
        """GET cmisselector=relationships."""
        body = self.transport.json("GET", self.root_url, params={
            "objectId": object_id, "cmisselector": "relationships", "succinct": "true",
            "relationshipDirection": "either"})
        return [CmisObject(properties_from_json(o)) for o in body.get("objects") or []]

    def object_url(self, object_id: str) -> str:
        """The thin client's page for the object, else the binding's content URL."""
        thin = self.raw.get("thinClientURI")
        if thin:
            return f"{thin}{_quoted(object_id)}"
        return f"{self.root_url}?objectId={_quoted(object_id)}&cmisselector=content"


class AtomPubBinding:
    """The AtomPub binding: the service document's collections and URI templates, Atom entries and feeds."""

    def __init__(self, transport: Transport, service: etree._Element) -> None:
        self.transport = transport
        workspace = service.find("app:workspace", NS)
        if workspace is None:
            raise CmisInvalid("the AtomPub service document has no workspace")
        self.workspace = workspace
        self.collections = {c.findtext("cmisra:collectionType", namespaces=NS): str(c.get("href"))
                            for c in workspace.iterfind("app:collection", NS)}
        self.templates = {t.findtext("cmisra:type", namespaces=NS): str(t.findtext("cmisra:template", namespaces=NS))
                          for t in workspace.iterfind("cmisra:uritemplate", NS)}
        if "query" not in self.collections or "objectbyid" not in self.templates:
            raise CmisInvalid("the AtomPub service document lacks the query collection or the objectbyid template")

    def info(self) -> RepositoryInfo:
        """getRepositoryInfo, from the workspace's cmisra:repositoryInfo."""
        ri = self.workspace.find("cmisra:repositoryInfo", NS)
        if ri is None:
            raise CmisInvalid("the AtomPub workspace has no repositoryInfo")

        def text(name: str) -> str:
            return ri.findtext(f"cmis:{name}", default="", namespaces=NS)  # type: ignore[union-attr]

        return RepositoryInfo(
            repository_id=text("repositoryId"), name=text("repositoryName"), vendor=text("vendorName"),
            product=text("productName"), version=text("productVersion"), cmis_version=text("cmisVersionSupported"),
            root_folder_id=text("rootFolderId"), latest_change_token=text("latestChangeLogToken") or None,
            capability_changes=ri.findtext("cmis:capabilities/cmis:capabilityChanges", default="none",
                                           namespaces=NS),
            capability_query=ri.findtext("cmis:capabilities/cmis:capabilityQuery", default="none", namespaces=NS))

    def query(self, statement: str, max_items: int, skip_count: int) -> QueryPage:
        """POST an application/cmisquery+xml document to the query collection; read the Atom feed."""
        query = etree.Element(f"{{{NS['cmis']}}}query", nsmap={"cmis": NS["cmis"]})
        etree.SubElement(query, f"{{{NS['cmis']}}}statement").text = statement
        etree.SubElement(query, f"{{{NS['cmis']}}}searchAllVersions").text = "false"
        etree.SubElement(query, f"{{{NS['cmis']}}}maxItems").text = str(max_items)
        etree.SubElement(query, f"{{{NS['cmis']}}}skipCount").text = str(skip_count)
        feed = self.transport.xml("POST", self.collections["query"], data=etree.tostring(query),
                                  headers={"Content-Type": "application/cmisquery+xml"})
        objects = [CmisObject(properties_from_xml(e)) for e in feed.iterfind("atom:entry", NS)]
        total = feed.findtext("cmisra:numItems", namespaces=NS)
        more = any(link.get("rel") == "next" for link in feed.iterfind("atom:link", NS))
        return QueryPage(objects, int(total) if total and total.isdigit() else None, more)

    def _object_url(self, object_id: str) -> str:
        return self.templates["objectbyid"].replace("{id}", quote(object_id, safe="")).split("&", 1)[0] \
            if "{filter}" in self.templates["objectbyid"] else \
            self.templates["objectbyid"].replace("{id}", quote(object_id, safe=""))

    def get_object(self, object_id: str) -> CmisObject:
        """GET the objectbyid template."""
        return CmisObject(properties_from_xml(self.transport.xml("GET", self._object_url(object_id))))

    def update_properties(self, object_id: str, values: dict[str, Any], change_token: str | None) -> CmisObject:
        """PUT an Atom entry with the properties (and the change token) to the object's edit URL."""
        entry = etree.Element(f"{{{NS['atom']}}}entry", nsmap=NS)
        obj = etree.SubElement(entry, f"{{{NS['cmisra']}}}object")
        props = etree.SubElement(obj, f"{{{NS['cmis']}}}properties")
        items = dict(values)
        if change_token is not None:
            items["cmis:changeToken"] = change_token
        for key, value in items.items():
            kind = ("propertyDateTime" if isinstance(value, datetime) else "propertyBoolean"
                    if isinstance(value, bool) else "propertyString")
            element = etree.SubElement(props, f"{{{NS['cmis']}}}{kind}", propertyDefinitionId=key)
            if value is not None:
                etree.SubElement(element, f"{{{NS['cmis']}}}value").text = _form_value(value)
        answer = self.transport.xml("PUT", self._object_url(object_id), data=etree.tostring(entry),
                                    headers={"Content-Type": "application/atom+xml;type=entry"})
        return CmisObject(properties_from_xml(answer))

    def content_changes(self, token: str | None, max_items: int) -> ChangesPage:
        """The AtomPub changes collection is not offered by the repositories the hub meets on AtomPub."""
        raise CmisInvalid("getContentChanges over AtomPub is not supported; the pull queries by modification date")

    def create_relationship(self, type_id: str, source_id: str, target_id: str) -> CmisObject:
        """Relationships over AtomPub need the object's relationships collection, which SharePoint lacks."""
        raise CmisInvalid("createRelationship over AtomPub is not supported by this client")

    def relationships(self, object_id: str) -> list[CmisObject]:
        """As :meth:`create_relationship`."""
        raise CmisInvalid("getObjectRelationships over AtomPub is not supported by this client")

    def object_url(self, object_id: str) -> str:
        """The object's entry URL."""
        return self._object_url(object_id)


class Repository:
    """A CMIS repository through one binding: paging, the change-token retry, and the hub's errors."""

    def __init__(self, binding: Binding, transport: Transport) -> None:
        self.binding = binding
        self.transport = transport

    @property
    def binding_name(self) -> str:
        """``browser`` or ``atompub``."""
        return "browser" if isinstance(self.binding, BrowserBinding) else "atompub"

    def info(self) -> RepositoryInfo:
        """getRepositoryInfo."""
        return self.binding.info()

    def query_page(self, statement: str, max_items: int = 100, skip_count: int = 0) -> QueryPage:
        """One page of a query."""
        return self.binding.query(statement, max_items, skip_count)

    def query(self, statement: str, page_size: int = 100) -> Iterator[QueryPage]:
        """Every page of a query, by skipCount, until the repository says no more (it may cap the page size)."""
        skip = 0
        while True:
            page = self.binding.query(statement, page_size, skip)
            yield page
            if not page.has_more or not page.objects:
                return
            skip += len(page.objects)

    def get_object(self, object_id: str) -> CmisObject:
        """getObject."""
        return self.binding.get_object(object_id)

    def set_properties(self, object_id: str, values: dict[str, Any], *, current: CmisObject | None = None,
                       attempts: int = 3,
                       unchanged: Callable[[CmisObject], bool] | None = None) -> CmisObject | None:
        """Update properties with the change token; on a conflict re-read and retry (``attempts`` in all).

        ``unchanged`` is asked of each fresh read: when it says the object already holds what is wanted
        (someone - or an earlier try of ours - wrote it), nothing is sent and ``None`` is returned.
        """
        obj = current or self.binding.get_object(object_id)
        for attempt in range(attempts):
            if unchanged is not None and unchanged(obj):
                return None
            try:
                return self.binding.update_properties(object_id, values, obj.change_token)
            except CmisConflict:
                if attempt == attempts - 1:
                    raise
                obj = self.binding.get_object(object_id)
        raise CmisConflict(f"object {object_id} kept changing")  # pragma: no cover - the loop returns or raises

    def content_changes(self, token: str | None, max_items: int = 100) -> ChangesPage:
        """One page of getContentChanges."""
        return self.binding.content_changes(token, max_items)

    def create_relationship(self, type_id: str, source_id: str, target_id: str) -> CmisObject:
        """createRelationship."""
        return self.binding.create_relationship(type_id, source_id, target_id)

    def relationships(self, object_id: str) -> list[CmisObject]:
        """getObjectRelationships."""
        return self.binding.relationships(object_id)

    def object_url(self, object_id: str) -> str:
        """Where a person opens the document in the EDRMS."""
        return self.binding.object_url(object_id)

    def close(self) -> None:
        """Release connections."""
        self.transport.close()


def connect(service_url: str, credentials: Credentials | None = None, *, repository_id: str | None = None,
            timeout: float = 30.0) -> Repository:
    """Read the service URL and speak the binding it offers (browser JSON preferred, else AtomPub XML)."""
    transport = Transport(credentials, timeout=timeout)
    response = transport.send("GET", service_url)
    kind = response.headers.get("Content-Type", "")
    if "json" in kind:
        try:
            body = response.json()
        except ValueError as exc:
            raise CmisInvalid("the browser binding's service document is not JSON") from exc
        if not isinstance(body, dict) or not body:
            raise CmisInvalid("the browser binding's service document names no repository")
        chosen = body.get(repository_id) if repository_id else next(iter(body.values()))
        if not isinstance(chosen, dict):
            raise CmisNotFound(f"the EDRMS has no repository {repository_id}")
        return Repository(BrowserBinding(transport, chosen), transport)
    try:
        service = etree.fromstring(response.content)
    except etree.XMLSyntaxError as exc:
        raise CmisInvalid(f"the service document is neither JSON nor XML: {exc}") from exc
    return Repository(AtomPubBinding(transport, service), transport)

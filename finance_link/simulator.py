"""A finance system (ERP) commitment import on loopback, speaking the hub's WSDL over SOAP 1.1.

It serves ``finance_link/wsdl/commitments.wsdl`` (``GET ...?wsdl``, with its own
address) and answers ``POST`` envelopes as an ERP would: each request body is
validated against the WSDL's schema (a request the schema refuses is a SOAP
Client fault), then checked against the ERP's own master data (suppliers, cost
centres, open periods). It honours the idempotency key: a key already applied
is answered with the first receipt, marked duplicate, and counted, never
committed twice; ``stats()`` says how many commitments were applied, how many
duplicates and faults arrived.

Modes, for tests and the demo: ``close_period(before)`` (a ClosedPeriodFault for
lines starting before that date), ``slow(seconds)``, ``fail_transiently(n)`` (the
next n requests answered HTTP 503, no envelope), ``unavailable_faults(n)`` (the
next n answered with a ServiceUnavailableFault), ``forget_supplier``/``add_supplier``
and ``forget_cost_centre``. ``post_actuals`` sends invoices for what it holds back to
the hub. Start it alone with ``carehub simulate finance --port P``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from lxml import etree

from finance_link.mapping import FinanceMapping
from hub.loopback import LoopbackServer, SimulatorHandler

WSDL_PATH = Path(__file__).resolve().parent / "wsdl" / "commitments.wsdl"
NS = "urn:carehub:finance:commitments:1"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XS = "http://www.w3.org/2001/XMLSchema"
PATH = "/finance/commitments"
OPERATIONS = {"CreateCommitment", "AmendCommitment", "CloseCommitment"}


def wsdl_schema() -> etree.XMLSchema:
    """The XML Schema embedded in the WSDL, as lxml validates with it."""
    wsdl = etree.parse(str(WSDL_PATH))
    schema = wsdl.find(f"{{http://schemas.xmlsoap.org/wsdl/}}types/{{{XS}}}schema")
    assert schema is not None
    return etree.XMLSchema(etree.ElementTree(schema))


class Refusal(Exception):
    """A SOAP fault the ERP answers with: its fault element (None for a plain Client fault) and reason."""

    def __init__(self, element: str | None, reason: str, *, server: bool = False) -> None:
        super().__init__(reason)
        self.element, self.reason, self.server = element, reason, server


@dataclass
class Commitment:
    """A commitment line as the ERP holds it."""

    number: str
    line_id: str
    version: int
    status: str
    supplier: str
    site: str
    weekly: Decimal
    total: Decimal
    start: date
    end: date | None
    applied_keys: list[str] = field(default_factory=list)


class FinanceSimulator(LoopbackServer):
    """The ERP's state on its loopback server."""

    name = "finance"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, mapping: FinanceMapping | None = None) -> None:
        super().__init__(_Handler, host, port)
        self.lock = threading.Lock()
        self.schema = wsdl_schema()
        self.suppliers: set[tuple[str, str]] = set()
        self.cost_centres: set[str] = set()
        if mapping is not None:
            self.suppliers = {(s.number, s.site) for s in mapping.suppliers.values()}
            self.cost_centres = {*mapping.cost_centres.adults.values(), *mapping.cost_centres.childrens.values()}
        self.closed_before: date | None = None
        self.delay = 0.0
        self.transient_left = 0
        self.unavailable_left = 0
        self.commitments: dict[str, Commitment] = {}
        self.receipts: dict[str, str] = {}
        self.applied: dict[str, int] = {}
        self.duplicates = 0
        self.requests = 0
        self.faults: dict[str, int] = {}

    @property
    def url(self) -> str:
        """The service address (POST envelopes here; GET with ?wsdl for the WSDL)."""
        return f"{self.origin}{PATH}"

    # -- modes ----------------------------------------------------------------------------------

    def close_period(self, before: date | None) -> None:
        """Refuse (ClosedPeriodFault) lines starting before ``before``; None opens every period."""
        self.closed_before = before

    def slow(self, seconds: float) -> None:
        """Answer every request after ``seconds``."""
        self.delay = seconds

    def fail_transiently(self, count: int) -> None:
        """Answer the next ``count`` requests HTTP 503 with no envelope."""
        self.transient_left = count

    def unavailable_faults(self, count: int) -> None:
        """Answer the next ``count`` requests with a ServiceUnavailableFault (SOAP Server fault)."""
        self.unavailable_left = count

    def add_supplier(self, number: str, site: str) -> None:
        """Make a supplier known to the ERP (the fix for an UnknownSupplierFault)."""
        with self.lock:
            self.suppliers.add((number, site))

    def forget_supplier(self, number: str, site: str) -> None:
        """Make a supplier unknown to the ERP."""
        with self.lock:
            self.suppliers.discard((number, site))

    def forget_cost_centre(self, code: str) -> None:
        """Make a cost centre invalid in the ERP."""
        with self.lock:
            self.cost_centres.discard(code)

    def stats(self) -> dict[str, Any]:
        """Requests, commitments applied, keys applied more than once (must be 0), duplicates, faults."""
        with self.lock:
            return {"requests": self.requests, "applied": sum(self.applied.values()),
                    "applied_twice": sum(1 for n in self.applied.values() if n > 1),
                    "duplicates": self.duplicates, "faults": dict(self.faults), "lines": len(self.commitments)}

    # -- the import -----------------------------------------------------------------------------

    def handle(self, body: bytes) -> tuple[int, bytes]:
        """Answer one POSTed envelope: HTTP status and response envelope."""
        with self.lock:
            self.requests += 1
            if self.transient_left > 0:
                self.transient_left -= 1
                self.faults["http_503"] = self.faults.get("http_503", 0) + 1
                return 503, b"service unavailable"
        if self.delay:
            time.sleep(self.delay)
        try:
            operation, line = self._parse(body)
            with self.lock:
                if self.unavailable_left > 0:
                    self.unavailable_left -= 1
                    raise Refusal("ServiceUnavailableFault", "the commitment ledger is being closed for the night; "
                                  "try again shortly", server=True)
                number, duplicate = self._apply(operation, line)
            return 200, _receipt(line["IdempotencyKey"], number, duplicate)
        except Refusal as exc:
            with self.lock:
                name = exc.element or "schema"
                self.faults[name] = self.faults.get(name, 0) + 1
            return 500, _fault(exc)

    def _parse(self, body: bytes) -> tuple[str, dict[str, str]]:
        try:
            envelope = etree.fromstring(body, parser=etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError as exc:
            raise Refusal(None, f"not XML: {exc}") from exc
        payload = envelope.find(f"{{{SOAP_ENV}}}Body/*")
        if payload is None:
            raise Refusal(None, "no SOAP body")
        operation = etree.QName(payload).localname
        if etree.QName(payload).namespace != NS or operation not in OPERATIONS:
            raise Refusal(None, f"unknown operation {operation}")
        if not self.schema.validate(payload):
            error = self.schema.error_log.last_error
            raise Refusal(None, f"schema validation failed: {error.message if error else 'invalid'}")
        return operation, {etree.QName(child).localname: child.text or "" for child in payload}

    def _apply(self, operation: str, line: dict[str, str]) -> tuple[str, bool]:
        key = line["IdempotencyKey"]
        if key in self.receipts:
            self.duplicates += 1
            return self.receipts[key], True
        if (line["SupplierNumber"], line["SupplierSite"]) not in self.suppliers:
            raise Refusal("UnknownSupplierFault",
                          f"supplier {line['SupplierNumber']} site {line['SupplierSite']} is not on the supplier "
                          "master", server=False)
        if line["CostCentre"] not in self.cost_centres:
            raise Refusal("InvalidCostCentreFault", f"cost centre {line['CostCentre']} is not open for posting")
        start = date.fromisoformat(line["StartDate"])
        if self.closed_before is not None and start < self.closed_before:
            raise Refusal("ClosedPeriodFault", f"the period of {start.isoformat()} is closed (open from "
                                               f"{self.closed_before.isoformat()})")
        existing = self.commitments.get(line["LineId"])
        if operation == "CreateCommitment" and existing is not None and existing.status != "reversed":
            raise Refusal(None, f"line {line['LineId']} exists already")
        if operation != "CreateCommitment" and existing is None:
            raise Refusal(None, f"line {line['LineId']} is not known")
        number = existing.number if existing else f"CMT{len(self.commitments) + 1:08d}"
        end = date.fromisoformat(line["EndDate"]) if line.get("EndDate") else None
        status = {"reverse": "reversed", "close": "closed"}.get(line["Action"], "open")
        self.commitments[line["LineId"]] = Commitment(
            number, line["LineId"], int(line["Version"]), status, line["SupplierNumber"], line["SupplierSite"],
            Decimal(line["WeeklyAmount"]), Decimal(line["TotalAmount"]), start, end,
            [*(existing.applied_keys if existing else []), key])
        self.receipts[key] = number
        self.applied[key] = self.applied.get(key, 0) + 1
        return number, False

    # -- actuals back ------------------------------------------------------------------------------

    def invoices(self, weeks: int, through: date, *, overspend: dict[str, Decimal] | None = None
                 ) -> list[dict[str, str]]:
        """Invoices for the last ``weeks`` weeks to ``through`` of every line it holds that ran then, for the days
        it ran (weekly amount x days / 7, times a factor per line in ``overspend``), as the hub's actuals API
        takes them."""
        items = []
        period_from = through - timedelta(days=7 * weeks - 1)
        with self.lock:
            for c in self.commitments.values():
                start, end = max(period_from, c.start), min(through, c.end or through)
                if c.status == "reversed" or end < start:
                    continue
                days = (end - start).days + 1
                factor = (overspend or {}).get(c.line_id, Decimal(1))
                amount = (c.weekly * days / 7 * factor).quantize(Decimal("0.01"))
                items.append({"reference": f"INV-{c.number}-{through:%Y%m%d}", "line_id": c.line_id,
                              "kind": "invoice", "period_from": start.isoformat(),
                              "period_to": end.isoformat(), "amount": f"{amount:.2f}"})
        return items

    def drop_actuals(self, folder: Path, name: str, items: list[dict[str, str]]) -> Path:
        """Write actuals as a CSV into the hub's drop folder, as a ledger's scheduled export would."""
        folder.mkdir(parents=True, exist_ok=True)
        columns = ("reference", "line_id", "kind", "period_from", "period_to", "amount")
        lines = [",".join(columns)] + [",".join(item[c] for c in columns) for item in items]
        partial = folder / f".{name}.part"
        partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return partial.rename(folder / name)  # appears whole: the hub never sees half a file

    def post_actuals(self, hub_url: str, token: str, items: list[dict[str, str]]) -> dict[str, Any]:
        """POST actuals to the hub's ``/api/finance/actuals`` with a bearer token; the hub's answer."""
        response = requests.post(f"{hub_url.rstrip('/')}/api/finance/actuals", json={"actuals": items},
                                 headers={"Authorization": f"Bearer {token}"}, timeout=30)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer


def _receipt(key: str, number: str, duplicate: bool) -> bytes:
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV, "fin": NS})
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    receipt = etree.SubElement(body, f"{{{NS}}}CommitmentReceipt")
    etree.SubElement(receipt, f"{{{NS}}}IdempotencyKey").text = key
    etree.SubElement(receipt, f"{{{NS}}}CommitmentNumber").text = number
    etree.SubElement(receipt, f"{{{NS}}}Duplicate").text = "true" if duplicate else "false"
    return bytes(etree.tostring(env, xml_declaration=True, encoding="utf-8"))


def _fault(exc: Refusal) -> bytes:
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV, "fin": NS})
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = "soap:Server" if exc.server else "soap:Client"
    etree.SubElement(fault, "faultstring").text = exc.reason
    if exc.element:
        detail = etree.SubElement(fault, "detail")
        typed = etree.SubElement(detail, f"{{{NS}}}{exc.element}")
        etree.SubElement(typed, f"{{{NS}}}Reason").text = exc.reason
    return bytes(etree.tostring(env, xml_declaration=True, encoding="utf-8"))


class _Handler(SimulatorHandler[FinanceSimulator]):
    # Headers and body leave in one segment, without Nagle: otherwise each answer waits for the client's
    # delayed ACK (about 40 ms on Linux), which a real ERP's server does not make its callers wait.
    disable_nagle_algorithm = True
    wbufsize = 1 << 16

    def _send(self, status: int, body: bytes, content_type: str = "text/xml; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.split("?")[0] != PATH:
            self._send(404, b"not found", "text/plain")
            return
        wsdl = WSDL_PATH.read_bytes().replace(b"http://127.0.0.1:8791/finance/commitments",
                                              self.server.simulator.url.encode())
        self._send(200, wsdl)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path != PATH:
            self._send(404, b"not found", "text/plain")
            return
        status, answer = self.server.simulator.handle(body)
        self._send(status, answer, "text/plain" if status == 503 else "text/xml; charset=utf-8")


def serve(host: str, port: int) -> None:
    """Run the simulator in the foreground until interrupted (``carehub simulate finance``)."""
    from finance_link.mapping import load_mapping
    from hub.settings import get_settings

    simulator = FinanceSimulator(host, port, load_mapping(get_settings()))
    print(f"finance simulator (SOAP) on {simulator.url} (WSDL: {simulator.url}?wsdl); Ctrl-C to stop", flush=True)
    simulator.serve_forever()

"""A counting target on loopback: an HTTP server that records every event it is sent.

It speaks the hub's plain JSON push protocol (see ``adapters/http_target.py``):
``POST /events`` with ``{"events": [{"idempotency_key", "ordering_key",
"sequence", ...}]}`` answers ``200 {"results": [{"idempotency_key", "status",
"receipt"|"reason"}]}``. It honours the idempotency key like a real target must:
an event whose key it has already accepted is answered with the first receipt
and not applied again (it is counted as a duplicate).

For tests and demos it can be told to fail: ``fail_transiently(seconds)`` (503
to every push for a while), ``fail_keys(keys, reason)`` (422 for those events
until ``heal``), ``down()`` / ``up()`` (nothing listens on the port, and open
connections are dropped), ``hold(after)`` / ``release()`` (after some pushes, apply
what arrives but answer nothing until released, so a caller is caught mid-push).
``discard=True`` makes it a no-op target that answers 200 without recording, for
benchmarks. Run it alone with
``python -m adapters.simulators.counting_target --port 8765``.
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass
from typing import Any, Self

import orjson

from hub.loopback import LoopbackServer, SimulatorHandler


@dataclass(frozen=True, slots=True)
class Received:
    """One event as the target received it, and what it answered."""

    idempotency_key: str
    ordering_key: str | None
    sequence: int | None
    status: str  # accepted, duplicate, rejected, unavailable


class CountingTarget(LoopbackServer):
    """The simulator's state on its loopback server (start, stop, down, up)."""

    name = "counting-target"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, discard: bool = False) -> None:
        super().__init__(_Handler, host, port)
        self.discard = discard
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.applied: dict[str, str] = {}
        self.applied_order: list[Received] = []
        self.duplicates = 0
        self.requests = 0
        self.failing_until = 0.0
        self.failing_status = 503
        self.refused: dict[str, str] = {}
        self.is_down = False
        self.answering = threading.Event()
        self.answering.set()
        self.hold_at: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where to POST events."""
        return f"{self.origin}/events"

    def start(self) -> Self:
        """Serve in a background thread (again on the same port after :meth:`down`)."""
        self.is_down = False
        return super().start()

    def down(self) -> None:
        """Be unreachable: nothing listens on the port and kept-alive connections are dropped."""
        self.is_down = True
        self.stop()

    def up(self) -> None:
        """Listen again on the same port."""
        self.start()

    # -- behaviour ---------------------------------------------------------------------------

    def fail_transiently(self, seconds: float, status: int = 503) -> None:
        """Answer ``status`` (503 or 429) to every push for ``seconds``."""
        with self.lock:
            self.failing_until = time.monotonic() + seconds
            self.failing_status = status

    def fail_keys(self, keys: list[str], reason: str) -> None:
        """Refuse these idempotency keys for good (422 with ``reason``) until healed."""
        with self.lock:
            self.refused.update(dict.fromkeys(keys, reason))

    def hold(self, after: int = 0) -> None:
        """After ``after`` more pushes, apply what arrives but keep every answer back until :meth:`release`."""
        with self.lock:
            self.hold_at = self.requests + after + 1
            if after == 0:
                self.answering.clear()

    def release(self) -> None:
        """Send the answers held back and answer at once again."""
        with self.lock:
            self.hold_at = None
            self.answering.set()

    def heal(self) -> None:
        """Accept every key again and stop failing."""
        with self.lock:
            self.refused.clear()
            self.failing_until = 0.0

    # -- what it saw -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts of what was received, applied and suppressed as duplicate."""
        with self.lock:
            return {"requests": self.requests, "received": len(self.received), "applied": len(self.applied),
                    "duplicates": self.duplicates,
                    "rejected": sum(1 for r in self.received if r.status == "rejected")}

    def applied_keys(self) -> set[str]:
        """The idempotency keys applied so far."""
        with self.lock:
            return set(self.applied)

    def applied_sequences(self) -> dict[str, list[int]]:
        """Per ordering key, the sequences in the order they were first applied."""
        out: dict[str, list[int]] = {}
        with self.lock:
            for r in self.applied_order:
                out.setdefault(r.ordering_key or "", []).append(r.sequence or 0)
        return out

    def receive(self, events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        """Apply one pushed batch; returns the HTTP status and the JSON answer."""
        with self.lock:
            self.requests += 1
            if self.hold_at is not None and self.requests >= self.hold_at:
                self.answering.clear()
            if time.monotonic() < self.failing_until:
                for e in events:
                    self.received.append(Received(e["idempotency_key"], e.get("ordering_key"), e.get("sequence"),
                                                  "unavailable"))
                return self.failing_status, {"error": "target busy, try later"}
            if self.discard:
                return 200, {"results": [{"idempotency_key": e["idempotency_key"], "status": 200,
                                          "receipt": e["idempotency_key"]} for e in events]}
            results = []
            for e in events:
                key = e["idempotency_key"]
                seen = Received(key, e.get("ordering_key"), e.get("sequence"), "accepted")
                if key in self.refused:
                    self.received.append(Received(key, seen.ordering_key, seen.sequence, "rejected"))
                    results.append({"idempotency_key": key, "status": 422, "reason": self.refused[key]})
                    continue
                if key in self.applied:
                    self.duplicates += 1
                    self.received.append(Received(key, seen.ordering_key, seen.sequence, "duplicate"))
                else:
                    self.applied[key] = f"R{len(self.applied) + 1:08d}"
                    self.received.append(seen)
                    self.applied_order.append(seen)
                results.append({"idempotency_key": key, "status": 200, "receipt": self.applied[key]})
            return 200, {"results": results}


class _Handler(SimulatorHandler[CountingTarget]):
    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drop_if_down(self) -> bool:
        if self.server.simulator.is_down:
            self.close_connection = True
            self.connection.close()
            return True
        return False

    def do_POST(self) -> None:
        """``/events``: a batch to apply."""
        if self._drop_if_down():
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = orjson.loads(self.rfile.read(length) or b"{}")
        if self.path != "/events" or not isinstance(body.get("events"), list):
            self._answer(400, {"error": "POST /events with {\"events\": [...]}"})
            return
        status, answer = self.server.simulator.receive(body["events"])
        self.server.simulator.answering.wait()
        self._answer(status, answer)

    def do_GET(self) -> None:
        """``/stats``: what was received."""
        if self._drop_if_down():
            return
        if self.path == "/stats":
            self._answer(200, self.server.simulator.stats())
        else:
            self._answer(404, {"error": "GET /stats"})


def serve(host: str, port: int, *, discard: bool = False) -> None:
    """Serve a counting target in the foreground until interrupted (``carehub simulate counting``)."""
    sim = CountingTarget(host, port, discard=discard)
    print(f"counting target on {sim.url}", flush=True)
    sim.serve_forever()


def main() -> None:
    """Serve a counting target until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--discard", action="store_true", help="answer 200 without recording (no-op target)")
    args = parser.parse_args()
    serve(args.host, args.port, discard=args.discard)


if __name__ == "__main__":
    main()

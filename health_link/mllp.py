"""MLLP: the listener that takes HL7 v2 messages from hospital feeds, and a small sender.

:class:`MllpListener` (asyncio) reads frames (0x0B ... 0x1C 0x0D) from many
connections at once, many messages per connection. Every message goes to one
commit loop, which applies whatever has arrived by then as one batch in one
transaction (group commit) and only after the commit answers each message with
its ACK, on its own connection and in the order it arrived. With ``readers``,
messages are parsed and interpreted in that many reader processes while the
commit loop writes the batch before (python-hl7 parsing is the largest cost). A batch that fails as
a whole is applied again message by message, so one bad message cannot take
others down with it. Bytes that are not a readable message get an AR, are kept
raw, and the connection carries on.

:class:`MllpClient` is the sending side (blocking sockets): the simulator's HL7
sender, the benchmark and the tests use it; it may keep several messages in
flight on one connection (``window``), reading their ACKs in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field

from health_link.adt import AdtEvent, AdtFeed, Answer, Received, read_frames, refusal
from health_link.hl7 import END, START, BrokenFrame, StrayBytes, frame, frames
from hub.errors import SourceUnavailable
from hub.runtime import FRESH, settle_for_ingest
from hub.store.db import Store

log = logging.getLogger(__name__)
DEFAULT_PORT = 2575
READ_CHUNK = 16  # messages per job for a reader process: small enough that commits overlap reading


def tune_collector() -> None:
    """Fewer garbage-collector passes for a long-running listener and its readers (:mod:`hub.runtime`):
    parsing makes many short-lived objects, and the collector's passes over the process's long-lived
    ones cost about half the ingest time (bench/hl7_ingest.py)."""
    settle_for_ingest()


def start_reader() -> None:
    """A reader process's start: Ctrl-C reaches the whole process group, but only the listener decides when
    to stop (it shuts its readers down itself), so readers ignore SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_collector()


@dataclass
class ListenerStats:
    """Counts since the listener started (for the log and the benchmark)."""

    messages: int = 0
    batches: int = 0
    answers: dict[str, int] = field(default_factory=lambda: {"AA": 0, "AE": 0, "AR": 0})


_Queued = tuple[Received, "asyncio.Future[Answer]", "asyncio.Future[list[AdtEvent | Answer]] | None", int]


class MllpListener:
    """An asyncio MLLP server whose ACKs follow the commit of the message they answer."""

    def __init__(self, store: Store, feed: AdtFeed, *, max_batch: int = 500, max_frame: int = 4_000_000,
                 readers: int = 0) -> None:
        self.store, self.feed = store, feed
        self.max_batch, self.max_frame = max_batch, max_frame
        self.stats = ListenerStats()
        self._queue: asyncio.Queue[_Queued] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mllp-commit")
        # reader processes parse and interpret messages on other cores while this one commits
        self._reader_count = readers
        self._readers = ProcessPoolExecutor(readers, mp_context=FRESH,
                                            initializer=start_reader) if readers > 0 else None
        self._server: asyncio.Server | None = None
        self._worker: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> tuple[str, int]:
        """Listen; returns the address bound (port 0 picks a free one)."""
        self._queue = asyncio.Queue()
        if self._readers is not None:  # start the reader processes (and their imports) before the first message
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(loop.run_in_executor(self._readers, read_frames, [])
                                   for _ in range(self._reader_count)))
        self._worker = asyncio.create_task(self._commit_loop())
        self._server = await asyncio.start_server(self._connection, host, port, reuse_address=True)
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self) -> None:
        """Stop listening, finish what is queued, and close."""
        if self._server is not None:
            self._server.close()
        connections = list(self._connections)
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True)
        if self._readers is not None:
            self._readers.shutdown(wait=True, cancel_futures=True)

    # -- connections --------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        address = writer.get_extra_info("peername")
        peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else None
        loop = asyncio.get_running_loop()
        pending: asyncio.Queue[asyncio.Future[Answer] | None] = asyncio.Queue()
        answering = asyncio.create_task(self._answer(writer, pending))
        buffer = bytearray()
        found: list[bytes]
        assert self._queue is not None
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    if not buffer.strip(b"\r\n \t\x00"):
                        break
                    # the sender left mid-frame: keep what came
                    found = [BrokenFrame(buffer.removeprefix(START)) if buffer.startswith(START) else
                             StrayBytes(buffer)]
                    buffer.clear()
                else:
                    buffer += chunk
                    found, used = frames(buffer)
                    del buffer[:used]
                    if len(buffer) > self.max_frame:  # a frame that never ends: refuse what came and start afresh
                        found.append(BrokenFrame(buffer[:self.max_frame]))
                        buffer.clear()
                for start in range(0, len(found), READ_CHUNK):
                    part = found[start:start + READ_CHUNK]
                    reading: asyncio.Future[list[AdtEvent | Answer]] | None = None
                    if self._readers is not None:
                        reading = loop.run_in_executor(self._readers, read_frames, part)
                    for k, body in enumerate(part):
                        future: asyncio.Future[Answer] = loop.create_future()
                        received = Received(body, peer)
                        if reading is None:
                            self.feed.read(received)
                        self._queue.put_nowait((received, future, reading, k))
                        pending.put_nowait(future)
                if not chunk:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # the listener is closing; ending quietly spares asyncio's stream callback (Python 3.11) a traceback
            # about the cancelled handler
            pass
        finally:
            pending.put_nowait(None)
            with contextlib.suppress(Exception):
                await answering
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if task is not None:
                self._connections.discard(task)

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, pending: asyncio.Queue[asyncio.Future[Answer] | None]) -> None:
        broken = False
        while (future := await pending.get()) is not None:
            answer = await future
            ack = answer.ack_bytes()
            if broken or ack is None:  # gone, or asked for no acknowledgement (enhanced mode, MSH-15)
                continue
            try:
                writer.write(frame(ack))
                await writer.drain()
            except ConnectionError:
                broken = True  # the sender left; its messages are committed and it will resend them

    # -- the commit loop ----------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        carry: _Queued | None = None
        while True:
            first = carry or await self._queue.get()
            carry = None
            await self._take_reading(first)
            batch = [first]
            # everything already read joins this batch; a message still being read starts the next one
            while len(batch) < self.max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item[2] is not None and not item[2].done():
                    carry = item
                    break
                await self._take_reading(item)
                batch.append(item)
            answers = await loop.run_in_executor(self._executor, self.apply, [r for r, _, _, _ in batch])
            self.stats.batches += 1
            for (_, future, _, _), answer in zip(batch, answers, strict=True):
                self.stats.messages += 1
                self.stats.answers[answer.code] = self.stats.answers.get(answer.code, 0) + 1
                if not future.done():
                    future.set_result(answer)

    async def _take_reading(self, item: _Queued) -> None:
        received, _, reading, k = item
        if reading is None:
            return
        try:
            received.reading = (await reading)[k]
        except Exception as exc:  # a reader process died: read the message here instead
            log.warning("a reader failed (%s); reading in the listener", type(exc).__name__)
            self.feed.read(received)

    def apply(self, batch: Sequence[Received]) -> list[Answer]:
        """Apply and commit a batch; after a failure, each message on its own."""
        try:
            with self.store.session() as session:
                return self.feed.apply(session, batch)
        except Exception as exc:
            if len(batch) > 1:
                log.warning("a batch of %d failed (%s); applying its messages one by one", len(batch),
                            type(exc).__name__)
                return [answer for received in batch for answer in self.apply([received])]
            return [self._failed(batch[0], exc)]

    def _failed(self, received: Received, exc: Exception) -> Answer:
        answer = refusal(received, exc)
        try:
            with self.store.session() as session:
                self.feed.keep_failed(session, received, answer)
        except Exception as keep_exc:  # the store itself is down: the sender keeps the message and resends
            log.error("could not keep a failed message: %s", type(keep_exc).__name__)
        return answer


class RunningListener:
    """A listener on its own event loop in a background thread (tests, the demo, the benchmark)."""

    def __init__(self, listener: MllpListener, host: str = "127.0.0.1", port: int = 0) -> None:
        self.listener = listener
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.address: tuple[str, int] = (host, port)
        self._thread = threading.Thread(target=self._run, name="mllp-listener", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise SourceUnavailable("the MLLP listener did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())
        self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self.address = await self.listener.start(*self.address)
        self._ready.set()
        await self._stop.wait()
        await self.listener.close()

    @property
    def port(self) -> int:
        """The port bound."""
        return self.address[1]

    def stop(self) -> None:
        """Stop the listener and wait for its thread."""
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


class MllpClient:
    """Sends HL7 messages over one MLLP connection and reads their ACKs (blocking)."""

    def __init__(self, host: str, port: int, timeout: float = 60.0) -> None:
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise SourceUnavailable(f"cannot connect to MLLP {host}:{port}: {exc}") from exc
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (framing included or not)."""
        self.sock.sendall(data)

    def send(self, message: str | bytes) -> str:
        """Send one message and return its ACK."""
        self.send_raw(frame(message))
        return self.read_ack()

    def read_ack(self) -> str:
        """The next ACK on the connection (decoded)."""
        while True:
            found, used = frames(self._buffer)
            if found:
                del self._buffer[:self._buffer.find(END) + len(END)]
                return found[0].decode("utf-8", errors="replace")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SourceUnavailable("the MLLP peer closed the connection")
            self._buffer += chunk

    def send_many(self, messages: Iterable[str | bytes], window: int = 1) -> list[str]:
        """Send messages keeping up to ``window`` in flight; return the ACKs in order."""
        acks: list[str] = []
        in_flight = 0
        for message in messages:
            self.send_raw(frame(message))
            in_flight += 1
            if in_flight >= window:
                acks.append(self.read_ack())
                in_flight -= 1
        for _ in range(in_flight):
            acks.append(self.read_ack())
        return acks

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DEFAULT_PORT", "END", "START", "MllpClient", "MllpListener", "RunningListener", "tune_collector"]

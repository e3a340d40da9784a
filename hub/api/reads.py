"""The hot reads' threads: a few threads, each keeping its own store connection between reads.

The busiest routes (search, record, timeline) hand their store work to these
threads in one hop (:meth:`ReadThreads.run`): the work runs on the thread's
connection and whatever transaction it began is ended when it returns
(:meth:`hub.store.db.KeptConnection.read`: no pool check-out and check-in per
read; a connection the database dropped is replaced and the read run again)
and its answer comes back to the event loop.
Handing work over through one queue and one wake-up of the loop costs less
than an executor's future chained to an asyncio future.

The work stays off the event loop so that a read waiting on the disk holds up
only its own request.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection

from hub.errors import HubError
from hub.store.db import KeptConnection, Store

T = TypeVar("T")
P = ParamSpec("P")
# Few: the work holds the GIL between database calls, and more threads only add switching between them
# (two cost less CPU per record open than eight: bench/api_load.py).
READ_THREADS = 2

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class ReadThreads:
    """Read-only work on the store, off the event loop, on threads that keep their connections."""

    def __init__(self, store: Store, threads: int = READ_THREADS) -> None:
        self.store = store
        self.size = threads
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    async def run(self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Read-only ``work(connection, *args, **kwargs)`` on a read thread; its answer or error."""
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, work, args, kwargs))
        return await future

    def close(self) -> None:
        """Let the threads finish the reads queued, then stop them and close their connections."""
        with self._lock:
            self._closed = True
            threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join(timeout=30)

    def _start(self) -> None:
        with self._lock:
            if self._closed:
                raise HubError("the hub is shutting down")
            if not self._threads:
                self._threads = [threading.Thread(target=self._serve, name=f"carehub-read-{n}", daemon=True)
                                 for n in range(self.size)]
                for thread in self._threads:
                    thread.start()

    def _serve(self) -> None:
        kept = KeptConnection(self.store.engine)
        try:
            while (job := self._jobs.get()) is not None:
                loop, future, work, args, kwargs = job
                try:
                    result = kept.read(work, *args, **kwargs)
                except BaseException as exc:  # noqa: BLE001 - handed to the request that asked, raised there
                    with contextlib.suppress(RuntimeError):  # that loop has closed: nobody is waiting any more
                        loop.call_soon_threadsafe(_fail, future, exc)
                else:
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(_succeed, future, result)
        finally:
            kept.close()


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():  # the request may have been cancelled (its client went away)
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)

"""The process settings of the hub's long-running entry points, in one place: the garbage collector
and how child processes start.

CPython's collector walks every tracked object of the generations it collects. A
long-running hub process holds hundreds of thousands of objects that live as long as it
(modules, models, policy, routes, settings) and makes many short-lived ones, nearly all
freed by reference counting; with the default thresholds the collector's passes over the
long-lived heap cost a large share of the work (figures: bench/RESULTS.md). So:

* an entry point (``carehub serve``'s workers, ``carehub worker``, ``carehub mllp`` and its
  reader processes) calls :func:`settle` once it has built what it keeps: the heap made so
  far is collected once and frozen out of collection, and the youngest generation is
  collected less often (:data:`SERVING` for request servers, :data:`INGEST` for processes
  that parse messages or batches);
* a sync tunes the collector for its duration (:func:`batch_friendly_gc`) and runs one
  full collection between batches (:func:`collect_between_batches`), so no batch's cyclic
  garbage outlives the next batch.

* the sync's reader process collects only between the batches it sends
  (:func:`collect_only_between_batches`, then :func:`collect_now` after each batch).

Library code never touches the collector; only these functions do.

Child processes start one of two ways, named here so every process mechanism says which
and why: :data:`INHERITING` (``fork``) for the sync's reader, which inherits the adapter
it reads with (its open connections and compiled mapping do not pickle) and runs no
threads; :data:`FRESH` (``spawn``) for pools of workers that must not inherit the parent's
threads, locks or event loop (the MLLP listener's reader processes, ``carehub serve``'s
workers).
"""

from __future__ import annotations

import gc
import multiprocessing
import threading
from collections.abc import Iterator
from contextlib import contextmanager

INHERITING = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
"""Start a child as a copy of this process (see the module); None where the platform cannot fork."""
FRESH = multiprocessing.get_context("spawn")
"""Start a child as a new interpreter (see the module)."""

SERVING = (20_000, 20, 100)
"""Young-generation threshold of a request server: a request makes a few thousand objects."""
INGEST = (50_000, 20, 100)
"""Young-generation threshold while ingesting: a batch or a burst of messages makes many more."""


def settle(threshold: tuple[int, int, int] | None = None) -> None:
    """Freeze the heap built so far out of collection (after one full collection); with ``threshold``,
    collect the youngest generation that much less often."""
    gc.collect()
    gc.freeze()
    if threshold is not None:
        gc.set_threshold(*threshold)


def collect_only_between_batches() -> None:
    """A reader process's collector: off, so young collections do not walk the large batch being
    prepared again and again; the process makes next to no cyclic garbage and calls
    :func:`collect_now` once each batch is sent and dropped."""
    gc.disable()


def collect_now() -> None:
    """One full collection (a reader process's, after each batch it sends)."""
    gc.collect()


def settle_for_ingest() -> None:
    """:func:`settle` with :data:`INGEST` (a process-pool initializer: no arguments)."""
    settle(INGEST)


_lock = threading.Lock()
_users = 0
_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def batch_friendly_gc() -> Iterator[None]:
    """Tune the collector for batch ingest for the duration of the block (re-entrant): the heap that
    existed before is frozen and young collections run less often; both are restored when the last
    block ends."""
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(*INGEST)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()


def collect_between_batches() -> None:
    """A full collection once a batch is done (only while a sync tunes the collector).

    The batch's objects are gone by then and what was alive before it is frozen, so the
    collection is short; the survivors are frozen in turn.
    """
    if _users:
        gc.collect()
        gc.freeze()

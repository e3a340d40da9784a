"""The adapter conformance suite's registry: every adapter declares a fixture, the suite runs them all.

In the spirit of singer-sdk's tap tests (``singer_sdk/testing/tap_tests.py``): one
suite, ``tests/conformance/``, checks what the hub needs of *any* source or target:

* a pull resumes from its cursor (a second sync reads only what changed);
* a repeated pull changes nothing (no new versions, no events);
* a bad record is quarantined with its reason, and the batch goes on;
* a transient failure is retried (in the adapter's client, or by the next sync run)
  and nothing is lost; a permanent one fails the run with a non-retryable error;
* a push is idempotent (the same events twice: the target holds each once);
* a push's transient failure is retried by delivery, a permanent one dead-lettered with
  the target's reason.

An adapter joins by declaring a fixture: a function decorated with
:func:`source_fixture` or :func:`target_fixture` that takes a scratch directory and
returns a context manager yielding a :class:`SourceCase` or :class:`TargetCase` (a
live source or target at its protocol boundary: a simulator on loopback, a database
file). Its module is listed in :data:`FIXTURE_MODULES` or named in the
``carehub.conformance`` entry-point group, so a link outside ``adapters/`` (the EDRMS'
CMIS adapter, say) plugs in without touching the suite.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from hub.contract import Adapter
from hub.delivery.config import TargetSettings

# The fixtures the project ships with; other links add theirs through the entry-point group.
FIXTURE_MODULES = ("adapters.conformance", "health_link.conformance")
ENTRY_POINT_GROUP = "carehub.conformance"


@dataclass
class SourceCase:
    """A live source for the suite, seeded with ``initial`` good records.

    ``add`` makes one more good record, ``change`` modifies an existing one (each returns
    ``(stream, source_id)``); ``add_bad`` plants a record the mapping must refuse and returns
    ``(stream, source_id, reason)``; ``fail_transiently(n)`` makes the source fail the next
    ``n`` reads in a way that may succeed later and ``heal`` ends it; ``fail_permanently``
    makes reads fail for good (or is None when the protocol has no such answer).
    ``retries_in_place``: the adapter's own client waits out transient failures, so the
    sync that meets them completes (else the sync fails retryably and the next one reads on).
    """

    adapter: Adapter
    initial: int
    add: Callable[[], tuple[str, str]]
    change: Callable[[], tuple[str, str]]
    add_bad: Callable[[], tuple[str, str, str]]
    fail_transiently: Callable[[int], None]
    heal: Callable[[], None]
    fail_permanently: Callable[[], None] | None = None
    retries_in_place: bool = True
    make_adapter: Callable[[], Adapter] | None = None  # a fresh adapter on the same source


@dataclass
class TargetCase:
    """A live target for the suite.

    ``settings`` build the target adapter (through delivery's registry); ``event(n)``
    gives the entity type and payload of the ``n``-th change the suite sends (something the
    target does send, not skip); ``held()`` how many distinct changes the target holds;
    ``fail_transiently(n)`` fails the next ``n`` pushes transiently; ``refuse_next()``
    refuses the next push for good, with a reason containing ``refusal``.
    """

    settings: TargetSettings
    event: Callable[[int], tuple[str, dict[str, Any]]]
    held: Callable[[], int]
    fail_transiently: Callable[[int], None]
    refuse_next: Callable[[], None]
    refusal: str = "refused"
    extra: dict[str, Any] = field(default_factory=dict)


SourceFixture = Callable[[Path], AbstractContextManager[SourceCase]]
TargetFixture = Callable[[Path], AbstractContextManager[TargetCase]]
SOURCES: dict[str, SourceFixture] = {}
TARGETS: dict[str, TargetFixture] = {}


def source_fixture(name: str) -> Callable[[SourceFixture], SourceFixture]:
    """Register a source adapter's fixture under ``name``."""
    def register(fixture: SourceFixture) -> SourceFixture:
        SOURCES[name] = fixture
        return fixture
    return register


def target_fixture(name: str) -> Callable[[TargetFixture], TargetFixture]:
    """Register a target adapter's fixture under ``name``."""
    def register(fixture: TargetFixture) -> TargetFixture:
        TARGETS[name] = fixture
        return fixture
    return register


def load_fixtures() -> tuple[dict[str, SourceFixture], dict[str, TargetFixture]]:
    """Import every fixture module (the project's and the entry points'); the registries."""
    for module in FIXTURE_MODULES:
        import_module(module)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        import_module(point.value.partition(":")[0])
    return SOURCES, TARGETS

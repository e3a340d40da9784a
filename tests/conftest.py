"""Shared fixtures: a real store on SQLite always, and on PostgreSQL when configured.

``store`` is parametrised: every test that takes it runs on a fresh SQLite file
and, when ``CAREHUB_TEST_DATABASE_URL`` is set, on a fresh PostgreSQL database too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hub.store.db import Store, normalise_url
from hub.store.migrate import upgrade
from tests.support.pages import chromium
from tests.support.postgres import BACKENDS, PG_URL, empty_postgres
from tests.support.processes import become_subreaper, leftovers

# The suite signs its callers in through the local demo issuer, so every Settings a test makes has demo sign-in
# on. A carehub subprocess gets it only when its test says so (tests/support/cli.hub_env drops CAREHUB_*), so
# the default (off) is what tests of `carehub serve` see.
os.environ["CAREHUB_AUTH__DEMO"] = "true"

@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (migrating once is faster)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    store = Store(f"sqlite:///{path}")
    upgrade(store.engine)
    store.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database made for this test session, migrated, dropped at the end."""
    if not PG_URL:
        pytest.fail("CAREHUB_TEST_DATABASE_URL is not set")
    base = make_url(normalise_url(PG_URL))
    name = f"carehub_test_{uuid.uuid4().hex[:10]}"
    # pre-ping: a test may restart the server, and the drop at the end must still find it
    admin = create_engine(base, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    store = Store(url)
    upgrade(store.engine)
    store.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty, migrated store on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "hub.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    empty_postgres(url)
    return url


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium (tests/support/pages.py has what a test does with it)."""
    yield from chromium()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A Store on an empty, migrated database (SQLite, then PostgreSQL when configured)."""
    s = Store(database_url)
    yield s
    s.dispose()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (not skip) tests marked ``postgres`` when CAREHUB_TEST_DATABASE_URL is absent.

    They prove what only PostgreSQL offers (several workers sharing one store,
    a server restart); everything else runs on SQLite regardless.
    """
    if PG_URL:
        return
    needs_pg = [item for item in items if item.get_closest_marker("postgres")]
    if needs_pg:
        config.hook.pytest_deselected(items=needs_pg)
        items[:] = [item for item in items if not item.get_closest_marker("postgres")]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Adopt orphans: a process left behind by a process a test started is still this session's to find."""
    become_subreaper()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No test may leave a process behind: list any still running, stop them, and fail the run.

    Under pytest-xdist each worker checks what its own tests started; the controller's children are the
    workers themselves."""
    if session.config.getoption("numprocesses", None) and not hasattr(session.config, "workerinput"):
        return
    left = leftovers()
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"  {pid}: {cmd[:160]}" for pid, cmd in sorted(left.items())]
    message = "processes left behind by the tests (now killed):\n" + "\n".join(lines)
    if reporter is not None:
        reporter.write_line(message, red=True)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED

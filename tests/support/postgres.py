"""PostgreSQL for tests: the suite's backends, emptying a test database, and a private cluster.

``CAREHUB_TEST_DATABASE_URL`` names the machine's shared server: the suite makes its own database there
(tests/conftest.py), empties it between tests and never stops or restarts the server. A test that must
stop or restart a server uses a :class:`PrivateCluster`: started with ``initdb`` and ``pg_ctl`` from the
installed PostgreSQL binaries on a temporary directory and a free loopback port, run as the ``postgres``
user when the suite runs as root (``initdb`` refuses root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hub.store.db import normalise_url
from hub.store.schema import Base
from tests.support.ports import free_port

PG_URL = os.environ.get("CAREHUB_TEST_DATABASE_URL")
"""The shared server's URL, when the suite also runs on PostgreSQL."""
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
"""The backends the ``store`` fixture runs each test on."""


@contextmanager
def fresh_database(backend: str, folder: Path, name: str) -> Iterator[str]:
    """The URL of an empty database, never migrated, for the block: a SQLite file ``name``.db in ``folder``, or
    (``backend`` "postgresql") a new database named ``name`` and a random suffix on the shared server, dropped
    after."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'{name}.db'}"
        return
    assert PG_URL is not None
    base = make_url(normalise_url(PG_URL))
    database = f"{name}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        yield base.set(database=database).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def empty_postgres(url: str) -> None:
    """Remove every row the previous test left, keeping the schema."""
    engine = create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


class PrivateCluster:
    """One PostgreSQL cluster of the test's own: ``start()``, ``restart()``, ``stop()``, ``url``."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        found = bin_dir or binaries()
        if found is None:
            raise RuntimeError("PostgreSQL binaries not found under /usr/lib/postgresql")
        self.bin = found
        # its own folder straight under the temporary directory: the postgres user must be able to reach it
        # (pytest's tmp_path sits in a folder only its owner may enter)
        self.root = Path(tempfile.mkdtemp(prefix="carehub-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"
        self.port = free_port()
        self._owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the cluster's ``test`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/test"

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._owner is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def start(self) -> PrivateCluster:
        """initdb (trust auth, loopback only), start, and create the ``test`` database."""
        self.sockets.mkdir(exist_ok=True)
        if self._owner is not None:
            for path in (self.root, self.sockets):
                os.chown(path, self._owner.pw_uid, self._owner.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self._pg_ctl("start")
        engine = create_engine(self.url.replace("/test", "/postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE DATABASE test"))
        engine.dispose()
        return self

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", action,
                  *extra)

    def restart(self) -> None:
        """Stop the server (fast: every connection is cut) and start it again on the same port."""
        self._pg_ctl("restart", "-m", "fast")

    def ready(self) -> bool:
        """Whether the server accepts connections."""
        return subprocess.run([str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                              check=False).returncode == 0

    def stop(self) -> None:
        """Stop the server (immediately) and remove its files."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

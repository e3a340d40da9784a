"""`carehub sync` killed with SIGKILL mid-run, then run again, ends exactly as an unbroken run."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from adapters.simulators.legacy_escr import generate
from hub.store.tables import RawRecord
from tests.support.cli import CARHUB, carehub, hub_env
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow  # one of the suite's longest (make test runs it)

STATE_QUERIES = {
    "raw": "SELECT source, stream, source_id, content_hash, status FROM raw_records",
    "entities": "SELECT id, entity_type, person_id, version, content_hash FROM entities",
    "links": "SELECT source, stream, source_id, entity_id, content_hash, version FROM source_links",
    "outbox": "SELECT event_id, entity_id, kind, version, status FROM outbox",
    "quarantine": "SELECT q.source_id, q.reason, q.status, q.attempts FROM quarantine q",
    "cursors": "SELECT source, stream FROM cursors",
    "persons": "SELECT person_id, nhs_number, family_name, birth_date, status FROM person_index",
}


def state(url: str) -> dict[str, set[tuple[Any, ...]]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        out = {name: {tuple(str(v) for v in row) for row in conn.execute(text(q))} for name, q in STATE_QUERIES.items()}
    engine.dispose()
    return out


def raw_count(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        count = int(conn.scalar(select(func.count()).select_from(RawRecord)) or 0)
    engine.dispose()
    return count


def test_sigkill_mid_sync_then_rerun_equals_unbroken_run(database_url: str, tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.db"
    summary = generate(f"sqlite:///{legacy}", people=1500, seed=7)
    extra = {"CAREHUB_SOURCES__LEGACY_ESCR__OPTIONS__URL": f"sqlite:///{legacy}",
             "CAREHUB_SOURCES__LEGACY_ESCR__BATCH_SIZE": "150"}

    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    carehub("sync", env=hub_env(reference_url, tmp_path / "ref", **extra))
    expected = state(reference_url)
    assert len(expected["raw"]) == summary.total_rows

    env = hub_env(database_url, tmp_path / "var", **extra)
    carehub("db", "upgrade", env=env)
    victim = subprocess.Popen([*CARHUB, "sync"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: victim.poll() is not None or raw_count(database_url) >= summary.total_rows // 3,
             "a third of the source read", timeout=120, every=0.05)
    assert victim.poll() is None, "sync finished before it could be killed: make the source bigger"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    interrupted = raw_count(database_url)
    assert 0 < interrupted < summary.total_rows

    carehub("sync", env=env)
    assert state(database_url) == expected

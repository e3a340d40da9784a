"""Benchmark: CPU of the pipeline's identity step in a legacy ESCR migration, as the store grows.

Generates the synthetic legacy ESCR for each ``--people`` size, syncs it into a
fresh store and prints the process CPU spent in the resolver
(``resolve_batch`` + ``record_batch``), per 1,000 people and as a ratio to the
smallest size (flat per-record cost means the ratio tracks the size ratio),
beside what the resolver decided (links, reviews), so a speed-up that lost
matches shows at once. ``--profile`` prints the top of a cProfile of the
identity calls of the largest size.

    python bench/identity_step.py [--people 10000 30000] [--url postgresql+psycopg://...] [--profile]
                                  [--max-candidates-per-key N]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.simulators.legacy_escr import generate  # noqa: E402
from adapters.sql import SqlAdapter  # noqa: E402
from hub.identity.config import IdentityConfig, load_identity_config  # noqa: E402
from hub.identity.resolution import PersonCandidate, Resolution  # noqa: E402
from hub.identity.resolver import PersonResolver  # noqa: E402
from hub.pipeline import Pipeline  # noqa: E402
from hub.settings import SourceSettings, config_dir  # noqa: E402
from hub.store.db import Store  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.survivorship import Survivorship  # noqa: E402
from hub.sync import sync_source  # noqa: E402


class TimedResolver(PersonResolver):
    """The pipeline's resolver, adding up the process CPU of its calls (optionally under cProfile)."""

    def __init__(self, profiler: cProfile.Profile | None = None, config: IdentityConfig | None = None) -> None:
        super().__init__(config)
        self.cpu = 0.0
        self.outcomes: Counter[str] = Counter()
        self.profiler = profiler

    def _timed(self, call, *args):  # type: ignore[no-untyped-def]
        start = time.process_time()
        if self.profiler is not None:
            self.profiler.enable()
        try:
            return call(*args)
        finally:
            if self.profiler is not None:
                self.profiler.disable()
            self.cpu += time.process_time() - start

    def resolve_batch(self, session: Session, candidates: Sequence[PersonCandidate]) -> list[Resolution]:
        """Timed ``PersonResolver.resolve_batch``."""
        out = self._timed(super().resolve_batch, session, candidates)
        self.outcomes.update(r.rule for r in out)
        return out

    def record_batch(self, session: Session, candidates: Sequence[PersonCandidate],
                     resolutions: Sequence[Resolution]) -> None:
        """Timed ``PersonResolver.record_batch``."""
        self._timed(super().record_batch, session, candidates, resolutions)


def run(url: str, legacy_url: str, profiler: cProfile.Profile | None,
        config: IdentityConfig | None = None) -> tuple[float, float, Counter[str]]:
    """(identity CPU s, sync wall s, outcomes) of one full sync into a fresh store at ``url``."""
    settings = SourceSettings(adapter="adapters.sql:SqlAdapter", mapping="legacy_escr.yaml",
                              options={"url": legacy_url}, batch_size=2000)
    adapter = SqlAdapter("legacy_escr", settings)
    store = Store(url)
    upgrade(store.engine)
    resolver = TimedResolver(profiler, config)
    pipeline = Pipeline(Survivorship.load(config_dir() / "survivorship.toml"), resolver=resolver)
    start = time.perf_counter()
    sync_source(store, adapter, pipeline, batch_size=settings.batch_size)
    wall = time.perf_counter() - start
    store.dispose()
    adapter.close()
    return resolver.cpu, wall, resolver.outcomes


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, nargs="+", default=[10_000, 30_000])
    parser.add_argument("--url", help="a PostgreSQL server URL to use instead of SQLite (a fresh database per size)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--max-candidates-per-key", type=int, help="override blocking.max_candidates_per_key")
    args = parser.parse_args()
    config = load_identity_config()
    if args.max_candidates_per_key:
        config = config.model_copy(update={"blocking": config.blocking.model_copy(
            update={"max_candidates_per_key": args.max_candidates_per_key})})
    work = Path(tempfile.mkdtemp(prefix="carehub-identity-"))
    print(f"{'people':>8} {'identity CPU s':>15} {'per 1k people':>14} {'x smallest':>11} "
          f"{'sync wall s':>12}  outcomes")
    base = None
    for n, people in enumerate(args.people):
        legacy_url = f"sqlite:///{work / f'legacy-{people}.db'}"
        generate(legacy_url, people=people)
        profiler = cProfile.Profile() if args.profile and n == len(args.people) - 1 else None
        admin, url = None, f"sqlite:///{work / f'hub-{people}.db'}"
        if args.url:
            admin = create_engine(make_url(args.url), isolation_level="AUTOCOMMIT")
            name = f"carehub_idbench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = make_url(args.url).set(database=name).render_as_string(False)
        try:
            cpu, wall, outcomes = run(url, legacy_url, profiler, config)
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
                admin.dispose()
        base = base or cpu / people
        print(f"{people:>8,} {cpu:>15.2f} {cpu / people * 1000:>14.3f} {cpu / people / base:>10.2f}x "
              f"{wall:>12.1f}  {dict(sorted(outcomes.items()))}")
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()

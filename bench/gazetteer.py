"""Gazetteer benchmark: load a synthetic LLPG, then match messy addresses against it.

Prints the load time, index build time, matches per second and accuracy
(share correct, wrongly matched, unmatched) beside the targets: load < 60 s,
>= 2,000 matches/s, >= 97% correct, <= 0.5% wrong.

    python bench/gazetteer.py                        # 400,000 BLPUs, 100,000 matches, SQLite
    python bench/gazetteer.py --blpus 20000 --matches 5000
    python bench/gazetteer.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
    python bench/gazetteer.py --only rural --rural-blpus 20000 --rural-matches 5000 --show-errors 20

Two generators, written independently: the town of ``gazetteer.simulator`` and the rural
district of ``gazetteer.rural`` (named properties without numbers, house names recurring
in other villages, named buildings with flats, organisations, lanes left out, large
postcode units, missing or wrong postcodes).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

# This file is named like the package it measures; drop its own folder from the
# import path so `import gazetteer` finds the package, not this script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from gazetteer.load import load_file  # noqa: E402
from gazetteer.matcher import AddressMatcher  # noqa: E402
from gazetteer.rural import generate_district, rural_variants  # noqa: E402
from gazetteer.simulator import Town, Variant, generate_town, messy_variants, write_full  # noqa: E402
from hub.store.db import Store  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def run(label: str, town: Town, variants: list[Variant], database_url: str | None, show: int) -> None:
    """Load one gazetteer, build the index, match its variants and print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        full = write_full(town, folder / "full.csv")
        lpis = sum(len(p.lpis) for p in town.properties)
        print(
            f"== {label}: {len(town.properties):,} BLPUs, {lpis:,} LPIs, "
            f"{len(town.streets):,} streets ({full.stat().st_size / 1e6:.0f} MB) "
            f"written in {time.perf_counter() - started:.1f} s"
        )
        store = Store(database_url or f"sqlite:///{folder / 'bench.db'}")
        upgrade(store.engine)
        started = time.perf_counter()
        result = load_file(store, full)
        load_seconds = time.perf_counter() - started
        print(f"load: {load_seconds:.1f} s ({store.engine.dialect.name}); {result.counts}")

        started = time.perf_counter()
        matcher = AddressMatcher.from_store(store)
        print(f"index: {matcher.size:,} addresses in {time.perf_counter() - started:.1f} s")

        outcomes: Counter[str] = Counter()
        wrong: list[tuple[str, str | None, str, str | None, str]] = []
        unmatched: list[tuple[str, str | None, str, str]] = []
        started = time.perf_counter()
        cpu = time.process_time()
        for variant in variants:
            found = matcher.match(variant.text, variant.postcode)
            if found.uprn is None:
                outcomes["unmatched"] += 1
                unmatched.append((variant.text, variant.postcode, variant.uprn, found.reason))
            elif found.uprn == variant.uprn:
                outcomes["correct"] += 1
            else:
                outcomes["wrong"] += 1
                wrong.append(
                    (variant.text, variant.postcode, variant.uprn, found.uprn, found.reason)
                )
        match_seconds = time.perf_counter() - started
        match_cpu = time.process_time() - cpu
        store.dispose()
        if database_url:
            # A shared database: leave it empty for the next run.
            store = Store(database_url)
            with store.engine.begin() as conn:
                for table in ("property_addresses", "properties", "street_descriptors", "streets",
                              "organisations", "classifications", "successors", "cross_references",
                              "gazetteer_loads"):
                    conn.exec_driver_sql(f"DELETE FROM {table}")
            store.dispose()

    total = len(variants)
    rate = total / match_seconds
    correct = outcomes["correct"] / total
    wrong_share = outcomes["wrong"] / total
    unmatched_share = outcomes["unmatched"] / total
    rows = (
        ("load time", f"{load_seconds:.1f} s", "< 60 s", load_seconds < 60, load_seconds / 60),
        ("match rate", f"{rate:.0f} /s", ">= 2000 /s", rate >= 2000, rate / 2000),
        ("correct", f"{correct:.2%}", ">= 97%", correct >= 0.97, correct / 0.97),
        (
            "wrongly matched",
            f"{wrong_share:.2%}",
            "<= 0.5%",
            wrong_share <= 0.005,
            wrong_share / 0.005,
        ),
    )
    for name, figure, target, ok, ratio in rows:
        print(f"{name:16} {figure:>10}   target {target:11} ratio {ratio:5.2f}  {_verdict(ok)}")
    print(f"unmatched       {unmatched_share:8.2%}   (CPU {match_cpu / total * 1e6:.0f} us a match, "
          f"load average {os.getloadavg()[0]:.1f})")
    for text, postcode, truth, got, reason in wrong[:show]:
        print(f"WRONG {text!r} pc={postcode} true={truth} got={got}: {reason}")
    for text, postcode, truth, reason in unmatched[:show]:
        print(f"UNMATCHED {text!r} pc={postcode} true={truth}: {reason}")


def main() -> None:
    """Run the benchmark on both generators and print their figures."""
    parser = argparse.ArgumentParser(description="Gazetteer load and match benchmark.")
    parser.add_argument("--blpus", type=int, default=400_000)
    parser.add_argument("--matches", type=int, default=100_000)
    parser.add_argument("--rural-blpus", type=int, default=100_000)
    parser.add_argument("--rural-matches", type=int, default=50_000)
    parser.add_argument(
        "--database-url", default=None, help="Store to load into (default: a new SQLite file)."
    )
    parser.add_argument(
        "--show-errors", type=int, default=0, help="Print this many wrong and unmatched cases."
    )
    parser.add_argument("--only", choices=("town", "rural"), default=None)
    args = parser.parse_args()
    if args.only != "rural":
        town = generate_town(args.blpus)
        run("town (gazetteer.simulator)", town, messy_variants(town, args.matches),
            args.database_url, args.show_errors)
    if args.only != "town":
        district = generate_district(args.rural_blpus)
        run("rural district (gazetteer.rural, independent)", district,
            rural_variants(district, args.rural_matches), args.database_url, args.show_errors)


if __name__ == "__main__":
    main()

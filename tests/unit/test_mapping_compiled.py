"""A compiled mapping gives exactly what its rules give, read one by one, for any kind of value."""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from mappings.engine import load_mapping
from tests.support.mappings import COLUMNS, MAPPING, PLACE_COLUMNS, by_rules, outcome

TEXTS = [None, "", "   ", "smith", "  o'brien-SMITH  ", "McDONALD", "N/K", "X", " x ", "Ann  Mary", "SMITH, John Paul",
         "M", " f ", "Z", "Y", "N", "A", "1", "12A High St", " 7 ", "abc", "31/02/2010", "01/03/2010", "2010-03-01",
         "2010-03-01 10:00:00", "2010-03-01T10:00:00", "2010-03-01T25:00:00", "943 476 5919", "0000000000", "T",
         "yes", "maybe", "21.50", "£1,234.5", "LS6 2AB", " ls62ab ", "CIN,cp, ,LAC", ",", "\t", "é"]
OTHERS = [0, 1, 42, 1.5, True, False, Decimal("3.10"), date(2010, 3, 1), datetime(2010, 3, 1, 10, 0), [], ["a", " "],
          {"k": "v"}, {}]


def value(rng: random.Random) -> Any:
    return rng.choice(TEXTS) if rng.random() < 0.75 else rng.choice(OTHERS)


def test_compiled_mapping_gives_what_the_rules_give(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING)
    mapping = load_mapping(path)
    rng = random.Random(20261127)
    people, episodes = mapping.streams["people"], mapping.streams["episodes"]
    columns = COLUMNS
    kinds = set()
    for _ in range(3000):
        for stream in (people, episodes):
            row = {c: value(rng) for c in columns[stream.name] if rng.random() < 0.9}
            if stream is people and rng.random() < 0.8:
                row["places"] = [{c: value(rng) for c in PLACE_COLUMNS if rng.random() < 0.9}
                                 for _ in range(rng.randrange(4))]
            expected = outcome(lambda r, s=stream: by_rules(s, r), row)
            assert outcome(stream.apply, row) == expected, row
            kinds.add(expected[0] if expected[0] != "quarantined" else expected[1])
    # the rows reached every outcome: mapped records of both kinds and each quarantine reason
    assert {"Person", "Episode", "MISSING_FIELD", "DATE_INVALID", "CODE_UNMAPPED", "NUMBER_INVALID",
            "BOOLEAN_INVALID"} <= kinds

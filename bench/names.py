"""Benchmark: what the name limits cost the canonical model's validation of a person.

Every person from every source passes ``Person`` validation, whose names are
checked for length and for control and text-direction characters (pydantic's
own regex engine, no Python call). This validates the same synthetic people
with the model as it is and with a copy whose names carry no limits, in
alternating rounds of the same run, and prints microseconds per person for
both, their ratio and the load average (the cores are shared).

    python bench/names.py [--people 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.model.person import NameUse, Person  # noqa: E402

GIVEN = ["Ann", "Tom", "Maya", "Oliver", "Priya", "Jack", "Zara", "Siân", "Grace", "Ravi", "Ellie", "Kofi"]
FAMILY = ["Hale", "O'Brien", "Singh", "Walsh-Nowak", "Begum", "Price", "Ní Dhomhnaill", "Evans", "McDonald"]


class LooseName(BaseModel):
    """PersonName as it was before the limits: the same fields, no lengths, no character check."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    use: NameUse = NameUse.OFFICIAL
    prefix: str | None = None
    given: list[str] = Field(default_factory=list)
    family: str | None = None


class LoosePerson(Person):
    """Person with names of :class:`LooseName`."""

    names: list[LooseName] = Field(min_length=1)  # type: ignore[assignment]


def people(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    out = []
    for _ in range(n):
        names = [{"use": "official", "family": rng.choice(FAMILY), "given": rng.sample(GIVEN, rng.randint(1, 3)),
                  "prefix": rng.choice(["Mr", "Mrs", "Ms", "Dr", None])}]
        if rng.random() < 0.3:
            names.append({"use": "old", "family": rng.choice(FAMILY)})
        out.append({"names": names, "birth_date": f"19{rng.randint(30, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                    "sex": rng.choice(["male", "female"])})
    return out


def per_person(model: type[BaseModel], docs: list[dict[str, Any]]) -> float:
    validate = model.__pydantic_validator__.validate_python
    start = time.process_time()
    for doc in docs:
        validate(doc)
    return (time.process_time() - start) / len(docs) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    docs = people(args.people)
    per_person(Person, docs[:1000])
    per_person(LoosePerson, docs[:1000])
    limited, loose = [], []
    for _ in range(args.rounds):
        limited.append(per_person(Person, docs))
        loose.append(per_person(LoosePerson, docs))
    one, five, fifteen = os.getloadavg()
    a, b = statistics.median(limited), statistics.median(loose)
    print(f"{args.people:,} people, {args.rounds} alternating rounds, CPU time, load average {one:.2f} {five:.2f} "
          f"{fifteen:.2f}")
    print(f"  Person with name limits    {a:6.2f} us/person (median; rounds {', '.join(f'{x:.2f}' for x in limited)})")
    print(f"  Person without name limits {b:6.2f} us/person (median; rounds {', '.join(f'{x:.2f}' for x in loose)})")
    print(f"  ratio {a / b:.3f}: the limits cost {a - b:+.2f} us per person")


if __name__ == "__main__":
    main()

"""Hypothesis: the compiled mapping and the reference (the rules read one by one) agree on generated rows.

Rows are drawn from the kinds of value legacy columns hold (text with spaces, codes, dates in
several formats, numbers, money, booleans, empty and missing values), for both streams of the
shared test mapping: the same document and references, or the same quarantine reason, message and
field, or the same failure.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.engine import load_mapping
from tests.support.mappings import COLUMNS, MAPPING, PLACE_COLUMNS, by_rules, outcome

SHAPED = st.sampled_from(["", "   ", "N/K", "X", "M", " f ", "Y", "A", "1", "31/02/2010", "01/03/2010",
                          "2010-03-01", "2010-03-01 10:00:00", "2010-03-01T10:00:00", "943 476 5919",
                          "0000000000", "yes", "21.50", "£1,234.5", "LS6 2AB", "CIN,cp, ,LAC", "SMITH, John Paul",
                          "12A High St"])
VALUES = st.one_of(
    st.none(), SHAPED, st.text(max_size=12), st.integers(-10**6, 10**6), st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**6, max_value=10**6),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31)),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2030, 12, 31)),
    st.just(Decimal("3.10")), st.just([]), st.just({}))


def rows(columns: list[str] | tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={c: VALUES for c in columns})




@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(person=rows(COLUMNS["people"]), places=st.lists(rows(PLACE_COLUMNS), max_size=3),
       episode=rows(COLUMNS["episodes"]))
def test_compiled_and_reference_agree(tmp_path_factory: pytest.TempPathFactory, person: dict[str, Any],
                                      places: list[dict[str, Any]], episode: dict[str, Any]) -> None:
    mapping = _mapping(tmp_path_factory)
    people, episodes = mapping.streams["people"], mapping.streams["episodes"]
    for stream, row in ((people, {**person, "places": places}), (episodes, episode)):
        assert outcome(stream.apply, row) == outcome(lambda r, s=stream: by_rules(s, r), row), row


_LOADED: dict[str, Any] = {}


def _mapping(factory: Any) -> Any:
    if "m" not in _LOADED:
        path = factory.mktemp("agreement") / "m.yaml"
        path.write_text(MAPPING)
        _LOADED["m"] = load_mapping(path)
    return _LOADED["m"]

"""The one FHIR search-parameter parser: types, modifiers, prefixes, escapes, lenient handling."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from hub.fhir_search import (
    BadSearch,
    ReferenceValue,
    StringValue,
    TokenValue,
    parse_date,
    parse_number,
    parse_search,
    wants_lenient,
)

BASE = "https://hub.example/fhir"


def test_dates_are_the_range_their_precision_covers() -> None:
    year = parse_date("ge1941")
    assert (year.prefix, year.start, year.end) == ("ge", datetime(1941, 1, 1, tzinfo=UTC),
                                                   datetime(1942, 1, 1, tzinfo=UTC))
    december = parse_date("1941-12")
    assert (december.prefix, december.last_day().isoformat()) == ("eq", "1941-12-31")
    moment = parse_date("sa2025-01-02T10:00:00+01:00")
    assert moment.start == datetime(2025, 1, 2, 9, tzinfo=UTC)
    for bad in ("1941-13", "soon", "xx1941", "1941-02-30"):
        with pytest.raises(BadSearch):
            parse_date(bad)


def test_numbers_tokens_and_references() -> None:
    assert parse_number("gt2.5").value == Decimal("2.5")
    with pytest.raises(BadSearch):
        parse_number("sa1")
    search = parse_search("Patient", [("identifier", "a|b,|c,d|,e"), ("_id", "x\\,y")], base=BASE)
    assert search.of("identifier")[0].values == (TokenValue("a", "b"), TokenValue("", "c"), TokenValue("d", None),
                                                 TokenValue(None, "e"))
    assert search.of("_id")[0].values == (TokenValue(None, "x,y"),)
    refs = parse_search("Encounter", [("subject:Patient", f"{BASE}/Patient/1,Patient/2,3,https://x.org/Patient/4")],
                        base=BASE).criteria[0].values
    assert refs == (ReferenceValue("Patient", "1"), ReferenceValue("Patient", "2"), ReferenceValue("Patient", "3"),
                    ReferenceValue("Patient", "4", foreign=True))


def test_or_and_and_and_what_is_applied() -> None:
    search = parse_search("Patient", [("family", "Jones,Smith"), ("family", "Jo"), ("_count", "9999"),
                                      ("_cursor", "abc")], base=BASE, max_count=100)
    assert [c.values for c in search.of("family")] == [(StringValue("Jones"), StringValue("Smith")),
                                                       (StringValue("Jo"),)]
    assert search.count == 100 and search.cursor == "abc"
    assert search.query_string() == "family=Jones%2CSmith&family=Jo&_count=100"


def test_unsupported_is_refused_unless_lenient() -> None:
    for pairs in ([("given:exact", "Z")], [("telecom", "1")], [("_sort", "family")], [("birthdate:missing", "x")]):
        with pytest.raises(BadSearch):
            parse_search("Patient", pairs, base=BASE)
        lenient = parse_search("Patient", [*pairs, ("family", "Hale")], base=BASE, lenient=True)
        assert lenient.query_string() == "family=Hale" and lenient.ignored
    with pytest.raises(BadSearch):  # a value that cannot be read is refused even when lenient
        parse_search("Patient", [("birthdate", "soon")], base=BASE, lenient=True)
    with pytest.raises(BadSearch):
        parse_search("AuditEvent", [("patient", "1,2")], base=BASE)
    assert wants_lenient("return=minimal, handling=lenient") and not wants_lenient("handling=strict")


def test_a_search_too_large_to_be_one_query_is_refused() -> None:
    with pytest.raises(BadSearch):
        parse_search("Patient", [("family", ",".join(["Hale"] * 51))], base=BASE)
    with pytest.raises(BadSearch):
        parse_search("Patient", [("family", "Hale")] * 21, base=BASE)


def test_every_resource_type_the_facade_serves_declares_its_parameters() -> None:
    from hub.fhir import RESOURCE_TYPES
    from hub.fhir_search import PARAMETERS

    assert set(PARAMETERS) == set(RESOURCE_TYPES) | {"AuditEvent"}

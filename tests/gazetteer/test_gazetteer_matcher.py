"""The matcher finds flats, ranges, suffixes, abbreviations and names; it says when unsure."""

from __future__ import annotations

from pathlib import Path

import pytest

from gazetteer.address import AddressableObject, Bs7666Address
from gazetteer.load import load_file
from gazetteer.matcher import AddressMatcher
from gazetteer.simulator import generate_town, messy_variants, write_full
from hub.model import Address
from hub.store.db import Store
from tests.support.gazetteer import U


@pytest.fixture
def matcher(tiny_store: Store) -> AddressMatcher:
    return AddressMatcher.from_store(tiny_store)


@pytest.mark.parametrize(
    "text",
    [
        "Flat 2, 14 High St",
        "14/2 High Street",
        "2/14 HIGH ST",
        "flat 2 14 high street exampletown zt1 1aa",
        "Apartment 2, 14 High St.",
        "Flat No. 2, 14, High Street, ZT11AA",
    ],
)
def test_flats_written_every_way(matcher: AddressMatcher, text: str) -> None:
    found = matcher.match(text)
    assert found.uprn == str(U + 2), found.reason
    assert found.lines[:2] == ["Flat 2", "14 High Street"]


def test_the_building_is_not_its_flat(matcher: AddressMatcher) -> None:
    assert matcher.match("14 High Street, ZT1 1AA").uprn == str(U + 1)
    assert matcher.match("14A High Street, ZT1 1AA").uprn == str(U + 4)


@pytest.mark.parametrize("text", ["14A High St", "14 a high street", "14 A, HIGH STREET"])
def test_suffixes(matcher: AddressMatcher, text: str) -> None:
    assert matcher.match(text).uprn == str(U + 4)


@pytest.mark.parametrize(
    "text", ["20-22 High Street", "20 - 22 HIGH ST", "20-22, High St, Exampletown"]
)
def test_ranges(matcher: AddressMatcher, text: str) -> None:
    found = matcher.match(text)
    assert found.uprn == str(U + 5)
    assert found.lines[0] == "20-22 High Street"


@pytest.mark.parametrize("text", ["9 Mill Rd", "9 MILL ROAD", "9, mill rd."])
def test_abbreviations(matcher: AddressMatcher, text: str) -> None:
    assert matcher.match(text).uprn == str(U + 10)


def test_wrong_postcode_lowers_confidence_and_says_so(matcher: AddressMatcher) -> None:
    right = matcher.match("30 High Street", postcode="ZT1 1AB")
    wrong = matcher.match("30 High Street", postcode="ZT7 9ZZ")
    assert right.uprn == wrong.uprn == str(U + 6)
    assert wrong.confidence < right.confidence
    assert "postcode differs" in wrong.reason


def test_missing_postcode_still_matches(matcher: AddressMatcher) -> None:
    found = matcher.match("30 high street")
    assert found.uprn == str(U + 6) and "no postcode" in found.reason


def test_organisation_and_building_names(matcher: AddressMatcher) -> None:
    pharmacy = matcher.match("Northbridge Pharmacy, High Street")
    assert pharmacy.uprn == str(U + 6)
    assert pharmacy.lines[0] == "Northbridge Pharmacy"
    assert matcher.match("Rose Cottage, High St, ZT1 1AB").uprn == str(U + 7)


def test_misspelt_street(matcher: AddressMatcher) -> None:
    found = matcher.match("9 Mil Road", postcode="ZT1 2BB")
    assert found.uprn == str(U + 10)


def test_unsure_when_flat_and_building_could_swap(matcher: AddressMatcher) -> None:
    found = matcher.match("3/5 Mill Road")
    assert found.uprn is None and found.confidence == 0.0
    assert "unsure" in found.reason and str(U + 8) in found.reason and str(U + 9) in found.reason
    assert matcher.match("Flat 3, 5 Mill Road").uprn == str(U + 8)


def test_unsure_when_the_street_name_is_in_two_places(matcher: AddressMatcher) -> None:
    assert matcher.match("7 Church Lane").uprn is None
    assert matcher.match("7 Church Lane, Oakley").uprn == str(U + 12)
    assert matcher.match("7 Church Lane", postcode="ZT2 1AA").uprn == str(U + 11)


def test_no_such_property_is_unmatched(matcher: AddressMatcher) -> None:
    for text in ("99 High Street", "1 Nowhere Avenue", "", "ZT1 1AA"):
        found = matcher.match(text)
        assert found.uprn is None and found.reason


def test_historical_property_is_not_matched(matcher: AddressMatcher) -> None:
    assert matcher.match("11 Mill Road").uprn is None


def test_match_address_sets_uprn_and_keeps_source_text(matcher: AddressMatcher) -> None:
    source = Address(text="flat 2, 14 high st", postcode="zt1 1aa")
    matched = matcher.match_address(source)
    assert matched.uprn == str(U + 2) and matched.usrn == "21000001"
    assert matched.text == "flat 2, 14 high st" and source.uprn is None
    unsure = matcher.match_address(Address(text="3/5 Mill Road"))
    assert unsure.uprn is None and unsure.text == "3/5 Mill Road"
    structured = matcher.match_address(Address(pao_start_number=9, street="Mill Road"))
    assert structured.uprn == str(U + 10) and structured.text is None


def test_rendering_for_a_letter_and_the_canonical_model() -> None:
    address = Bs7666Address(
        sao=AddressableObject(text="FLAT 3"),
        pao=AddressableObject(start_number=12, end_number=14, text="OAK COURT"),
        street="ST JOHN'S ROAD",
        locality="ASHBY",
        town="NORTHBRIDGE",
        postcode="ZT1 1AA",
        uprn="100050000001",
        usrn="21000001",
    )
    assert address.lines() == [
        "Flat 3",
        "Oak Court",
        "12-14 St John's Road",
        "Ashby",
        "NORTHBRIDGE",
        "ZT1 1AA",
    ]
    canonical = address.to_canonical(text="Flat 3 Oak Ct")
    assert canonical.sao_text == "FLAT 3" and canonical.pao_end_number == 14
    assert canonical.uprn == "100050000001" and canonical.text == "Flat 3 Oak Ct"


def test_messy_variants_of_a_simulated_town(store: Store, tmp_path: Path) -> None:
    town = generate_town(3000, seed=21)
    load_file(store, write_full(town, tmp_path / "full.csv"))
    matcher = AddressMatcher.from_store(store)
    variants = messy_variants(town, 1000, seed=4)
    results = [matcher.match(v.text, v.postcode).uprn for v in variants]
    correct = sum(got == v.uprn for got, v in zip(results, variants, strict=True))
    wrong = sum(got is not None and got != v.uprn for got, v in zip(results, variants, strict=True))
    assert correct >= 970
    assert wrong <= 5

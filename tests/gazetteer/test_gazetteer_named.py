"""Properties known by name: PAO text only, with or without the lane, names recurring in other
villages, named buildings with flats, organisations, missing, wrong and conflicting postcodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gazetteer.address import AddressableObject
from gazetteer.load import load_file
from gazetteer.matcher import AddressMatcher
from gazetteer.simulator import SimLpi, SimProperty, SimStreet, Town, write_full
from hub.store.db import Store

U = 300000000001


def _district() -> Town:
    town = Town([], [], next_uprn=U, next_key=700_000_000)
    mill = SimStreet(41000001, "MILL LANE", "LLANFAIR", post_town="ABERMOR")
    chapel = SimStreet(41000002, "CHAPEL ROAD", "LLANFAIR", post_town="ABERMOR")
    green = SimStreet(41000003, "GREEN LANE", "PENTRE", post_town="ABERMOR")
    town.streets += [mill, chapel, green]

    def add(street: SimStreet, postcode: str, pao: AddressableObject, sao: AddressableObject | None = None,
            org: str | None = None, parent: int | None = None) -> int:
        uprn = town.next_uprn
        town.next_uprn += 1
        lpi = SimLpi(town.key("L"), sao or AddressableObject(), pao, street.usrn, postcode, post_town=street.post_town)
        prop = SimProperty(uprn, "RD02", [lpi], parent)
        if org:
            prop.organisation, prop.org_key = org, town.key("O")
        town.properties.append(prop)
        return uprn

    add(mill, "RV1 1AA", AddressableObject(text="ROSE COTTAGE"))                     # U + 0
    add(green, "RV2 1AB", AddressableObject(text="ROSE COTTAGE"))                    # U + 1
    school = add(chapel, "RV1 1AD", AddressableObject(text="THE OLD SCHOOL"))        # U + 2
    for flat in (1, 2, 3):                                                           # U + 3..5
        add(chapel, "RV1 1AD", AddressableObject(text="THE OLD SCHOOL"), AddressableObject(text=f"FLAT {flat}"),
            parent=school)
    add(chapel, "RV1 1AD", AddressableObject(start_number=4), org="THE RED LION")   # U + 6
    add(mill, "RV1 1AA", AddressableObject(text="BRYN AWEL"))                        # U + 7
    add(mill, "RV1 1AA", AddressableObject(start_number=2))                          # U + 8
    add(green, "RV2 1AB", AddressableObject(text="HAFOD"))                           # U + 9
    return town


@pytest.fixture(scope="module")
def district_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_full(_district(), tmp_path_factory.mktemp("named") / "named-full.csv")


@pytest.fixture
def matcher(store: Store, district_file: Path) -> AddressMatcher:
    load_file(store, district_file)
    return AddressMatcher.from_store(store)


@pytest.mark.parametrize(
    ("text", "postcode", "expected"),
    [
        ("Rose Cottage, Llanfair", None, U),                      # name and village, no street
        ("ROSE COTTAGE, PENTRE, ABERMOR", None, U + 1),           # the same name in another village
        ("Rose Cottage", "RV2 1AB", U + 1),                       # name and postcode only
        ("Rose Cottage, Mill Lane, Llanfair", None, U),           # with the street
        ("rose cottage mill ln", None, U),                        # street abbreviated, no place
        ("Rose Cotage, Llanfair", None, U),                       # misspelt name
        ("Flat 2, The Old School, Llanfair", None, U + 4),        # a flat in a named building
        ("The Old School, Chapel Road, Llanfair", "RV1 1AD", U + 2),  # the building itself
        ("The Red Lion, Llanfair", None, U + 6),                  # an organisation's name
        ("Bryn Awel, Llanfair", "RV9 9ZZ", U + 7),                # a wrong postcode: still the name and place
        ("Hafod", None, U + 9),                                   # a name held once in the gazetteer
    ],
)
def test_named_properties_match_with_a_reason(matcher: AddressMatcher, text: str, postcode: str | None,
                                              expected: int) -> None:
    found = matcher.match(text, postcode)
    assert found.uprn == str(expected), found.reason
    assert 0.7 <= found.confidence <= 1.0
    assert found.reason


def test_a_wrong_postcode_costs_confidence_and_says_so(matcher: AddressMatcher) -> None:
    right = matcher.match("Bryn Awel, Llanfair", "RV1 1AA")
    wrong = matcher.match("Bryn Awel, Llanfair", "RV9 9ZZ")
    assert right.uprn == wrong.uprn == str(U + 7)
    assert wrong.confidence < right.confidence and "postcode differs" in wrong.reason


@pytest.mark.parametrize(
    ("text", "postcode"),
    [
        ("Rose Cottage", None),                     # two villages hold it, nothing says which
        ("Rose Cottage, Abermor", None),            # the post town covers both
        ("Rose Cottage, Llanfair", "RV2 1AB"),      # the place says one, the postcode the other
    ],
)
def test_two_close_candidates_are_left_unsure(matcher: AddressMatcher, text: str, postcode: str | None) -> None:
    found = matcher.match(text, postcode)
    assert found.uprn is None
    assert found.reason.startswith("unsure")
    assert {c.uprn for c in found.candidates[:2]} == {str(U), str(U + 1)}

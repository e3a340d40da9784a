"""A second synthetic gazetteer, written independently of :mod:`gazetteer.simulator`'s town.

A rural district: villages and hamlets in several post towns, short lanes with a handful of
properties, postcode units that span several lanes, and many properties known by name
alone (PAO text only: the cottages, farms and named houses of every rural LLPG). The same
house names recur in other villages; some named buildings hold flats; pubs, shops, surgeries
and halls carry organisation names. Its own name lists, so a matcher tuned on the town's
words gets no help here. :func:`rural_variants` writes addresses the way a case system holds
them: a name with or without its lane, the village without the lane, the organisation
instead of the address, flats in a named building, typos, and missing or wrong postcodes.

The district is a :class:`~gazetteer.simulator.Town`, so the same DTF 7.3 writer
(``write_full``) writes it.
"""

from __future__ import annotations

import random

from gazetteer.address import AddressableObject
from gazetteer.simulator import SimLpi, SimProperty, SimStreet, Town, Variant

VILLAGE_STARTS = (  # noqa: SIM905 - a word list reads best as one string
    "ABER BRYN CAER CWM DOL GLAN LLAN MAES NANT PEN PONT RHOS TRE YS BETWS CEFN "
    "ASH BRAMP CHED DUNS EAST FAIR HAWK KING LONG MARSH NEW OAK SHIP STAN WEST WOOL"
).split()
VILLAGE_ENDS = (  # noqa: SIM905
    "DEWI GARTH FFORDD WEN DDU FAWR ISAF UCHAF BURY COMBE FORD HAM HOLT LEIGH STOKE TON WICK WORTHY"
).split()
POST_TOWNS = ("LLANWYDDEN", "ABERMORLAIS", "KINGSCOMBE", "HOLTBRIDGE")
LANE_NAMES = (  # noqa: SIM905
    "MILL CHAPEL CHURCH SCHOOL STATION GREEN POUND WELL FORGE QUARRY ORCHARD RECTORY "
    "VICARAGE SMITHY TANNERY PADDOCK BARLEY WHEAT CLOVER HAZEL ROWAN ALDER BIRCH YEW"
).split()
LANE_TYPES = (("LANE", 40), ("ROAD", 20), ("HILL", 10), ("ROW", 5), ("TERRACE", 5), ("WAY", 5),
              ("STREET", 5), ("BANK", 5), ("END", 5))
HOUSE_WORDS = (  # noqa: SIM905
    "ROSE IVY HONEYSUCKLE WISTERIA LILAC HAWTHORN BRAMBLE FERN HEATHER OLD NEW LOWER UPPER "
    "HIGH NORTH SOUTH MEADOW BROOK SPRING STONE THATCH APPLE PEAR PLUM CHERRY WILLOW"
).split()
HOUSE_KINDS = ("COTTAGE", "FARM", "HOUSE", "BARN", "LODGE", "VIEW", "END", "MILL", "CROFT",
               "BUNGALOW", "FARMHOUSE", "COTTAGES")
WELSH_NAMES = ("TY GWYN", "TY NANT", "BRYN AWEL", "GWELFOR", "HAFOD", "PENRHIW", "MAES Y COED",
               "CAE MAWR", "BRYNTEG", "TYN Y COED", "PENLAN", "GLANRAFON")
BUILDINGS = ("THE OLD SCHOOL", "THE OLD RECTORY", "THE MALTINGS", "THE GRANARY", "CHAPEL HOUSE",
             "THE OLD BAKERY", "STATION HOUSE", "THE COACH HOUSE")
ORGANISATIONS = ("THE RED LION", "THE PLOUGH INN", "THE BLACK HORSE", "VILLAGE STORES",
                 "POST OFFICE", "VILLAGE HALL", "COMMUNITY SURGERY", "PRIMARY SCHOOL",
                 "FARM SHOP", "GARAGE", "CHAPEL", "PARISH CHURCH")
AREA = "RV"
_INWARD = "ABDEFGHJLNPQRSTUWXYZ"


def _house_name(rng: random.Random) -> str:
    if rng.random() < 0.25:
        return rng.choice(WELSH_NAMES)
    return f"{rng.choice(HOUSE_WORDS)} {rng.choice(HOUSE_KINDS)}"


def generate_district(blpus: int, seed: int = 11) -> Town:
    """A seeded rural district of about ``blpus`` properties in villages and hamlets."""
    rng = random.Random(seed)
    district = Town([], [], next_uprn=200070000001, next_key=500_000_000)
    villages: list[tuple[str, str, str]] = []  # (village, post town, outward code)
    seen: set[str] = set()
    while len(villages) < max(4, blpus // 120):
        name = rng.choice(VILLAGE_STARTS) + rng.choice(VILLAGE_ENDS)
        if name in seen:
            continue
        seen.add(name)
        town = POST_TOWNS[len(villages) % len(POST_TOWNS)]
        villages.append((name, town, f"{AREA}{1 + len(villages) % 40}"))
    units: dict[str, int] = {}
    # House names already used in each village: a second one in the same village is rare
    # (Royal Mail would want the lane), so only a few are allowed.
    used: dict[str, set[str]] = {}
    lanes_used: set[tuple[str, str]] = set()
    usrn = 31000001
    lane_types = [t for t, _ in LANE_TYPES]
    lane_weights = [w for _, w in LANE_TYPES]
    while len(district.properties) < blpus:
        village, post_town, outward = rng.choice(villages)
        # A village's postcode unit covers a few lanes (rural units are large).
        n = units.get(outward, 0)
        units[outward] = n + 1
        unit = f"{outward} {1 + (n // 400) % 9}{_INWARD[(n // 20) % 20]}{_INWARD[n % 20]}"
        lanes = rng.randint(1, 4)
        for _ in range(lanes):
            if len(district.properties) >= blpus:
                break
            lane = f"{rng.choice(LANE_NAMES)} {rng.choices(lane_types, lane_weights)[0]}"
            if (village, lane) in lanes_used:
                continue  # one Church Lane to a village
            lanes_used.add((village, lane))
            street = SimStreet(usrn, lane, village, post_town=post_town)
            usrn += 1
            district.streets.append(street)
            _fill_lane(district, street, unit, rng, used.setdefault(village, set()))
    return district


def _add(district: Town, street: SimStreet, postcode: str, sao: AddressableObject,
         pao: AddressableObject, blpu_class: str, parent: int | None = None) -> SimProperty:
    uprn = district.next_uprn
    district.next_uprn += 1
    lpi = SimLpi(district.key("L"), sao, pao, street.usrn, postcode, post_town=street.post_town)
    prop = SimProperty(uprn, blpu_class, [lpi], parent)
    district.properties.append(prop)
    return prop


def _fill_lane(
    district: Town, street: SimStreet, postcode: str, rng: random.Random, village: set[str]
) -> None:
    names: set[str] = set()
    numbered = rng.random() < 0.35  # most lanes are not numbered at all
    number = 0
    for _ in range(rng.randint(3, 18)):
        roll = rng.random()
        if roll < 0.06:
            name = rng.choice(BUILDINGS)
            if name in names or (name in village and rng.random() > 0.05):
                continue
            names.add(name)
            village.add(name)
            parent = _add(district, street, postcode, AddressableObject(), AddressableObject(text=name), "PP")
            for i in range(rng.randint(2, 5)):
                _add(district, street, postcode, AddressableObject(text=f"FLAT {i + 1}"),
                     AddressableObject(text=name), "RD06", parent.uprn)
        elif roll < 0.12:
            name = rng.choice(ORGANISATIONS)
            if name in names or (name in village and rng.random() > 0.05):
                continue
            names.add(name)
            village.add(name)
            pao = AddressableObject(start_number=number + 1) if numbered else AddressableObject(
                text=f"{rng.choice(HOUSE_WORDS)} {rng.choice(('HOUSE', 'BUILDINGS', 'HALL'))}")
            if numbered:
                number += 1
            prop = _add(district, street, postcode, AddressableObject(), pao, "CR01")
            prop.organisation = name
            prop.org_key = district.key("O")
        elif numbered and roll < 0.6:
            number += 1
            text = _house_name(rng) if rng.random() < 0.3 else None
            if text in names or text in village:
                text = None
            if text:
                names.add(text)
                village.add(text)
            _add(district, street, postcode, AddressableObject(),
                 AddressableObject(start_number=number, text=text), "RD02")
        else:
            name = _house_name(rng)
            if name in names or (name in village and rng.random() > 0.05):
                continue
            names.add(name)
            village.add(name)
            _add(district, street, postcode, AddressableObject(), AddressableObject(text=name),
                 rng.choice(("RD02", "RD03", "RD04")))


def _misspell(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    i = rng.randint(1, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:] if rng.random() < 0.5 else word[:i] + word[i + 1:]


def _rural_variant(district: Town, prop: SimProperty, units: list[str], rng: random.Random) -> Variant:
    lpi = prop.approved
    street = district.street(lpi.usrn)
    parts: list[str] = []
    pao, sao = lpi.pao, lpi.sao
    org = prop.organisation
    if org and rng.random() < 0.6:
        parts.append(org.title() if rng.random() < 0.5 else org)
    if sao.text:
        parts.append(sao.text.replace("FLAT", rng.choice(("Flat", "Flat", "Apt", "FLAT"))))
    name = pao.text or ""
    if name and rng.random() < 0.07:
        words = name.split()
        longest = max(range(len(words)), key=lambda i: len(words[i]))
        words[longest] = _misspell(words[longest], rng)
        name = " ".join(words)
    lane = street.name
    if rng.random() < 0.4:
        lane = lane.replace("LANE", "LN").replace("ROAD", "RD").replace("STREET", "ST")
    # Named properties often leave the lane out; numbered ones keep it.
    keep_lane = pao.start_number is not None or rng.random() < 0.55
    number = str(pao.start_number) if pao.start_number is not None else ""
    if name and (not number or rng.random() < 0.6):
        parts.append(name)
    if keep_lane:
        parts.append(f"{number} {lane}".strip())
    elif number and not name:
        parts.append(f"{number} {lane}")
    if rng.random() < 0.85 or not keep_lane:
        parts.append(street.locality)
    if rng.random() < 0.5:
        parts.append(street.post_town)
    postcode: str | None = lpi.postcode
    roll = rng.random()
    if roll < 0.25:
        postcode = None
    elif roll < 0.31:
        postcode = rng.choice(units)  # wrong, from anywhere in the district
    text = ", ".join(p for p in parts if p)
    roll = rng.random()
    text = text.title() if roll < 0.5 else text.lower() if roll < 0.6 else text
    return Variant(text, postcode, str(prop.uprn))


def rural_variants(district: Town, count: int, seed: int = 5) -> list[Variant]:
    """``count`` addresses of the district's properties as case systems write them, with the true UPRN."""
    rng = random.Random(seed)
    live = [p for p in district.properties if p.logical_status == 1 and p.blpu_class != "PP"]
    units = sorted({p.approved.postcode for p in live})
    return [_rural_variant(district, rng.choice(live), units, rng) for _ in range(count)]

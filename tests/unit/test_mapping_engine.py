"""The mapping engine: rules, transforms, and errors that name file, line and field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hub.errors import MappingError, QuarantineError
from mappings.engine import load_mapping

HEAD = """source: s
streams:
  people:
    entity: Person
    table: P
    key: ID
    fields:
"""


def mapping(tmp_path: Path, fields: str, extra: str = "") -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + fields + extra)
    return path


def test_rules_transform_and_drop_empty_list_elements(tmp_path: Path) -> None:
    m = load_mapping(mapping(tmp_path, """\
      names[0].family: {from: NAME, transform: [{split_name: family}, title]}
      names[0].given: {from: NAME, transform: [{split_name: given}, title]}
      names[1].family: {from: OLD, transform: [trim, title]}
      names[1].use: {value: old}
      birth_date: {from: DOB, transform: [{date: ["%d/%m/%Y", "%Y-%m-%d"]}]}
      sex: {from: G, map: {M: male, F: female}, on_unmapped: default, default: unknown}
      nhs_number: {from: NHS, transform: [digits_only], null_if: ["0000000000"]}
"""))
    record = m.streams["people"].apply({"NAME": "SMITH, john paul", "OLD": "  ", "DOB": "1950-02-01",
                                        "G": "X", "NHS": "943 476 5919"})
    assert record.document == {
        "names": [{"family": "Smith", "given": ["John", "Paul"]}],
        "birth_date": __import__("datetime").date(1950, 2, 1),
        "sex": "unknown",
        "nhs_number": "9434765919",
    }


def test_bad_values_raise_quarantine_reasons(tmp_path: Path) -> None:
    m = load_mapping(mapping(tmp_path, """\
      names[0].family: {from: SN, required: true}
      birth_date: {from: DOB, transform: [{date: "%d/%m/%Y"}]}
      sex: {from: G, map: {M: male}}
"""))
    stream = m.streams["people"]
    with pytest.raises(QuarantineError) as missing:
        stream.apply({"SN": " ", "DOB": None, "G": "M"})
    assert missing.value.reason == "MISSING_FIELD" and missing.value.field == "names[0].family"
    with pytest.raises(QuarantineError) as bad_date:
        stream.apply({"SN": "Hale", "DOB": "31/02/2010", "G": "M"})
    assert bad_date.value.reason == "DATE_INVALID"
    with pytest.raises(QuarantineError) as code:
        stream.apply({"SN": "Hale", "DOB": None, "G": "Z"})
    assert code.value.reason == "CODE_UNMAPPED"


def test_money_and_joins(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("""source: s
streams:
  svc:
    entity: Commitment
    table: S
    key: ID
    fields:
      service_type: {from: T, transform: [lower]}
      unit_cost: {from: PENCE, transform: [pence_to_pounds]}
      units_per_week: {from: UNITS, transform: [decimal]}
      start: {from: START, transform: [{date: "%Y-%m-%d"}]}
      provider_name: {from: [P1, P2], join: " / "}
""")
    record = load_mapping(path).streams["svc"].apply(
        {"T": "HOME_CARE", "PENCE": 1850, "UNITS": "10.5", "START": "2024-01-01", "P1": "Acme", "P2": ""})
    assert record.document["unit_cost"] == Decimal("18.50")
    assert record.document["units_per_week"] == Decimal("10.5")
    assert record.document["provider_name"] == "Acme"


@pytest.mark.parametrize(
    ("fields", "line", "message"),
    [
        ("      shoe_size: SIZE\n", 8, "Person has no field 'shoe_size'"),
        ("      sex: {from: G, transform: [sparkle]}\n", 8, "unknown transform 'sparkle'"),
        ("      sex: {from: G, colour: red}\n", 8, "unknown rule keys"),
        ("      names[0].family: SN\n      sex: {nothing: here}\n", 9, "unknown rule keys"),
    ],
)
def test_mapping_errors_name_file_line_and_field(tmp_path: Path, fields: str, line: int, message: str) -> None:
    path = mapping(tmp_path, fields)
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    text = str(err.value)
    assert f"{path}:{line}:" in text
    assert message in text


def test_unknown_entity_and_ref_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(HEAD.replace("Person", "Spaceship") + "      x: Y\n")
    with pytest.raises(MappingError, match="unknown entity 'Spaceship'"):
        load_mapping(path)
    path.write_text(HEAD + "      names[0].family: SN\n  eps:\n    entity: Episode\n    table: E\n    key: ID\n"
                    "    fields:\n      person_id: {ref: nowhere, from: PID}\n")
    with pytest.raises(MappingError, match="ref to unknown stream 'nowhere'"):
        load_mapping(path)

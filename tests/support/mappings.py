"""The mapping engine's reference: a stream's rules applied one by one with ``FieldRule.read``.

The compiled form (``mappings.compiled``, what ``StreamMapping.apply`` runs) must give exactly what
this gives for every row (tests/unit/test_mapping_compiled.py, test_mapping_agreement.py).
"""

from __future__ import annotations

from typing import Any

from hub.contract import MappedRecord
from hub.errors import QuarantineError
from mappings.documents import assign, prune
from mappings.engine import StreamMapping

MAPPING = """source: s
streams:
  people:
    entity: Person
    table: P
    key: ID
    collections:
      places: {table: A, foreign_key: ID}
    fields:
      names[0].use: {value: official}
      names[0].family: {from: SN, transform: [trim, collapse_spaces, title], required: true}
      names[0].given: {from: FN, transform: [trim, split, title]}
      names[0].prefix: {from: T, transform: [lower, string, upper], null_if: ["N/K", "X"]}
      names[1].use: {value: old}
      names[1].family: {from: OLD, transform: [{split_name: family}, title]}
      names[1].given: {from: OLD, transform: [{split_name: given}, upper]}
      birth_date: {from: DOB, transform: [{date: ["%d/%m/%Y", "%Y-%m-%d"]}]}
      death_date: {from: DOD, transform: [{datetime: ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]}]}
      sex: {from: G, transform: [trim, upper], map: {M: male, F: female}, on_unmapped: quarantine}
      nhs_number: {from: NHS, transform: [digits_only], null_if: ["0000000000"]}
      nhs_number_status: {from: V, transform: [trim], map: {Y: "01"}, on_unmapped: default, default: "02"}
      ethnicity: {from: E, map: {A: A, "1": B}, on_unmapped: keep}
      language: {from: L, transform: [{regex: '^\\s*([a-z]+)'}, upper], default: en}
      interpreter_required: {from: I, transform: [bool]}
      merged_into: {from: [SN, FN, NUM], join: " / "}
      identifiers[0].system: {value: s}
      identifiers[0].value: {from: ID, transform: [string]}
      identifiers[1].value: {from: NUM, transform: [int, string], required: false}
      addresses:
        each: places
        fields:
          use: {from: U, map: {H: home}, on_unmapped: default, default: temp}
          text: {from: [L1, L2, PC], join: ", "}
          pao_start_number: {from: L1, transform: [{regex: '^\\s*(\\d+)'}, int]}
          postcode: {from: PC, transform: [trim, upper], required: true}
          start: {from: S, transform: [{date: "%d/%m/%Y"}]}
  episodes:
    entity: Episode
    table: E
    key: ID
    fields:
      person_id: {ref: people, from: PID}
      kind: {from: K, transform: [{split: ","}, lower], required: true}
      start: {from: S, transform: [{date: "%Y-%m-%d"}], required: true}
      team: {from: TEAM, transform: [pence_to_pounds]}
      allocated_worker: {from: W, transform: [decimal, string]}
"""

COLUMNS = {"people": ["ID", "SN", "FN", "T", "OLD", "DOB", "DOD", "G", "NHS", "V", "E", "L", "I", "NUM"],
           "episodes": ["ID", "PID", "K", "S", "TEAM", "W"]}
"""The source columns each stream of :data:`MAPPING` reads."""
PLACE_COLUMNS = ("U", "L1", "L2", "PC", "S")


def by_rules(stream: StreamMapping, row: dict[str, Any]) -> MappedRecord:
    """The stream's rules applied one by one with FieldRule.read: what the mapping means."""
    doc: dict[str, Any] = {}
    references: dict[str, tuple[str, str]] = {}
    for rule in stream.rules:
        if rule.each is not None:
            built = []
            for child in row.get(rule.each) or []:
                item: dict[str, Any] = {}
                for sub in rule.nested:
                    got = sub.read(child)
                    if got is not None:
                        assign(item, sub.path, got)
                built.append(item)
            assign(doc, rule.path, built)
            continue
        got = rule.read(row)
        if got is None:
            continue
        if rule.ref is not None:
            references[rule.target] = (rule.ref, str(got))
        else:
            assign(doc, rule.path, got)
    for name in stream.list_fields:
        if name in doc:
            doc[name] = prune(doc[name])
            if not doc[name]:
                del doc[name]
    return MappedRecord(entity_type=stream.entity, document=doc, references=references)


def outcome(apply: Any, row: dict[str, Any]) -> Any:
    try:
        record = apply(row)
    except QuarantineError as exc:
        return ("quarantined", exc.reason, str(exc), exc.field)
    except Exception as exc:  # noqa: BLE001 - a value the rules cannot take fails the same way
        return ("failed", type(exc).__name__)
    return (record.entity_type, record.document, record.references)

"""The write seam: only ``hub/store`` writes canonical entities, their derived state and the outbox.

Every other module goes through the golden-record writer (``hub.store.writer``) and
``append_events``. This test reads the source tree (every package of the hub and its
links) and fails on any SQL text, SQLAlchemy statement, bulk helper, model construction
or assignment of a column only they have, from anywhere else; and a session that flushes
a canonical row changed outside the writer raises.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.errors import WriteSeamError
from hub.model import Person
from hub.store.db import Store
from hub.store.tables import Entity, OutboxEvent, PersonIndex
from hub.store.writer import Provenance, write_canonical

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hub", "adapters", "mappings", "gazetteer", "edrms", "finance_link", "health_link")
SEAM = ROOT / "hub" / "store"

TABLES = ("outbox", "entities", "person_index", "person_identifiers", "source_links", "transition_cohort")
MODELS = ("OutboxEvent", "Entity", "PersonIndex", "PersonIdentifier", "SourceLink", "CohortFacts")
# Columns only those tables have: assigning one is changing a canonical row. (Any ORM change to a canonical row
# outside the writer also fails at flush: see test_a_change_outside_the_writer_is_refused_at_flush.)
COLUMNS = frozenset({"match_fields", "merged_into", "family_phonetic", "given_phonetic", "nhs_verified", "lane"})
# Objects that carry such names but are not rows: the object itself, and the pipeline's work item.
NOT_ROWS = frozenset({"self", "item"})

_MODEL = "|".join(MODELS)
_PATTERNS = (
    re.compile(rf"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(?:{'|'.join(TABLES)})\b", re.IGNORECASE),
    re.compile(rf"\b(?:insert|update|delete|pg_insert|sqlite_insert)\(\s*(?:{_MODEL})\b"),
    re.compile(rf"\b(?:bulk_insert|bulk_update|insert_new|insert_returning)\(\s*\w+\s*,\s*(?:{_MODEL})\b"),
    re.compile(rf"(?<![\w.])(?:{_MODEL})\("),
    re.compile(rf"\b__table__\b.*\b(?:{'|'.join(TABLES)})\b"),
)


def violations(source: str) -> list[str]:
    """Where ``source`` writes a canonical table or the outbox: ``line: text`` for each."""
    found = []
    for number, line in enumerate(source.splitlines(), 1):
        if any(p.search(line) for p in _PATTERNS):
            found.append(f"{number}: {line.strip()}")
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for element in target.elts if isinstance(target, ast.Tuple) else [target]:
                if (isinstance(element, ast.Attribute) and element.attr in COLUMNS
                        and not (isinstance(element.value, ast.Name) and element.value.id in NOT_ROWS)):
                    found.append(f"{node.lineno}: {ast.unparse(element)} = ...")
    return found


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if SEAM not in p.parents)


def test_no_module_outside_the_store_writes_canonical_records_or_events() -> None:
    offenders = {str(p.relative_to(ROOT)): hits for p in _modules() if (hits := violations(p.read_text()))}
    assert offenders == {}, "write canonical records through hub.store.writer and events through append_events"


def test_the_scan_reads_the_links_too() -> None:
    scanned = {p.relative_to(ROOT).parts[0] for p in _modules()}
    assert {"hub", "health_link", "gazetteer", "adapters"} <= scanned


@pytest.mark.parametrize("bad", [
    'session.execute(text("INSERT INTO outbox (event_id) VALUES (:e)"), {"e": e})',
    'cursor.execute("update entities set document = ? where id = ?", (d, i))',
    "session.execute(insert(OutboxEvent), rows)",
    "session.execute(update(Entity).where(Entity.id == i).values(document=d))",
    "session.execute(pg_insert(SourceLink).on_conflict_do_nothing(), rows)",
    "bulk_insert(session, OutboxEvent, COLUMNS, rows)",
    "session.add(OutboxEvent(event_id=e, kind='updated'))",
    "session.add(PersonIndex(person_id=p))",
    "row.match_fields, row.status = fields, 'active'",
    "index.merged_into = survivor",
])
def test_the_scan_catches_each_way_of_writing(bad: str) -> None:
    assert violations(bad)


@pytest.mark.parametrize("fine", [
    "session.execute(select(Entity.document).where(Entity.id == i))",
    "append_events(session, events)",
    "revise_entity(session, entity, document)",
    "item.document = mapped.document",
    "doc.person_id = target  # a link's own table",
    'cursor.execute("SELECT id FROM outbox WHERE lane = ?", (lane,))',
])
def test_reads_and_the_writer_s_calls_pass(fine: str) -> None:
    assert violations(fine) == []


def test_a_change_outside_the_writer_is_refused_at_flush(store: Store) -> None:
    with store.session() as session:
        write_canonical(session, Person.model_validate({"names": [{"given": ["Ann"], "family": "Leigh"}],
                                                        "birth_date": "1950-03-04"}),
                        Provenance("test", "clients", "1"))
    for change in ("document", "index", "new event"):
        with pytest.raises(WriteSeamError), store.session() as session:
            entity = session.scalars(select(Entity)).one()
            if change == "document":
                entity.document = "{}"
            elif change == "index":
                session.get(PersonIndex, entity.id).match_fields = None  # type: ignore[union-attr]
            else:
                session.add(OutboxEvent(event_id="x", entity_type="Person", entity_id=entity.id, kind="updated",
                                        version=2, ordering_key=entity.id, payload="{}"))
            session.flush()
    with store.session() as session:
        assert session.scalars(select(Entity.version)).one() == 1

"""The demo's EDRMS: a CMIS simulator holding documents about the demo's people, pulled and linked.

`carehub demo` calls :func:`link_documents` after the sources are synced (``[demo] after_sync``). It
starts the CMIS simulator on the port of ``[edrms] service_url`` (any free port when that one is taken,
or when it is 0) and leaves it running while the demo serves, so the record page's "Open in the EDRMS"
links answer. The documents name the demo's people the ways council EDRMSs do - by legacy client id,
NHS number, case id, the hub's id, or not at all - and some carry wrong or stale ids. The pull links
what it can; the rest are the records manager's orphans.
"""

from __future__ import annotations

import errno
import socket
from collections import defaultdict
from datetime import date
from urllib.parse import urlsplit

import orjson
from sqlalchemy import select

from edrms.cmis import connect
from edrms.pull import DocumentPull
from edrms.records import counts
from edrms.retention import Schedule
from edrms.simulator import CmisSimulator, Repository, Subject, synthetic_documents
from hub.settings import Settings
from hub.store.db import Store
from hub.store.tables import Entity, PersonIdentifier, PersonIndex, SourceLink


def demo_subjects(store: Store, settings: Settings, limit: int = 150) -> list[Subject]:
    """Subjects made from demo people: their names, birth dates, legacy client ids, NHS numbers, cases."""
    system = settings.edrms.client_id_system
    with store.session() as s:
        rows = s.execute(select(Entity.id, Entity.document).join(PersonIndex, PersonIndex.person_id == Entity.id)
                         .where(Entity.entity_type == "Person", PersonIndex.merged_into.is_(None))
                         .order_by(Entity.id).limit(limit)).all()
        ids = [pid for pid, _ in rows]
        clients = dict(s.execute(select(PersonIdentifier.person_id, PersonIdentifier.value).where(
            PersonIdentifier.person_id.in_(ids), PersonIdentifier.system == system)).all())
        cases: dict[str, list[str]] = defaultdict(list)
        for pid, source_id in s.execute(select(Entity.person_id, SourceLink.source_id).join(
                SourceLink, SourceLink.entity_id == Entity.id).where(Entity.person_id.in_(ids),
                                                                     Entity.entity_type == "Episode")):
            if pid:
                cases[pid].append(source_id)
        sealed = set(s.scalars(select(Entity.person_id).where(Entity.person_id.in_(ids), Entity.entity_type == "Seal")))
        stale: dict[str, list[str]] = defaultdict(list)
        for gone, into in s.execute(select(PersonIndex.person_id, PersonIndex.merged_into).where(
                PersonIndex.merged_into.in_(ids))):
            if into:
                stale[into].append(gone)
    subjects = []
    for pid, document in rows:
        doc = orjson.loads(document)
        name = (doc.get("names") or [{}])[0]
        born = doc.get("birth_date")
        subjects.append(Subject(
            given=" ".join(name.get("given") or []) or "Unknown", family=name.get("family") or "Unknown",
            birth_date=date.fromisoformat(born) if born else None, person_id=pid, nhs_number=doc.get("nhs_number"),
            client_id=clients.get(pid), case_ids=tuple(cases.get(pid, [])), stale_ids=tuple(stale.get(pid, [])),
            sealed=pid in sealed))
    return subjects


def _port(wanted: int) -> int:
    if not wanted:
        return 0
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", wanted))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return 0
            raise
    return wanted


def link_documents(settings: Settings, documents: int = 300) -> str:
    """Start the demo's EDRMS, pull its documents and link them; a one-line summary."""
    store = Store(settings.database_url)
    try:
        subjects = demo_subjects(store, settings)
        if not subjects:
            return "EDRMS: no demo people to write documents about; nothing linked"
        repository = Repository(page_limit=100, changes=True)
        synthetic_documents(repository, subjects, documents)
        simulator = CmisSimulator(repository, port=_port(urlsplit(settings.edrms.service_url).port or 0)).start()
        edrms = settings.edrms.model_copy(update={"service_url": simulator.browser_url, "enabled": True,
                                                  "user": None, "password": None, "token": None})
        cmis = connect(edrms.service_url)
        try:
            result = DocumentPull(store, cmis, edrms, Schedule.from_settings(settings)).run()
        finally:
            cmis.close()
        with store.session() as s:
            held = counts(s)
    finally:
        store.dispose()
    reasons = ", ".join(f"{k.lower().replace('_', ' ')} {v}" for k, v in sorted(result.reasons.items()))
    return (f"EDRMS: {result.read} documents pulled over CMIS from {simulator.browser_url}: "
            f"{held.get('linked', 0)} linked, {held.get('orphan', 0)} orphans ({reasons}); "
            f"records managers see the orphans at /records/documents")

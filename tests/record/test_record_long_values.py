"""Values longer than their audit columns (a token's subject or team, a role or purpose header, a path, a person
id) never make an audit write fail: PostgreSQL enforces the lengths SQLite ignores. Each long value is kept as a
prefix and a digest of the whole, the same way every time, so two long values never become one."""

from __future__ import annotations

from sqlalchemy import func, select

from hub.store.audit import AuditEvent, AuditSubject
from hub.store.db import Store
from tests.support.record_hub import Hub


def audit_rows(store: Store) -> list[AuditEvent]:
    with store.session() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_long_values_leave_their_audit_row(hub: Hub) -> None:
    long_user = "u" * 300
    cases = [
        ("/api/persons", {"name": "hale"}, hub.headers(long_user + "-a", "clinician", "ICT-1"), 200),
        ("/api/persons", {"name": "hale"}, hub.headers(long_user + "-b", "clinician", "ICT-1"), 200),
        ("/api/persons", {"name": "hale"}, hub.headers("sw.owen", "social_worker", "T" * 400), 200),
        ("/api/persons", {"name": "hale"}, hub.headers("dr.patel", "clinician", "ICT-1", **{"X-Role": "r" * 200}),
         403),
        ("/api/persons", {"name": "hale"}, hub.headers("dr.patel", "clinician", "ICT-1", **{"X-Purpose": "p" * 200}),
         403),
        ("/api/persons/" + "9" * 3000 + "/record", None, hub.headers("dr.patel", "clinician", "ICT-1"), 404),
        ("/fhir/Patient/" + "x" * 200, None, hub.headers("dr.patel", "clinician", "ICT-1"), 404),
        ("/api/persons/bad%00id/record", None, hub.headers("dr.patel", "clinician", "ICT-1"), 400),  # a NUL
        ("/fhir/Patient", {"family": "ha\x00le"}, hub.headers("dr.patel", "clinician", "ICT-1"), 400),
    ]
    before = len(audit_rows(hub.store))
    for path, params, headers, status in cases:
        r = hub.client.get(path, params=params, headers=headers)
        assert r.status_code == status, (path[:60], r.status_code, r.text[:200])
        if status >= 400:
            kind = "application/fhir+json" if path.startswith("/fhir") else "application/problem+json"
            assert r.headers["content-type"].startswith(kind)
    rows = audit_rows(hub.store)[before:]
    assert len(rows) == len(cases)
    users = [r.user_id for r in rows[:2]]
    assert users[0] != users[1] and all(len(u) <= 128 for u in users)
    assert all(u.startswith("uuuu") for u in users)
    assert len(rows[2].team or "") <= 64 and (rows[2].team or "").startswith("TTTT")
    assert len(rows[3].role or "") <= 32 and rows[3].outcome == "denied"
    assert len(rows[4].purpose or "") <= 32 and rows[4].outcome == "denied"
    assert len(rows[5].path) <= 512 and rows[5].path.startswith("/api/persons/999")
    assert "\x00" not in rows[7].path and rows[7].path.startswith("/api/persons/bad")
    assert rows[8].status == 400
    with hub.store.session() as s:
        subjects = s.scalars(select(AuditSubject.person_id).where(AuditSubject.audit_id.in_([r.id for r in rows])))
        assert all(len(p) <= 36 for p in subjects)
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == before + len(cases)


def test_a_long_user_is_found_by_the_same_fitted_id(hub: Hub) -> None:
    long_user = "auditor-" + "z" * 300
    auditor = hub.headers(long_user, "auditor")
    assert hub.client.get("/api/persons", params={"name": "hale"}, headers=hub.headers(long_user, "clinician",
                                                                                        "ICT-1")).status_code == 200
    # the FHIR AuditEvent search by agent finds that user's rows with the id as the token gave it
    r = hub.client.get("/fhir/AuditEvent", params={"agent": long_user}, headers=auditor)
    assert r.status_code == 200, r.text
    assert r.json().get("total", len(r.json().get("entry", []))) >= 1

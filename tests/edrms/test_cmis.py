"""The CMIS simulator speaks real CMIS (Apache Chemistry's cmislib drives it) and the hub's client reads it
through either binding, with paging, change tokens, auth and errors translated to hub errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cmislib import CmisClient
from cmislib.browser.binding import BrowserBinding

from edrms.cmis import CmisConflict, CmisNotFound, CmisRefused, CmisUnavailable, Credentials, connect
from edrms.simulator import CmisSimulator, Repository, synthetic_documents, synthetic_subjects

USER, PASSWORD, TOKEN = "hub", "synthetic-secret", "synthetic-bearer-token"


@pytest.fixture(scope="module")
def simulator() -> Iterator[CmisSimulator]:
    repository = Repository(page_limit=25, credentials=(USER, PASSWORD), bearer=TOKEN)
    synthetic_documents(repository, synthetic_subjects(40), 120, seed=3)
    with CmisSimulator(repository) as sim:
        yield sim


def test_cmislib_reads_queries_updates_and_relates(simulator: CmisSimulator) -> None:
    client = CmisClient(simulator.browser_url, USER, PASSWORD, binding=BrowserBinding())
    repo = client.defaultRepository
    info = repo.getRepositoryInfo()
    assert info["cmisVersionSupported"] == "1.1" and info["vendorName"] == "Alfresco"
    assert repo.getCapabilities()["Changes"] == "properties"
    page = repo.query("SELECT * FROM cmis:document ORDER BY cmis:name", maxItems=10, skipCount=5)
    names = [d.getProperties()["cmis:name"] for d in page]
    assert len(names) == 10 and names == sorted(names)
    doc = page[0]
    assert doc.getProperties()["cmis:contentStreamMimeType"] == "application/pdf"
    doc.updateProperties({"sc:recordClass": "adults"})
    assert repo.getObject(doc.getObjectId()).getProperties()["sc:recordClass"] == "adults"
    other = page[1]
    rel = doc.createRelationship(other, "R:sc:relatedTo")
    assert rel.getProperties()["cmis:targetId"] == other.getObjectId()
    assert len(doc.getRelationships()) == 1
    changes = repo.getContentChanges(changeLogToken="1", maxItems=5)
    assert len(changes) == 5 and changes[0].getChangeType() == "created"


def test_the_hub_reads_both_bindings_alike_and_pages_past_the_limit(simulator: CmisSimulator) -> None:
    statement = "SELECT * FROM cmis:document WHERE sc:documentType = 'support_plan' ORDER BY cmis:objectId"
    seen: dict[str, list[str]] = {}
    for url in (simulator.browser_url, simulator.atom_url):
        repo = connect(url, Credentials(USER, PASSWORD))
        info = repo.info()
        assert info.repository_id == "-default-" and info.changes_available
        pages = list(repo.query(statement, page_size=500))  # the repository caps pages at 25
        ids = [o.object_id for p in pages for o in p.objects]
        assert all(len(p.objects) <= 25 for p in pages) and pages[-1].has_more is False
        first = pages[0].objects[0]
        assert isinstance(first.modified, datetime) and first.modified.tzinfo is not None
        assert first.content is not None and first.content.mime_type == "application/pdf"
        seen[repo.binding_name] = ids
        repo.close()
    assert seen["browser"] == seen["atompub"] and len(seen["browser"]) > 0


def test_an_update_with_a_stale_token_is_refused_and_the_client_rereads(simulator: CmisSimulator) -> None:
    repo = connect(simulator.browser_url, Credentials(token=TOKEN))
    obj = next(iter(repo.query("SELECT * FROM cmis:document ORDER BY cmis:objectId", 1))).objects[0]
    stale = obj.change_token
    simulator.repository.touch(obj.object_id, {"sc:author": "someone.else"})
    with pytest.raises(CmisConflict):
        repo.binding.update_properties(obj.object_id, {"sc:recordClass": "childrens"}, stale)
    written = repo.set_properties(obj.object_id, {"sc:recordClass": "childrens"}, current=obj)
    assert written is not None and written.properties["sc:recordClass"] == "childrens"
    assert written.properties["sc:author"] == "someone.else"
    atom = connect(simulator.atom_url, Credentials(USER, PASSWORD))
    again = atom.set_properties(obj.object_id, {"sc:retentionDate": datetime(2040, 1, 1, tzinfo=UTC)})
    assert again is not None and again.properties["sc:retentionDate"] == datetime(2040, 1, 1, tzinfo=UTC)
    repo.close()
    atom.close()


def test_errors_become_hub_errors(simulator: CmisSimulator) -> None:
    with pytest.raises(CmisRefused):
        connect(simulator.browser_url, Credentials(USER, "wrong"))
    repo = connect(simulator.browser_url, Credentials(USER, PASSWORD))
    with pytest.raises(CmisNotFound):
        repo.get_object("workspace://SpacesStore/no-such-document")
    repo.close()
    with pytest.raises(CmisUnavailable):
        connect("http://127.0.0.1:9/alfresco/api/-default-/public/cmis/versions/1.1/browser", timeout=2)


def test_the_change_log_is_refused_when_switched_off() -> None:
    from edrms.cmis import CmisInvalid

    repository = Repository(changes=False)
    synthetic_documents(repository, synthetic_subjects(5), 5)
    with CmisSimulator(repository) as sim:
        repo = connect(sim.browser_url)
        assert not repo.info().changes_available
        with pytest.raises(CmisInvalid):
            repo.content_changes(None, 10)
        repo.close()

"""The records manager's page in headless Chromium: an orphan linked in two clicks, unlinked with a reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.edrms import EdrmsHub
from tests.support.pages import replaced, serve, shot, sign_in, visible


@pytest.fixture
def server(edrms_hub: EdrmsHub) -> Iterator[str]:
    edrms_hub.pull()
    yield from serve(edrms_hub.client.app)


def click_and_wait(browser: webdriver.Chrome, element: webdriver.remote.webelement.WebElement) -> None:
    old = browser.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(browser, 20).until(replaced(old))


def test_records_manager_links_an_orphan_in_two_clicks_and_unlinks_it(server: str, browser: webdriver.Chrome,
                                                                      edrms_hub: EdrmsHub) -> None:
    sign_in(browser, server, "rm.clarke")
    browser.find_element(By.LINK_TEXT, "Documents").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Documents"
    assert "4 orphans" in visible(browser)
    orphan = next(a for a in browser.find_elements(By.CSS_SELECTOR, "article.orphan")
                  if "Nora Quinn (23/11/1978)" in a.text)
    sky = next(a for a in browser.find_elements(By.CSS_SELECTOR, "article.orphan") if "Sky Marlow" in a.text)
    assert "Link to Sky" not in sky.text  # the sealed person is never suggested
    shot(browser, "edrms/orphans")
    first = orphan.find_element(By.CSS_SELECTOR, "ul.suggestions summary")
    assert first.text.startswith("Link to Nora Quinn")
    first.click()  # one
    click_and_wait(browser, orphan.find_element(By.CSS_SELECTOR, "button.link-confirm"))  # two
    page = visible(browser)
    assert "Linked: the document is on the person's record" in page and "3 orphans" in page
    row = browser.find_element(By.CSS_SELECTOR, "table.results tbody tr")
    assert "Letter - Nora Quinn" in row.text and edrms_hub.people["nora"] in row.text
    shot(browser, "edrms/linked")
    row.find_element(By.TAG_NAME, "summary").click()
    row.find_element(By.CSS_SELECTOR, "input[name='reason']").send_keys("Another Nora Quinn: wrong person")
    click_and_wait(browser, row.find_element(By.CSS_SELECTOR, "button.unlink-confirm"))
    assert "Unlinked" in visible(browser) and "4 orphans" in visible(browser)
    browser.get(f"{server}/records/retention?due_before=2100-01-01")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Retention report"
    assert "held: IICSA" in visible(browser)


def test_other_roles_may_not_open_it(server: str, browser: webdriver.Chrome, edrms_hub: EdrmsHub) -> None:
    sign_in(browser, server, "sw.owen")
    browser.get(f"{server}/records/documents")
    assert "Letter" not in visible(browser)

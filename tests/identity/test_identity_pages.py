"""The identity review pages in headless Chromium, against the real server on a loopback port.

A data quality officer works the queue from the keyboard: opens a pair, sees both
records and the evidence, merges, undoes the merge, keeps the twins apart; the
record page then says why records were joined. Screenshots go to
test-artifacts/identity/ (gitignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from hub.store.db import Store
from tests.support.pages import contrast, press_enter_on, serve, shot, sign_in, visible
from tests.support.two_sources import Hub, make_hub


@pytest.fixture
def hub(store: Store, tmp_path: Path) -> Iterator[Hub]:
    yield from make_hub(store, tmp_path)


@pytest.fixture
def server(hub: Hub) -> Iterator[str]:
    """The hub's app served by uvicorn on a free loopback port."""
    yield from serve(hub.client.app)


def test_a_reviewer_merges_undoes_and_keeps_twins_apart_from_the_keyboard(
    server: str, browser: webdriver.Chrome, hub: Hub
) -> None:
    sign_in(browser, server, "dq.hughes")
    press_enter_on(browser, browser.find_element(By.LINK_TEXT, "Identity review"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Identity review"
    assert "2 pairs" in browser.find_element(By.ID, "queue-heading").text
    assert "possibly twins" in visible(browser)
    shot(browser, "identity/queue")

    # the unsure pair: Greta Hawthorne, born the day Margaret (Peggy) was
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "table.results tbody tr") if "Greta" in r.text)
    press_enter_on(browser, row.find_element(By.PARTIAL_LINK_TEXT, "Review pair"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Are these the same person?"
    compare = browser.find_element(By.CSS_SELECTOR, "table.compare")
    assert compare.find_element(By.TAG_NAME, "caption").text == "The two records side by side"
    assert "Greta Hawthorne" in compare.text and "Peggy Hawthorne" in compare.text
    assert "1941-03-12" in compare.text and "escr/clients/1" in compare.text
    evidence = browser.find_element(By.CSS_SELECTOR, ".evidence table").text
    assert "Given name" in evidence and "Birth date exact" in evidence
    accept, reject = browser.find_element(By.ID, "accept"), browser.find_element(By.ID, "reject")
    assert accept.text == "Same person: merge" and reject.text == "Different people: keep apart"
    for button in (accept, reject):
        assert contrast(browser, button) >= 4.5
    assert contrast(browser, browser.find_element(By.TAG_NAME, "body")) >= 4.5
    shot(browser, "identity/pair")

    press_enter_on(browser, accept)
    assert "Merged: the two records are now one person." in browser.find_element(
        By.CSS_SELECTOR, "[role=status]").text
    undo = browser.find_element(By.ID, "unmerge")
    assert contrast(browser, undo) >= 4.5
    shot(browser, "identity/merged")
    press_enter_on(browser, undo)
    assert "Merge undone" in browser.find_element(By.CSS_SELECTOR, "[role=status]").text
    assert "kept apart" in visible(browser)

    # the twins: kept apart, and gone from the queue
    browser.get(f"{server}/identity/reviews")
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "table.results tbody tr") if "Amy" in r.text)
    press_enter_on(browser, row.find_element(By.PARTIAL_LINK_TEXT, "Review pair"))
    assert "Twins:" in visible(browser)
    press_enter_on(browser, browser.find_element(By.ID, "reject"))
    assert "will not be asked about again" in browser.find_element(By.CSS_SELECTOR, "[role=status]").text
    assert "0 pairs" in browser.find_element(By.ID, "queue-heading").text
    shot(browser, "identity/queue-empty")

    # the record page says why Peggy's record was joined to Margaret's
    browser.get(f"{server}/persons/{hub.people['margaret']}")
    joined = browser.find_element(By.ID, "joined-heading")
    assert joined.text == "Why these records were joined"
    summary = browser.find_element(By.CSS_SELECTOR, ".joined-records details summary")
    assert "Record adults clients 101: matched with score" in summary.text
    summary.send_keys(Keys.ENTER)  # details open from the keyboard
    assert "nickname" in browser.find_element(By.CSS_SELECTOR, ".joined-records details").text
    assert "Kept apart from person" in visible(browser)
    shot(browser, "identity/record-why")


def test_the_queue_is_refused_to_other_roles(server: str, browser: webdriver.Chrome, hub: Hub) -> None:
    sign_in(browser, server, "sw.owen")
    assert browser.find_elements(By.LINK_TEXT, "Identity review") == []
    browser.get(f"{server}/identity/reviews")
    assert "needs the role admin or data_quality" in visible(browser)

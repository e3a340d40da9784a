"""The transitions pages in headless Chromium: the due list, starting a transition (held without consent, the
referral with it), its status, history and reconciliation as the adults' system answers, the s66 refusal, and
the Transition beside the children's and adults' episodes on the record page.

Both case systems are simulators on loopback; the referral goes through the real outbox and delivery loop.
Screenshots under test-artifacts/transitions/ (gitignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from adapters.adults_case import AdultsCaseClient
from adapters.simulators.adults_case import AdultsCaseSystem
from adapters.simulators.childrens_case import ChildrensCaseSystem
from hub.api.app import create_app
from hub.pipeline import Pipeline
from hub.settings import Settings
from hub.store.db import Store
from hub.sync import sync_source
from hub.transitions import move
from tests.support.delivery import drain
from tests.support.pages import contrast, press_enter_on, serve, shot, sign_in, visible
from tests.support.transitions import TODAY, born, delivered, hub_person, intake_loop, rest_source


def choose(driver: webdriver.Chrome, radio_id: str) -> None:
    """Pick a radio button with the space bar."""
    radio = driver.find_element(By.ID, radio_id)
    driver.execute_script("arguments[0].focus()", radio)
    driver.switch_to.active_element.send_keys(Keys.SPACE)
    assert radio.is_selected(), radio_id


@pytest.fixture
def hub_server(store: Store, tmp_path: Path, children: ChildrensCaseSystem) -> Iterator[tuple[str, dict[str, str]]]:
    """Three young people in the children's system, synced; the hub served on a loopback port."""
    ids = {
        "dana": children.add_child(birth_date=born(17, 200), cin="N2", disabilities=["AUT"]),
        "eli": children.add_child(birth_date=born(16, 10), lac="N1"),
        "young": children.add_child(birth_date=born(9), cin="N1"),
    }
    sync_source(store, rest_source(children, "childrens_case", "childrens_case.yaml"), Pipeline(), batch_size=50)
    app = create_app(Settings(database_url=store.url, data_dir=tmp_path / "var"), store)
    with TestClient(app):
        yield from ((base, {k: hub_person(store, v) for k, v in ids.items()}) for base in serve(app))


def test_a_transitions_worker_finds_who_is_due_and_starts_transitions(
        hub_server: tuple[str, dict[str, str]], browser: webdriver.Chrome, store: Store,
        children: ChildrensCaseSystem, adults: AdultsCaseSystem) -> None:
    base, people = hub_server
    sign_in(browser, base, "tw.ali")
    press_enter_on(browser, browser.find_element(By.LINK_TEXT, "Transitions"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Transitions to adult services"
    heading = browser.find_element(By.ID, "due-heading").text
    assert heading.startswith("2 young people") and "overdue" in heading
    rows = browser.find_elements(By.CSS_SELECTOR, "table.due-list tbody tr")
    first = rows[0].text  # overdue first: Dana is past 17½ with no transition assessment
    assert "Overdue" in first and "Child in need with a disability" in first
    assert "Transition assessment (by 17½)" in first and "overdue" in first
    assert "Looked after" in rows[1].text and "Overdue" not in rows[1].text
    assert all(people["young"] not in r.get_attribute("innerHTML") for r in rows)
    assert contrast(browser, browser.find_element(By.CSS_SELECTOR, ".badge-alert")) >= 4.5
    assert contrast(browser, browser.find_element(By.TAG_NAME, "body")) >= 4.5
    shot(browser, "transitions/due-list")

    # filtered to the next month: only Dana's milestones fall in it
    browser.execute_script("document.getElementById('due_before').value = arguments[0]", TODAY.isoformat())
    press_enter_on(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/transitions'] button"))
    assert browser.find_element(By.ID, "due-heading").text.startswith("1 young person, 1 overdue")

    # Eli does not consent: held, with the reason shown
    browser.get(f"{base}/transitions")
    eli_row = browser.find_elements(By.CSS_SELECTOR, "table.due-list tbody tr")[1]
    press_enter_on(browser, eli_row.find_element(By.PARTIAL_LINK_TEXT, "Start a transition"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Start a transition"
    press_enter_on(browser, browser.find_element(By.ID, "start-transition"))  # nothing answered
    assert "Check the answers" in browser.find_element(By.ID, "start-error").text
    for radio in ("likely_needs_after_18-yes", "significant_benefit-yes", "consent_route-consent",
                  "consent_given-no", "has_capacity-yes"):
        choose(browser, radio)
    browser.find_element(By.ID, "significant_benefit_reason").send_keys("Year 11: time to plan before 18")
    shot(browser, "transitions/start-form")
    press_enter_on(browser, browser.find_element(By.ID, "start-transition"))
    assert browser.find_element(By.ID, "stage").text == "Held"
    assert "consent" in browser.find_element(By.ID, "hold-reason").text.lower()
    assert "0 sent" in browser.find_element(By.ID, "reconciliation-summary").text
    shot(browser, "transitions/held")

    # Dana consents: the referral goes to the adults' system through the outbox
    browser.get(f"{base}/transitions/start?person_id={people['dana']}")
    for radio in ("likely_needs_after_18-yes", "significant_benefit-yes", "consent_route-consent",
                  "consent_given-yes", "has_capacity-yes"):
        choose(browser, radio)
    browser.find_element(By.ID, "significant_benefit_reason").send_keys("Year 12: exams next summer")
    press_enter_on(browser, browser.find_element(By.ID, "start-transition"))
    assert browser.find_element(By.ID, "stage").text == "Referral sent to adults' services"
    transition_url = browser.current_url
    tid = transition_url.rsplit("/", 1)[1]

    loop = intake_loop(store, adults)
    client = AdultsCaseClient({"base_url": adults.base_url, "auth": "oauth2", "token_url": adults.token_url,
                               "client_id": adults.client_id, "client_secret": adults.client_secret})
    try:
        drain(loop, lambda: delivered(store) >= 1, timeout=30)
        with store.session() as s:
            move.follow(s, client, TODAY)
        browser.get(transition_url)
        assert browser.find_element(By.ID, "stage").text == "Received by adults' services"
        summary = browser.find_element(By.ID, "reconciliation-summary").text
        sent = int(summary.split(" sent")[0])
        assert sent > 3 and f"{sent} acknowledged" in summary
        history = browser.find_element(By.ID, "history").text
        assert "Identified" in history and "tw.ali" in history and "Received by adults' services" in history
        assert "person" in browser.find_element(By.ID, "reconciliation").text
        press_enter_on(browser, browser.find_element(By.ID, "close-case"))  # before the plan: refused (s66)
        assert "s66" in browser.find_element(By.ID, "refused").text
        shot(browser, "transitions/refused-close")

        referral = next(iter(adults.collections["intake"].values()))
        adults.advance(referral["id"], 3)
        with store.session() as s:
            move.follow(s, client, TODAY)
        sync_source(store, rest_source(adults, "adults_case", "adults_case.yaml"), Pipeline(), batch_size=50)
    finally:
        client.close()
        loop.close()
    browser.get(transition_url)
    assert browser.find_element(By.ID, "stage").text == "Adult plan in place"
    press_enter_on(browser, browser.find_element(By.ID, "close-case"))
    assert browser.find_element(By.ID, "stage").text == "Children's case closed"

    # the record page: the Transition with its history, children's and adults' episodes side by side
    browser.get(f"{base}/persons/{people['dana']}")
    section = browser.find_element(By.CSS_SELECTOR, "section[aria-labelledby='transition-heading']").text
    assert "Closed" in section and "plan in place" in section and "acknowledged" in section
    assert browser.find_element(By.LINK_TEXT, "status, history and reconciliation").get_attribute(
        "href").endswith(tid)
    childrens = browser.find_element(By.ID, "episodes-childrens").text
    assert "CIN" in childrens and "team Children with Disabilities (CWD)" in childrens   # the team by its name
    assert "team Adults East (ASC-E)" in browser.find_element(By.ID, "episodes-adults").text
    assert "(transitions worker, Transitions)" in browser.find_element(By.CLASS_NAME, "who").text
    shot(browser, "transitions/record-transition")


def test_other_roles_are_refused_the_transitions_pages(hub_server: tuple[str, dict[str, str]],
                                                       browser: webdriver.Chrome) -> None:
    base, _people = hub_server
    sign_in(browser, base, "sw.amira")
    assert browser.find_elements(By.LINK_TEXT, "Transitions") == []
    browser.get(f"{base}/transitions")
    assert "need the role transitions_worker or admin" in visible(browser)

"""The finance page and the record page's planned-vs-actual panel in headless Chromium, against the hub on a
loopback port: keyboard use, AA contrast measured in the browser, totals, right-aligned money, the CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from finance_link.commitments import derive_commitments
from hub.store.finance import FinanceLine
from tests.support.finance import FinanceHub, plan_doc, service_doc
from tests.support.pages import contrast, replaced, shot, sign_in, visible


@pytest.fixture
def ledger(fin: FinanceHub) -> Iterator[dict[str, str]]:
    """Three approved services pushed to the ERP, invoices back (one 25% over plan), one service and one plan's
    personal budget awaiting approval."""
    people = {}
    for n, provider in enumerate(("P0001", "P0003", "P0003")):
        fin.council.person(f"b{n}", 60 + n)
        fin.council.ingest("plans", f"plan-b{n}", plan_doc(f"b{n}"))
        fin.council.ingest("services", f"svc-b{n}", service_doc(f"b{n}", f"plan-b{n}", provider_id=provider))
    fin.council.ingest("services", "svc-b0-extra", service_doc("b0", "plan-b0", status="awaiting_approval",
                                                                unit_cost="18.00"))
    fin.council.ingest("plans", "plan-b0-next", {**plan_doc("b0", status="awaiting_approval"),
                                                 "personal_budget": "12000.00"})
    derive_commitments(fin.store, fin.settings)
    fin.loop()
    fin.drain(lambda: fin.erp.stats()["applied"] == 3)
    lines = sorted(fin.erp.commitments)
    over = lines[0]
    fin.erp.post_actuals(fin.url, fin.token(), fin.erp.invoices(4, date(2026, 2, 1),
                                                                overspend={over: Decimal("1.25")}))
    with fin.store.session() as s:
        people["over"] = s.get(FinanceLine, over).person_id  # type: ignore[union-attr]
    yield people


def test_finance_officer_filters_commitments_by_keyboard_and_downloads_the_csv(
        fin: FinanceHub, ledger: dict[str, str], browser: webdriver.Chrome) -> None:
    base = fin.url
    sign_in(browser, base, "fin.jones")
    old = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.LINK_TEXT, "Care commitments").click()
    WebDriverWait(browser, 20).until(replaced(old))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Care commitments"
    totals = browser.find_element(By.ID, "filter-totals").text
    assert "Approved (sent to finance) 3 645.00 33,540.00" in totals
    assert "Indicative (not approved, never sent) 1 180.00" in totals
    assert "Indicative personal budgets (plans awaiting approval; annual) 1 – 12,000.00" in totals
    rows = browser.find_elements(By.CSS_SELECTOR, "#lines tbody tr")
    assert len(rows) == 3
    flagged = browser.find_elements(By.CSS_SELECTOR, "#lines tr.variance-flag")
    assert len(flagged) == 1 and "Over threshold" in flagged[0].text and "(25.0%)" in flagged[0].text
    foot = browser.find_element(By.CSS_SELECTOR, "#lines tfoot").text
    assert "645.00" in foot and "2,580.00" in foot and "2,795.00" in foot  # weekly, planned, actual
    for cell in browser.find_elements(By.CSS_SELECTOR, "#lines td.num")[:6]:
        assert cell.value_of_css_property("text-align") == "right"
    badge, link = flagged[0].find_element(By.CSS_SELECTOR, ".badge"), browser.find_element(By.ID, "csv-download")
    for element in [*flagged[0].find_elements(By.CSS_SELECTOR, "td"), badge, link]:
        assert contrast(browser, element) >= 4.5, element.text
    shot(browser, "finance/page")

    # keyboard only: Tab from the skip link to the provider list, pick P0003, Tab to the button, Enter
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to main content"
    for _ in range(12):
        if browser.switch_to.active_element.get_attribute("id") == "provider":
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    provider = browser.switch_to.active_element
    assert provider.get_attribute("id") == "provider"
    provider.send_keys("P0003")
    for _ in range(15):  # on to the submit button (each date field is three stops), then Enter
        browser.switch_to.active_element.send_keys(Keys.TAB)
        if browser.switch_to.active_element.tag_name == "button":
            break
    assert browser.switch_to.active_element.text == "Show commitments"
    old = browser.find_element(By.TAG_NAME, "html")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(browser, 20).until(replaced(old))
    assert "provider=P0003" in browser.current_url
    assert len(browser.find_elements(By.CSS_SELECTOR, "#lines tbody tr")) == 2
    assert "Approved (sent to finance) 2 430.00" in browser.find_element(By.ID, "filter-totals").text

    href = browser.find_element(By.ID, "csv-download").get_attribute("href")
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    answer = requests.get(href, cookies=cookies, timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(table) == 2 and {r["provider_code"] for r in table} == {"P0003"}
    assert all(r["weekly_amount"] == "215.00" for r in table)


def test_the_record_page_shows_planned_vs_actual_and_other_roles_get_no_finance_page(
        fin: FinanceHub, ledger: dict[str, str], browser: webdriver.Chrome) -> None:
    base = fin.url
    sign_in(browser, base, "fin.jones")
    browser.get(f"{base}/persons/{ledger['over']}")
    panel = browser.find_element(By.ID, "spend").text
    assert "Care costs: planned and actual" in visible(browser)
    assert "860.00 1,075.00 215.00 (25.0%)\nOver threshold" in panel
    shot(browser, "finance/record-spend")
    sign_in(browser, base, "dr.patel")
    browser.get(f"{base}/finance")
    assert "Not available to your role" in visible(browser) and "Care commitments" not in browser.title
    browser.get(f"{base}/persons/{ledger['over']}")
    assert "Care costs" not in visible(browser)  # a clinician may not read commitments

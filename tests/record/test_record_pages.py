"""The record pages in headless Chromium, against the real server on a loopback port.

Asserts on what a user sees, and on what a sealed or non-consenting record does
not show. Screenshots are kept under test-artifacts/record/ (gitignored).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.record_hub import Hub

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "record"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(hub: Hub) -> Iterator[str]:
    """The hub's app served by uvicorn on a free loopback port."""
    yield from serve(hub.client.app)


def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yields its base URL, then stops it."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium through chromedriver (Debian packages chromium, chromium-driver)."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.fail("install chromium and chromium-driver (make system-packages)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--window-size=1280,1000", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    yield chrome
    chrome.quit()


def replaced(old: WebElement) -> Callable[[webdriver.Chrome], bool]:
    """A wait condition: the page holding ``old`` has been replaced by the next one."""

    def check(_driver: webdriver.Chrome) -> bool:
        try:
            old.is_enabled()
        except WebDriverException:  # stale, or no longer in any document
            return True
        return False

    return check


def submit_and_wait(browser: webdriver.Chrome, button: str) -> None:
    """Click a submit button and wait until the next page has replaced this one."""
    old = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.CSS_SELECTOR, button).click()
    WebDriverWait(browser, 20).until(replaced(old))


def sign_in(browser: webdriver.Chrome, base: str, user: str) -> None:
    browser.get(f"{base}/sign-in")
    browser.find_element(By.CSS_SELECTOR, f"input[value='{user}']").click()
    submit_and_wait(browser, "form[action='/sign-in'] button")
    assert "Find a person" in browser.find_element(By.TAG_NAME, "h1").text


def shot(browser: webdriver.Chrome, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def visible(browser: webdriver.Chrome) -> str:
    return browser.find_element(By.TAG_NAME, "body").text


def test_social_worker_searches_and_opens_a_record(server: str, browser: webdriver.Chrome, hub: Hub) -> None:
    browser.get(f"{server}/sign-in")
    # keyboard first: the skip link is the first thing Tab reaches
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to main content"
    sign_in(browser, server, "sw.owen")
    name = browser.find_element(By.ID, "q")
    assert browser.find_element(By.CSS_SELECTOR, "label[for='q']").text == "Name"
    old = browser.find_element(By.TAG_NAME, "html")
    name.send_keys("ann hale", Keys.ENTER)
    WebDriverWait(browser, 20).until(replaced(old))
    assert "found" in browser.find_element(By.ID, "results-heading").text
    shot(browser, "search")
    old = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.LINK_TEXT, "Ann Hale").click()
    WebDriverWait(browser, 20).until(replaced(old))
    page = visible(browser)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Ann Hale"
    for expected in ("Owen Price", "Dog in the house", "long_term_support", "Timeline", "Care Act assessment",
                     "Health: admission at RR8", "From council_test",
                     # teams by name, with their codes: the signed-in user's, the open episode's, the timeline's
                     "(social worker, Older People North)", "(adults), team Older People North (ASC-OPN), since",
                     "long_term_support episode, team Older People North (ASC-OPN)"):
        assert expected in page, expected
    assert "team ASC-OPN" not in page
    shot(browser, "record")


def test_sealed_record_is_not_shown(server: str, browser: webdriver.Chrome, hub: Hub) -> None:
    sign_in(browser, server, "sw.amira")
    browser.get(f"{server}/persons?q=marlow")
    assert "0 people found" in visible(browser) and "Marlow" not in visible(browser)
    browser.get(f"{server}/persons/{hub.people['sealed']}")
    assert "Not found" in visible(browser) and "Marlow" not in visible(browser) and "Sky" not in visible(browser)
    shot(browser, "sealed")
    sign_in(browser, server, "sw.adoption")
    browser.get(f"{server}/persons/{hub.people['sealed']}")
    assert "Sky Marlow" in visible(browser) and "Sealed record" in visible(browser)


def test_break_glass_dialog_opens_a_record_outside_the_caseload(server: str, browser: webdriver.Chrome,
                                                                hub: Hub) -> None:
    sign_in(browser, server, "sw.owen")
    browser.get(f"{server}/persons/{hub.people['tom']}")
    dialog = browser.find_element(By.CSS_SELECTOR, "[role=alertdialog]")
    assert "outside your usual access" in dialog.text and "Tom" not in visible(browser)
    shot(browser, "break-glass-dialog")
    browser.find_element(By.ID, "reason").send_keys("Duty cover: school called about an injury")
    submit_and_wait(browser, "button.button-warn")
    page = visible(browser)
    assert "Tom Hale" in page and "Opened by break glass" in page and "Amira Khan" in page
    shot(browser, "break-glass-opened")


def test_non_consenting_record_shows_a_clinician_demographics_only(server: str, browser: webdriver.Chrome,
                                                                   hub: Hub) -> None:
    sign_in(browser, server, "dr.patel")
    browser.get(f"{server}/persons/{hub.people['nora']}")
    page = visible(browser)
    assert "Nora Quinn" in page and "Consent to share withheld" in page
    assert "Does not want her GP practice to see social care notes" in page
    for hidden in ("safeguarding", "Owen Price", "Ward 4", "Health: admission"):
        assert hidden not in page, hidden
    shot(browser, "consent-withheld")

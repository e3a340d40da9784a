"""Web pages under test: an app served on a loopback port, headless Chromium, and what a user does and sees.

The ``browser`` fixture (tests/conftest.py) is :func:`chromium`. Screenshots go under test-artifacts/
(gitignored), one folder per subject: ``shot(browser, "identity/queue")``.
"""

from __future__ import annotations

import shutil
import threading
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

from tests.support.ports import free_port
from tests.support.waiting import wait_for

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# The WCAG 2.x contrast ratio of an element's text against the first opaque background behind it.
CONTRAST_JS = """
function rgb(c) { const m = c.match(/[\\d.]+/g).map(Number); return m.length > 3 && m[3] === 0 ? null : m; }
function lum(c) { const v = c.slice(0, 3).map(x => { x /= 255;
  return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; }
const el = arguments[0]; let fg = rgb(getComputedStyle(el).color); let n = el, bg = null;
while (n && !bg) { bg = rgb(getComputedStyle(n).backgroundColor); n = n.parentElement; }
bg = bg || [255, 255, 255]; const a = lum(fg), b = lum(bg);
return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
"""


def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yields its base URL, then stops it."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), "uvicorn to start", timeout=20, every=0.05)
    if not server.started:
        raise AssertionError(f"uvicorn did not start on port {port}")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def chromium() -> Iterator[webdriver.Chrome]:
    """Headless Chromium through chromedriver (Debian packages chromium, chromium-driver); quit afterwards."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.fail("install chromium and chromium-driver (make system-packages)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--window-size=1280,1000", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield chrome
    finally:
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


def press_enter_on(browser: webdriver.Chrome, element: WebElement) -> None:
    """Move the keyboard focus to ``element`` and press Enter, then wait for the next page."""
    old = browser.find_element(By.TAG_NAME, "html")
    browser.execute_script("arguments[0].focus()", element)
    assert browser.switch_to.active_element == element
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(browser, 20).until(replaced(old))


def sign_in(browser: webdriver.Chrome, base: str, user: str) -> None:
    """Sign in as the demo user ``user`` and land on the search page."""
    browser.get(f"{base}/sign-in")
    browser.find_element(By.CSS_SELECTOR, f"input[value='{user}']").click()
    submit_and_wait(browser, "form[action='/sign-in'] button")
    assert "Find a person" in browser.find_element(By.TAG_NAME, "h1").text


def visible(browser: webdriver.Chrome) -> str:
    """The text the page shows."""
    return browser.find_element(By.TAG_NAME, "body").text


def contrast(browser: webdriver.Chrome, element: WebElement) -> float:
    """WCAG contrast ratio of an element's text on the first opaque background behind it, measured in the
    browser."""
    return float(browser.execute_script(CONTRAST_JS, element))


def shot(browser: webdriver.Chrome, name: str) -> None:
    """Save a screenshot as test-artifacts/NAME.png (NAME may name a folder: ``record/search``)."""
    path = ARTIFACTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(path))

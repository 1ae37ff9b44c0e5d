"""The console in a real headless Chromium (Debian's chromium + chromium-driver) against `lakehouse up`.

Skipped, with the reason, only where no Chromium is installed; .ci/run installs it so CI runs these.
Screenshots of each page land in the test session's tmp dir (and in $LAKEHOUSE_SCREENSHOTS when set).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from shared.registry import upstreams
from tests.support.live import LiveStack

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_SECS = 30
# Flags a sandboxed, offline root session needs: no background calls to the internet, no setuid sandbox.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,800",
]

pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason=f"no Chromium here ({CHROMIUM} and {CHROMEDRIVER}; apt-get install chromium chromium-driver)",
)

Shoot = Callable[[WebDriver, str], None]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shoot(tmp_path_factory: pytest.TempPathFactory) -> Shoot:
    directory = tmp_path_factory.getbasetemp() / "screenshots"
    directory.mkdir(exist_ok=True)
    extra = os.environ.get("LAKEHOUSE_SCREENSHOTS")

    def save(driver: WebDriver, name: str) -> None:
        path = directory / f"{name}.png"
        driver.save_screenshot(str(path))
        if extra:
            shutil.copy(path, Path(extra) / path.name)

    return save


def wait(driver: WebDriver, condition: Callable[[WebDriver], object], what: str) -> None:
    WebDriverWait(driver, WAIT_SECS).until(condition, message=f"timed out waiting for {what}")


def text_of(driver: WebDriver, selector: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, selector).text)


def fresh_page(driver: WebDriver, url: str) -> None:
    """Each test starts without a token from an earlier one (sessionStorage is per origin)."""
    driver.get(url)
    driver.execute_script("sessionStorage.clear()")
    driver.get(url)


def table_rows(driver: WebDriver, selector: str) -> list[list[str]]:
    rows = driver.find_elements(By.CSS_SELECTOR, f"{selector} tbody tr")
    return [[cell.text for cell in row.find_elements(By.CSS_SELECTOR, "th, td")] for row in rows]


def test_overview_shows_every_service_ok(browser: WebDriver, live: LiveStack, shoot: Shoot) -> None:
    fresh_page(browser, live.url + "/")
    wait(browser, lambda d: text_of(d, "#health-summary") == "ok", "the health summary")
    rows = table_rows(browser, "#health")
    assert sorted(row[0] for row in rows) == sorted(s.name for s in upstreams())
    assert all(row[1] == "ok" for row in rows), rows
    wait(browser, lambda d: "ollama" in text_of(d, "#providers"), "the providers table")
    assert text_of(browser, "#notice") == ""
    shoot(browser, "overview")


def test_upload_a_csv_then_query_it(browser: WebDriver, live: LiveStack, shoot: Shoot, tmp_path: Path) -> None:
    csv = tmp_path / "browser_trips.csv"
    csv.write_text("city,miles\nlisbon,3.5\nporto,12.25\nfaro,7.0\n")
    fresh_page(browser, live.url + "/console/datasets")
    browser.find_element(By.ID, "upload-file").send_keys(str(csv))
    browser.find_element(By.ID, "upload-dataset").send_keys("browser_trips")
    Select(browser.find_element(By.ID, "upload-mode")).select_by_value("replace")
    browser.find_element(By.CSS_SELECTOR, "#upload-form button").click()
    wait(browser, lambda d: "Ingested" in text_of(d, "#upload-result"), "the upload result")
    assert text_of(browser, "#upload-result").startswith("Ingested 3 rows into browser_trips (version ")
    wait(browser, lambda d: "browser_trips" in text_of(d, "#datasets"), "the dataset in the catalog table")

    box = browser.find_element(By.ID, "sql-text")
    box.clear()
    box.send_keys("select city, miles from browser_trips order by miles desc")
    browser.find_element(By.CSS_SELECTOR, "#sql-form button").click()
    wait(browser, lambda d: "row(s)" in text_of(d, "#sql-status"), "the query result")
    assert [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#sql-result thead th")] == ["city", "miles"]
    assert table_rows(browser, "#sql-result") == [["porto", "12.25"], ["faro", "7"], ["lisbon", "3.5"]]
    shoot(browser, "datasets")


def test_a_bad_query_shows_the_apis_message(browser: WebDriver, live: LiveStack) -> None:
    fresh_page(browser, live.url + "/console/datasets")
    box = browser.find_element(By.ID, "sql-text")
    box.clear()
    box.send_keys("drop table anything")
    browser.find_element(By.CSS_SELECTOR, "#sql-form button").click()
    wait(browser, lambda d: text_of(d, "#sql-status").startswith("Error: "), "the error")


def test_chat_streams_into_the_page(browser: WebDriver, live: LiveStack, shoot: Shoot) -> None:
    fresh_page(browser, live.url + "/console/chat")
    wait(browser, lambda d: "local_fast" in text_of(d, "#chat-model"), "the model list")
    Select(browser.find_element(By.ID, "chat-model")).select_by_value("local_fast")
    browser.find_element(By.ID, "chat-prompt").send_keys("hello from the browser")
    browser.find_element(By.CSS_SELECTOR, "#chat-form button").click()
    wait(browser, lambda d: text_of(d, "#chat-status").startswith("Done"), "the end of the stream")
    assert text_of(browser, "#chat-answer") == "echo: hello from the browser"
    shoot(browser, "chat")


def test_vectors_page_lists_indexes(browser: WebDriver, live: LiveStack, shoot: Shoot) -> None:
    fresh_page(browser, live.url + "/console/vectors")
    wait(browser, lambda d: "Loading" not in text_of(d, "#indexes"), "the index list")
    assert text_of(browser, "#notice") == ""
    shoot(browser, "vectors")


def test_a_wrong_token_shows_a_clear_message(browser: WebDriver, live_with_token: LiveStack, shoot: Shoot) -> None:
    fresh_page(browser, live_with_token.url + "/")
    wait(browser, lambda d: d.find_element(By.ID, "signin").is_displayed(), "the sign-in form")
    browser.find_element(By.ID, "token").send_keys("wrong-token")
    browser.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    wait(browser, lambda d: "The token was refused" in text_of(d, "#notice"), "the refusal")
    shoot(browser, "wrong-token")

    field = browser.find_element(By.ID, "token")
    field.clear()
    field.send_keys(live_with_token.token)
    browser.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    wait(browser, lambda d: text_of(d, "#health-summary") == "ok", "the health table after signing in")


def sign_in(driver: WebDriver, stack: LiveStack, url: str) -> None:
    fresh_page(driver, url)
    wait(driver, lambda d: d.find_element(By.ID, "signin").is_displayed(), "the sign-in form")
    driver.find_element(By.ID, "token").send_keys(stack.token)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()


def sql_status(stack: LiveStack, secret: str, *, until: int) -> int:
    """The status of `select 1` with `secret`, asked until it is `until` or 3 s (three key refreshes) have passed."""
    deadline = time.monotonic() + 3
    while True:
        answer = httpx.post(
            stack.url + "/v1/sql", json={"sql": "select 1"}, headers={"authorization": f"Bearer {secret}"}
        )
        if answer.status_code == until or time.monotonic() > deadline:
            return answer.status_code
        time.sleep(0.1)


def test_keys_page_makes_a_key_shows_its_secret_once_and_revokes_it(
    browser: WebDriver, live_with_token: LiveStack, shoot: Shoot
) -> None:
    sign_in(browser, live_with_token, live_with_token.url + "/console/keys")
    wait(browser, lambda d: "Loading" not in text_of(d, "#keys"), "the key list")
    browser.find_element(By.ID, "key-name").send_keys("browser-bi")
    browser.find_element(By.ID, "key-scopes").send_keys("sql catalog:read")
    browser.find_element(By.ID, "key-rpm").send_keys("120")
    browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
    wait(browser, lambda d: d.find_element(By.ID, "key-secret-box").is_displayed(), "the new key's secret")
    secret = text_of(browser, "#key-secret")
    key_id = text_of(browser, "#key-status").partition("(")[2].partition(")")[0]
    browser.find_element(By.ID, "key-copy").click()
    wait(browser, lambda d: text_of(d, "#key-copied") != "", "the copy button's answer")
    wait(browser, lambda d: "browser-bi" in text_of(d, "#keys"), "the key in the table")
    row = next(r for r in table_rows(browser, "#keys") if r[0] == "browser-bi")
    assert row[2] == "catalog:read sql"
    assert "/ 120 this minute" in row[3]
    shoot(browser, "keys")

    # The secret the page showed is the key: it runs SQL, and is in no listing the page reads.
    # Every gateway worker knows it within a second (the one that made it at once).
    assert sql_status(live_with_token, secret, until=200) == 200
    listing = httpx.get(live_with_token.url + "/v1/keys", headers={"authorization": f"Bearer {live_with_token.token}"})
    assert secret not in listing.text

    browser.find_element(By.CSS_SELECTOR, f'#keys tbody tr[data-key="{key_id}"] button:nth-of-type(2)').click()
    browser.switch_to.alert.accept()
    wait(browser, lambda d: "browser-bi" not in text_of(d, "#keys"), "the revoked key gone from the table")
    assert sql_status(live_with_token, secret, until=401) == 401

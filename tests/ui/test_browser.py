"""The /ui playground in real headless Chromium against a real server process: it scores and
shows what the API answered, asks for the key a keyed server needs, and fits a phone's width.

Screenshots (1280 and 390 px wide) are written to $PGENRM_TEST_ARTIFACTS or tests/artifacts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from service.testing.server_process import served
from tests.helpers import LONG, SHORT, api_keys, history_json
from tests.ui.browser import artifacts, binaries, chromium, console_errors, set_width

pytestmark = pytest.mark.slow  # a real server subprocess and a browser: the full tier

SECRET = "secret-of-the-ui-test"
PROMPT = "How long should I steep green tea?"
MEDIUM = "Steep it for about two minutes in water around 80 °C; boiling water makes it bitter."
CANDIDATES = [LONG, SHORT, MEDIUM]
HISTORY = history_json("short")[:3]
WAIT_S = 60  # an upper bound on waiting for the DOM, never an assertion on time


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    binaries()  # skip (or fail) before starting a server that no browser would use
    with served({"PGENRM_API_KEYS": api_keys({"name": "ui", "secret": SECRET})}) as url:
        yield url


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    yield from chromium()


def open_page(driver: webdriver.Chrome, url: str) -> None:
    """Load /ui with no key kept from an earlier test; wait for its script to build the form."""
    driver.get(f"{url}/ui")
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    WebDriverWait(driver, WAIT_S).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#candidates textarea")) == 2
    )


def type_into(driver: webdriver.Chrome, element_id: str, text: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def fill_form(driver: webdriver.Chrome, history: str, candidates: list[str]) -> None:
    type_into(driver, "history", history)
    type_into(driver, "prompt", PROMPT)
    for i, text in enumerate(candidates):
        if i >= 2:  # the form starts with two boxes; add the rest with the keyboard
            driver.find_element(By.ID, "add-candidate").send_keys(Keys.ENTER)
        type_into(driver, f"candidate-{i}", text)
    type_into(driver, "ind", "4")


def submit(driver: webdriver.Chrome) -> None:
    driver.find_element(By.ID, "score-submit").send_keys(Keys.ENTER)


def wait_text(driver: webdriver.Chrome, element_id: str) -> str:
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.ID, element_id).text.strip())
    return str(driver.find_element(By.ID, element_id).text)


def wait_ranking(driver: webdriver.Chrome, count: int) -> list[WebElement]:
    def cards(d: webdriver.Chrome) -> list[WebElement]:
        found = d.find_elements(By.CSS_SELECTOR, "#ranking > li.cand")
        return found if len(found) == count else []

    return WebDriverWait(driver, WAIT_S).until(cards)


def api_score(url: str, history: list[dict[str, Any]]) -> dict[str, Any]:
    """What the API answers for the request the form describes."""
    body = {
        "user_id": "playground",
        "history": history,
        "prompt": PROMPT,
        "candidates": CANDIDATES,
        "scaling": {"ind": 4},
        "return_traces": "samples",
    }
    headers = {"Authorization": f"Bearer {SECRET}"}
    r = httpx.post(f"{url}/v1/score", json=body, headers=headers, timeout=WAIT_S)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def screenshot(driver: webdriver.Chrome, width: int) -> None:
    set_width(driver, width)
    path = artifacts() / f"ui-{width}.png"
    assert driver.save_screenshot(str(path))
    print(f"screenshot at {width} px: {path}")


def test_the_page_scores_and_shows_the_evaluation_chain(
    server: str, driver: webdriver.Chrome
) -> None:
    open_page(driver, server)
    assert console_errors(driver) == []
    type_into(driver, "api-key", SECRET)
    fill_form(driver, json.dumps(HISTORY), CANDIDATES)
    submit(driver)
    cards = wait_ranking(driver, len(CANDIDATES))
    expected = api_score(server, HISTORY)
    summary = expected["traces"]["summary"]

    shown = {
        int(str(c.get_attribute("data-index"))): c.find_element(By.CLASS_NAME, "rank-value").text
        for c in cards
    }
    assert shown == {s["index"]: str(s["rank"]) for s in expected["scores"]}
    names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#rubric .crit-name")]
    assert names == [c["name"] for c in summary["criteria"]]
    flat = driver.find_elements(By.CSS_SELECTOR, "#rubric li.flat .flat-note")
    assert len(flat) == sum(c["separates"] is False for c in summary["criteria"])
    assert all(e.text == "did not separate the candidates" for e in flat)
    why = {
        int(str(c.get_attribute("data-index"))): c.find_element(By.CLASS_NAME, "why").text
        for c in cards
    }
    assert why == {c["index"]: c["why"] for c in summary["candidates"]}
    dots = [len(c.find_elements(By.CSS_SELECTOR, ".strip .dot")) for c in cards]
    assert dots == [expected["samples"]["ind"]["valid"]] * len(CANDIDATES)  # one per sample
    assert not driver.find_elements(By.ID, "cold-start-notice")
    assert console_errors(driver) == []

    screenshot(driver, 1280)
    screenshot(driver, 390)
    scroll, inner = driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert inner == 390 and scroll <= inner, f"horizontal scroll at 390 px: {scroll} > {inner}"
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_the_page_asks_a_keyed_server_for_its_key(server: str, driver: webdriver.Chrome) -> None:
    open_page(driver, server)
    fill_form(driver, '{"prompt": "not a list"}', CANDIDATES[:2])
    submit(driver)
    assert "must be a JSON array of pairs" in wait_text(driver, "score-error")

    type_into(driver, "history", "[]")
    submit(driver)
    WebDriverWait(driver, WAIT_S).until(
        lambda d: "401" in d.find_element(By.ID, "score-error").text
    )
    message = driver.find_element(By.ID, "score-error").text
    assert "this server needs an API key" in message, message  # the envelope's own words
    assert "needs-key" in str(driver.find_element(By.ID, "api-key").get_attribute("class"))
    # The refused call is the one console error, Chromium's note of the 401 response.
    assert console_errors(driver, expected="status of 401") == []

    type_into(driver, "api-key", SECRET)
    submit(driver)
    wait_ranking(driver, 2)
    assert driver.find_element(By.ID, "score-error").text == ""
    assert "Cold start" in driver.find_element(By.ID, "cold-start-notice").text  # history []
    assert console_errors(driver) == []


REPORT = {
    "variants": ["A", "B"],
    "scorer": "embedded:test",
    "rows": 12,
    "pairs": [
        {
            "variant": "A",
            "against": "B",
            "n": 12,
            "win_rate": 0.75,
            "win_rate_ci95": [0.5, 0.92],
            "mean_diff": 0.41,
            "mean_diff_ci95": [0.1, 0.7],
        },
        {
            "variant": "B",
            "against": "A",
            "n": 12,
            "win_rate": 0.25,
            "win_rate_ci95": [0.08, 0.5],
            "mean_diff": -0.41,
            "mean_diff_ci95": [-0.7, -0.1],
        },
    ],
}


def test_the_report_viewer_tabulates_pairs_or_prints_the_json(
    server: str, driver: webdriver.Chrome, tmp_path: Path
) -> None:
    open_page(driver, server)
    report = tmp_path / "compare.json"
    report.write_text(json.dumps(REPORT))
    driver.find_element(By.ID, "report-file").send_keys(str(report))
    rows = WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#report-out table.report tbody tr")
    )
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows] == ["A", "B"]
    assert len(driver.find_elements(By.CSS_SELECTOR, "#report-out .bar")) == 2  # win rates
    assert "[0.500, 0.920]" in rows[0].text

    type_into(driver, "report-text", '{"note": "<b>not a table</b>"}')
    driver.find_element(By.ID, "report-show").send_keys(Keys.ENTER)
    pre = WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#report-out pre")
    )
    assert '"note": "<b>not a table</b>"' in pre[0].text  # as text, never as markup
    assert not driver.find_elements(By.CSS_SELECTOR, "#report-out table, #report-out b")
    type_into(driver, "report-text", "{oops")
    driver.find_element(By.ID, "report-show").send_keys(Keys.ENTER)
    assert "not valid JSON" in wait_text(driver, "report-error")
    assert console_errors(driver) == []

"""Headless Chromium for the /ui tests: Debian's `chromium` and `chromium-driver`, driven by
selenium without Selenium Manager (nothing is downloaded), plus the artefact directory the
screenshots go to."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.conftest import REPO

NEEDED = "headless Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)"


def binaries() -> tuple[str, str]:
    """(browser, driver): a skip naming the packages when either is missing, or a failure under
    PGENRM_REQUIRE_BROWSER=1 (set by `scripts/test`, which installs them)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        if os.environ.get("PGENRM_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{NEEDED} are required (scripts/test installs them with apt-get)")
        pytest.skip(f"{NEEDED} not installed")
    return browser, driver


def chromium() -> Iterator[webdriver.Chrome]:
    """A headless Chromium that keeps the page's console log (read with get_log("browser"))."""
    browser, driver_path = binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def artifacts() -> Path:
    """Where screenshots go: $PGENRM_TEST_ARTIFACTS, else tests/artifacts (ignored by git)."""
    path = Path(os.environ.get("PGENRM_TEST_ARTIFACTS") or REPO / "tests" / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def set_width(driver: webdriver.Chrome, width: int) -> None:
    """Lay the page out `width` CSS pixels wide, as tall as its content (whole-page shots)."""
    metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    metrics["height"] = min(int(height), 8000)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def console_errors(driver: webdriver.Chrome, expected: str | None = None) -> list[str]:
    """The SEVERE console entries since the last call, less those containing `expected`."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [
        e["message"]
        for e in entries
        if e["level"] == "SEVERE" and (expected is None or expected not in e["message"])
    ]

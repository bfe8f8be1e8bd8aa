"""Headless Debian chromium, driven by Selenium through Debian's chromium-driver: no browser is downloaded.

Missing browser: the tests fail with what to install under REQUIRE_ALL_SUITES (CI: .ci/run installs them), and
are skipped with the same words elsewhere.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".local" / "screenshots"
MISSING = (
    "Debian's chromium and chromium-driver are needed (apt-get install chromium chromium-driver): {what} not found"
)


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path]
    if missing:
        message = MISSING.format(what=" and ".join(missing))
        if os.environ.get("REQUIRE_ALL_SUITES") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return str(chromium), str(driver)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    chromium, driver_path = _browser_paths()
    # Selenium Manager would look for (and download) a driver of its own: the path given here is the one used.
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshot(browser: Any) -> Any:
    """``screenshot(name)``: the page as it is now, saved as .local/screenshots/<name>.png."""

    def save(name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        assert browser.save_screenshot(str(path)), f"no screenshot saved at {path}"
        return path

    return save

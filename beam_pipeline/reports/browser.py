"""Headless Chromium driven by Selenium, for the report tests and the README screenshots.

Uses Debian's ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (``scripts/install_chromium.sh``)
so that Selenium Manager downloads nothing, and keeps the browser off the network.
"""
from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars")
# No host name resolves and every request goes to a closed port: pages must be self-contained.
NO_NETWORK_FLAGS = ("--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9")
PAGE_WIDTH = 1280
CHARTS_DRAWN_SCRIPT = """
return document.readyState === 'complete' &&
    Array.from(document.querySelectorAll('.plotly-graph-div')).every(
        div => div._fullLayout && div.querySelector('.main-svg'));
"""


class BrowserUnavailable(RuntimeError):
    """Chromium or its driver is missing, or would not start."""


def start_chromium(user_data_dir: Path, width: int = PAGE_WIDTH,
                   height: int = 900) -> webdriver.Chrome:
    """A headless Chromium with a fresh profile in ``user_data_dir`` and no network."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        raise BrowserUnavailable(f"{' and '.join(missing)} not found: run "
                                 "scripts/install_chromium.sh as root (Debian's chromium and "
                                 "chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, *NO_NETWORK_FLAGS, f"--user-data-dir={user_data_dir}",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    try:
        return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                                options=options)
    except Exception as error:  # SessionNotCreatedException, WebDriverException, OSError
        raise BrowserUnavailable(f"Chromium would not start: {error}") from error


@contextlib.contextmanager
def chromium(width: int = PAGE_WIDTH, height: int = 900) -> Iterator[webdriver.Chrome]:
    """``start_chromium`` with a temporary profile, quit and removed on exit."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        driver = start_chromium(Path(profile), width, height)
        try:
            yield driver
        finally:
            driver.quit()


def open_page(driver: webdriver.Chrome, path: Path, timeout: float = 20.0) -> None:
    """Opens the HTML file at ``path`` and waits until every Plotly chart is drawn."""
    driver.get(Path(path).resolve().as_uri())
    _wait_for_charts(driver, str(path), timeout)


def _wait_for_charts(driver: webdriver.Chrome, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not driver.execute_script(CHARTS_DRAWN_SCRIPT):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the charts of {what} were not drawn within {timeout:.0f} s")
        time.sleep(0.05)


def save_screenshot(driver: webdriver.Chrome, png_path: Path) -> Path:
    """A PNG of the whole open page: the window is made as tall as the page first (its width,
    and so the charts' layout, stays)."""
    width = driver.get_window_size()["width"]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, height)
    _wait_for_charts(driver, "the resized page", timeout=10.0)
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(png_path)):
        raise OSError(f"Chromium did not write the screenshot {png_path}")
    return png_path

"""A real headless browser (Debian's Chromium, driven by Playwright) on the admin of a live server.

One browser serves the whole session; each test gets a fresh page logged in as a superuser. There is
no bundled browser download: Chromium must be Debian's ``/usr/bin/chromium`` (``apt-get install -y
chromium``, which ``.ci/run`` does when it is missing). Without it these tests fail, never skip.
Screenshots go to a temporary folder (``BROWSER_SCREENSHOTS``), named at the end of the session.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from tests.integration.admin.conftest import world  # noqa: F401  (the admin walk's rows)
from tests.integration.market.conftest import btc_hourly  # noqa: F401  (the shipped real candles)
from tests.integration.trading.conftest import btcusdt, make_account, paper_account  # noqa: F401

CHROMIUM = Path(os.environ.get("BROWSER_CHROMIUM", "/usr/bin/chromium"))
VIEWPORT = {"width": 1400, "height": 900}
PASSWORD = "correct horse battery"
SCREENSHOT_FOLDERS: list[Path] = []  # named in the terminal summary


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives Debian's Chromium through Playwright on a live server"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/browser/" in item.nodeid:
            item.add_marker(pytest.mark.browser)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for folder in SCREENSHOT_FOLDERS:
        terminalreporter.write_line(f"admin screenshots: {folder}")


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the tests leave what they saw (kept after the run, for a person to look at)."""
    folder = Path(os.environ.get("BROWSER_SCREENSHOTS") or tempfile.mkdtemp(prefix="admin-screenshots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="package")
def browser(screenshots: Path) -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"the browser tests need Debian's Chromium at {CHROMIUM}: `apt-get install -y chromium` "
            "(.ci/run installs it when missing); Playwright's own browser download is not used",
            pytrace=False,
        )
    # Playwright's sync API runs an event loop in this thread; the tests still touch the database
    # between browser calls, synchronously, which Django would otherwise refuse. Only while these
    # tests run: later tests start processes (`manage.py check --deploy`) that must not inherit it.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            yield launched
            launched.close()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
    SCREENSHOT_FOLDERS.append(screenshots)


def _keep_error(errors: list[str], message: object) -> None:
    """Console errors fail the test, but the browser's own request for a favicon the admin lacks."""
    if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
        errors.append(message.text)


@pytest.fixture
def superuser(transactional_db):
    return get_user_model().objects.create_superuser(username="boss", password=PASSWORD, email="")


@pytest.fixture
def page(browser, live_server, superuser) -> Iterator[object]:
    """A 1400 x 900 page logged in through the admin's login form; a script error fails the test."""
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda message: _keep_error(errors, message))
    opened.goto("/admin/login/?next=/admin/")
    opened.fill("#id_username", superuser.username)
    opened.fill("#id_password", PASSWORD)
    opened.click("input[type=submit]")
    opened.wait_for_url("**/admin/")
    yield opened
    context.close()
    assert errors == [], f"the pages logged errors: {errors}"

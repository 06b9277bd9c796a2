"""Browser tests: a real node served by uvicorn on a free port (in a thread of the test
process), driven by Debian's Chromium through Playwright, with axe-core run on every page
visited.

Without Chromium (``/usr/bin/chromium``, or ``PALERMO_CHROMIUM``) the tests skip, or fail
with ``PALERMO_TEST_REQUIRE_SERVICES=1`` as in CI. ``PALERMO_E2E_SCREENSHOTS=<dir>`` saves a
screenshot of every page the tests check.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from broker.app import create_app
from broker.core.settings import Settings
from tests.conftest import REQUIRE_SERVICES
from tests.support.processes import free_port

CHROMIUM = Path(os.environ.get("PALERMO_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = os.environ.get("PALERMO_E2E_SCREENSHOTS")
# axe-core impacts that fail a page (WCAG 2.1 AA rules and best practices alike).
FAILING_IMPACTS = {"serious", "critical"}


@pytest.fixture
def node(settings: Settings) -> Iterator[str]:
    """The URL of a node serving the test's database over real HTTP: uvicorn on a free port,
    in a thread of this process (its own event loop), so that the app's modules are not
    imported again for every test."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(settings.model_copy(update={"public_url": url, "db_pool_size": 4}))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name=f"e2e-node-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the node did not start")
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def page(node: str) -> Iterator[Any]:
    # Playwright's sync API runs an event loop in this thread while it is open: it is opened
    # and closed within each test, never kept across tests (other tests of this process call
    # asyncio.run).
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if REQUIRE_SERVICES:
            pytest.fail(message + " and PALERMO_TEST_REQUIRE_SERVICES=1")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        context = browser.new_context(
            base_url=node, viewport={"width": 1280, "height": 900}, locale="en-GB"
        )
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        try:
            yield tab
        finally:
            context.close()
            browser.close()


def check_page(page: Any, name: str) -> None:
    """Fail on any serious or critical axe-core violation of the page as it is now; save its
    screenshot when asked."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    failing = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v.get("impact") in FAILING_IMPACTS
    ]
    assert failing == [], f"{name}: {failing}"
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)

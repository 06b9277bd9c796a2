"""Browser tests: a real node served by uvicorn on a free port, driven by Debian's Chromium
through Playwright, with axe-core run on every page visited.

Without Chromium (``/usr/bin/chromium``, or ``PALERMO_CHROMIUM``) the tests skip, or fail
with ``PALERMO_TEST_REQUIRE_SERVICES=1`` as in CI. ``PALERMO_E2E_SCREENSHOTS=<dir>`` saves a
screenshot of every page the tests check.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.core.settings import Settings
from tests.conftest import REQUIRE_SERVICES
from tests.support.processes import free_port

CHROMIUM = Path(os.environ.get("PALERMO_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = os.environ.get("PALERMO_E2E_SCREENSHOTS")
# axe-core impacts that fail a page (WCAG 2.1 AA rules and best practices alike).
FAILING_IMPACTS = {"serious", "critical"}


@pytest.fixture
def node(settings: Settings, world: Any, tmp_path: Path) -> Iterator[str]:
    """The URL of a node serving the test's database over real HTTP."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **world.secrets,
        "PALERMO_ENV": "test",
        "PALERMO_DATA_DIR": str(tmp_path),
        "PALERMO_DATABASE_URL": settings.resolved_database_url,
        "PALERMO_NODE_ID": settings.node_id,
        "PALERMO_PUBLIC_URL": url,
        "PALERMO_LOG_LEVEL": "WARNING",
        "PALERMO_DB_POOL_SIZE": "4",
    }
    log = (tmp_path / "uvicorn.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "broker.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the node did not start: {(tmp_path / 'uvicorn.log').read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def page(node: str) -> Iterator[Any]:
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

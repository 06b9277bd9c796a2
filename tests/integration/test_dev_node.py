"""``palermo dev`` (what ``make run`` starts): an embedded node on SQLite with a real Celery
worker on kombu's SQLAlchemy transport and beat. A person logs in as one demo participant,
sends a message, and the other reads it in their inbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import free_port


def _login(url: str, logins: dict[str, list[dict[str, str]]], name: str) -> dict[str, str]:
    person = next(p for p in logins["people"] if p["login"] == name)
    r = httpx.post(
        f"{url}/v1/auth/token",
        data={"grant_type": "password", "username": name, "password": person["password"]},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.mark.slow
@pytest.mark.worker
def test_dev_node_routes_a_message_between_demo_participants(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALERMO_")}
    env.update(PALERMO_DATA_DIR=str(tmp_path / "data"), PALERMO_RELAY_INTERVAL_SECONDS="0.5")
    log = (tmp_path / "dev.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "broker.cli", "dev", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # Under a loaded machine (the suite runs in parallel) the start alone can take a minute;
        # each wait has its own deadline so a slow start does not eat the delivery's.
        deadline = time.monotonic() + 150
        banner = ""
        while time.monotonic() < deadline and "demo logins" not in banner:
            assert proc.poll() is None, (tmp_path / "dev.log").read_text()[-4000:]
            time.sleep(0.5)
            banner = (tmp_path / "dev.log").read_text()
        assert f"Palermo is running at {url}" in banner
        logins = json.loads((tmp_path / "data" / "demo-logins.json").read_text())
        assert (tmp_path / "data" / "demo-logins.json").stat().st_mode & 0o077 == 0
        assert logins["people"][0]["password"] in banner
        assert f"open {url}/ in a browser" in banner
        page = httpx.get(f"{url}/sign-in")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")

        it = _login(url, logins, "it.officer")
        draft = {
            "type": "intel.message",
            "recipient": "de.bka",
            "legal_basis": "UNTOC art. 27",
            "purpose": "investigation RG 1234/2026",
            "handling": {"code": "H0"},
            "evaluation": "B2",
            "statement_kind": "fact",
            "body": {"summary": "Courier expected at Fiumicino on Friday"},
        }
        r = httpx.post(f"{url}/v1/messages", json={"draft": draft}, headers=it)
        assert r.status_code == 202, r.text
        message_id = r.json()["id"]

        de = _login(url, logins, "de.officer")
        items: list[dict[str, dict[str, str]]] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not items:
            items = httpx.get(f"{url}/v1/inbox", headers=de).json()["items"]
            time.sleep(0.3)
        logs = tmp_path / "data" / "logs"
        assert [i["message"]["id"] for i in items] == [message_id], "".join(
            f.read_text()[-3000:] for f in sorted(logs.glob("*.log"))
        )
        content = httpx.get(
            f"{url}/v1/messages/{message_id}/content",
            params={"justification": "checking the courier alert"},
            headers=de,
        )
        assert content.json()["payload"]["body"]["summary"].startswith("Courier")
        r = httpx.post(f"{url}/v1/messages/{message_id}/receipt", headers=de)
        assert r.json()["status"] == "receipted"
        status = httpx.get(f"{url}/v1/messages/{message_id}", headers=it).json()
        assert status["status"] == "receipted"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    console = (tmp_path / "dev.log").read_text()
    assert "palermo dev --sample" in console  # the banner offers the sample work
    assert '"event": "request"' not in console  # the processes log to files, not the console
    lines = (tmp_path / "data" / "logs" / "api.log").read_text().splitlines()
    # Every request line of the API is structured JSON carrying its request id.
    requests = [json.loads(x) for x in lines if x.startswith("{") and '"event": "request"' in x]
    assert requests
    assert all(r.get("request_id") for r in requests)

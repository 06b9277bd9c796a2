"""The node's request limits as clients meet them (broker/limits.py, docs/security.md):
credentials before the body, bodies cut while they stream, slow bodies cut before they hold
anything, and the headers RFC 6750 and RFC 9110 ask of refusals."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Api
from tests.support.processes import free_port, wait_for_port


def test_a_body_without_a_token_is_refused_with_a_bearer_challenge(api: Api) -> None:
    r = api.client.post("/v1/messages", content=b"x" * 3_000_000)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="palermo"'
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith(":unauthenticated")


def test_a_read_without_a_token_gets_the_challenge_and_a_bad_token_says_so(api: Api) -> None:
    r = api.client.get("/v1/inbox")
    assert (r.status_code, r.headers["www-authenticate"]) == (401, 'Bearer realm="palermo"')
    r = api.client.get("/v1/inbox", headers={"Authorization": "Bearer not.a.token"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="palermo", error="invalid_token"'


def test_a_chunked_body_over_the_limit_is_a_problem_413(api: Api) -> None:
    limit = api.settings.resolved_request_max_bytes

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // 65_536 + 2):
            yield b"x" * 65_536

    r = api.post("/v1/messages", as_="de.system", content=chunks())
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith(":payload-too-large")
    assert str(limit) in r.json()["detail"]


def test_a_declared_length_over_the_limit_is_refused_at_once(api: Api) -> None:
    limit = api.settings.resolved_request_max_bytes
    r = api.post(
        "/v1/messages",
        as_="de.system",
        content=b"{}",
        headers={"Content-Length": str(limit + 1)},
    )
    assert r.status_code == 413


def test_a_wrong_method_names_the_allowed_ones(api: Api) -> None:
    r = api.client.delete("/healthz")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"
    assert r.headers["content-type"] == "application/problem+json"


@pytest.fixture
def slow_node(api: Api, tmp_path: Path) -> Iterator[tuple[int, str]]:
    """The API as a real process (``palermo serve``) with a one-second body idle limit."""
    port = free_port()
    s = api.settings
    assert s.master_key is not None
    assert s.node_signing_key is not None
    assert s.token_secret is not None
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PALERMO_")},
        "PALERMO_DATA_DIR": str(tmp_path),
        "PALERMO_DATABASE_URL": s.resolved_database_url,
        "PALERMO_MASTER_KEY": s.master_key.get_secret_value(),
        "PALERMO_NODE_SIGNING_KEY": s.node_signing_key.get_secret_value(),
        "PALERMO_TOKEN_SECRET": s.token_secret.get_secret_value(),
        "PALERMO_PUBLIC_URL": "http://testserver",
        "PALERMO_ENV": "test",
        "PALERMO_BODY_IDLE_TIMEOUT_SECONDS": "1",
        "PALERMO_DB_POOL_SIZE": "1",
        "PALERMO_DB_MAX_OVERFLOW": "0",
        "PALERMO_LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "broker.cli", "serve", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc, log=log.read_text)
        yield port, api.token("de.system")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.slow
def test_slow_bodies_hold_nothing_and_are_cut_with_408(slow_node: tuple[int, str]) -> None:
    port, token = slow_node
    head = (
        "POST /v1/messages HTTP/1.1\r\nHost: testserver\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 5000\r\n\r\n"
    )
    # More slow clients than the node has database connections (a pool of one).
    slow = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
    try:
        for conn in slow:
            conn.sendall(head.encode() + b'{"partial":')
        started = time.monotonic()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            for _ in range(5):
                r = client.get("/v1/inbox", headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 200, r.text
        assert time.monotonic() - started < 5
        for conn in slow:
            answer = conn.recv(65_536).decode("latin-1")
            assert answer.startswith("HTTP/1.1 408"), answer
            assert "request-timeout" in answer
    finally:
        for conn in slow:
            conn.close()


@pytest.mark.parametrize(
    "cursor", ["99999999999999999999", "9223372036854775808", "²", "١٢", "-1", " 1"]
)
def test_a_cursor_no_column_holds_is_a_422_not_a_500(api: Api, cursor: str) -> None:
    r = api.get("/v1/inbox", as_="us.officer", params={"cursor": cursor})
    assert r.status_code == 422, r.text
    assert "cursor" in r.json()["detail"]


def test_the_largest_cursor_a_column_holds_is_an_empty_page(api: Api) -> None:
    r = api.get("/v1/inbox", as_="us.officer", params={"cursor": str(2**63 - 1)})
    assert (r.status_code, r.json()["items"]) == (200, [])


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/audit/export", "size"),
        ("/v1/audit/entries", "start"),
        ("/v1/audit/entries", "end"),
        ("/v1/audit/proofs/inclusion", "index"),
        ("/v1/audit/proofs/consistency", "old"),
    ],
)
def test_audit_sizes_and_indices_past_64_bits_are_a_422(api: Api, path: str, param: str) -> None:
    r = api.get(path, as_="oversight", params={param: str(10**20)})
    assert r.status_code == 422, r.text

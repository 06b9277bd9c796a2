"""Failed logins are throttled per login and per client address, and audited (issue 12,
"Login"; docs/security.md): after the free failures each try waits an exponential delay,
at the lockout threshold even the right password is refused for the lockout's duration;
``auth:failed`` and ``auth:locked`` name the participant, the login and the client address
as keyed digests, never the password. The same holds for client credentials."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from broker.accounts.service import address_digest, login_digest
from broker.app import create_app
from broker.core.context import node_context
from tests.conftest import PASSWORD, Api, count_rows

WRONG = "not the password at all"


@pytest.fixture
def strict(api: Api) -> Iterator[Api]:
    settings = api.settings.model_copy(
        update={
            "auth_free_failures": 2,
            "auth_base_delay_seconds": 30.0,
            "auth_max_delay_seconds": 100.0,
            "auth_lockout_failures": 4,
            "auth_lockout_seconds": 900,
            "auth_address_free_failures": 50,
            "auth_address_lockout_failures": 100,
        }
    )
    with TestClient(create_app(settings)) as client:
        yield Api(client, settings, api.world)


def _password(api: Api, login: str, password: str) -> Any:
    data = {"grant_type": "password", "username": login, "password": password}
    return api.client.post("/v1/auth/token", data=data)


def _leaves(engine: Engine, kind: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT leaf FROM audit_events WHERE kind = :k ORDER BY id"), {"k": kind}
        ).all()
    return [json.loads(bytes(r[0])) for r in rows]


def _wait_passes(engine: Engine, seconds: float = 3600) -> None:
    """As if the delay had passed: move every last failure back in time (not the lockouts)."""
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT key, last_failure_at FROM login_throttles")).all()
        for key, _at in rows:
            conn.execute(
                text("UPDATE login_throttles SET last_failure_at = :at WHERE key = :k"),
                {"at": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds), "k": key},
            )


def test_failures_past_the_free_ones_are_delayed_and_audited(
    strict: Api, sync_engine: Engine
) -> None:
    for _ in range(2):
        assert _password(strict, "it.officer", WRONG).status_code == 401
    # The third try waits 30 s (the base delay), the right password too, unchecked.
    r = _password(strict, "it.officer", PASSWORD)
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith(":too-many-logins")
    assert 28 <= int(r.headers["retry-after"]) <= 30
    leaves = _leaves(sync_engine, "auth:failed")
    assert len(leaves) == 2  # the unchecked refusal is logged, not audited
    digest = login_digest(node_context(strict.settings), "it.officer")
    for leaf in leaves:
        assert leaf["login_digest"] == digest
        assert leaf["participant"] == "it.central-authority"
        # The address only as a keyed digest: attempts correlate, the address is not kept.
        assert leaf["address_digest"] == address_digest(node_context(strict.settings), "testclient")
        assert "address" not in leaf
        assert "testclient" not in json.dumps(leaf)
        assert leaf["channel"] == "api"
        assert WRONG not in json.dumps(leaf)
        assert "it.officer" not in json.dumps(leaf)
    # Once the delay has passed, the right password gets in and the login's count is gone.
    _wait_passes(sync_engine)
    assert _password(strict, "it.officer", PASSWORD).status_code == 200
    assert count_rows(sync_engine, "login_throttles", "key LIKE 'login:%'") == 0


def test_the_delay_doubles(strict: Api, sync_engine: Engine) -> None:
    for _ in range(3):
        _wait_passes(sync_engine, seconds=200)
        assert _password(strict, "it.officer", WRONG).status_code == 401
    r = _password(strict, "it.officer", WRONG)
    assert r.status_code == 429
    assert 58 <= int(r.headers["retry-after"]) <= 60  # 30 s, doubled


def test_a_lockout_refuses_the_right_password(strict: Api, sync_engine: Engine) -> None:
    for _ in range(4):
        _wait_passes(sync_engine, seconds=200)
        assert _password(strict, "it.officer", WRONG).status_code == 401
    (locked,) = _leaves(sync_engine, "auth:locked")
    assert locked["scope"] == "login"
    assert locked["participant"] == "it.central-authority"
    assert locked["address_digest"] == address_digest(node_context(strict.settings), "testclient")
    assert "testclient" not in json.dumps(locked)
    _wait_passes(sync_engine, seconds=200)  # the delay has passed, the lockout has not
    r = _password(strict, "it.officer", PASSWORD)
    assert r.status_code == 429, r.text
    assert 800 <= int(r.headers["retry-after"]) <= 900
    # When the lockout is over, the right password gets in.
    with sync_engine.begin() as conn:
        conn.execute(
            text("UPDATE login_throttles SET locked_until = :at"),
            {"at": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)},
        )
    assert _password(strict, "it.officer", PASSWORD).status_code == 200


def test_unknown_logins_count_against_the_address(api: Api, sync_engine: Engine) -> None:
    settings = api.settings.model_copy(
        update={"auth_address_free_failures": 3, "auth_base_delay_seconds": 30.0}
    )
    with TestClient(create_app(settings)) as client:
        one = Api(client, settings, api.world)
        for login in ("a.one", "b.two", "c.three"):
            assert _password(one, login, WRONG).status_code == 401
        # Another login, the right password, the same address: it waits.
        assert _password(one, "it.supervisor", PASSWORD).status_code == 429
    leaf = _leaves(sync_engine, "auth:failed")[0]
    assert leaf.get("participant") is None  # no such login
    assert "a.one" not in json.dumps(leaf)


def test_client_credentials_are_throttled_too(strict: Api, sync_engine: Engine) -> None:
    secret = strict.world.client_secrets["it.system"]
    wrong = {"grant_type": "client_credentials", "client_id": "it.system", "client_secret": WRONG}
    for _ in range(2):
        assert strict.client.post("/v1/auth/token", data=wrong).status_code == 401
    right = {**wrong, "client_secret": secret}
    r = strict.client.post("/v1/auth/token", data=right)
    assert r.status_code == 429, r.text
    assert "retry-after" in r.headers
    assert len(_leaves(sync_engine, "auth:failed")) == 2


# --- the client address behind proxies (PALERMO_TRUSTED_PROXIES) --------------------------


def _behind(api: Api, peer: str, trusted: str) -> TestClient:
    settings = api.settings.model_copy(
        update={
            "auth_address_free_failures": 3,
            "auth_base_delay_seconds": 30.0,
            "trusted_proxies": trusted,
        }
    )
    return TestClient(create_app(settings), client=(peer, 40_000))


def _try(client: TestClient, login: str, password: str, forwarded: str | None) -> int:
    data = {"grant_type": "password", "username": login, "password": password}
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    status: int = client.post("/v1/auth/token", data=data, headers=headers).status_code
    return status


def test_an_untrusted_peer_is_throttled_by_its_own_address(api: Api) -> None:
    with _behind(api, "203.0.113.7", trusted="10.0.0.0/8") as client:
        for n, login in enumerate(("a.one", "b.two", "c.three")):
            assert _try(client, login, WRONG, forwarded=f"198.51.100.{n}") == 401
        # A fresh forged header each time does not help: the peer's address counts.
        assert _try(client, "it.officer", PASSWORD, forwarded="198.51.100.99") == 429


def test_a_trusted_proxy_forwards_the_real_client(api: Api, sync_engine: Engine) -> None:
    with _behind(api, "10.0.0.5", trusted="10.0.0.0/8") as client:
        for login in ("a.one", "b.two", "c.three"):
            assert _try(client, login, WRONG, forwarded="1.1.1.1, 198.51.100.1") == 401
        assert _try(client, "it.officer", PASSWORD, forwarded="198.51.100.1") == 429
        # Another client behind the same proxy is not held back by the first one's failures.
        assert _try(client, "it.officer", PASSWORD, forwarded="198.51.100.2") == 200
    assert count_rows(sync_engine, "login_throttles", "key LIKE 'address:%'") == 1
    node = node_context(api.settings)
    for leaf in _leaves(sync_engine, "auth:failed"):
        assert leaf["address_digest"] == address_digest(node, "198.51.100.1")
        assert "198.51.100.1" not in json.dumps(leaf)


def test_a_malformed_forwarded_header_is_ignored_safely(api: Api) -> None:
    with _behind(api, "10.0.0.5", trusted="10.0.0.0/8") as client:
        for header in ("garbage", "[::1, ", "198.51.100.1, 2001:db8::zz"):
            assert _try(client, "a.one", WRONG, forwarded=header) == 401
        # All three counted against the proxy's own address, never against a chosen one.
        assert _try(client, "it.officer", PASSWORD, forwarded="not-an-ip") == 429
        assert _try(client, "it.officer", PASSWORD, forwarded="198.51.100.3") == 200

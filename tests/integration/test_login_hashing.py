"""Password hashes run off the event loop, a bounded number at a time (issue 12, "Login":
argon2 in a thread pool with a bounded concurrency, PALERMO_PASSWORD_HASH_CONCURRENCY).

A stub hasher stands in for argon2 (an outside library): it verifies as argon2 does, but
holds each check long enough to be seen, and counts how many run at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from broker.app import create_app
from broker.core import crypto
from broker.core.settings import PasswordHashSettings
from tests.conftest import PASSWORD, Api


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0
        self.checks = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            time.sleep(0.5)
            return super().verify(hash, password)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.checks += 1


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingHasher]:
    hasher = CountingHasher()
    monkeypatch.setitem(crypto.PASSWORD_HASHERS, "fast", hasher)
    before = (list(crypto._configured), list(crypto._concurrency))
    crypto.configure_password_hashing(
        PasswordHashSettings(env="test", password_hash="fast", password_hash_concurrency=2)
    )
    yield hasher
    crypto._configured[:], crypto._concurrency[:] = before
    crypto._limiters.clear()
    crypto._hashing.cache_clear()


def _login(client: TestClient, login: str) -> Any:
    return client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": login, "password": PASSWORD}
    )


def test_logins_hash_two_at_a_time_and_healthz_answers_meanwhile(
    api: Api, counting: CountingHasher
) -> None:
    with TestClient(create_app(api.settings)) as client, ThreadPoolExecutor(8) as pool:
        logins = [pool.submit(_login, client, "it.officer") for _ in range(8)]
        while counting.in_flight == 0:
            time.sleep(0.01)
        health = client.get("/healthz")
        # /healthz answered while password checks were still running: they are not on the
        # event loop.
        assert health.status_code == 200
        # Eight checks of 0.5 s, two at a time, take 2 s; /healthz came back long before.
        # (How many are in flight at this instant is a race: between two checks it is 0.)
        assert counting.checks < 8
        answers = [f.result() for f in logins]
    assert [a.status_code for a in answers] == [200] * 8
    assert counting.most == 2  # PALERMO_PASSWORD_HASH_CONCURRENCY


def test_client_credentials_are_bounded_too(api: Api, counting: CountingHasher) -> None:
    secret = api.world.client_secrets["it.system"]
    data = {"grant_type": "client_credentials", "client_id": "it.system", "client_secret": secret}
    with TestClient(create_app(api.settings)) as client, ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: client.post("/v1/auth/token", data=data), range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    assert counting.most == 2

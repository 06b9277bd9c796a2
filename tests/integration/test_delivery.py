"""Delivery (DESIGN.md "Delivery", issue 6): outbox rows claimed and delivered in batches,
every attempt recorded, retries with backoff, dead letters listed and requeued by operators,
each delivery and dead letter audited, and a node that refuses to start on an adapter
configuration it cannot use."""

from __future__ import annotations

import asyncio
import base64
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from broker.app import create_app
from broker.core.db import Database
from broker.core.settings import ConfigurationError, Settings
from broker.delivery.service import (
    RetryPolicy,
    claim_due,
    extend_lease,
    requeue_dead_letters,
)
from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import envelope
from tests.integration.test_delivery_helpers import Agency, agency_server, deliver_once

WEBHOOK = "webhook"


def _send(api: Api, n: int = 1, recipient: str = "it.central-authority") -> list[str]:
    key = api.world.keys["de.bka"]
    ids = []
    for _ in range(n):
        r = api.post("/v1/messages", as_="de.system", json=envelope(key, recipient=recipient))
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    return ids


def _node_keys(api: Api) -> dict[str, bytes]:
    node = api.get("/v1/node").json()
    return {node["signing_key_id"]: base64.b64decode(node["signing_public_key"])}


def _set_webhook(api: Api, url: str, participant: str = "nl.fiu") -> None:
    r = api.request(
        "PUT",
        f"/v1/participants/{participant}/adapter",
        as_="it.admin",
        json={"adapter": WEBHOOK, "config": {"url": url}},
    )
    assert r.status_code == 200, r.text


# --- the inbox ---------------------------------------------------------------------------


def test_batch_delivers_to_the_inbox_with_one_attempt_and_one_leaf_each(
    api: Api, sync_engine: Engine
) -> None:
    ids = _send(api, 5)
    report = deliver_once(api.settings)
    assert report.inbox == 5
    page = api.get("/v1/inbox", as_="it.officer").json()
    assert [i["message"]["id"] for i in page["items"]] == ids  # acceptance order
    assert count_rows(sync_engine, "outbox") == 0
    assert count_rows(sync_engine, "audit_events", "kind = 'message:delivered'") == 5
    status = api.get(f"/v1/messages/{ids[0]}", as_="de.system").json()
    assert status["status"] == "delivered"
    [attempt] = status["attempts"]
    assert (attempt["attempt"], attempt["adapter"], attempt["outcome"]) == (1, "inbox", "delivered")
    assert attempt["error"] is None


def test_the_same_batch_twice_delivers_and_audits_once(api: Api, sync_engine: Engine) -> None:
    """A redelivered task (worker killed after commit, before ack) finds its rows gone."""
    ids = _send(api, 3)

    async def claim() -> list[int]:
        db = Database(api.settings.resolved_database_url, pool_size=1)
        try:
            async with db.session() as s:
                claimed = await claim_due(s, limit=10, lease_seconds=60)
                await s.commit()
                return claimed
        finally:
            await db.dispose()

    outbox_ids = asyncio.run(claim())
    assert len(outbox_ids) == 3
    assert asyncio.run(claim()) == []  # leased: the relay does not hand them out again

    from broker.core.context import node_context
    from broker.delivery.pipeline import AdapterPool, deliver_batch
    from broker.delivery.tasks import node_identity, retry_policy

    async def deliver() -> int:
        db = Database(api.settings.resolved_database_url, pool_size=2)
        node = node_context(api.settings)
        try:
            report = await deliver_batch(
                db,
                node,
                AdapterPool(node_identity(node, api.settings)),
                outbox_ids,
                policy=retry_policy(api.settings),
                concurrency=2,
                adapter_timeout=5,
            )
            return report.inbox
        finally:
            await db.dispose()

    assert asyncio.run(deliver()) == 3
    assert asyncio.run(deliver()) == 0
    assert count_rows(sync_engine, "inbox_entries") == 3
    assert count_rows(sync_engine, "audit_events", "kind = 'message:delivered'") == 3
    assert count_rows(sync_engine, "delivery_attempts") == 3
    assert len(api.get("/v1/inbox", as_="it.officer").json()["items"]) == len(ids)


def test_an_expired_lease_is_claimed_again(api: Api) -> None:
    _send(api, 2)

    async def go() -> tuple[list[int], list[int], list[int]]:
        db = Database(api.settings.resolved_database_url, pool_size=1)
        try:
            async with db.session() as s:
                first = await claim_due(s, limit=10, lease_seconds=0.2)
                await s.commit()
            async with db.session() as s:
                during = await claim_due(s, limit=10, lease_seconds=60)
                await s.commit()
            await asyncio.sleep(0.3)
            async with db.session() as s:
                after = await claim_due(s, limit=10, lease_seconds=60)
                await s.commit()
            return first, during, after
        finally:
            await db.dispose()

    first, during, after = asyncio.run(go())
    assert len(first) == 2
    assert during == []
    assert after == first


def test_a_task_calling_slow_adapters_extends_its_lease(api: Api) -> None:
    _send(api, 1)

    async def go() -> tuple[list[int], list[int]]:
        db = Database(api.settings.resolved_database_url, pool_size=1)
        try:
            async with db.session() as s:
                claimed = await claim_due(s, limit=10, lease_seconds=0.2)
                await extend_lease(s, claimed, 60)
                await s.commit()
            await asyncio.sleep(0.3)
            async with db.session() as s:
                again = await claim_due(s, limit=10, lease_seconds=60)
                await s.commit()
            return claimed, again
        finally:
            await db.dispose()

    claimed, again = asyncio.run(go())
    assert len(claimed) == 1
    assert again == []  # still held: the first lease alone would have expired


# --- webhook: a real endpoint that checks the node's signature -----------------------------


def test_webhook_push_signed_by_the_node_completes_with_the_agency_receipt(
    api: Api, sync_engine: Engine
) -> None:
    agency = Agency(node_keys=_node_keys(api), receipt_key=api.world.keys["nl.fiu"])
    with agency_server(agency):
        _set_webhook(api, agency.url)
        [message_id] = _send(api, 1, recipient="nl.fiu")
        report = deliver_once(api.settings)
    assert (report.delivered, report.retry, report.dead_lettered) == (1, 0, 0)
    assert agency.refused_signatures == 0
    assert list(agency.received) == [message_id]
    status = api.get(f"/v1/messages/{message_id}", as_="de.system").json()
    assert status["status"] == "receipted"
    assert status["receipt"]["signatures"][0]["keyid"] == api.world.keys["nl.fiu"].kid
    assert [a["outcome"] for a in status["attempts"]] == ["delivered"]
    assert status["attempts"][0]["adapter"] == WEBHOOK
    for kind in ("message:delivered", "message:receipted"):
        assert count_rows(sync_engine, "audit_events", "kind = :k", k=kind) == 1
    # A push recipient has no inbox entry: it was pushed.
    assert count_rows(sync_engine, "inbox_entries") == 0


def test_webhook_receipt_by_another_key_does_not_complete_delivery(api: Api) -> None:
    agency = Agency(node_keys=_node_keys(api), receipt_key=api.world.keys["de.bka"])
    with agency_server(agency):
        _set_webhook(api, agency.url)
        [message_id] = _send(api, 1, recipient="nl.fiu")
        report = deliver_once(api.settings)
    assert (report.delivered, report.retry) == (0, 1)
    [attempt] = api.get(f"/v1/messages/{message_id}", as_="de.system").json()["attempts"]
    assert attempt["outcome"] == "failed"
    assert "receipt refused" in attempt["error"]


def test_an_endpoint_that_does_not_verify_the_node_refuses_a_forged_signature(api: Api) -> None:
    """The agency's check is real: a node key it does not know is refused (401, permanent)."""
    agency = Agency(node_keys={"someone-else": b"\x01" * 32}, receipt_key=api.world.keys["nl.fiu"])
    with agency_server(agency):
        _set_webhook(api, agency.url)
        _send(api, 1, recipient="nl.fiu")
        report = deliver_once(api.settings)
    assert agency.refused_signatures == 1
    assert report.dead_lettered == 1  # a 4xx other than 408/425/429 is a refusal


def test_retries_with_backoff_then_dead_letter_then_requeue(api: Api, sync_engine: Engine) -> None:
    # A backoff far longer than a delivery run, so "not due yet" holds on a slow machine;
    # the test then makes the retry due itself instead of sleeping through it.
    settings = api.settings.model_copy(
        update={"delivery_max_attempts": 3, "delivery_backoff_seconds": 60.0}
    )
    agency = Agency(
        node_keys=_node_keys(api), receipt_key=api.world.keys["nl.fiu"], mode="unavailable"
    )
    with agency_server(agency):
        _set_webhook(api, agency.url)
        [message_id] = _send(api, 1, recipient="nl.fiu")
        first = deliver_once(settings)
        assert first.retry == 1
        with sync_engine.connect() as conn:
            row = conn.execute(
                text("SELECT attempts, next_attempt_at, leased_until, last_error FROM outbox")
            ).one()
        assert row.attempts == 1
        assert row.next_attempt_at is not None
        assert row.leased_until is None
        assert row.last_error == "HTTP 503 from the endpoint"
        # Backing off: not due yet, so nothing is claimed at once.
        assert deliver_once(settings).retry == 0
        for _ in range(2):
            with sync_engine.begin() as conn:  # the backoff has passed
                conn.execute(text("UPDATE outbox SET next_attempt_at = NULL"))
            deliver_once(settings)
        assert agency.requests == 3

        status = api.get(f"/v1/messages/{message_id}", as_="de.system").json()
        assert status["status"] == "dead_lettered"
        assert [a["outcome"] for a in status["attempts"]] == ["failed"] * 3
        assert count_rows(sync_engine, "audit_events", "kind = 'message:dead_lettered'") == 1
        assert deliver_once(settings).retry == 0  # the relay skips dead letters

        listed = api.get("/v1/delivery/dead-letters", as_="it.admin").json()["items"]
        assert [(d["message_id"], d["attempts"], d["adapter"]) for d in listed] == [
            (message_id, 3, WEBHOOK)
        ]
        assert listed[0]["last_error"] == "HTTP 503 from the endpoint"

        agency.mode = "ok"  # the partner is back
        r = api.post(f"/v1/delivery/dead-letters/{message_id}/requeue", as_="it.admin")
        assert r.json() == {"requeued": [message_id]}
        assert api.get(f"/v1/messages/{message_id}", as_="de.system").json()["status"] == (
            "accepted"
        )
        assert deliver_once(settings).delivered == 1
    status = api.get(f"/v1/messages/{message_id}", as_="de.system").json()
    assert status["status"] == "receipted"
    assert [a["outcome"] for a in status["attempts"]] == ["failed"] * 3 + ["delivered"]
    assert api.get("/v1/delivery/dead-letters", as_="it.admin").json()["items"] == []
    assert count_rows(sync_engine, "audit_events", "kind = 'message:requeued'") == 1
    r = api.post(f"/v1/delivery/dead-letters/{message_id}/requeue", as_="it.admin")
    assert r.status_code == 404


def test_a_refusal_is_dead_lettered_at_once(api: Api, sync_engine: Engine) -> None:
    agency = Agency(node_keys=_node_keys(api), receipt_key=api.world.keys["nl.fiu"], mode="refuse")
    with agency_server(agency):
        _set_webhook(api, agency.url)
        [message_id] = _send(api, 1, recipient="nl.fiu")
        assert deliver_once(api.settings).dead_lettered == 1
    [attempt] = api.get(f"/v1/messages/{message_id}", as_="de.system").json()["attempts"]
    assert attempt["outcome"] == "rejected"
    assert attempt["error"].startswith("HTTP 422")


def test_an_unreachable_endpoint_is_retried(api: Api) -> None:
    with agency_server(Agency(node_keys={}, receipt_key=api.world.keys["nl.fiu"])) as agency:
        url = agency.url
    _set_webhook(api, url)  # the server is gone: connection refused
    [message_id] = _send(api, 1, recipient="nl.fiu")
    assert deliver_once(api.settings).retry == 1
    [attempt] = api.get(f"/v1/messages/{message_id}", as_="de.system").json()["attempts"]
    assert attempt["error"].startswith("the endpoint is unreachable")


def test_requeue_all_of_a_recipient(api: Api, sync_engine: Engine) -> None:
    agency = Agency(node_keys=_node_keys(api), receipt_key=api.world.keys["nl.fiu"], mode="refuse")
    with agency_server(agency):
        _set_webhook(api, agency.url)
        ids = _send(api, 2, recipient="nl.fiu")
        deliver_once(api.settings)

    async def go() -> list[str]:
        db = Database(api.settings.resolved_database_url, pool_size=1)
        try:
            async with db.session() as s:
                done = await requeue_dead_letters(s, node_id="n", actor=None, recipient="nl.fiu")
                await s.commit()
                return done
        finally:
            await db.dispose()

    assert sorted(asyncio.run(go())) == sorted(ids)
    assert count_rows(sync_engine, "outbox", "dead_lettered_at IS NULL AND attempts = 0") == 2


# --- backoff -------------------------------------------------------------------------------


def test_backoff_doubles_is_capped_and_jittered_in_its_upper_half() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_seconds=2.0, backoff_max_seconds=60.0)
    rng = random.Random(7)
    for failed, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0), (6, 60.0), (9, 60.0)]:
        delays = [policy.delay(failed, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not constant


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"adapter": "carrier-pigeon"}, "unknown adapter"),
        ({"adapter": WEBHOOK, "config": {}}, "url is required"),
        ({"adapter": WEBHOOK, "config": {"url": "http://agency.example/x"}}, "use https"),
        ({"adapter": WEBHOOK, "config": {"url": "https://a.example", "x": 1}}, "unknown"),
        ({"adapter": "inbox", "config": {"url": "https://a.example"}}, "no configuration"),
    ],
)
def test_an_unusable_adapter_configuration_is_refused(
    api: Api, body: dict[str, object], why: str
) -> None:
    r = api.request("PUT", "/v1/participants/nl.fiu/adapter", as_="it.admin", json=body)
    assert r.status_code == 422, r.text
    assert why in r.json()["detail"]
    assert r.json()["type"] == "urn:palermo:problem:adapter-config"
    assert api.get("/v1/participants/nl.fiu/adapter", as_="it.admin").json()["adapter"] == "inbox"


def _break_adapter(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE participants SET adapter = 'webhook', adapter_config = '{}' "
                "WHERE id = 'nl.fiu'"
            )
        )


def test_the_api_does_not_start_on_a_bad_adapter_configuration(
    settings: Settings, sync_engine: Engine
) -> None:
    _break_adapter(sync_engine)
    with (
        pytest.raises(ConfigurationError, match=r"participant nl\.fiu: url is required"),
        TestClient(create_app(settings)),
    ):
        pass


def test_the_worker_does_not_start_on_a_bad_adapter_configuration(
    settings: Settings, sync_engine: Engine, tmp_path: Path
) -> None:
    _break_adapter(sync_engine)
    assert settings.master_key is not None
    assert settings.node_signing_key is not None
    assert settings.token_secret is not None
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PALERMO_")},
        "PALERMO_DATA_DIR": str(tmp_path),
        "PALERMO_DATABASE_URL": settings.resolved_database_url,
        "PALERMO_MASTER_KEY": settings.master_key.get_secret_value(),
        "PALERMO_NODE_SIGNING_KEY": settings.node_signing_key.get_secret_value(),
        "PALERMO_TOKEN_SECRET": settings.token_secret.get_secret_value(),
        "PALERMO_ENV": "test",
    }
    done = subprocess.run(
        [sys.executable, "-m", "broker.cli", "worker", "--pool", "solo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "participant nl.fiu: url is required" in done.stderr


def test_palermo_deadletter_list_and_requeue(
    api: Api,
    sync_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from broker.cli import main as palermo

    agency = Agency(node_keys=_node_keys(api), receipt_key=api.world.keys["nl.fiu"], mode="refuse")
    with agency_server(agency):
        _set_webhook(api, agency.url)
        ids = _send(api, 2, recipient="nl.fiu")
        assert deliver_once(api.settings).dead_lettered == 2
    s = api.settings
    assert s.master_key is not None
    assert s.node_signing_key is not None
    assert s.token_secret is not None
    for name, value in {
        "PALERMO_DATA_DIR": str(s.data_dir),
        "PALERMO_DATABASE_URL": s.resolved_database_url,
        "PALERMO_MASTER_KEY": s.master_key.get_secret_value(),
        "PALERMO_NODE_SIGNING_KEY": s.node_signing_key.get_secret_value(),
        "PALERMO_TOKEN_SECRET": s.token_secret.get_secret_value(),
        "PALERMO_ENV": "test",
    }.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert palermo(["deadletter", "list", "--recipient", "nl.fiu"]) == 0
    out = capsys.readouterr().out
    assert all(i in out for i in ids)
    assert "HTTP 422: the endpoint refused the message" in out
    assert "2 dead-lettered message(s)" in out
    assert palermo(["deadletter", "requeue"]) == 2  # neither ids nor --all
    assert palermo(["deadletter", "requeue", ids[0]]) == 0
    assert f"requeued {ids[0]}" in capsys.readouterr().out
    assert palermo(["deadletter", "requeue", "--all", "--recipient", "nl.fiu"]) == 0
    assert "1 message(s) requeued" in capsys.readouterr().out
    assert count_rows(sync_engine, "outbox", "dead_lettered_at IS NULL") == 2
    assert count_rows(sync_engine, "audit_events", "kind = 'message:requeued'") == 2

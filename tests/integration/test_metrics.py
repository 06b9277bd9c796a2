"""``GET /metrics``: who may read it (a bearer token; disabled in production without one), and
each figure operators watch, after a scenario that moves it: a message in the outbox, a
dead letter, delivery attempts, the sequencer's queue and checkpoint, a witness cosignature,
a policy denial, an overdue case, failed logins and a lockout, the pool in use. Also the
alert rules and the dashboard name only metrics the node exports."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine, text

from broker.app import create_app
from broker.client import sign
from broker.core.db import Database
from broker.core.errors import NotFound, Unauthenticated
from broker.core.settings import Settings
from broker.metrics import Metrics
from broker.oversight.tasks import sequence_all
from tests.conftest import PASSWORD, Api
from tests.integration.messaging_helpers import envelope, payload
from tests.integration.test_case_helpers import open_case

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
TOKEN = "metrics-token-for-the-tests-0123456789"


@pytest.fixture
def metered(api: Api) -> Iterator[Api]:
    settings = api.settings.model_copy(
        update={"metrics_token": SecretStr(TOKEN), "auth_lockout_failures": 2}
    )
    with TestClient(create_app(settings)) as client:
        yield Api(client, settings, api.world)


def scrape(api: Api) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """metric sample name -> {sorted labels: value}."""
    r = api.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[labels] = sample.value
    return found


def value(found: dict[str, Any], name: str, **labels: str) -> float:
    return float(found.get(name, {}).get(tuple(sorted(labels.items())), 0.0))


def test_metrics_need_the_token_when_it_is_set(metered: Api) -> None:
    assert metered.client.get("/metrics").status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    r = metered.client.get("/metrics", headers=wrong)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert metered.client.get("/metrics", headers={"Authorization": TOKEN}).status_code == 401
    assert "palermo_outbox_pending" in scrape(metered)


def test_production_without_a_token_has_no_metrics(settings: Settings) -> None:
    async def go() -> None:
        db = Database(settings.resolved_database_url, pool_size=1)
        try:
            closed = Metrics(db, settings.model_copy(update={"env": "production"}))
            with pytest.raises(NotFound, match="PALERMO_METRICS_TOKEN"):
                closed.check_access(f"Bearer {TOKEN}")
            token = settings.model_copy(
                update={"env": "production", "metrics_token": SecretStr(TOKEN)}
            )
            with pytest.raises(Unauthenticated):
                Metrics(db, token).check_access(None)
            Metrics(db, token).check_access(f"Bearer {TOKEN}")
            Metrics(db, settings).check_access(None)  # development, no token: open
        finally:
            await db.dispose()

    asyncio.run(go())


def _seed_scenario(api: Api, sync_engine: Engine) -> None:
    key = api.world.keys["de.bka"]
    for _ in range(2):
        r = api.post("/v1/messages", as_="de.system", json=envelope(key))
        assert r.status_code == 202, r.text
    denied = payload(key)
    denied.pop("legal_basis")
    assert api.post("/v1/messages", as_="de.system", json=sign(key, denied)).status_code == 403
    for _ in range(2):
        wrong = {"grant_type": "password", "username": "it.officer", "password": "wrong"}
        assert api.client.post("/v1/auth/token", data=wrong).status_code == 401
    case = open_case(api)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    with sync_engine.begin() as conn:
        first = conn.execute(text("SELECT min(id) FROM outbox")).scalar_one()
        conn.execute(
            text("UPDATE outbox SET dead_lettered_at = :t, created_at = :t WHERE id = :id"),
            {"t": past, "id": first},
        )
        conn.execute(
            text("UPDATE outbox SET created_at = :t WHERE id <> :id"),
            {"t": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=90), "id": first},
        )
        message = conn.execute(text("SELECT message_id FROM outbox LIMIT 1")).scalar_one()
        for outcome in ("failed", "failed", "delivered"):
            conn.execute(
                text(
                    "INSERT INTO delivery_attempts (message_id, attempt, adapter, started_at, "
                    "finished_at, outcome) VALUES (:m, 1, 'webhook', :t, :t, :o)"
                ),
                {"m": message, "t": past, "o": outcome},
            )
        conn.execute(
            text("UPDATE cases SET deadline = :t WHERE id = :id"), {"t": past, "id": case["id"]}
        )


def _sequence_and_cosign(api: Api, sync_engine: Engine) -> int:
    """Run the sequencer once (a signed checkpoint), and record a witness cosignature of it
    received two minutes ago; return the checkpoint's size."""

    async def sequence() -> None:
        db = Database(api.settings.resolved_database_url, pool_size=1)
        try:
            await sequence_all(
                db,
                origin=api.settings.node_id,
                seed=api.settings.node_signing_seed,
                batch_size=1000,
            )
        finally:
            await db.dispose()

    asyncio.run(sequence())
    with sync_engine.begin() as conn:
        size = int(conn.execute(text("SELECT max(size) FROM audit_checkpoints")).scalar_one())
        conn.execute(
            text(
                "INSERT INTO audit_cosignatures (checkpoint_size, witness_name, witness_key_id, "
                "timestamp, line, witness_url, received_at) "
                "VALUES (:s, 'w.example', 1, 0, '-', 'https://w.example', :t)"
            ),
            {"s": size, "t": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=120)},
        )
    return size


def test_each_figure_after_a_scenario(metered: Api, sync_engine: Engine) -> None:
    before = scrape(metered)
    assert value(before, "palermo_metrics_database_up") == 1
    assert value(before, "palermo_outbox_pending") == 0
    assert "palermo_outbox_oldest_age_seconds" not in before
    _seed_scenario(metered, sync_engine)

    found = scrape(metered)
    assert value(found, "palermo_outbox_pending") == 1
    assert 80 <= value(found, "palermo_outbox_oldest_age_seconds") < 600
    assert value(found, "palermo_dead_letters") == 1
    assert value(found, "palermo_delivery_attempts_total", adapter="webhook", outcome="failed") == 2
    assert (
        value(found, "palermo_delivery_attempts_total", adapter="webhook", outcome="delivered") == 1
    )
    unsequenced = value(found, "palermo_audit_unsequenced")
    assert unsequenced >= 3  # two acceptances, a refusal, failed logins, the case
    assert value(found, "palermo_cases_overdue") == 1
    assert value(found, "palermo_login_failures_total") - value(
        before, "palermo_login_failures_total"
    ) == pytest.approx(2)
    lockouts = value(found, "palermo_login_lockouts_total", scope="login") - value(
        before, "palermo_login_lockouts_total", scope="login"
    )
    assert lockouts == pytest.approx(1)
    denials = {
        labels: v
        for labels, v in found["palermo_policy_denials_total"].items()
        if v > before.get("palermo_policy_denials_total", {}).get(labels, 0.0)
    }
    assert denials
    assert all("legal" in dict(labels)["rule"] for labels in denials)
    assert value(found, "palermo_db_pool_size") == metered.settings.db_pool_size
    assert "palermo_db_pool_in_use" in found
    # Counted once: a second scrape adds no attempts.
    again = scrape(metered)
    assert value(again, "palermo_delivery_attempts_total", adapter="webhook", outcome="failed") == 2

    # The sequencer empties its queue and signs a checkpoint; a witness cosigns it.
    size = _sequence_and_cosign(metered, sync_engine)
    found = scrape(metered)
    assert value(found, "palermo_audit_unsequenced") < unsequenced
    assert value(found, "palermo_audit_checkpoint_size") == size
    assert 0 <= value(found, "palermo_audit_checkpoint_age_seconds") < 60
    assert 110 <= value(found, "palermo_witness_cosignature_age_seconds") < 600


def _names_in(expr: str) -> set[str]:
    return set(re.findall(r"\b(palermo_[a-z_]+)\b", expr))


def test_alert_rules_and_dashboard_name_only_exported_metrics(
    metered: Api, sync_engine: Engine
) -> None:
    _seed_scenario(metered, sync_engine)
    _sequence_and_cosign(metered, sync_engine)
    metered.client.get("/v1/inbox")  # a request, so the latency histogram has a sample
    peer = metered.request(  # a peer node, so its directory figures have a sample
        "PUT",
        "/v1/federation/peers/de.palermo",
        as_="it.admin",
        json={
            "url": "https://palermo.de.example",
            "node_key": base64.b64encode(b"k" * 32).decode(),
            "jurisdictions": ["DE"],
        },
    )
    assert peer.status_code == 200, peer.text
    exported = set(scrape(metered))
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len(alerts) >= 4
    for rule in alerts:
        assert {"alert", "expr", "for", "labels", "annotations"} <= set(rule), rule
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        names = _names_in(rule["expr"])
        assert names, rule["alert"]
        assert names <= exported, (rule["alert"], names - exported)
    named = {rule["alert"] for rule in alerts}
    assert {
        "PalermoCheckpointStale",
        "PalermoOutboxGrowing",
        "PalermoDeadLetters",
        "PalermoWitnessSilent",
    } <= named
    dashboard = json.loads((DEPLOY / "grafana" / "palermo.json").read_text())
    targets = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(targets) >= 10
    for expr in targets:
        assert _names_in(expr) <= exported, expr


def test_a_failed_login_counts_without_the_token_setting(api: Api) -> None:
    """Development without a token: /metrics open, and a failed login counts."""
    before = scrape_open(api)
    wrong = {"grant_type": "password", "username": "it.officer", "password": PASSWORD + "x"}
    assert api.client.post("/v1/auth/token", data=wrong).status_code == 401
    after = scrape_open(api)
    assert after - before == pytest.approx(1)


def scrape_open(api: Api) -> float:
    r = api.client.get("/metrics")
    assert r.status_code == 200
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name == "palermo_login_failures_total":
                return float(sample.value)
    return 0.0

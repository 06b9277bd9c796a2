"""A real Celery worker process relays the outbox, over Redis and over RabbitMQ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broker.core.settings import Settings
from broker.worker import make_celery
from tests.conftest import Api, count_rows, need_service
from tests.integration.messaging_helpers import envelope

WORKER = [sys.executable, "-m", "broker.cli", "worker", "--pool", "solo"]
BROKERS = {
    "redis": ("redis://127.0.0.1:6379/{db}", 6379),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", 5672),
}


@pytest.fixture(params=sorted(BROKERS))
def broker_url(request: pytest.FixtureRequest) -> str:
    template, port = BROKERS[request.param]
    need_service(request.param, "127.0.0.1", port)
    return template.format(db=os.getpid() % 15 + 1)


def _env(settings: Settings, broker: str) -> dict[str, str]:
    assert settings.master_key is not None
    assert settings.node_signing_key is not None
    assert settings.token_secret is not None
    return {
        **os.environ,
        "PALERMO_DATA_DIR": str(settings.data_dir),
        "PALERMO_DATABASE_URL": settings.resolved_database_url,
        "PALERMO_CELERY_BROKER_URL": broker,
        "PALERMO_CELERY_RESULT_BACKEND": f"db+sqlite:///{settings.data_dir / 'results.db'}",
        "PALERMO_MASTER_KEY": settings.master_key.get_secret_value(),
        "PALERMO_NODE_SIGNING_KEY": settings.node_signing_key.get_secret_value(),
        "PALERMO_TOKEN_SECRET": settings.token_secret.get_secret_value(),
        "PALERMO_NODE_ID": settings.node_id,
        "PALERMO_ENV": "test",
    }


@pytest.fixture
def worker(api: Api, broker_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "worker.log"
    queue = f"palermo-test-{os.getpid()}-{time.monotonic_ns()}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*WORKER, "--queues", queue, "--hostname", f"{queue}@%h"],
            env=_env(api.settings, broker_url),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield queue, log
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.worker
def test_worker_relays_accepted_messages_to_the_inbox(
    api: Api, sync_engine: Engine, broker_url: str, worker: tuple[str, Path]
) -> None:
    queue, log = worker
    key = api.world.keys["de.bka"]
    ids = [
        api.post("/v1/messages", as_="de.system", json=envelope(key)).json()["id"] for _ in range(3)
    ]
    app = make_celery(api.settings.model_copy(update={"celery_broker_url": broker_url}))
    app.send_task("palermo.delivery.relay", queue=queue)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and count_rows(sync_engine, "outbox") > 0:
        time.sleep(0.2)
    assert count_rows(sync_engine, "outbox") == 0, log.read_text()[-3000:]
    page = api.get("/v1/inbox", as_="it.officer").json()
    assert [i["message"]["id"] for i in page["items"]] == ids
    assert count_rows(sync_engine, "audit_events", "kind = 'message:delivered'") == 3
    assert all(
        api.get(f"/v1/messages/{i}", as_="de.system").json()["status"] == "delivered" for i in ids
    )


@pytest.mark.worker
def test_worker_logs_every_task_with_its_id_and_name(
    api: Api, sync_engine: Engine, broker_url: str, worker: tuple[str, Path]
) -> None:
    # Celery's stdout redirection once swallowed every line after the first task.
    queue, log = worker
    key = api.world.keys["de.bka"]
    app = make_celery(api.settings.model_copy(update={"celery_broker_url": broker_url}))
    for _ in range(2):
        api.post("/v1/messages", as_="de.system", json=envelope(key))
        app.send_task("palermo.delivery.relay", queue=queue)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and count_rows(sync_engine, "outbox") > 0:
            time.sleep(0.2)
    lines: list[dict[str, object]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
        if sum(1 for x in lines if x.get("event") == "delivered") >= 2:
            break
        time.sleep(0.2)
    relayed = [x for x in lines if x.get("event") == "outbox relayed"]
    delivered = [x for x in lines if x.get("event") == "delivered"]
    assert len(relayed) == 2, log.read_text()[-3000:]
    assert len(delivered) == 2, log.read_text()[-3000:]
    assert {x["task_name"] for x in relayed} == {"palermo.delivery.relay"}
    assert {x["task_name"] for x in delivered} == {"palermo.delivery.deliver"}
    assert len({x["task_id"] for x in relayed + delivered}) == 4

"""At least once, effectively once (issue 6): messages sent through the real API while the
worker is killed with SIGKILL, RabbitMQ is restarted, and PostgreSQL refuses connections for
10 s; afterwards every accepted message is in its recipient's inbox exactly once.

Real processes: the API (uvicorn), a prefork Celery worker over RabbitMQ, PostgreSQL. The test
plays beat (a relay task to the worker's queue every 0.25 s) and the senders (threads that
retry each envelope, unchanged, until the node answers 202 or 200: an envelope is "accepted"
when the node said so). The count is ``PALERMO_FAULT_MESSAGES`` (default 10,000; the
figures of a run are printed).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, text

from broker.core.settings import Settings
from broker.core.tokens import issue_token
from broker.worker import make_celery
from tests.conftest import ACCOUNTS, PG_URL, TEST_DB, World, need_service
from tests.integration.messaging_helpers import envelope
from tests.support.processes import Palermo, free_port, port_open

MESSAGES = int(os.environ.get("PALERMO_FAULT_MESSAGES", "10000"))
SENDERS = 8
RABBIT = "amqp://guest:guest@127.0.0.1:5672//"
PG_PAUSE_SECONDS = 10.0
WORKER = ["worker", "--pool", "prefork", "--concurrency", "2"]


def _env(s: Settings) -> dict[str, str]:
    assert s.master_key is not None
    assert s.node_signing_key is not None
    assert s.token_secret is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALERMO_")}
    env.update(
        PALERMO_DATA_DIR=str(s.data_dir),
        PALERMO_DATABASE_URL=s.resolved_database_url,
        PALERMO_CELERY_BROKER_URL=RABBIT,
        PALERMO_CELERY_RESULT_BACKEND=f"db+sqlite:///{s.data_dir / 'results.db'}",
        PALERMO_MASTER_KEY=s.master_key.get_secret_value(),
        PALERMO_NODE_SIGNING_KEY=s.node_signing_key.get_secret_value(),
        PALERMO_TOKEN_SECRET=s.token_secret.get_secret_value(),
        PALERMO_NODE_ID=s.node_id,
        PALERMO_PUBLIC_URL=s.public_url,  # the token issuer
        PALERMO_ENV="test",
        PALERMO_LOG_LEVEL="WARNING",
        # Short backoff so that the test's retries happen within it.
        PALERMO_DELIVERY_BACKOFF_SECONDS="0.5",
        PALERMO_DELIVERY_LEASE_SECONDS="20",
    )
    return env


def _worker(env: dict[str, str], queue: str, log: Path) -> Palermo:
    return Palermo([*WORKER, "--queues", queue, "--hostname", f"{queue}@%h"], env, log)


@dataclass
class Sent:
    accepted: set[str] = field(default_factory=set)
    answers: Counter[str] = field(default_factory=Counter)
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


@contextlib.contextmanager
def _postgres_refusing(dbname: str) -> Iterator[None]:
    """The test database refuses new connections and loses its current ones; then comes back
    (also when the test fails)."""
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false'.encode())
        try:
            admin.execute(
                b"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                b"WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true'.encode())


def _token(settings: Settings, world: World) -> str:
    pid, kind, roles = ACCOUNTS["de.system"]
    token, _ = issue_token(
        secret=settings.token_secret_bytes,
        issuer=settings.resolved_issuer,
        audience=settings.token_audience,
        subject=world.account_ids["de.system"],
        participant_id=pid,
        roles=frozenset(roles),
        kind=kind.value,
        ttl_seconds=3600,
    )
    return token


def _send_all(url: str, token: str, world: World, sent: Sent, stop: threading.Event) -> None:
    key = world.keys["de.bka"]
    headers = {"Authorization": f"Bearer {token}"}

    def sender(count: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            for _ in range(count):
                env = envelope(key)  # signed once, retried unchanged
                while not stop.is_set():
                    try:
                        r = http.post("/v1/messages", json=env)
                        status = str(r.status_code)
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    with sent.lock:
                        sent.answers[status] += 1
                    if status in ("200", "202"):
                        with sent.lock:
                            sent.accepted.add(r.json()["id"])
                            sent.done += 1
                        break
                    assert not status.startswith("4"), r.text  # only faults, never refusals
                    time.sleep(0.2)

    per = [MESSAGES // SENDERS + (1 if i < MESSAGES % SENDERS else 0) for i in range(SENDERS)]
    with ThreadPoolExecutor(SENDERS) as pool:
        for future in [pool.submit(sender, n) for n in per]:
            future.result()


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.timeout(900)
def test_no_message_lost_or_doubled_through_worker_broker_and_database_faults(
    settings: Settings, world: World, sync_engine: Engine, tmp_path: Path
) -> None:
    if TEST_DB != "postgresql":
        pytest.skip("the fault test runs in the PostgreSQL suite (PALERMO_TEST_DB=postgresql)")
    need_service("RabbitMQ", "127.0.0.1", 5672)
    port = free_port()
    env = _env(settings)
    dbname = settings.resolved_database_url.rsplit("/", 1)[1]
    queue = f"palermo-faults-{os.getpid()}-{time.monotonic_ns()}"
    worker = _worker(env, queue, tmp_path / "worker.log")
    api_log = (tmp_path / "api.log").open("wb")
    api = subprocess.Popen(
        [sys.executable, "-m", "broker.cli", "serve", "--port", str(port)],
        env=env,
        stdout=api_log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    celery = make_celery(settings.model_copy(update={"celery_broker_url": RABBIT}))
    stop, relays = threading.Event(), Counter[str]()

    def beat() -> None:  # what `palermo beat` does, to the test's queue
        while not stop.is_set():
            try:
                celery.send_task("palermo.delivery.relay", queue=queue, expires=10)
                relays["sent"] += 1
            except Exception:  # the broker is down: beat's next tick tries again
                relays["failed"] += 1
            time.sleep(0.25)

    sent = Sent()
    faults: list[tuple[str, float]] = []
    began = time.monotonic()
    try:
        worker.start()
        deadline = time.monotonic() + 60
        while not port_open(port):
            assert api.poll() is None, "the API exited"
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
        beater = threading.Thread(target=beat, daemon=True)
        beater.start()
        sender = threading.Thread(
            target=_send_all, args=(url, _token(settings, world), world, sent, stop), daemon=True
        )
        sender.start()

        def at(fraction: float) -> None:
            while sent.done < MESSAGES * fraction and sender.is_alive():
                time.sleep(0.05)

        at(0.2)
        worker.kill()
        faults.append(("worker SIGKILL", time.monotonic() - began))
        time.sleep(2)
        worker.start()
        at(0.45)
        faults.append(("RabbitMQ stop_app", time.monotonic() - began))
        try:
            _rabbitmqctl("stop_app")
            time.sleep(3)
        finally:
            _rabbitmqctl("start_app")
        faults.append(("RabbitMQ start_app", time.monotonic() - began))
        at(0.7)
        faults.append(("PostgreSQL refuses connections", time.monotonic() - began))
        with _postgres_refusing(dbname):
            time.sleep(PG_PAUSE_SECONDS)
        faults.append(("PostgreSQL back", time.monotonic() - began))
        sender.join(timeout=600)
        assert not sender.is_alive(), "the senders did not finish"
        sent_at = time.monotonic() - began

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and _delivered(sync_engine) < len(sent.accepted):
            time.sleep(0.5)
        drained_at = time.monotonic() - began
    finally:
        stop.set()
        worker.stop()
        api.terminate()
        api.wait(timeout=20)
        api_log.close()

    with sync_engine.connect() as conn:
        stored = set(conn.execute(text("SELECT id FROM messages")).scalars())
        inbox = Counter(conn.execute(text("SELECT message_id FROM inbox_entries")).scalars())
        leaves = Counter(
            conn.execute(
                text("SELECT message_id FROM audit_events WHERE kind = 'message:delivered'")
            ).scalars()
        )
        attempts = conn.execute(text("SELECT count(*) FROM delivery_attempts")).scalar_one()
        outbox = conn.execute(text("SELECT count(*) FROM outbox")).scalar_one()
    print(
        f"\nfault test: {MESSAGES} messages, {len(sent.accepted)} accepted, answers "
        f"{dict(sent.answers)}; sent in {sent_at:.1f} s, all delivered at {drained_at:.1f} s"
    )
    print(f"faults: {', '.join(f'{name} at {t:.1f} s' for name, t in faults)}")
    print(f"relay ticks: {dict(relays)}; worker kills: {worker.kills}")
    print(
        f"stored {len(stored)}, in inboxes {sum(inbox.values())} "
        f"(distinct {len(inbox)}), delivered leaves {sum(leaves.values())}, "
        f"attempts {attempts}, left in outbox {outbox}"
    )
    log_tail = worker.log.read_text(errors="replace")[-3000:]
    assert len(sent.accepted) == MESSAGES
    assert stored == sent.accepted, "the node stored exactly what it accepted"
    assert set(inbox) == sent.accepted, log_tail  # none lost
    assert max(inbox.values()) == 1  # none twice
    assert set(leaves) == sent.accepted
    assert max(leaves.values()) == 1  # each delivery audited once
    assert attempts == MESSAGES
    assert outbox == 0


def _delivered(engine: Engine) -> int:
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM inbox_entries")).scalar_one())
    except Exception:  # the database may be paused
        return 0

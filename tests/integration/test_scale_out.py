"""Scale-out under faults (issue 17 item 5): two api processes behind a load balancer, two
workers and beat, over one PostgreSQL and one RabbitMQ; 5,000 messages from 16 clients while
one api process and one worker are killed with SIGKILL and started again.

Every accepted message ends in its recipient's inbox exactly once; the audit log verifies;
the only requests that failed were the ones in flight on the killed api (each client has at
most one in flight), and a client that sends the same envelope again gets the first answer
(the same message id). The load balancer is the test's own: a TCP proxy that hands each new
connection to the next api process that accepts it, as haproxy's round robin with health
checks would. The clients open a connection per request, so requests spread over both
processes. The processes are the real ones (``palermo serve``, ``palermo worker``,
``palermo beat``) on a RabbitMQ virtual host of the test's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from broker.core.settings import Settings
from tests.conftest import TEST_DB, Api, World, need_service
from tests.integration.audit_helpers import export, sequence, verifier_key, verify
from tests.integration.messaging_helpers import envelope
from tests.integration.test_faults import _env, _rabbitmqctl, _token
from tests.support.processes import Palermo, free_port, wait_for_port

MESSAGES = int(os.environ.get("PALERMO_SCALE_MESSAGES", "5000"))
CLIENTS = 16


class Balancer:
    """Round robin over the backends that accept a connection, in a thread of its own."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.port = free_port()
        self.picked: Counter[int] = Counter()
        self._turn = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="balancer", daemon=True)

    def __enter__(self) -> Balancer:
        self._thread.start()
        assert self._ready.wait(10), "the balancer did not start"
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.close()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        # Each connection tries every backend once, starting at the next one in turn.
        first, self._turn = self._turn, self._turn + 1
        for i in range(len(self.backends)):
            port = self.backends[(first + i) % len(self.backends)]
            with contextlib.suppress(OSError):
                pair = await asyncio.open_connection("127.0.0.1", port)
                self.picked[port] += 1
                return pair
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend = await self._connect()
        if backend is None:
            writer.close()
            return
        up_reader, up_writer = backend

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@dataclass
class Clients:
    accepted: set[str] = field(default_factory=set)
    answers: Counter[str] = field(default_factory=Counter)
    ids: defaultdict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    retried: int = 0
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _send_all(url: str, token: str, world: World, clients: Clients) -> None:
    key = world.keys["de.bka"]
    headers = {"Authorization": f"Bearer {token}"}
    # One connection per request, so that the balancer spreads them.
    limits = httpx.Limits(max_keepalive_connections=0)

    def client(count: int, first: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30, limits=limits) as http:
            for n in range(first, first + count):
                env = envelope(key)  # signed once, sent again unchanged until answered
                tries = 0
                while True:
                    tries += 1
                    try:
                        r = http.post("/v1/messages", json=env)
                        status = str(r.status_code)
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    with clients.lock:
                        clients.answers[status] += 1
                    if status in ("200", "202"):
                        with clients.lock:
                            clients.ids[n].add(r.json()["id"])
                            clients.accepted.add(r.json()["id"])
                            clients.done += 1
                            clients.retried += tries > 1
                        break
                    assert not status.startswith("4"), r.text  # faults only, never refusals
                    assert tries < 50, f"envelope {n} was never accepted: {status}"
                    time.sleep(0.2)

    per = MESSAGES // CLIENTS
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [
            pool.submit(client, per + (i < MESSAGES % CLIENTS), i * (per + 1))
            for i in range(CLIENTS)
        ]
        for future in futures:
            future.result()


@contextlib.contextmanager
def _vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of the test's own: no other test's worker takes its tasks."""
    name = f"palermo-scale-{os.getpid()}-{time.monotonic_ns()}"
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        _rabbitmqctl("delete_vhost", name)


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.timeout(900)
def test_two_apis_and_two_workers_lose_nothing_when_one_of_each_is_killed(
    settings: Settings, world: World, sync_engine: Engine, api: Api, tmp_path: Path
) -> None:
    if TEST_DB != "postgresql":
        pytest.skip("scale-out runs in the PostgreSQL suite (PALERMO_TEST_DB=postgresql)")
    need_service("RabbitMQ", "127.0.0.1", 5672)
    with _vhost() as broker_url:
        env = {
            **_env(settings),
            "PALERMO_CELERY_BROKER_URL": broker_url,
            "PALERMO_RELAY_INTERVAL_SECONDS": "0.25",
        }
        ports = [free_port(), free_port()]
        servers = [
            Palermo(["serve", "--port", str(p)], env, tmp_path / f"api-{i}.log")
            for i, p in enumerate(ports)
        ]
        workers = [
            Palermo(
                ["worker", "--pool", "prefork", "--concurrency", "2", "--hostname", f"w{i}@%h"],
                env,
                tmp_path / f"worker-{i}.log",
            )
            for i in range(2)
        ]
        beat = Palermo(["beat"], env, tmp_path / "beat.log")
        clients = Clients()
        began = time.monotonic()
        faults: list[str] = []
        try:
            for proc in [*servers, *workers, beat]:
                proc.start()
            for server, port in zip(servers, ports, strict=True):
                assert server.proc is not None
                wait_for_port(port, server.proc, seconds=60, log=server.log.read_text)
            with Balancer(ports) as balancer:
                url = f"http://127.0.0.1:{balancer.port}"
                sender = threading.Thread(
                    target=_send_all, args=(url, _token(settings, world), world, clients)
                )
                sender.start()

                def at(fraction: float) -> None:
                    while clients.done < MESSAGES * fraction and sender.is_alive():
                        time.sleep(0.05)

                at(0.3)
                servers[0].kill()
                faults.append(f"api 0 SIGKILL at {time.monotonic() - began:.1f} s")
                at(0.45)
                workers[0].kill()
                faults.append(f"worker 0 SIGKILL at {time.monotonic() - began:.1f} s")
                servers[0].start()
                time.sleep(2)
                workers[0].start()
                assert servers[0].proc is not None
                wait_for_port(ports[0], servers[0].proc, seconds=60, log=servers[0].log.read_text)
                faults.append(f"both back at {time.monotonic() - began:.1f} s")
                sender.join(timeout=600)
                assert not sender.is_alive(), "the clients did not finish"
                sent_at = time.monotonic() - began
                picked = dict(balancer.picked)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and _delivered(sync_engine) < len(clients.accepted):
                time.sleep(0.5)
            drained_at = time.monotonic() - began
        finally:
            for proc in [beat, *workers, *servers]:
                proc.stop()

    with sync_engine.connect() as conn:
        stored = set(conn.execute(text("SELECT id FROM messages")).scalars())
        inbox = Counter(conn.execute(text("SELECT message_id FROM inbox_entries")).scalars())
        leaves = Counter(
            conn.execute(
                text("SELECT message_id FROM audit_events WHERE kind = 'message:delivered'")
            ).scalars()
        )
    failed = {k: v for k, v in clients.answers.items() if k not in ("200", "202")}
    print(
        f"\nscale-out: {MESSAGES} messages from {CLIENTS} clients, {len(clients.accepted)} "
        f"accepted, answers {dict(clients.answers)}, {clients.retried} sent again; sent in "
        f"{sent_at:.1f} s, all delivered at {drained_at:.1f} s; {'; '.join(faults)}; "
        f"connections per api {picked}"
    )
    assert len(clients.accepted) == MESSAGES
    # Sent again, an envelope got the first answer: one id per envelope.
    assert all(len(ids) == 1 for ids in clients.ids.values())
    # Only the requests in flight on the killed api failed: at most one per client.
    assert sum(failed.values()) <= CLIENTS, failed
    assert min(picked.values()) > MESSAGES // 10, picked  # both apis served
    assert stored == clients.accepted
    assert set(inbox) == clients.accepted, "none lost"
    assert max(inbox.values()) == 1, "none twice"
    assert set(leaves) == clients.accepted
    assert max(leaves.values()) == 1
    sequence(settings)  # what the workers' sequencer had not yet taken in
    verdict = verify(tmp_path, export(api), verifier_key(settings))
    assert verdict.code == 0, verdict.out


def _delivered(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM inbox_entries")).scalar_one())

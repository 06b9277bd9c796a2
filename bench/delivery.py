"""Delivery throughput and latency: accepted to delivered, into the inbox and across two
peer nodes, through the real relay, Celery workers and adapters.

    .venv/bin/python -m bench.delivery [--messages 20000] [--rate 750] [--seconds 20]
        [--workers 1] [--concurrency 2] [--batch 250] [--relay-interval 0.2]
        [--peer-messages 2000] [--peer-rate 375] [--api-workers 1]
        [--broker redis://127.0.0.1:6379/14] [--skip-peer] [--skip-inbox]
        [--pg-url postgresql://postgres@127.0.0.1:5432]

Phases:
1. node A: a fresh PostgreSQL database, migrated and seeded; one message accepted through
   the real ingress (``submit``) as a template;
2. inbox drain: ``--messages`` accepted messages put in the outbox at once (rows cloned from
   the template by SQL: the producer is not what is measured), then the worker(s) and beat
   start; delivered/s from the first to the last ``delivered_at``;
3. inbox at a steady rate: the same producer inserts ``--rate`` messages per second for
   ``--seconds`` while the workers run; latency = ``delivered_at - accepted_at`` per message;
4. the DB ceiling: ``claim_due`` + ``complete_inbox`` in batches in this process, no Celery;
5. two peer nodes: node B (its own database, API, worker, beat); ``--peer-messages`` real
   envelopes submitted on A for a participant hosted by B (through ``submit``, so each is a
   genuine signed message), then A's worker forwards them (``peer`` adapter, batched: one
   signed HTTP request per up to 100 envelopes) and B delivers them to the inbox; delivered/s
   from the first to the last delivery on B, and the CPU per message of each process kind
   (``/proc/<pid>/stat`` utime + stime of each process and its children, before and after);
   then ``--peer-rate`` messages per second for ``--seconds``: accepted on A through
   ``submit`` before the phase, their outbox rows held back and given back at the rate with
   ``accepted_at`` set to that moment (as the inbox phases' producer does: the ingress is not
   what is measured, and one process cannot run it at hundreds per second beside both nodes),
   with the latency from that acceptance on A to ``delivered_at`` on B (one machine, one clock);
6. cleanup: processes stopped, databases dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.common import admin, free_port, percentile, register_parties
from broker.accounts import service as accounts
from broker.accounts.models import AccountKind
from broker.client import KeyFile, new_payload, sign
from broker.core import migrate
from broker.core.context import Actor, CallContext, Caller, node_context
from broker.core.crypto import Signer
from broker.core.db import Database, utcnow
from broker.core.ids import uuid7
from broker.core.settings import Settings
from broker.delivery.service import claim_due, complete_inbox
from broker.messages import Accepted, submit
from broker.participants import service as participants

SENDER, RECIPIENT, REMOTE = "de.bka", "it.central-authority", "nl.fiu"
PARTICIPANTS = [
    (SENDER, "police", "Bundeskriminalamt"),
    (RECIPIENT, "central_authority", "Italy central authority"),
    (REMOTE, "fiu", "FIU the Netherlands"),
]
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Options:
    messages: int
    rate: float
    seconds: float
    workers: int
    concurrency: int
    batch: int
    relay_interval: float
    peer_messages: int
    peer_rate: float
    broker: str
    pg_url: str
    skip_peer: bool
    skip_inbox: bool = False
    api_workers: int = 1


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.delivery", description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=20_000, help="inbox drain size")
    p.add_argument("--rate", type=float, default=750.0, help="steady inbox load, messages/s")
    p.add_argument("--seconds", type=float, default=20.0, help="steady phase length")
    p.add_argument("--workers", type=int, default=1, help="Celery worker processes")
    p.add_argument("--concurrency", type=int, default=2, help="prefork children per worker")
    p.add_argument("--batch", type=int, default=250, help="PALERMO_DELIVERY_BATCH_SIZE")
    p.add_argument("--relay-interval", type=float, default=0.2)
    p.add_argument("--peer-messages", type=int, default=2_000)
    p.add_argument("--peer-rate", type=float, default=375.0, help="steady peer load, messages/s")
    p.add_argument("--api-workers", type=int, default=1, help="API processes of node B")
    p.add_argument("--broker", default="redis://127.0.0.1:6379/14")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--skip-peer", action="store_true")
    p.add_argument("--skip-inbox", action="store_true", help="only the two-node phases")
    a = p.parse_args(argv)
    return Options(
        messages=a.messages,
        rate=a.rate,
        seconds=a.seconds,
        workers=a.workers,
        concurrency=a.concurrency,
        batch=a.batch,
        relay_interval=a.relay_interval,
        peer_messages=a.peer_messages,
        peer_rate=a.peer_rate,
        broker=a.broker,
        pg_url=a.pg_url.rstrip("/"),
        skip_peer=a.skip_peer,
        skip_inbox=a.skip_inbox,
        api_workers=a.api_workers,
    )


# --- nodes -------------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    settings: Settings
    env: dict[str, str]
    dbname: str
    queue: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kinds: dict[int, str] = field(default_factory=dict)  # pid -> process kind
    key: KeyFile | None = None

    @property
    def db_url(self) -> str:
        return self.settings.resolved_database_url

    @property
    def node_key(self) -> str:
        return base64.b64encode(Signer(self.settings.node_signing_seed).public_key).decode()

    def start(self, *kinds: str) -> None:
        exe = [sys.executable, "-m", "broker.cli"]
        log = (self.settings.data_dir / f"{self.name}.log").open("ab")
        commands = {
            "api": [
                *exe,
                "serve",
                "--port",
                self.settings.public_url.rsplit(":", 1)[1],
                "--workers",
                self.env["BENCH_API_WORKERS"],
            ],
            "beat": [*exe, "beat", "--loglevel", "WARNING"],
        }
        for kind in kinds:
            if kind == "worker":
                for _ in range(int(self.env["BENCH_WORKERS"])):
                    cmd = [*exe, "worker", "--pool", "prefork", "--loglevel", "WARNING"]
                    cmd += ["--concurrency", self.env["BENCH_CONCURRENCY"]]
                    proc = subprocess.Popen(
                        cmd, env=self.env, stdout=log, stderr=log, start_new_session=True
                    )
                    self.procs.append(proc)
                    self.kinds[proc.pid] = "worker"
            else:
                proc = subprocess.Popen(
                    commands[kind], env=self.env, stdout=log, stderr=log, start_new_session=True
                )
                self.procs.append(proc)
                self.kinds[proc.pid] = kind

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs.clear()

    def pids(self) -> set[int]:
        return {pid for proc in self.procs for pid in process_tree(proc.pid)}

    def cpu_by_kind(self) -> dict[str, float]:
        """CPU seconds so far of each process kind (a process and its children)."""
        procs = read_processes()
        out: dict[str, float] = {}
        for proc in self.procs:
            ticks = sum(procs[p][1] for p in process_tree(proc.pid) if p in procs)
            kind = f"{self.name}.{self.kinds[proc.pid]}"
            out[kind] = out.get(kind, 0.0) + ticks / CLK_TCK
        return out


def make_node(name: str, opts: Options, root: Path) -> Node:
    dbname = f"palermo_bench_{name}_{uuid.uuid4().hex[:8]}"
    admin(opts.pg_url, f'CREATE DATABASE "{dbname}"')
    data = root / name
    data.mkdir()
    port = free_port()
    secret = {
        "master_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "node_signing_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "token_secret": base64.b64encode(secrets.token_bytes(48)).decode(),
    }
    queue = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALERMO_")}
    env.update(
        PALERMO_ENV="development",
        PALERMO_DATA_DIR=str(data),
        PALERMO_DATABASE_URL=f"{opts.pg_url}/{dbname}",
        PALERMO_CELERY_BROKER_URL=opts.broker,
        PALERMO_NODE_ID=f"{name}.bench",
        PALERMO_PUBLIC_URL=f"http://127.0.0.1:{port}",
        PALERMO_MASTER_KEY=secret["master_key"],
        PALERMO_NODE_SIGNING_KEY=secret["node_signing_key"],
        PALERMO_TOKEN_SECRET=secret["token_secret"],
        PALERMO_LOG_LEVEL="WARNING",
        PALERMO_RELAY_INTERVAL_SECONDS=str(opts.relay_interval),
        PALERMO_DELIVERY_BATCH_SIZE=str(opts.batch),
        PALERMO_CHECKPOINT_INTERVAL_SECONDS="5",
        # The two nodes are on this machine: a peer on loopback needs the setting.
        PALERMO_WEBHOOK_ALLOW_PRIVATE="true",
        BENCH_WORKERS=str(opts.workers),
        BENCH_CONCURRENCY=str(opts.concurrency),
        BENCH_API_WORKERS=str(opts.api_workers),
    )
    settings = Settings(
        env="development",
        data_dir=data,
        database_url=f"{opts.pg_url}/{dbname}",
        node_id=f"{name}.bench",
        public_url=f"http://127.0.0.1:{port}",
        master_key=secret["master_key"],
        node_signing_key=secret["node_signing_key"],
        token_secret=secret["token_secret"],
        delivery_batch_size=opts.batch,
        webhook_allow_private=True,
    )
    migrate.upgrade(settings.resolved_database_url)
    import redis

    redis.Redis.from_url(opts.broker).flushdb()  # no task left from an earlier run
    # The beat schedule goes to the default queue; workers and beat share it per node, so
    # each node gets its own broker database.
    return Node(name, settings, env, dbname, queue)


async def seed(node: Node, key_seed: bytes | None) -> KeyFile:
    """The participants, their keys (the sender's self-held signing key: the same seed on
    both nodes, as a registry mirrors a remote participant's public keys) and an account."""
    db = Database(node.db_url, pool_size=1)
    ctx = node_context(node.settings)
    actor = Actor(None, "bench")
    try:
        async with db.session() as s:
            await register_parties(s, node=ctx, parties=PARTICIPANTS, actor=actor)
            seed_bytes = key_seed or secrets.token_bytes(32)
            signer = Signer(seed_bytes)
            await participants.add_key(
                s,
                node=ctx,
                participant_id=SENDER,
                purpose="signing",
                public_key=signer.public_key,
                generate=False,
                actor=actor,
            )
            await accounts.create_account(
                s,
                node=ctx,
                participant_id=SENDER,
                kind=AccountKind.SYSTEM,
                login="bench",
                display_name="bench",
                secret=None,
                roles=frozenset({"system"}),
                actor=actor,
            )
            await s.commit()
    finally:
        await db.dispose()
    return KeyFile(SENDER, signer.key_id, seed_bytes)


def payload_for(key: KeyFile, recipient: str) -> dict[str, Any]:
    return new_payload(
        sender=SENDER,
        recipient=recipient,
        type="intel.message",
        body={"text": "x" * 1024},
        legal_basis="UNTOC art. 27",
        purpose="bench",
        data_categories=["statistics"],
        handling={"code": "H0"},
        evaluation="B2",
        statement_kind="assessment",
    )


async def submit_many(node: Node, key: KeyFile, recipient: str, count: int) -> list[str]:
    """Messages accepted through the real ingress service, in this process."""
    db = Database(node.db_url, pool_size=4)
    ctx = node_context(node.settings)
    caller = Caller(
        account_id="bench", participant_id=SENDER, roles=frozenset({"system"}), kind="system"
    )
    ids: list[str] = []
    import orjson

    try:

        async def one() -> None:
            async with db.session() as s:
                body = orjson.dumps(sign(key, payload_for(key, recipient)))
                outcome = await submit(
                    s, ctx=CallContext(ctx, caller, None, None, utcnow()), body=body
                )
                await s.commit()
                assert isinstance(outcome, Accepted), outcome
                ids.append(outcome.message_id)

        for start in range(0, count, 4):
            await asyncio.gather(*(one() for _ in range(min(4, count - start))))
    finally:
        await db.dispose()
    return ids


# --- the synthetic producer ----------------------------------------------------------------

CLONE = """
WITH new AS (
    SELECT unnest(%(ids)s::text[]) AS id
), m AS (
    INSERT INTO messages (id, type, sender_id, recipient_id, case_id, in_reply_to, created_at,
        accepted_at, status, submitted_by, legal_basis, purpose, handling_code, payload_size,
        envelope_sha256, sender_kid, policy_hash, policy_rules, ciphertext, key_for_node,
        key_for_sender, key_for_recipient, sender_enc_kid, recipient_enc_kid)
    SELECT new.id, t.type, t.sender_id, t.recipient_id, NULL, NULL, now(), clock_timestamp(),
        'accepted', t.submitted_by, t.legal_basis, t.purpose, t.handling_code, t.payload_size,
        t.envelope_sha256, t.sender_kid, t.policy_hash, t.policy_rules, t.ciphertext,
        t.key_for_node, t.key_for_sender, t.key_for_recipient, t.sender_enc_kid,
        t.recipient_enc_kid
    FROM new, messages t WHERE t.id = %(template)s
    RETURNING id, recipient_id, accepted_at
)
INSERT INTO outbox (message_id, recipient_id, created_at)
SELECT id, recipient_id, accepted_at FROM m
"""


def clone(db_url: str, template: str, count: int) -> None:
    """``count`` accepted messages (message and outbox rows, as acceptance commits them),
    cloned from the template in one transaction."""
    ids = [str(uuid7()) for _ in range(count)]
    with psycopg.connect(db_url) as conn:
        conn.execute(CLONE.encode(), {"ids": ids, "template": template})


RELEASE = """
WITH m AS (
    UPDATE messages SET accepted_at = clock_timestamp() WHERE id = ANY(%(ids)s::text[])
    RETURNING id, recipient_id, accepted_at
)
INSERT INTO outbox (message_id, recipient_id, created_at)
SELECT id, recipient_id, accepted_at FROM m
"""


def hold_back(db_url: str, ids: list[str]) -> None:
    """Take these accepted messages' outbox rows away until ``release_paced`` gives them back."""
    with psycopg.connect(db_url) as conn:
        conn.execute(b"DELETE FROM outbox WHERE message_id = ANY(%s::text[])", (ids,))


def release_paced(db_url: str, ids: list[str], rate: float) -> float:
    """Give messages accepted ahead of time (genuine envelopes, through ``submit``) their
    outbox rows back at ``rate`` per second, each with ``accepted_at`` set to the moment it is
    released, as acceptance commits them (a transaction every 20 ms). Returns the epoch second
    the release began."""
    tick, made, start = 0.02, 0, time.monotonic()
    began = time.time()
    with psycopg.connect(db_url, autocommit=True) as conn:
        while made < len(ids):
            due = min(len(ids), int(rate * (time.monotonic() - start))) - made
            if due > 0:
                conn.execute(RELEASE.encode(), {"ids": ids[made : made + due]})
                made += due
            time.sleep(tick)
    return began


def produce(db_url: str, template: str, rate: float, seconds: float) -> int:
    """Insert at ``rate`` per second for ``seconds`` (a transaction every 20 ms)."""
    tick, made, start = 0.02, 0, time.monotonic()
    with psycopg.connect(db_url, autocommit=True) as conn:
        while (now := time.monotonic() - start) < seconds:
            due = int(rate * now) - made
            if due > 0:
                ids = [str(uuid7()) for _ in range(due)]
                conn.execute(CLONE.encode(), {"ids": ids, "template": template})
                made += due
            time.sleep(tick)
    return made


# --- measuring ---------------------------------------------------------------------------


def read_processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, CPU ticks, command name)."""
    out: dict[int, tuple[int, int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        out[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), comm)
    return out


def process_tree(root: int) -> set[int]:
    procs = read_processes()
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _, _) in procs.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return tree


def delivered_times(db_url: str, since: dt.datetime | None = None) -> list[tuple[float, float]]:
    """(accepted_at, delivered_at) as epoch seconds of delivered messages."""
    sql = (
        "SELECT extract(epoch FROM accepted_at), extract(epoch FROM delivered_at) "
        "FROM messages WHERE delivered_at IS NOT NULL"
    )
    params: tuple[Any, ...] = ()
    if since is not None:
        sql += " AND accepted_at >= %s"
        params = (since,)
    with psycopg.connect(db_url) as conn:
        return [(float(a), float(d)) for a, d in conn.execute(sql.encode(), params).fetchall()]


def count(db_url: str, sql: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql.encode()).fetchone()
    return int(row[0]) if row else 0


def wait_for(db_url: str, sql: str, target: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count(db_url, sql) >= target:
            return True
        time.sleep(0.2)
    return False


def report(title: str, pairs: list[tuple[float, float]], cpu: str = "") -> None:
    if not pairs:
        print(f"{title}: nothing delivered")
        return
    latencies = [(d - a) * 1000 for a, d in pairs]
    span = max(d for _, d in pairs) - min(d for _, d in pairs)
    rate = len(pairs) / span if span > 0 else float("inf")
    print(
        f"{title}: {len(pairs)} delivered, {rate:,.0f} messages/s (first to last delivery); "
        f"latency p50 {percentile(latencies, 50):,.0f} ms, "
        f"p99 {percentile(latencies, 99):,.0f} ms, max {max(latencies):,.0f} ms"
    )
    if cpu:
        print(f"  {cpu}")


# --- phases ------------------------------------------------------------------------------


def inbox_phases(opts: Options, a: Node, template: str) -> None:
    total = "SELECT count(*) FROM inbox_entries"
    since = dt.datetime.now(dt.UTC)
    before = count(a.db_url, total)
    clone(a.db_url, template, opts.messages)
    print(f"\n== inbox drain: {opts.messages} accepted messages waiting, then the workers start")
    a.start("worker", "beat")
    t0 = time.monotonic()
    ok = wait_for(a.db_url, total, before + opts.messages, timeout=600)
    wall = time.monotonic() - t0
    cpu1 = a.cpu_by_kind()
    pairs = delivered_times(a.db_url, since)
    print(f"drained: {ok}, {wall:.1f} s from process start to the last row")
    report(
        "inbox drain",
        pairs,
        "CPU since process start (start-up included): "
        + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(cpu1.items())),
    )

    print(f"\n== inbox at a steady {opts.rate:g} messages/s for {opts.seconds:g} s")
    since = dt.datetime.now(dt.UTC)
    before = count(a.db_url, total)
    made = produce(a.db_url, template, opts.rate, opts.seconds)
    wait_for(a.db_url, total, before + made, timeout=120)
    print(f"produced {made} ({made / opts.seconds:,.0f}/s)")
    report("inbox steady", delivered_times(a.db_url, since))
    a.stop()


async def db_ceiling(a: Node, template: str, messages: int, batch: int) -> None:
    clone(a.db_url, template, messages)
    db = Database(a.db_url, pool_size=2)
    done, claim_s, complete_s = 0, 0.0, 0.0
    t0 = time.perf_counter()
    try:
        while True:
            c0 = time.perf_counter()
            async with db.session() as s:
                ids = await claim_due(s, limit=batch, lease_seconds=60)
                await s.commit()
            c1 = time.perf_counter()
            if not ids:
                break
            async with db.session() as s:
                done += len(await complete_inbox(s, node_id="bench", outbox_ids=ids))
                await s.commit()
            claim_s += c1 - c0
            complete_s += time.perf_counter() - c1
    finally:
        await db.dispose()
    wall = time.perf_counter() - t0
    print(
        f"\n== DB ceiling (one process, no Celery, batches of {batch}): {done} in {wall:.2f} s "
        f"= {done / wall:,.0f}/s; per message: claim {1e6 * claim_s / done:.0f} µs, "
        f"inbox transaction {1e6 * complete_s / done:.0f} µs"
    )


def peer_phase(opts: Options, a: Node, b: Node, key: KeyFile) -> None:
    print(f"\n== two peer nodes: {opts.peer_messages} messages from A to {REMOTE} hosted by B")
    for here, there, remote in ((a, b, REMOTE), (b, a, SENDER)):
        config = {"url": there.settings.public_url, "node_key": there.node_key}

        async def configure(
            node: Node = here, pid: str = remote, cfg: dict[str, str] = config
        ) -> None:
            from adapters.destinations import rules_from
            from broker.delivery.service import configure_adapter

            db = Database(node.db_url, pool_size=1)
            try:
                async with db.session() as s:
                    await configure_adapter(
                        s,
                        node_id="bench",
                        participant_id=pid,
                        adapter="peer",
                        config=cfg,
                        rules=rules_from(node.settings),
                        actor=None,
                    )
                    await s.commit()
            finally:
                await db.dispose()

        asyncio.run(configure())
    started = time.perf_counter()
    ids = asyncio.run(submit_many(a, key, REMOTE, opts.peer_messages))
    print(f"accepted on A through submit: {len(ids)} in {time.perf_counter() - started:.1f} s")
    # The steady phase's messages, accepted now and held back: one process cannot run the
    # full ingress at hundreds per second beside both nodes on this machine.
    steady = asyncio.run(submit_many(a, key, REMOTE, int(opts.peer_rate * opts.seconds)))
    hold_back(a.db_url, steady)
    b.start("api", "worker", "beat")
    wait_api(b)
    a.start("worker", "beat")
    time.sleep(8)  # the workers' start-up is not what is measured
    before = {**a.cpu_by_kind(), **b.cpu_by_kind()}
    t0 = time.monotonic()
    ok = wait_for(b.db_url, "SELECT count(*) FROM inbox_entries", len(ids), timeout=900)
    wall = time.monotonic() - t0
    after = {**a.cpu_by_kind(), **b.cpu_by_kind()}
    split = _cpu_split(before, after, len(ids))
    with psycopg.connect(a.db_url) as conn:
        accepted_on_a: dict[str, Any] = dict(
            conn.execute(b"SELECT id, extract(epoch FROM accepted_at) FROM messages").fetchall()
        )
    with psycopg.connect(b.db_url) as conn:
        rows = conn.execute(
            b"SELECT id, extract(epoch FROM delivered_at) FROM messages "
            b"WHERE delivered_at IS NOT NULL"
        ).fetchall()
    pairs = [(float(accepted_on_a[m]), float(d)) for m, d in rows if m in accepted_on_a]
    print(f"all in B's inbox: {ok}, {wall:.1f} s after A's workers were up")
    # The drain rate is what matters here; latency includes the time waiting in A's outbox.
    report("A -> B drain", pairs, f"CPU in {wall:.1f} s wall: {split}")
    rate = opts.peer_rate
    print(f"\n== two peer nodes at a steady {rate:g} messages/s for {opts.seconds:g} s")
    before = {**a.cpu_by_kind(), **b.cpu_by_kind()}
    since = release_paced(a.db_url, steady, rate)
    wait_for(b.db_url, "SELECT count(*) FROM inbox_entries", len(ids) + len(steady), 120)
    after = {**a.cpu_by_kind(), **b.cpu_by_kind()}
    with psycopg.connect(a.db_url) as conn:
        accepted_on_a = dict(
            conn.execute(b"SELECT id, extract(epoch FROM accepted_at) FROM messages").fetchall()
        )
    with psycopg.connect(b.db_url) as conn:
        rows = conn.execute(
            b"SELECT id, extract(epoch FROM delivered_at) FROM messages "
            b"WHERE delivered_at IS NOT NULL"
        ).fetchall()
    report(
        "A -> B steady",
        [
            (float(accepted_on_a[m]), float(d))
            for m, d in rows
            if m in accepted_on_a and float(accepted_on_a[m]) >= since
        ],
        "CPU: " + _cpu_split(before, after, len(steady)),
    )


def _cpu_split(before: dict[str, float], after: dict[str, float], messages: int) -> str:
    """CPU seconds of each process kind between two readings, and per message."""
    return ", ".join(
        f"{kind} {after[kind] - before.get(kind, 0.0):.1f} s "
        f"({1000 * (after[kind] - before.get(kind, 0.0)) / max(1, messages):.2f} ms/message)"
        for kind in sorted(after)
    )


def wait_api(node: Node) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(node.settings.public_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"node {node.name}'s API did not start")


@contextlib.contextmanager
def nodes(opts: Options) -> Iterator[tuple[Path, list[Node]]]:
    made: list[Node] = []
    with tempfile.TemporaryDirectory(prefix="palermo-bench-delivery-") as root:
        try:
            yield Path(root), made
        finally:
            for node in made:
                node.stop()
                admin(opts.pg_url, f'DROP DATABASE IF EXISTS "{node.dbname}" WITH (FORCE)')


def run(opts: Options) -> int:
    print(f"bench.delivery {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
    print(f"options: {opts}")
    with nodes(opts) as (root, made):
        a = make_node("a", opts, root)
        made.append(a)
        key = asyncio.run(seed(a, None))
        [template] = asyncio.run(submit_many(a, key, RECIPIENT, 1))
        with psycopg.connect(a.db_url, autocommit=True) as conn:
            conn.execute(b"DELETE FROM outbox")
        if not opts.skip_inbox:
            asyncio.run(db_ceiling(a, template, min(opts.messages, 10_000), opts.batch))
            inbox_phases(opts, a, template)
        if opts.skip_peer:
            return 0
        b_opts = Options(**{**opts.__dict__, "broker": _other_broker(opts.broker)})
        b = make_node("b", b_opts, root)
        made.append(b)
        asyncio.run(seed(b, key.seed))
        peer_phase(opts, a, b, key)
    return 0


def _other_broker(url: str) -> str:
    """Node B's own Redis database (beat sends to the default queue)."""
    base, _, number = url.rpartition("/")
    return f"{base}/{(int(number) + 1) % 16}" if number.isdigit() else url


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

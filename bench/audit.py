"""Audit log: sequencing rate, checkpoint lag, inclusion-proof latency, export and verifier.

    .venv/bin/python -m bench.audit [--leaves 1000000] [--batch 5000] [--proofs 2000]
        [--lag-rate 1000] [--lag-seconds 20] [--interval 1.0] [--writers 4]
        [--proof-tree 10000000] [--pg-url postgresql://postgres@127.0.0.1:5432]
        [--skip-lag] [--skip-http]

Phases, all in one run, on fresh databases ``palermo_bench_<random>`` (dropped at the end):

1. ``--leaves`` audit events are written with COPY into ``audit_events`` (the trigger queues
   them as it does for the application): message lifecycles of four leaves each (accepted,
   delivered, content consulted, receipted), leaves built by ``audit_row`` as the services
   build them (about 480 bytes of canonical JSON);
2. the sequencer (``sequence_all``, the code the Celery task runs) sequences them all in
   batches of ``--batch``, one signed checkpoint per batch: **leaves sequenced per second**;
3. inclusion proofs at that size for ``--proofs`` random indices: the proof alone (one query
   of O(log n) rows, ``with_stored_nodes``), the whole service call (checkpoint, entry,
   nodes), and ``GET /v1/audit/proofs/inclusion`` on a real ``palermo serve`` subprocess:
   **latency p50/p99**; with ``--proof-tree N``, the proof alone again in a second database
   holding only the ``audit_nodes`` rows of N random leaves, written directly;
4. ``GET /v1/audit/export`` streamed from that server to a file while the server's resident
   memory is sampled every 20 ms (with ``--skip-http``: the export generator in process),
   then ``verify_bundle`` (what ``palermo-verify`` runs) over the file: **export and verifier
   leaves per second, peak memory**;
5. checkpoint lag: ``--writers`` processes commit audit events one per transaction at
   ``--lag-rate`` per second in total for ``--lag-seconds``, while the sequencer runs every
   ``--interval`` seconds as beat schedules it; the lag of an event is the time from its
   commit to the commit of the first checkpoint that covers it: **p50/p99/max**. (The API
   itself accepts 100-200 messages/s on the 2-vCPU development machine, bench/ingress.py, so
   the 1,000/s load is written at the database, as the services write their leaves.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import multiprocessing
import os
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from audit import Ed25519Verifier, Frontier, inclusion_proof, leaf_hash, verify_bundle
from bench.common import bench_database, percentile
from bench.ingress import Server
from broker.accounts import service as accounts
from broker.accounts.models import AccountKind
from broker.core import migrate
from broker.core.context import Actor, node_context
from broker.core.db import Database
from broker.core.settings import Settings, write_secret_files
from broker.core.tokens import issue_token
from broker.oversight import service
from broker.oversight.nodes import with_stored_nodes
from broker.oversight.sequencer import log_signer
from broker.oversight.service import AuditKind, audit_row
from broker.oversight.tasks import sequence_all
from broker.participants import service as participants

NODE = "bench.palermo"
SENDER, RECIPIENT, OVERSIGHT = "de.bka", "it.central-authority", "it.garante"
COPY_SQL = (
    "COPY audit_events (event_id, kind, message_id, participant_id, created_at, leaf) "
    "FROM STDIN (FORMAT BINARY)"
)
COPY_TYPES = ["text", "text", "text", "text", "timestamptz", "bytea"]


@dataclass(frozen=True)
class Options:
    leaves: int
    batch: int
    proofs: int
    lag_rate: int
    lag_seconds: float
    interval: float
    writers: int
    pg_url: str
    skip_lag: bool
    skip_http: bool
    proof_tree: int


def parse_args(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__.split("\n")[0])
    p.add_argument("--leaves", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=5000, help="sequencer batch (leaves/checkpoint)")
    p.add_argument("--proofs", type=int, default=2000)
    p.add_argument("--lag-rate", type=int, default=1000, help="events/s committed in phase 5")
    p.add_argument("--lag-seconds", type=float, default=20.0)
    p.add_argument("--interval", type=float, default=1.0, help="sequencer schedule, seconds")
    p.add_argument("--writers", type=int, default=4, help="writer processes in phase 5")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--skip-lag", action="store_true")
    p.add_argument("--skip-http", action="store_true")
    p.add_argument(
        "--proof-tree",
        type=int,
        default=0,
        help="also time proofs in a tree of this many leaves whose subtree hashes are written "
        "directly (no events; e.g. 10000000)",
    )
    a = p.parse_args(argv)
    return Options(
        a.leaves,
        a.batch,
        a.proofs,
        a.lag_rate,
        a.lag_seconds,
        a.interval,
        a.writers,
        a.pg_url,
        a.skip_lag,
        a.skip_http,
        a.proof_tree,
    )


def ms(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50) * 1e3:.3f} ms, p99 {percentile(values, 99) * 1e3:.3f} ms, "
        f"max {max(values) * 1e3:.3f} ms"
    )


# --- phase 1: leaves -----------------------------------------------------------------------


def lifecycle_rows(message_number: int) -> list[tuple[object, ...]]:
    """The four leaves of one message, as the services write them."""
    message_id = str(uuid.uuid4())
    account = "0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9a10"
    actor = Actor(SENDER, account)
    reader = Actor(RECIPIENT, account)
    digest = secrets.token_hex(32)
    rows = [
        audit_row(
            kind=AuditKind.MESSAGE_ACCEPTED,
            node=NODE,
            actor=actor,
            participant_id=SENDER,
            message_id=message_id,
            message_type="intel.message",
            sender=SENDER,
            recipient=RECIPIENT,
            legal_basis="UNTOC art. 27",
            purpose=f"investigation RG {message_number}/2026",
            policy_pack="sha256:" + "ab" * 32,
            policy_rules=["baseline.permit", "police.intel-graded"],
            payload_size=4096,
            handling="H0",
            envelope_sha256=digest,
        ),
        audit_row(
            kind=AuditKind.MESSAGE_DELIVERED,
            node=NODE,
            actor=None,
            participant_id=RECIPIENT,
            message_id=message_id,
            recipient=RECIPIENT,
            adapter="inbox",
        ),
        audit_row(
            kind=AuditKind.CONTENT_CONSULTED,
            node=NODE,
            actor=reader,
            participant_id=RECIPIENT,
            message_id=message_id,
            justification="assessing the vessel alert for the investigation",
            role="recipient",
            envelope_sha256=digest,
        ),
        audit_row(
            kind=AuditKind.MESSAGE_RECEIPTED,
            node=NODE,
            actor=reader,
            participant_id=RECIPIENT,
            message_id=message_id,
            receipt_sha256=secrets.token_hex(32),
            envelope_sha256=digest,
        ),
    ]
    return [
        (
            r["event_id"],
            r["kind"],
            r["message_id"],
            r["participant_id"],
            r["created_at"],
            r["leaf"],
        )
        for r in rows
    ]


def write_leaves(db_url: str, count: int) -> tuple[float, int]:
    """COPY ``count`` leaves; return (seconds, total leaf bytes)."""
    started = time.perf_counter()
    size = 0
    with psycopg.connect(db_url) as conn, conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
        copy.set_types(COPY_TYPES)
        written = 0
        message = 0
        while written < count:
            for row in lifecycle_rows(message)[: count - written]:
                copy.write_row(row)
                size += len(row[5])  # type: ignore[arg-type]
                written += 1
            message += 1
    return time.perf_counter() - started, size


# --- phase 2: sequencing -------------------------------------------------------------------


def sequence_everything(settings: Settings, batch: int) -> tuple[int, float]:
    async def go() -> tuple[int, float]:
        db = Database(settings.resolved_database_url, pool_size=1)
        try:
            started = time.perf_counter()
            added, _ = await sequence_all(
                db, origin=NODE, seed=settings.node_signing_seed, batch_size=batch
            )
            return added, time.perf_counter() - started
        finally:
            await db.dispose()

    return asyncio.run(go())


# --- phase 3: proofs -----------------------------------------------------------------------


def proof_latency(settings: Settings, size: int, count: int) -> tuple[list[float], list[float]]:
    """(proof alone, whole service call) latencies, one index at a time."""
    indices = [random.randrange(size) for _ in range(count)]

    async def go() -> tuple[list[float], list[float]]:
        db = Database(settings.resolved_database_url, pool_size=1)
        alone: list[float] = []
        whole: list[float] = []
        try:
            async with db.session() as session:
                for i in indices:
                    t = time.perf_counter()
                    await with_stored_nodes(
                        session,
                        lambda reader, i=i: inclusion_proof(reader, i, size),  # type: ignore[misc]
                    )
                    alone.append(time.perf_counter() - t)
                for i in indices:
                    t = time.perf_counter()
                    await service.inclusion_proofs(session, viewer=None, index=i, limit=1)
                    whole.append(time.perf_counter() - t)
                await session.rollback()
        finally:
            await db.dispose()
        return alone, whole

    return asyncio.run(go())


async def seed_oversight(settings: Settings) -> str:
    db = Database(settings.resolved_database_url, pool_size=1)
    actor = Actor(None, "bench-seed")
    try:
        async with db.session() as s:
            await participants.register_participant(
                s,
                node=node_context(settings),
                participant_id=OVERSIGHT,
                kind="oversight",
                display_name="supervisory authority",
                actor=actor,
            )
            account, _ = await accounts.create_account(
                s,
                node=node_context(settings),
                participant_id=OVERSIGHT,
                kind=AccountKind.PERSON,
                login="bench-oversight",
                display_name="bench oversight",
                secret=secrets.token_urlsafe(24),
                roles=frozenset({"oversight"}),
                actor=actor,
            )
            await s.commit()
            return account.id
    finally:
        await db.dispose()


@dataclass
class HttpPhase:
    latencies: list[float]
    export_seconds: float
    rss_before_kb: int
    rss_peak_kb: int


def http_phase(
    settings: Settings, account_id: str, size: int, count: int, bundle: Path
) -> HttpPhase:
    """Inclusion proofs over HTTP, then the export streamed from the API into ``bundle``
    while the server's resident memory is sampled."""
    server = Server(
        workers=1, database_url=settings.resolved_database_url, data_dir=settings.data_dir
    )
    try:
        server.wait_ready()
        token, _ = issue_token(
            secret=settings.token_secret_bytes,
            issuer=server.url,
            audience=settings.token_audience,
            subject=account_id,
            participant_id=OVERSIGHT,
            roles=frozenset({"oversight"}),
            kind="person",
            ttl_seconds=3600,
        )
        latencies = []
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client:
            for _ in range(count):
                index = random.randrange(size)
                t = time.perf_counter()
                r = client.get("/v1/audit/proofs/inclusion", params={"index": index})
                latencies.append(time.perf_counter() - t)
                r.raise_for_status()
            before = rss_of(server.proc.pid)
            peak = [before]
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(0.02):
                    peak[0] = max(peak[0], rss_of(server.proc.pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.perf_counter()
            with client.stream("GET", "/v1/audit/export") as r, bundle.open("wb") as out:
                r.raise_for_status()
                for chunk in r.iter_raw():
                    out.write(chunk)
            seconds = time.perf_counter() - started
            stop.set()
            sampler.join()
        return HttpPhase(latencies, seconds, before, peak[0])
    finally:
        server.stop()


def proof_tree_latency(pg_url: str, leaves: int, count: int) -> tuple[float, list[float]]:
    """Proof latency in a tree of ``leaves`` random leaf hashes, its ``audit_nodes`` rows
    written by COPY in a database of its own; returns (build seconds, latencies)."""
    with bench_database(pg_url) as (_, db_url):
        migrate.upgrade(db_url)
        started = time.perf_counter()
        frontier = Frontier()
        with psycopg.connect(db_url) as conn, conn.cursor() as cur:
            with cur.copy("COPY audit_nodes (level, idx, hash) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int2", "int8", "bytea"])
                for _ in range(leaves):
                    for row in frontier.append(leaf_hash(os.urandom(16))):
                        copy.write_row(row)
            conn.commit()
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE audit_nodes")
        built = time.perf_counter() - started
        indices = [random.randrange(leaves) for _ in range(count)]

        async def go() -> list[float]:
            db = Database(db_url, pool_size=1)
            latencies = []
            try:
                async with db.session() as session:
                    for i in indices:
                        t = time.perf_counter()
                        await with_stored_nodes(
                            session,
                            lambda reader, i=i: inclusion_proof(reader, i, leaves),  # type: ignore[misc]
                        )
                        latencies.append(time.perf_counter() - t)
            finally:
                await db.dispose()
            return latencies

        return built, asyncio.run(go())


# --- phase 4: export and verifier -----------------------------------------------------------


def rss_of(pid: int) -> int:
    """VmRSS of a process, in kB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb() -> int:
    return rss_of(os.getpid())


@contextlib.contextmanager
def peak_rss() -> Iterator[list[int]]:
    """Samples VmRSS every 20 ms; yields [baseline, peak] (kB), filled in at exit."""
    result = [rss_kb(), rss_kb()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            result[1] = max(result[1], rss_kb())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result[1] = max(result[1], rss_kb())


def export_to(settings: Settings, path: Path) -> float:
    async def go() -> float:
        db = Database(settings.resolved_database_url, pool_size=1)
        try:
            started = time.perf_counter()
            async with db.session() as session:
                plan = await service.plan_export(session, size=None, consistency_from=[])
            with path.open("wb") as out:
                async for chunk in service.export_bundle(db.session, plan):
                    out.write(chunk)
            return time.perf_counter() - started
        finally:
            await db.dispose()

    return asyncio.run(go())


# --- phase 5: checkpoint lag ---------------------------------------------------------------


def writer(
    db_url: str,
    rate: float,
    seconds: float,
    ready: multiprocessing.Queue[int],
    go: Any,
    out: multiprocessing.Queue[int],
) -> None:
    """Commit one audit event per transaction at ``rate`` per second for ``seconds``, once
    ``go`` is set (after every writer reported ``ready``)."""
    sql = (
        "INSERT INTO audit_events (event_id, kind, message_id, participant_id, created_at, "
        "leaf) VALUES (%s, %s, %s, %s, %s, %s)"
    )
    rows = [row for m in range(int(rate * seconds) // 4 + 1) for row in lifecycle_rows(m)]
    written = 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        ready.put(os.getpid())
        go.wait()
        start = time.monotonic()
        for row in rows:
            due = start + written / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if time.monotonic() - start > seconds:
                break
            # created_at is the commit time, to the millisecond (autocommit: the INSERT is the
            # transaction).
            conn.execute(sql, (*row[:4], dt.datetime.now(dt.UTC), row[5]))
            written += 1
    out.put(written)


def measure_lag(settings: Settings, opts: Options) -> tuple[list[float], int, float]:
    db_url = settings.resolved_database_url
    # Sequence what is already queued (the API records policy:loaded when it starts), so
    # that only the writers' events are measured.
    sequence_everything(settings, opts.batch)
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT coalesce(max(idx), -1) + 1 FROM audit_log").fetchone()
        base = int(row[0]) if row else 0
    context = multiprocessing.get_context("spawn")
    ready: multiprocessing.Queue[int] = context.Queue()
    results: multiprocessing.Queue[int] = context.Queue()
    go = context.Event()
    procs = [
        context.Process(
            target=writer,
            args=(db_url, opts.lag_rate / opts.writers, opts.lag_seconds, ready, go, results),
        )
        for _ in range(opts.writers)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get()
    checkpoints: list[tuple[int, float]] = []  # (size, commit time as POSIX seconds)
    written: list[int] = []

    async def beat() -> None:
        """Run the sequencer every interval, as beat does, until the writers are done and
        everything they wrote is sequenced."""
        db = Database(db_url, pool_size=1)
        try:
            tick = time.monotonic()
            go.set()
            while True:
                added, last = await sequence_all(
                    db, origin=NODE, seed=settings.node_signing_seed, batch_size=opts.batch
                )
                if last is not None and (not checkpoints or last.size > checkpoints[-1][0]):
                    checkpoints.append((last.size, time.time()))
                while not results.empty():
                    written.append(results.get())
                if len(written) == len(procs) and added == 0:
                    return
                tick += opts.interval
                await asyncio.sleep(max(0.0, tick - time.monotonic()))
        finally:
            await db.dispose()

    asyncio.run(beat())
    for proc in procs:
        proc.join()
    with psycopg.connect(db_url) as conn:
        events = conn.execute(
            "SELECT l.idx, extract(epoch FROM e.created_at) FROM audit_log l "
            "JOIN audit_events e ON e.id = l.event_ref WHERE l.idx >= %s ORDER BY l.idx",
            (base,),
        ).fetchall()
    lags = []
    position = 0
    for idx, created in events:
        while checkpoints[position][0] <= idx:
            position += 1
        lags.append(checkpoints[position][1] - float(created))
    return lags, sum(written), sum(written) / opts.lag_seconds


# --- the run -------------------------------------------------------------------------------


def run(opts: Options) -> int:
    print(f"bench.audit {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
    print(f"options: {opts}")
    with contextlib.ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="palermo-bench-")))
        dbname, db_url = stack.enter_context(bench_database(opts.pg_url))
        migrate.upgrade(db_url)
        write_secret_files(data_dir)
        settings = Settings(
            env="development",
            data_dir=data_dir,
            database_url=db_url,
            node_id=NODE,
            master_key=None,
            node_signing_key=None,
            token_secret=None,
        )
        account_id = asyncio.run(seed_oversight(settings))

        seconds, size = write_leaves(db_url, opts.leaves)
        print(
            f"\n1. wrote {opts.leaves:,} leaves by COPY in {seconds:.1f} s "
            f"(average leaf {size / opts.leaves:.0f} bytes)"
        )
        added, seconds = sequence_everything(settings, opts.batch)
        print(
            f"2. sequenced {added:,} leaves in {seconds:.1f} s: {added / seconds:,.0f} leaves/s "
            f"({-(-added // opts.batch)} checkpoints of up to {opts.batch})"
        )
        with psycopg.connect(db_url, autocommit=True) as conn:
            tree = conn.execute("SELECT max(size) FROM audit_checkpoints").fetchone()
            nodes = conn.execute("SELECT count(*) FROM audit_nodes").fetchone()
            conn.execute("VACUUM ANALYZE")
        n = int(tree[0]) if tree else 0
        print(f"   tree size {n:,}, audit_nodes rows {int(nodes[0]) if nodes else 0:,}")

        alone, whole = proof_latency(settings, n, opts.proofs)
        print(f"3. inclusion proof at {n:,} leaves, {opts.proofs} random indices:")
        print(f"   proof alone (one query of O(log n) rows): {ms(alone)}")
        print(f"   service call (checkpoint, entry, nodes):  {ms(whole)}")
        bundle = data_dir / "bundle.jsonl"
        http: HttpPhase | None = None
        if not opts.skip_http:
            http = http_phase(settings, account_id, n, opts.proofs, bundle)
            print(f"   GET /v1/audit/proofs/inclusion (HTTP):    {ms(http.latencies)}")

        if opts.proof_tree:
            built, latencies = proof_tree_latency(opts.pg_url, opts.proof_tree, opts.proofs)
            print(
                f"   proof alone at {opts.proof_tree:,} leaves (tree written directly in "
                f"{built:.0f} s): {ms(latencies)}"
            )

        if http is not None:
            print(
                f"4. GET /v1/audit/export: {n:,} entries ({bundle.stat().st_size / 2**20:,.0f} "
                f"MiB) in {http.export_seconds:.1f} s: {n / http.export_seconds:,.0f} "
                f"entries/s; API resident {http.rss_before_kb / 1024:.0f} MiB before, peak "
                f"{http.rss_peak_kb / 1024:.0f} MiB "
                f"(+{(http.rss_peak_kb - http.rss_before_kb) / 1024:.1f} MiB)"
            )
        else:
            with peak_rss() as memory:
                seconds = export_to(settings, bundle)
            print(
                f"4. exported {n:,} entries ({bundle.stat().st_size / 2**20:,.0f} MiB) in "
                f"{seconds:.1f} s: {n / seconds:,.0f} entries/s; resident "
                f"{memory[0] / 1024:.0f} MiB before, peak {memory[1] / 1024:.0f} MiB "
                f"(+{(memory[1] - memory[0]) / 1024:.1f} MiB)"
            )
        verifier: Ed25519Verifier = log_signer(NODE, settings.node_signing_seed).verifier()
        with peak_rss() as memory, bundle.open("rb") as handle:
            started = time.perf_counter()
            verdict = verify_bundle(handle, verifier)
            seconds = time.perf_counter() - started
        print(
            f"   verified in {seconds:.1f} s: {n / seconds:,.0f} leaves/s "
            f"(+{(memory[1] - memory[0]) / 1024:.1f} MiB); {verdict.summary()[:60]}..."
        )
        bundle.unlink()

        if not opts.skip_lag:
            lags, written, rate = measure_lag(settings, opts)
            print(
                f"5. checkpoint lag of {len(lags):,} events: {written:,} committed at "
                f"{rate:,.0f}/s by {opts.writers} writers, sequencer every {opts.interval} s: "
                f"p50 {percentile(lags, 50):.3f} s, p99 {percentile(lags, 99):.3f} s, "
                f"max {max(lags):.3f} s, mean {statistics.fmean(lags):.3f} s"
            )
        print(f"\ndatabase {dbname}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""Ingress throughput: how many signed messages per second the real API accepts, against what
PostgreSQL alone can commit on the same machine.

    .venv/bin/python -m bench.ingress [--clients 32] [--seconds 20] [--warmup 3] [--workers <cores>]
        [--size 4096] [--pg-url postgresql://postgres@127.0.0.1:5432]

Phases, all in one run:
1. a fresh database ``palermo_bench_<random>``, migrated and seeded (two participants, keys,
   a system account for de.bka), secrets in a temporary data directory;
2. the real API as a subprocess (``python -m broker.cli serve``), waited for on /readyz;
3. N concurrent HTTP clients POST pre-signed envelopes to /v1/messages for --warmup + --seconds;
   only completions inside the measured window count;
4. the raw PostgreSQL limit: one INSERT...INSERT statement per transaction (a 4 KB message-like
   row and an audit-like row) over 32 connections, no framework;
5. cleanup: the server stopped, the database dropped (WITH (FORCE)), the directory removed.

The load generator runs on the same machine as the server and PostgreSQL: the CPU split it
prints says how much of the machine each side used.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import orjson
import psycopg
import uvloop

from bench.common import bench_database, free_port, percentile, register_parties
from broker.accounts import service as accounts
from broker.accounts.models import AccountKind
from broker.client import KeyFile, new_payload, sign
from broker.core import migrate
from broker.core.context import Actor, node_context
from broker.core.db import Database
from broker.core.settings import Settings, write_secret_files
from broker.participants import service as participants

SENDER = "de.bka"
RECIPIENT = "it.central-authority"
CLIENT_ID = "de-bka-bench"
PARTICIPANTS = [
    (SENDER, "police", "Bundeskriminalamt"),
    (RECIPIENT, "central_authority", "Italy central authority"),
]
RAW_CONNECTIONS = 32
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- options -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    clients: int
    seconds: float
    warmup: float
    workers: int
    size: int
    pg_url: str
    presign: int
    skip_raw: bool
    db_pool_size: int | None = None

    @property
    def envelopes_needed(self) -> int:
        """Pre-signed envelopes: by default enough for 1,000 accepted/s, at most 50,000 (about
        300 MB); clients sign more during the run if the pool runs out, and say so."""
        auto = min(50_000, int(1000 * (self.seconds + self.warmup)) + self.clients)
        return self.presign or auto


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.ingress", description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients")
    p.add_argument("--seconds", type=float, default=20.0, help="measured window per phase")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before it")
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="uvicorn worker processes (default: one per core)",
    )
    p.add_argument("--size", type=int, default=4096, help="bytes of message body")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument(
        "--presign", type=int, default=0, help="envelopes signed before the run (0: auto)"
    )
    p.add_argument("--skip-raw", action="store_true", help="skip the raw PostgreSQL phase")
    p.add_argument("--db-pool-size", type=int, default=None, help="PALERMO_DB_POOL_SIZE of the API")
    a = p.parse_args(argv)
    if a.clients < 1 or a.workers < 1 or a.seconds <= 0 or a.warmup < 0 or a.size < 1:
        p.error("clients, workers, seconds and size must be positive")
    if a.seconds + a.warmup > 240:
        p.error(
            "keep warmup + seconds under 4 minutes: envelopes are pre-signed and the node "
            "refuses created_at more than 5 minutes from its clock"
        )
    return Options(
        clients=a.clients,
        seconds=a.seconds,
        warmup=a.warmup,
        workers=a.workers,
        size=a.size,
        pg_url=a.pg_url.rstrip("/"),
        presign=a.presign,
        skip_raw=a.skip_raw,
        db_pool_size=a.db_pool_size,
    )


# --- database and seed -------------------------------------------------------------------


@dataclass
class Seeded:
    client_secret: str
    key: KeyFile


async def seed(settings: Settings) -> Seeded:
    """Two participants with custodial keys, a self-held signing key and a system account for
    the sender (the pattern of tests/conftest.py)."""
    db = Database(settings.resolved_database_url, pool_size=1)
    node = node_context(settings)
    actor = Actor(None, "bench-seed")
    try:
        async with db.session() as s:
            await register_parties(s, node=node, parties=PARTICIPANTS, actor=actor)
            _, client_secret = await accounts.create_account(
                s,
                node=node,
                participant_id=SENDER,
                kind=AccountKind.SYSTEM,
                login=CLIENT_ID,
                display_name="bench load generator",
                secret=None,
                roles=frozenset({"system"}),
                actor=actor,
            )
            made = await participants.add_key(
                s,
                node=node,
                participant_id=SENDER,
                purpose="signing",
                public_key=None,
                generate=True,
                actor=actor,
                custodial=False,
            )
            assert made.private_key is not None
            await s.commit()
    finally:
        await db.dispose()
    return Seeded(client_secret, KeyFile(SENDER, made.key.kid, made.private_key))


# --- the server --------------------------------------------------------------------------


class Server:
    """``python -m broker.cli serve`` in its own session, so Ctrl-C reaches only the bench,
    which then stops it."""

    def __init__(
        self, *, workers: int, database_url: str, data_dir: Path, db_pool_size: int | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PALERMO_")}
        env.update(
            PALERMO_DATA_DIR=str(data_dir),
            PALERMO_DATABASE_URL=database_url,
            PALERMO_ENV="development",
            PALERMO_LOG_LEVEL="WARNING",
            PALERMO_PUBLIC_URL=self.url,
        )
        if db_pool_size is not None:
            env["PALERMO_DB_POOL_SIZE"] = str(db_pool_size)
        self.log_path = data_dir / "server.log"
        cmd = [sys.executable, "-m", "broker.cli", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--workers", str(workers)]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pids: set[int] = {self.proc.pid}

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    self.pids = process_tree(self.proc.pid, read_processes())
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server was not ready within {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def peak_rss_kb(self) -> dict[int, int]:
        """VmHWM of the server process and each of its workers."""
        return {pid: vm_hwm_kb(pid) for pid in sorted(self.pids)}

    def stop(self) -> None:
        known = self.pids | process_tree(self.proc.pid, read_processes())
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for pid in known - {self.proc.pid}:  # workers the supervisor left behind, if any
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


# --- /proc: CPU and memory ---------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    comm: str
    ppid: int
    user: int  # CPU ticks in user mode
    system: int  # CPU ticks in the kernel
    title: str


def read_processes() -> dict[int, Proc]:
    procs: dict[int, Proc] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            title = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        rparen = stat.rfind(")")
        comm = stat[stat.find("(") + 1 : rparen]
        rest = stat[rparen + 2 :].split()
        # rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
        procs[int(entry.name)] = Proc(comm, int(rest[1]), int(rest[11]), int(rest[12]), title)
    return procs


def process_tree(root: int, procs: dict[int, Proc]) -> set[int]:
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, p in procs.items():
            if p.ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree


def vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine_ticks() -> tuple[int, int]:
    """(all ticks, idle ticks) of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields[:8]), fields[3] + fields[4]


@dataclass
class CpuSnapshot:
    at: float
    ticks: dict[int, tuple[str, int, int]]  # pid -> (group, user ticks, system ticks)
    total: int
    idle: int


def cpu_snapshot(server_pids: set[int], dbname: str) -> CpuSnapshot:
    """CPU ticks so far per process, grouped: api (the server and its workers), postgres
    (backends of the bench database and the shared background processes), load generator
    (this process), other (everything else on the machine, other databases' backends too)."""
    me = os.getpid()
    ticks: dict[int, tuple[str, int, int]] = {}
    for pid, p in read_processes().items():
        if pid in server_pids:
            group = "api"
        elif pid == me:
            group = "load generator"
        elif p.comm == "postgres" and (dbname in p.title or "(" not in p.title):
            group = "postgres"
        else:
            group = "other"
        ticks[pid] = (group, p.user, p.system)
    total, idle = machine_ticks()
    return CpuSnapshot(time.perf_counter(), ticks, total, idle)


@dataclass(frozen=True)
class CpuSplit:
    text: str
    seconds: dict[str, float]  # CPU seconds used in the window, by group


def cpu_split(a: CpuSnapshot, b: CpuSnapshot) -> CpuSplit:
    """Each group's share in % of one core (the machine has os.cpu_count() x 100 %), and
    how much of it was spent in the kernel (sys)."""
    seconds = b.at - a.at
    user: Counter[str] = Counter()
    system: Counter[str] = Counter()
    for pid, (group, u, k) in b.ticks.items():  # processes that exited in between are lost
        _, u0, k0 = a.ticks.get(pid, (group, 0, 0))
        user[group] += u - u0
        system[group] += k - k0

    def pct(ticks: int) -> float:
        return 100 * ticks / CLK_TCK / seconds

    parts = [
        f"{group} {pct(user[group] + system[group]):.0f}% (sys {pct(system[group]):.0f}%)"
        for group in ("api", "postgres", "load generator")
    ]
    # The rest of the machine's busy time: other processes, those that exited during the
    # window (short-lived test runs), kernel threads and interrupts.
    busy = (b.total - a.total) - (b.idle - a.idle)
    named = sum(user.values()) + sum(system.values()) - user["other"] - system["other"]
    parts.append(f"other {pct(busy - named):.0f}%")
    parts.append(f"idle {pct(b.idle - a.idle):.0f}%")
    cores = os.cpu_count() or 1
    text = ", ".join(parts) + f" (of {100 * cores}% = {cores} cores)"
    # How the API's share fell on its processes: the kernel, not the bench, decides which
    # worker accepts each keep-alive connection, so one worker may get most of them.
    per_api = {
        pid: pct(u - a.ticks.get(pid, (g, 0, 0))[1] + k - a.ticks.get(pid, (g, 0, 0))[2])
        for pid, (g, u, k) in b.ticks.items()
        if g == "api"
    }
    if len(per_api) > 1:
        text += "; api by process: " + ", ".join(
            f"{pid} {share:.0f}%" for pid, share in sorted(per_api.items())
        )
    return CpuSplit(text, {g: (user[g] + system[g]) / CLK_TCK for g in user | system})


# --- the HTTP load -----------------------------------------------------------------------


def envelope_bytes(key: KeyFile, body_text: str) -> bytes:
    payload = new_payload(
        sender=SENDER,
        recipient=RECIPIENT,
        type="intel.message",
        body={"text": body_text},
        legal_basis="UNTOC art. 27",
        purpose="bench",
        data_categories=["statistics"],
        # What the police pack (SIENA practice) asks of every intelligence message.
        handling={"code": "H0"},
        evaluation="B2",
        statement_kind="assessment",
    )
    return orjson.dumps(sign(key, payload))


def body_text(size: int) -> str:
    return base64.b64encode(secrets.token_bytes(size))[:size].decode()


@dataclass
class LoadResult:
    seconds: float
    statuses: Counter[str] = field(default_factory=Counter)
    first_error: dict[str, str] = field(default_factory=dict)  # status -> first answer body
    latencies_ms: list[float] = field(default_factory=list)  # of the 202s in the window
    accepted_total: int = 0  # every 202, warmup included
    signed_live: int = 0
    cpu: CpuSplit | None = None

    @property
    def accepted(self) -> int:
        return self.statuses["202"]

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds


class HttpConnection:
    """One keep-alive HTTP/1.1 connection that sends pre-built requests and reads answers by
    Content-Length, like wrk: a load generator that costs the shared CPU a fraction of what a
    full client library does (httpx took about 3 ms of CPU per request here, more than the
    API it measured). The node's answers are small JSON bodies with Content-Length."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        try:
            self.writer.write(data)
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await self.reader.readexactly(length) if length else b""
            if b"connection: close" in head.lower():
                self.close()
            return status, body
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def post_request(server: Server, token: str, body: bytes) -> bytes:
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def http_load(
    opts: Options, server: Server, token: str, pool: list[bytes], key: KeyFile, dbname: str
) -> LoadResult:
    result = LoadResult(seconds=opts.seconds)
    text = body_text(opts.size)
    begin = time.perf_counter()
    t0 = begin + opts.warmup
    t1 = t0 + opts.seconds

    async def client(index: int) -> None:
        # Connect one client every 20 ms of the warmup, not all at once: the API workers
        # share one listening socket, and a burst of connections can all land on one worker
        # while the other sits idle (a real node's clients connect over time).
        await asyncio.sleep(index * min(0.02, opts.warmup / max(1, opts.clients)))
        connection = HttpConnection("127.0.0.1", server.port)
        while time.perf_counter() < t1:
            if pool:
                body = pool.pop()
            else:
                body = envelope_bytes(key, text)
                result.signed_live += 1
            data = post_request(server, token, body)
            start = time.perf_counter()
            try:
                code, answer = await connection.request(data)
                status = str(code)
                if code >= 300 and status not in result.first_error:
                    result.first_error[status] = answer[:600].decode(errors="replace")
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                status = type(exc).__name__
                result.first_error.setdefault(status, repr(exc)[:600])
            end = time.perf_counter()
            if status == "202":
                result.accepted_total += 1
            if t0 <= end < t1:
                result.statuses[status] += 1
                if status == "202":
                    result.latencies_ms.append(1000 * (end - start))
        connection.close()

    async def sample_cpu() -> None:
        await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
        first = cpu_snapshot(server.pids, dbname)
        await asyncio.sleep(max(0.0, t1 - time.perf_counter()))
        result.cpu = cpu_split(first, cpu_snapshot(server.pids, dbname))

    await asyncio.gather(sample_cpu(), *(client(i) for i in range(opts.clients)))
    result.latencies_ms.sort()
    return result


# --- the raw PostgreSQL limit ------------------------------------------------------------

RAW_SCHEMA = """
CREATE TABLE bench_messages (
    id uuid PRIMARY KEY,
    sender text NOT NULL,
    recipient text NOT NULL,
    accepted_at timestamptz NOT NULL DEFAULT now(),
    envelope_sha256 text NOT NULL,
    ciphertext bytea NOT NULL
);
CREATE INDEX ix_bench_messages_recipient ON bench_messages (recipient, accepted_at);
CREATE TABLE bench_audit (
    id bigserial PRIMARY KEY,
    message_id uuid NOT NULL,
    kind text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    leaf bytea NOT NULL
);
CREATE INDEX ix_bench_audit_message ON bench_audit (message_id);
"""

RAW_INSERT = """
WITH m AS (
    INSERT INTO bench_messages (id, sender, recipient, envelope_sha256, ciphertext)
    VALUES (%s, %s, %s, %s, %s) RETURNING id
)
INSERT INTO bench_audit (message_id, kind, leaf) SELECT id, 'message:accepted', %s FROM m
"""


@dataclass
class RawResult:
    seconds: float
    committed: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    cpu: CpuSplit | None = None

    @property
    def rate(self) -> float:
        return self.committed / self.seconds


async def raw_load(opts: Options, db_url: str, dbname: str) -> RawResult:
    """One statement per transaction (autocommit: the statement is the transaction), each a
    message-like row of --size bytes and an audit-like row, over 32 connections."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(RAW_SCHEMA.encode())
    result = RawResult(seconds=opts.seconds)
    blob = secrets.token_bytes(opts.size + 200)  # about what the sealed envelope weighs
    leaf = secrets.token_bytes(400)
    begin = time.perf_counter()
    t0 = begin + opts.warmup
    t1 = t0 + opts.seconds
    # Connections stay open until the second CPU sample is taken: a backend that exited
    # before it would take its CPU out of the postgres figure.
    sampled = asyncio.Event()

    async def worker() -> None:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            await run_inserts(conn)
            await sampled.wait()

    async def run_inserts(conn: psycopg.AsyncConnection[Any]) -> None:
        while time.perf_counter() < t1:
            mid = uuid.uuid4()
            digest = hashlib.sha256(mid.bytes).hexdigest()
            params = (mid, SENDER, RECIPIENT, digest, blob, leaf)
            start = time.perf_counter()
            try:
                await conn.execute(RAW_INSERT.encode(), params)
                ok = True
            except psycopg.Error:
                ok = False
            end = time.perf_counter()
            if t0 <= end < t1:
                if ok:
                    result.committed += 1
                    result.latencies_ms.append(1000 * (end - start))
                else:
                    result.errors += 1

    async def sample_cpu() -> None:
        await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
        first = cpu_snapshot(set(), dbname)
        await asyncio.sleep(max(0.0, t1 - time.perf_counter()))
        result.cpu = cpu_split(first, cpu_snapshot(set(), dbname))
        sampled.set()

    await asyncio.gather(sample_cpu(), *(worker() for _ in range(RAW_CONNECTIONS)))
    result.latencies_ms.sort()
    return result


# --- the run -----------------------------------------------------------------------------


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def pg_settings(db_url: str) -> str:
    names = ("server_version", "synchronous_commit", "fsync", "shared_buffers")
    values = []
    with psycopg.connect(db_url) as conn:
        for name in names:
            row = conn.execute(f"SHOW {name}".encode()).fetchone()
            values.append(str(row[0]) if row else "?")
    return ", ".join(f"{n}={v}" for n, v in zip(names, values, strict=True))


def count_rows(db_url: str, table: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}".encode()).fetchone()
    return int(row[0]) if row else 0


def report_http(opts: Options, r: LoadResult, rss: dict[int, int]) -> None:
    errors = {k: v for k, v in sorted(r.statuses.items()) if k != "202"}
    print(f"\n== HTTP ingress: POST /v1/messages, {opts.clients} clients, {opts.workers} worker(s)")
    print(f"accepted (202):   {r.accepted} in {opts.seconds:g} s = {r.rate:.1f} messages/s")
    print(
        f"latency of 202s:  p50 {percentile(r.latencies_ms, 50):.1f} ms, "
        f"p99 {percentile(r.latencies_ms, 99):.1f} ms, max {percentile(r.latencies_ms, 100):.1f} ms"
    )
    print(f"errors by status: {errors or 'none'}")
    for status, text in r.first_error.items():
        print(f"  first {status}: {text}")
    if r.signed_live:
        print(f"pre-signed pool ran out: {r.signed_live} envelopes signed during the run")
    if r.cpu is not None:
        print(f"CPU during window: {r.cpu.text}")
        api = r.cpu.seconds.get("api", 0.0)
        if r.accepted:
            print(f"API CPU per accepted message: {1000 * api / r.accepted:.2f} ms")
    peak = ", ".join(f"pid {pid}: {kb / 1024:.0f} MiB" for pid, kb in rss.items())
    print(f"API peak RSS (VmHWM): {peak}; total {sum(rss.values()) / 1024:.0f} MiB")


def report_raw(r: RawResult) -> None:
    print(
        f"\n== raw PostgreSQL: 1 INSERT+INSERT statement per transaction, {RAW_CONNECTIONS} conns"
    )
    print(f"committed:        {r.committed} in {r.seconds:g} s = {r.rate:.1f} transactions/s")
    print(
        f"latency:          p50 {percentile(r.latencies_ms, 50):.1f} ms, "
        f"p99 {percentile(r.latencies_ms, 99):.1f} ms; errors {r.errors}"
    )
    if r.cpu is not None:
        print(f"CPU during window: {r.cpu.text}")
        pg = r.cpu.seconds.get("postgres", 0.0)
        client = r.cpu.seconds.get("load generator", 0.0)
        if r.committed:
            print(
                f"CPU per transaction: postgres {1000 * pg / r.committed:.3f} ms, "
                f"client (psycopg) {1000 * client / r.committed:.3f} ms"
            )


def run(opts: Options) -> int:
    print(f"bench.ingress {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
    print(f"options: {opts}")
    with contextlib.ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="palermo-bench-")))
        dbname, db_url = stack.enter_context(bench_database(opts.pg_url))
        print(f"database {dbname}: {pg_settings(db_url)}")
        migrate.upgrade(db_url)
        write_secret_files(data_dir)
        settings = Settings(
            env="development",
            data_dir=data_dir,
            database_url=db_url,
            master_key=None,
            node_signing_key=None,
            token_secret=None,
        )
        seeded = asyncio.run(seed(settings))

        started = time.perf_counter()
        text = body_text(opts.size)
        pool = [envelope_bytes(seeded.key, text) for _ in range(opts.envelopes_needed)]
        print(
            f"pre-signed {len(pool)} envelopes of {len(pool[0])} bytes "
            f"in {time.perf_counter() - started:.1f} s"
        )

        server = Server(
            workers=opts.workers,
            database_url=db_url,
            data_dir=data_dir,
            db_pool_size=opts.db_pool_size,
        )
        stack.callback(server.stop)
        server.wait_ready()
        print(f"API at {server.url}, pids {sorted(server.pids)}")
        token = (
            httpx.post(
                f"{server.url}/v1/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": CLIENT_ID,
                    "client_secret": seeded.client_secret,
                },
                timeout=30,
            )
            .raise_for_status()
            .json()["access_token"]
        )

        preflight = httpx.post(
            f"{server.url}/v1/messages",
            content=envelope_bytes(seeded.key, text),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=30,
        )
        if preflight.status_code != 202:
            print(f"the node refuses the bench message: {preflight.status_code} {preflight.text}")
            return 1
        http = uvloop.run(http_load(opts, server, str(token), pool, seeded.key, dbname))
        del pool
        rss = server.peak_rss_kb()
        server.stop()
        report_http(opts, http, rss)
        stored = count_rows(db_url, "messages")
        print(
            f"messages stored:  {stored} "
            f"(202 answers, warmup and 1 preflight: {http.accepted_total + 1})"
        )
        if opts.skip_raw:
            return 0
        raw = asyncio.run(raw_load(opts, db_url, dbname))
        report_raw(raw)
        ratio = http.rate / raw.rate if raw.rate else float("nan")
        print(f"\n== accepted/raw = {http.rate:.1f} / {raw.rate:.1f} = {ratio:.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    # Ctrl-C and SIGTERM both stop the run and clean up, also when the shell started the
    # bench with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(opts)
    except KeyboardInterrupt:
        print("interrupted: cleaned up", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

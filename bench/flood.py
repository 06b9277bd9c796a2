"""Slow clients and floods: does normal traffic keep its latency while hostile clients hold
connections open and push large unauthenticated bodies?

    .venv/bin/python -m bench.flood [--seconds 20] [--clients 16] [--slow 200] [--uploads 50]
                                    [--upload-mib 100]

Phases, all in one run, against a fresh embedded node (SQLite, demo participants) running as a
real ``palermo serve`` subprocess:
1. **quiet**: ``--clients`` threads send normal traffic for ``--seconds``: each in turn
   submits a draft message (``POST /v1/messages``) and reads its inbox (``GET /v1/inbox``),
   with a bearer token, one request at a time over a keep-alive connection;
2. **attack**: the same traffic again while, from a second process,
   - ``--slow`` connections each send the headers of an authenticated ``POST /v1/messages``
     announcing a 1 MB body, then one byte every 5 s (a slow-body client: the node cuts each
     with 408 after ``PALERMO_BODY_IDLE_TIMEOUT_SECONDS`` / ``PALERMO_BODY_TIMEOUT_SECONDS``,
     and the attacker opens another at once), and
   - ``--uploads`` connections each send ``--upload-mib`` MiB to ``POST /v1/messages`` and
     ``POST /v1/federation/envelopes`` without credentials, as fast as the socket takes it, and
     open another when the node answers (401 before the body is read) or closes.

Printed per phase: requests, p50 and p99 latency of the normal traffic, errors, and the API
process's peak resident memory (VmRSS sampled every 50 ms); for the attack, how the node
answered the hostile connections. Goal (issue 12): the attack's p99 within 2x of the quiet
p99, and memory bounded (no growth with the bytes sent).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import shutil
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.attachments import Node
from bench.common import percentile
from bench.web import _message
from broker.cli.demo import DEMO_LOGINS_FILE, seed_demo
from broker.core import migrate
from broker.core.settings import Settings, write_secret_files

_SENDERS = ("it.officer", "de.officer")


def _rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class _Sampler:
    """The peak VmRSS of a process while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb(self.pid))
            time.sleep(0.05)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _traffic(url: str, tokens: dict[str, str], clients: int, seconds: float) -> dict[str, Any]:
    """Normal traffic from ``clients`` threads for ``seconds``: latencies and errors."""
    deadline = time.monotonic() + seconds

    def one(k: int) -> tuple[list[float], Counter[str]]:
        times: list[float] = []
        errors: Counter[str] = Counter()
        i = k
        with httpx.Client(base_url=url, timeout=60) as http:
            while time.monotonic() < deadline:
                login, draft = _message(i)
                headers = {"Authorization": f"Bearer {tokens[login]}"}
                for method, path, body in (
                    ("POST", "/v1/messages", {"draft": draft}),
                    ("GET", "/v1/inbox?limit=20", None),
                ):
                    started = time.perf_counter()
                    try:
                        r = http.request(method, path, json=body, headers=headers)
                        status = str(r.status_code)
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    times.append((time.perf_counter() - started) * 1000)
                    if not status.startswith("2"):
                        errors[f"{method} {path.split('?')[0]} {status}"] += 1
                i += clients
        return times, errors

    with ThreadPoolExecutor(clients) as pool:
        parts = list(pool.map(one, range(clients)))
    times = [t for part, _ in parts for t in part]
    errors: Counter[str] = Counter()
    for _, e in parts:
        errors.update(e)
    return {
        "requests": len(times),
        "per_s": len(times) / seconds,
        "p50": percentile(times, 50),
        "p99": percentile(times, 99),
        "errors": dict(errors),
    }


async def _status_of(reader: asyncio.StreamReader) -> str:
    with contextlib.suppress(Exception):
        line = await asyncio.wait_for(reader.readline(), timeout=120)
        parts = line.split()
        if len(parts) >= 2:
            return parts[1].decode()
    return "closed"


async def _slow_client(port: int, token: str, stop: float, seen: Counter[str]) -> None:
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            seen["connect refused"] += 1
            await asyncio.sleep(0.5)
            continue
        writer.write(
            b"POST /v1/messages HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 1000000\r\n\r\n{"
        )
        answer = asyncio.ensure_future(_status_of(reader))
        with contextlib.suppress(Exception):
            while not answer.done() and time.monotonic() < stop:
                await writer.drain()
                await asyncio.wait({answer}, timeout=5)
                if not answer.done():
                    writer.write(b" ")
        seen[f"slow body: {await answer if answer.done() else 'held to the end'}"] += 1
        answer.cancel()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _upload_client(port: int, path: str, size: int, stop: float, seen: Counter[str]) -> None:
    chunk = b"0" * 65536
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            seen["connect refused"] += 1
            await asyncio.sleep(0.5)
            continue
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n".encode()
        )
        answer = asyncio.ensure_future(_status_of(reader))
        sent = 0
        with contextlib.suppress(Exception):
            while sent < size and not answer.done() and time.monotonic() < stop:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
        status = await answer
        seen[f"upload {path}: {status}"] += 1
        seen["upload bytes sent"] += sent
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _attack(port: int, token: str, slow: int, uploads: int, size: int, secs: float) -> Any:
    stop = time.monotonic() + secs
    seen: Counter[str] = Counter()
    paths = ("/v1/messages", "/v1/federation/envelopes")
    await asyncio.gather(
        *(_slow_client(port, token, stop, seen) for _ in range(slow)),
        *(_upload_client(port, paths[i % 2], size, stop, seen) for i in range(uploads)),
    )
    return dict(seen)


def _attacker(
    port: int, token: str, slow: int, uploads: int, size: int, secs: float, q: Any
) -> None:
    q.put(asyncio.run(_attack(port, token, slow, uploads, size, secs)))


def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    node = Node(data_dir)
    settings = Settings(data_dir=data_dir, env="development", public_url=node.url)
    write_secret_files(data_dir)
    migrate.upgrade(settings.resolved_database_url)
    seed_demo(settings)
    logins = json.loads((data_dir / DEMO_LOGINS_FILE).read_text())
    passwords = {p["login"]: p["password"] for p in logins["people"]}
    node.start()
    assert node.proc is not None
    try:
        tokens: dict[str, str] = {}
        with httpx.Client(base_url=node.url, timeout=60) as http:
            for login in _SENDERS:
                r = http.post(
                    "/v1/auth/token",
                    data={
                        "grant_type": "password",
                        "username": login,
                        "password": passwords[login],
                    },
                )
                r.raise_for_status()
                tokens[login] = r.json()["access_token"]
        _traffic(node.url, tokens, args.clients, 3)  # warm-up
        figures: dict[str, Any] = {"idle_rss_mb": _rss_mb(node.proc.pid)}
        with _Sampler(node.proc.pid) as sampler:
            figures["quiet"] = _traffic(node.url, tokens, args.clients, args.seconds)
        figures["quiet"]["peak_rss_mb"] = sampler.peak

        ctx = multiprocessing.get_context("spawn")
        q = ctx.Queue()
        size = args.upload_mib * 1024 * 1024
        # The attack starts first and lasts past the traffic, so the whole timed window is
        # under attack with the slow connections already open.
        attacker = ctx.Process(
            target=_attacker,
            args=(
                node.port,
                tokens["it.officer"],
                args.slow,
                args.uploads,
                size,
                args.seconds + 8,
                q,
            ),
        )
        attacker.start()
        time.sleep(3)
        with _Sampler(node.proc.pid) as sampler:
            figures["attack"] = _traffic(node.url, tokens, args.clients, args.seconds)
        figures["attack"]["peak_rss_mb"] = sampler.peak
        figures["hostile"] = q.get(timeout=300)
        attacker.join(timeout=60)
        figures["after_rss_mb"] = _rss_mb(node.proc.pid)
        return figures
    finally:
        node.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="length of each timed phase")
    p.add_argument("--clients", type=int, default=16, help="threads of normal traffic")
    p.add_argument("--slow", type=int, default=200, help="slow-body connections")
    p.add_argument("--uploads", type=int, default=50, help="unauthenticated upload connections")
    p.add_argument("--upload-mib", type=int, default=100, help="size each upload announces")
    p.add_argument("--keep", action="store_true", help="keep the data directory")
    args = p.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="palermo-bench-flood-"))
    try:
        f = run(args, data_dir)
    finally:
        if args.keep:
            print(f"data directory kept: {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(f"API resident when idle: {f['idle_rss_mb']:.1f} MB")
    print(f"{'phase':<8} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'peak MB':>8}")
    for phase in ("quiet", "attack"):
        r = f[phase]
        print(
            f"{phase:<8} {r['requests']:9d} {r['per_s']:7.1f} {r['p50']:8.1f} {r['p99']:8.1f} "
            f"{r['peak_rss_mb']:8.1f}"
        )
        if r["errors"]:
            print(f"  errors: {r['errors']}")
    print("hostile connections, as the node answered them:")
    for what, n in sorted(f["hostile"].items()):
        shown = f"{n / 1024**2:.0f} MiB" if what == "upload bytes sent" else str(n)
        print(f"  {what}: {shown}")
    ratio = f["attack"]["p99"] / f["quiet"]["p99"]
    print(f"p99 under attack / quiet: {ratio:.2f} (goal: at most 2)")
    print(f"API resident after the attack: {f['after_rss_mb']:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

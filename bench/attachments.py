"""Evidence files: peak resident memory of the API while a large file streams in and out.

    .venv/bin/python -m bench.attachments [--mib 1024] [--interval 0.05] [--keep]

Phases, all in one run:
1. a fresh embedded node (SQLite, secrets and evidence directory in a temporary data
   directory), migrated and seeded: the Italian and US central authorities with custodial
   keys and officer/supervisor accounts;
2. the real API as a subprocess (``python -m broker.cli serve``), waited for on /readyz;
3. an MLA case driven through the HTTP API to execution;
4. upload: ``--mib`` MiB streamed from a generator (1 MiB blocks) to
   ``POST /v1/cases/{id}/evidence`` with its SHA-256, which the server checks;
5. ``complete`` delivers the file; download: the requesting side streams it back through
   ``GET /v1/cases/{id}/evidence/{file}`` and the bench checks the SHA-256;
6. cleanup: the server stopped, the directory removed (unless ``--keep``).

The API's resident set (VmRSS of the server process) is sampled every ``--interval`` seconds
during each phase; the peak per phase and the process's VmHWM are printed. Goal (issue 5):
under 100 MB resident for a 1 GiB upload and download.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port, register_parties
from broker.accounts import service as accounts
from broker.accounts.models import AccountKind
from broker.core import migrate
from broker.core.context import Actor, node_context
from broker.core.db import Database
from broker.core.settings import Settings, write_secret_files

PASSWORD = "bench password, not a secret"
PARTICIPANTS = [
    ("it.central-authority", "central_authority", "Italy central authority"),
    ("us.central-authority", "central_authority", "US central authority"),
]
LOGINS = {
    "it.officer": ("it.central-authority", "officer"),
    "it.supervisor": ("it.central-authority", "supervisor"),
    "us.officer": ("us.central-authority", "officer"),
}
REQUEST = {
    "requesting_authority": "Procura della Repubblica di Milano",
    "subject_matter": "Laundering of proceeds of drug trafficking",
    "conducting_authority": "Public prosecutor, DDA Milano",
    "facts_summary": "Funds moved from Milan to New York.",
    "assistance_sought": "Bank records of two accounts.",
    "purpose": "criminal_investigation",
    "assistance_types": ["records"],
    "legal_basis": "it-us-mlat-1982",
    "language": "en",
    "channel": "central_authority",
    "transfer_basis": "appropriate_safeguards",
}
BLOCK = 1024 * 1024


async def seed(settings: Settings) -> None:
    db = Database(settings.resolved_database_url, pool_size=1)
    node = node_context(settings)
    actor = Actor(None, "bench-seed")
    try:
        async with db.session() as s:
            await register_parties(s, node=node, parties=PARTICIPANTS, actor=actor)
            for login, (pid, role) in LOGINS.items():
                await accounts.create_account(
                    s,
                    node=node,
                    participant_id=pid,
                    kind=AccountKind.PERSON,
                    login=login,
                    display_name=login,
                    secret=PASSWORD,
                    roles=frozenset({role}),
                    actor=actor,
                )
            await s.commit()
    finally:
        await db.dispose()


def status_kb(pid: int, field: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Sampler:
    """Samples the server's VmRSS in a thread; ``peak`` is the highest seen, in kB."""

    def __init__(self, pid: int, interval: float) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, status_kb(self.pid, "VmRSS"))
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self.peak = status_kb(self.pid, "VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, status_kb(self.pid, "VmRSS"))


class Node:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PALERMO_")}
        self.env.update(
            PALERMO_DATA_DIR=str(data_dir),
            PALERMO_ENV="development",
            PALERMO_LOG_LEVEL="WARNING",
            PALERMO_PUBLIC_URL=self.url,
            PALERMO_EVIDENCE_MAX_BYTES=str(64 * 1024**3),
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def prepare(self) -> None:
        settings = Settings(data_dir=self.data_dir, env="development", public_url=self.url)
        write_secret_files(self.data_dir)
        migrate.upgrade(settings.resolved_database_url)
        asyncio.run(seed(settings))

    def start(self) -> None:
        cmd = [sys.executable, "-m", "broker.cli", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port)]
        log = (self.data_dir / "server.log").open("wb")
        self.proc = subprocess.Popen(
            cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.data_dir / "server.log").read_text()[-3000:])
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError("the server was not ready within 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


class Client:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=httpx.Timeout(600.0))
        self.tokens: dict[str, str] = {}
        for login in LOGINS:
            r = self.http.post(
                "/v1/auth/token",
                data={"grant_type": "password", "username": login, "password": PASSWORD},
            )
            r.raise_for_status()
            self.tokens[login] = r.json()["access_token"]

    def auth(self, login: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[login]}"}

    def call(self, login: str, method: str, path: str, **kw: Any) -> Any:
        r = self.http.request(method, path, headers=self.auth(login), **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
        return r.json()

    def fire(self, login: str, case_id: str, event: str, body: dict[str, Any] | None = None) -> Any:
        return self.call(
            login, "POST", f"/v1/cases/{case_id}/events", json={"event": event, "body": body or {}}
        )


def blocks(mib: int, digest: Any) -> Iterator[bytes]:
    """``mib`` blocks of 1 MiB, each different (a counter over random bytes), hashed as sent."""
    base = bytearray(os.urandom(BLOCK))
    for i in range(mib):
        base[:8] = i.to_bytes(8, "big")
        block = bytes(base)
        digest.update(block)
        yield block


def run(mib: int, interval: float, data_dir: Path) -> dict[str, float]:
    node = Node(data_dir)
    node.prepare()
    node.start()
    try:
        assert node.proc is not None
        pid = node.proc.pid
        client = Client(node.url)
        case = client.call(
            "it.officer",
            "POST",
            "/v1/cases",
            json={
                "workflow": "mla.request",
                "counterpart": "us.central-authority",
                "request": REQUEST,
            },
        )
        cid = case["id"]
        client.fire("it.officer", cid, "submit_for_vetting")
        client.fire("it.supervisor", cid, "transmit")
        for event in ("acknowledge", "start_assessment", "accept"):
            client.fire("us.officer", cid, event)
        client.fire("us.officer", cid, "assign_execution", {"executing_authority": "SDNY"})
        baseline = status_kb(pid, "VmRSS")

        # The digest is known only once the generator ran: upload first, check after.
        sent = hashlib.sha256()
        started = time.perf_counter()
        with Sampler(pid, interval) as up:
            r = client.http.post(
                f"/v1/cases/{cid}/evidence",
                params={"name": "bench.bin", "media_type": "application/octet-stream"},
                headers=client.auth("us.officer"),
                content=blocks(mib, sent),
            )
        upload_s = time.perf_counter() - started
        if r.status_code != 201:
            raise RuntimeError(f"upload: {r.status_code} {r.text}")
        stored = r.json()
        if stored["sha256"] != sent.hexdigest() or stored["size"] != mib * BLOCK:
            raise RuntimeError("the stored file's digest or size differs from what was sent")
        client.fire("us.officer", cid, "complete", {"evidence": [stored["id"]]})

        received = hashlib.sha256()
        size = 0
        started = time.perf_counter()
        with (
            Sampler(pid, interval) as down,
            client.http.stream(
                "GET",
                f"/v1/cases/{cid}/evidence/{stored['id']}",
                params={"justification": "benchmark of evidence download"},
                headers=client.auth("it.officer"),
            ) as resp,
        ):
            if resp.status_code != 200:
                raise RuntimeError(f"download: {resp.status_code} {resp.read()!r}")
            for piece in resp.iter_bytes(BLOCK):
                received.update(piece)
                size += len(piece)
        download_s = time.perf_counter() - started
        if received.hexdigest() != sent.hexdigest() or size != mib * BLOCK:
            raise RuntimeError("the downloaded file differs from the uploaded one")
        stored_bytes = sum(f.stat().st_size for f in (data_dir / "evidence").rglob("*.bin"))
        return {
            "baseline_mb": baseline / 1024,
            "upload_peak_mb": up.peak / 1024,
            "download_peak_mb": down.peak / 1024,
            "hwm_mb": status_kb(pid, "VmHWM") / 1024,
            "upload_mib_s": mib / upload_s,
            "download_mib_s": mib / download_s,
            "overhead_pct": 100 * (stored_bytes - mib * BLOCK) / (mib * BLOCK),
        }
    finally:
        node.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.attachments", description=__doc__.split("\n")[0]
    )
    p.add_argument("--mib", type=int, default=1024, help="file size in MiB (default 1 GiB)")
    p.add_argument("--interval", type=float, default=0.05, help="RSS sampling interval, s")
    p.add_argument("--keep", action="store_true", help="keep the data directory")
    a = p.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="palermo-bench-evidence-"))
    try:
        figures = run(a.mib, a.interval, data_dir)
    finally:
        if not a.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(f"evidence file: {a.mib} MiB, streamed in 1 MiB blocks, SHA-256 checked both ways")
    print(f"API resident before upload   {figures['baseline_mb']:8.1f} MB")
    print(
        f"API peak RSS during upload   {figures['upload_peak_mb']:8.1f} MB"
        f"   ({figures['upload_mib_s']:.0f} MiB/s)"
    )
    print(
        f"API peak RSS during download {figures['download_peak_mb']:8.1f} MB"
        f"   ({figures['download_mib_s']:.0f} MiB/s)"
    )
    added = max(figures["upload_peak_mb"], figures["download_peak_mb"]) - figures["baseline_mb"]
    print(f"added by the transfer        {added:8.1f} MB")
    print(f"API VmHWM over the run       {figures['hwm_mb']:8.1f} MB  (logins: argon2id, 64 MiB)")
    print(f"storage overhead at rest     {figures['overhead_pct']:8.3f} %")
    goal = max(figures["upload_peak_mb"], figures["download_peak_mb"]) < 100
    print(f"goal (< 100 MB resident): {'met' if goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

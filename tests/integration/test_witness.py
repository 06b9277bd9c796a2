"""Witnesses (c2sp.org/tlog-witness, c2sp.org/tlog-cosignature): the protocol of
``palermo witness``, and the node collecting and serving cosignatures from a real witness
process."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from audit import (
    Checkpoint,
    CosignatureSigner,
    CosignatureVerifier,
    Ed25519Signer,
    MemoryTree,
    leaf_hash,
    open_cosigned_checkpoint,
    sign_checkpoint,
)
from broker.cli import main as palermo
from broker.core.db import Database
from broker.core.settings import Settings
from broker.oversight.cosigning import collect_cosignatures, configured_witnesses
from broker.oversight.sequencer import log_signer
from broker.oversight.witness import SIZE_CONTENT_TYPE, Witness, create_witness_app
from broker.worker import make_celery
from tests.conftest import Api, count_rows, need_service
from tests.integration.audit_helpers import (
    disable_append_only,
    export,
    leaf_at,
    rebuild_log,
    run_scenario,
    sequence,
    verifier_key,
    verify,
)
from tests.support.processes import free_port, wait_for_port

ORIGIN = "log.example"


@dataclass
class Log:
    """A log on the test's side: its key and an in-memory tree."""

    signer: Ed25519Signer
    tree: MemoryTree

    def grow(self, count: int, tag: str = "") -> None:
        for i in range(count):
            self.tree.append(leaf_hash(f"{tag}{self.tree.size}-{i}".encode()))

    def note(self, size: int | None = None, tree: MemoryTree | None = None) -> str:
        tree = tree or self.tree
        n = tree.size if size is None else size
        return sign_checkpoint(Checkpoint(ORIGIN, n, tree.root(n)), self.signer)

    def body(self, old: int, size: int | None = None, proof: list[bytes] | None = None) -> bytes:
        n = self.tree.size if size is None else size
        if proof is None:
            proof = self.tree.consistency_proof(old, n) if 0 < old < n else []
        lines = [f"old {old}\n"] + [base64.b64encode(h).decode() + "\n" for h in proof]
        return ("".join(lines) + "\n" + self.note(n)).encode()


@pytest.fixture
def log() -> Log:
    return Log(Ed25519Signer.generate(ORIGIN), MemoryTree())


@pytest.fixture
def witness_key() -> CosignatureSigner:
    return CosignatureSigner.generate("witness.garante.example")


def _witness(tmp_path: Path, log: Log, key: CosignatureSigner) -> Witness:
    return Witness(signer=key, logs=[log.signer.verifier()], state_path=tmp_path / "state.json")


def _post(client: TestClient, body: bytes) -> httpx.Response:
    response: httpx.Response = client.post("/add-checkpoint", content=body)
    return response


def test_a_witness_cosigns_only_consistent_checkpoints(
    tmp_path: Path, log: Log, witness_key: CosignatureSigner
) -> None:
    witness = _witness(tmp_path, log, witness_key)
    client = TestClient(create_witness_app(witness))
    log.grow(5)
    r = _post(client, log.body(0))
    assert r.status_code == 200, r.text
    assert r.text.startswith("\u2014 witness.garante.example ")
    cosigned = open_cosigned_checkpoint(
        log.note() + r.text, log.signer.verifier(), [witness_key.verifier()]
    )
    assert cosigned.checkpoint.size == 5
    assert witness.latest(ORIGIN) == log.note()

    # The witness tells a client that lost track where it stands.
    r = _post(client, log.body(0))
    assert (r.status_code, r.text) == (409, "5\n")
    assert r.headers["content-type"].startswith(SIZE_CONTENT_TYPE)

    log.grow(8)
    r = _post(client, log.body(5))
    assert r.status_code == 200, r.text
    assert witness.latest(ORIGIN) == log.note()
    r = _post(client, log.body(13))  # the same checkpoint again: cosigned again
    assert r.status_code == 200, r.text

    # A proof that does not lead from the recorded tree: refused, kept as evidence.
    log.grow(3)
    wrong = log.tree.consistency_proof(13, 16)
    wrong[0] = bytes(32)
    r = _post(client, log.body(13, proof=wrong))
    assert r.status_code == 422, r.text
    assert witness.latest(ORIGIN) is not None
    assert "\n13\n" in str(witness.latest(ORIGIN))
    assert len(list(witness.evidence_dir.iterdir())) == 1


def test_a_witness_refuses_a_fork_and_keeps_the_evidence(
    tmp_path: Path, log: Log, witness_key: CosignatureSigner
) -> None:
    client = TestClient(create_witness_app(_witness(tmp_path, log, witness_key)))
    log.grow(6)
    assert _post(client, log.body(0)).status_code == 200
    fork = Log(log.signer, MemoryTree())
    fork.grow(6, tag="other")
    # The same size with another root: the log signed two trees.
    r = _post(client, fork.body(6, size=6, proof=[]))
    assert (r.status_code, r.text) == (409, "6\n")
    # A larger tree that does not extend the one cosigned.
    fork.grow(4)
    r = _post(client, fork.body(6))
    assert r.status_code == 422, r.text
    evidence = sorted((tmp_path / "state.json.evidence").iterdir())
    assert len(evidence) == 2
    assert b"inconsistent with the checkpoint of size 6" in evidence[0].read_bytes()


def test_a_witness_remembers_across_restarts(
    tmp_path: Path, log: Log, witness_key: CosignatureSigner
) -> None:
    log.grow(9)
    first = TestClient(create_witness_app(_witness(tmp_path, log, witness_key)))
    assert _post(first, log.body(0)).status_code == 200
    assert stat.S_IMODE((tmp_path / "state.json").stat().st_mode) == 0o600
    restarted = TestClient(create_witness_app(_witness(tmp_path, log, witness_key)))
    # A smaller tree after a larger one is never cosigned, even from a fresh process.
    r = _post(restarted, log.body(9, size=4, proof=[]))
    assert r.status_code == 400, r.text
    r = _post(restarted, log.body(0, size=4))
    assert (r.status_code, r.text) == (409, "9\n")


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("unknown-origin", 404),
        ("other-key", 403),
        ("no-blank-line", 400),
        ("bad-old-line", 400),
        ("old-beyond-size", 400),
        ("proof-from-zero", 400),
        ("too-many-proof-lines", 400),
        ("short-proof-hash", 400),
        ("malformed-note", 400),
        ("not-utf8", 400),
    ],
)
def test_a_witness_refuses_malformed_or_foreign_requests(
    tmp_path: Path, log: Log, witness_key: CosignatureSigner, case: str, status: int
) -> None:
    client = TestClient(create_witness_app(_witness(tmp_path, log, witness_key)))
    log.grow(4)
    note = log.note()
    bodies = {
        "unknown-origin": b"old 0\n\n"
        + sign_checkpoint(
            Checkpoint("other.example", 4, log.tree.root()), Ed25519Signer.generate("other.example")
        ).encode(),
        "other-key": b"old 0\n\n"
        + sign_checkpoint(
            Checkpoint(ORIGIN, 4, log.tree.root()), Ed25519Signer.generate(ORIGIN)
        ).encode(),
        "no-blank-line": b"old 0\n" + note.split("\n\n")[0].encode(),
        "bad-old-line": b"old 00\n\n" + note.encode(),
        "old-beyond-size": b"old 5\n\n" + note.encode(),
        "proof-from-zero": b"old 0\n" + base64.b64encode(bytes(32)) + b"\n\n" + note.encode(),
        "too-many-proof-lines": b"old 1\n"
        + (base64.b64encode(bytes(32)) + b"\n") * 64
        + b"\n"
        + note.encode(),
        "short-proof-hash": b"old 1\n" + base64.b64encode(bytes(31)) + b"\n\n" + note.encode(),
        "malformed-note": b"old 0\n\n" + note.replace("\u2014", "-").encode(),
        "not-utf8": b"old 0\n\n\xff" + note.encode(),
    }
    r = _post(client, bodies[case])
    assert r.status_code == status, r.text
    assert not (tmp_path / "state.json").exists()


# -- the node and a real witness process --------------------------------------------------


@dataclass
class RunningWitness:
    url: str
    vkey: str
    state: Path


@pytest.fixture
def witness_process(api: Api, tmp_path: Path) -> Iterator[RunningWitness]:
    key_file = tmp_path / "witness.key"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert (
            palermo(["witness", "keygen", "witness.garante.example", "--key-file", str(key_file)])
            == 0
        )
    vkey = out.getvalue().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # An existing key is never overwritten.
    assert palermo(["witness", "keygen", "again", "--key-file", str(key_file)]) == 2
    assert key_file.read_text().startswith("PRIVATE+KEY+witness.garante.example+")
    port = free_port()
    state = tmp_path / "witness-state.json"
    log_file = tmp_path / "witness.log"
    with log_file.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "broker.cli",
                "witness",
                "serve",
                "--key-file",
                str(key_file),
                "--state",
                str(state),
                "--log",
                verifier_key(api.settings),
                "--port",
                str(port),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
        try:
            wait_for_port(port, proc, log=log_file.read_text)
            yield RunningWitness(f"http://127.0.0.1:{port}", vkey, state)
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def collect(settings: Settings, witness: RunningWitness) -> int:
    configured = settings.model_copy(
        update={"witness_urls": witness.url, "witness_keys": witness.vkey}
    )

    async def go() -> int:
        db = Database(settings.resolved_database_url, pool_size=1)
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                return await collect_cosignatures(
                    db,
                    witnesses=configured_witnesses(configured),
                    log_verifier=log_signer(
                        settings.node_id, settings.node_signing_seed
                    ).verifier(),
                    client=client,
                )
        finally:
            await db.dispose()

    return asyncio.run(go())


def test_the_node_collects_and_serves_cosignatures_from_a_witness(
    api: Api, witness_process: RunningWitness, tmp_path: Path, sync_engine: Engine
) -> None:
    sequence(api.settings)
    assert (
        api.get("/v1/audit/checkpoint", as_="oversight", params={"witnessed": True}).status_code
        == 404
    )
    assert collect(api.settings, witness_process) == 1
    assert collect(api.settings, witness_process) == 0  # already cosigned
    run_scenario(api, messages=1)  # the log grows: the next request carries a proof
    assert collect(api.settings, witness_process) == 1

    body = api.get("/v1/audit/checkpoint", as_="it.officer").json()
    assert [c["witness"] for c in body["cosignatures"]] == ["witness.garante.example"]
    cosigned = open_cosigned_checkpoint(
        body["note"],
        log_signer(api.settings.node_id, api.settings.node_signing_seed).verifier(),
        [CosignatureVerifier.from_vkey(witness_process.vkey)],
    )
    assert cosigned.checkpoint.size == body["size"]
    assert cosigned.cosignatures[0].timestamp == body["cosignatures"][0]["timestamp"]
    assert (
        api.get("/v1/audit/checkpoint", as_="oversight", params={"witnessed": True}).json()["size"]
        == body["size"]
    )
    assert count_rows(sync_engine, "audit_cosignatures") == 2

    # What the witness holds is an earlier checkpoint the auditor can verify an export against.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert palermo(["witness", "show", "--state", str(witness_process.state)]) == 0
    held = out.getvalue()
    assert held.split("\n")[1] == str(body["size"])
    bundle = export(api)
    assert verify(tmp_path, bundle, verifier_key(api.settings), [held, body["note"]]).code == 0


def test_the_node_catches_up_with_a_witness_it_lost_track_of(
    api: Api, witness_process: RunningWitness, sync_engine: Engine
) -> None:
    sequence(api.settings, batch_size=10)  # several checkpoints
    with sync_engine.connect() as conn:
        first = conn.execute(
            text("SELECT note FROM audit_checkpoints ORDER BY size LIMIT 1")
        ).scalar_one()
    # Someone else showed the witness an earlier checkpoint; the node does not know.
    r = httpx.post(f"{witness_process.url}/add-checkpoint", content=b"old 0\n\n" + first.encode())
    assert r.status_code == 200, r.text
    assert collect(api.settings, witness_process) == 1  # 409 with size 10, then a proof from 10
    assert count_rows(sync_engine, "audit_cosignatures") == 1


def test_a_witness_refuses_to_cosign_a_rewritten_history(
    api: Api, witness_process: RunningWitness, sync_engine: Engine
) -> None:
    run_scenario(api, messages=1)
    assert collect(api.settings, witness_process) == 1
    cosigned_size = int(api.get("/v1/audit/checkpoint", as_="oversight").json()["size"])
    event, leaf = leaf_at(sync_engine, 3)
    disable_append_only(sync_engine)
    with sync_engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_events SET leaf = :l WHERE id = :i"), {"l": leaf + b" ", "i": event}
        )
    assert rebuild_log(sync_engine, api.settings) == cosigned_size  # same size, another root
    assert collect(api.settings, witness_process) == 0
    assert count_rows(sync_engine, "audit_cosignatures") == 0
    evidence = list(
        witness_process.state.with_name(witness_process.state.name + ".evidence").iterdir()
    )
    assert len(evidence) == 1
    # The log grows: the witness still refuses, as no proof leads from what it cosigned.
    run_scenario(api, messages=1)
    assert collect(api.settings, witness_process) == 0


@pytest.mark.worker
def test_a_worker_sequences_and_collects_cosignatures(
    api: Api, witness_process: RunningWitness, sync_engine: Engine, tmp_path: Path
) -> None:
    """The Celery tasks as beat runs them: a real worker process over Redis sequences the
    log, then (witnesses being configured) sends itself the cosign task."""
    need_service("redis", "127.0.0.1", 6379)
    settings = api.settings
    assert settings.master_key is not None
    assert settings.node_signing_key is not None
    assert settings.token_secret is not None
    broker = f"redis://127.0.0.1:6379/{os.getpid() % 15 + 1}"
    queue = f"palermo-audit-test-{os.getpid()}-{time.monotonic_ns()}"
    env = {
        **os.environ,
        "PALERMO_DATA_DIR": str(settings.data_dir),
        "PALERMO_DATABASE_URL": settings.resolved_database_url,
        "PALERMO_CELERY_BROKER_URL": broker,
        "PALERMO_CELERY_RESULT_BACKEND": f"db+sqlite:///{tmp_path / 'results.db'}",
        "PALERMO_MASTER_KEY": settings.master_key.get_secret_value(),
        "PALERMO_NODE_SIGNING_KEY": settings.node_signing_key.get_secret_value(),
        "PALERMO_TOKEN_SECRET": settings.token_secret.get_secret_value(),
        "PALERMO_NODE_ID": settings.node_id,
        "PALERMO_ENV": "test",
        "PALERMO_WITNESS_URLS": witness_process.url,
        "PALERMO_WITNESS_KEYS": witness_process.vkey,
    }
    log_file = tmp_path / "worker.log"
    command = [sys.executable, "-m", "broker.cli", "worker", "--pool", "solo", "--queues", queue]
    command += ["--hostname", f"{queue}@%h"]
    with log_file.open("wb") as sink:
        proc = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        app = make_celery(settings.model_copy(update={"celery_broker_url": broker}))
        app.send_task("palermo.oversight.sequence", queue=queue)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and count_rows(sync_engine, "audit_cosignatures") == 0:
            assert proc.poll() is None, log_file.read_text()[-3000:]
            time.sleep(0.2)
        assert count_rows(sync_engine, "audit_cosignatures") == 1, log_file.read_text()[-3000:]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert count_rows(sync_engine, "audit_unsequenced") == 0
    body = api.get("/v1/audit/checkpoint", as_="oversight").json()
    assert body["size"] == count_rows(sync_engine, "audit_events")
    assert [c["witness"] for c in body["cosignatures"]] == ["witness.garante.example"]

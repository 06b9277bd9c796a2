"""Shared by the delivery tests: run the worker's delivery code once, and a real HTTP
endpoint of an agency that checks the node's RFC 9421 signature and answers with a receipt."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from adapters import httpsig
from broker.client import KeyFile
from broker.core.context import node_context
from broker.core.db import Database
from broker.core.settings import Settings
from broker.delivery.pipeline import AdapterPool, BatchReport, deliver_batch
from broker.delivery.tasks import claim_batches, node_identity, retry_policy
from broker.envelopes import dsse
from broker.messages import receipt_payload


def deliver_once(settings: Settings) -> BatchReport:
    """What one relay run and the deliver tasks it sends do, in this process: claim the due
    rows, deliver them as one batch."""

    async def go() -> BatchReport:
        db = Database(settings.resolved_database_url, pool_size=2)
        node = node_context(settings)
        pool = AdapterPool(node_identity(node, settings))
        try:
            ids = await claim_batches(
                db,
                limit=settings.relay_max_per_run,
                batch_size=settings.relay_batch_size,
                lease=settings.delivery_lease_seconds,
            )
            return await deliver_batch(
                db,
                node,
                pool,
                ids,
                policy=retry_policy(settings),
                concurrency=4,
                adapter_timeout=settings.delivery_timeout_seconds,
            )
        finally:
            await pool.aclose()
            await db.dispose()

    return asyncio.run(go())


@dataclass
class Agency:
    """A partner's webhook endpoint: verifies the node's signature, stores each message once
    (by id), answers with a receipt signed by the recipient's own key."""

    node_keys: dict[str, bytes]
    receipt_key: KeyFile
    mode: str = "ok"  # ok | unavailable | refuse | no-receipt
    port: int = 0
    received: dict[str, bytes] = field(default_factory=dict)
    requests: int = 0
    refused_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/palermo/inbox"

    def handle(self, path: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, bytes]:
        with self.lock:
            self.requests += 1
        try:
            httpsig.verify(
                method="POST",
                url=f"http://127.0.0.1:{self.port}{path}",
                headers=headers,
                body=body,
                key_for=self.node_keys.get,
            )
        except httpsig.SignatureError:
            with self.lock:
                self.refused_signatures += 1
            return 401, b""
        if self.mode == "unavailable":
            return 503, b""
        if self.mode == "refuse":
            return 422, b'{"detail": "we do not take this type"}'
        envelope = dsse.parse_envelope_json(body)
        message_id = {k.lower(): v for k, v in headers}["x-palermo-message-id"]
        with self.lock:
            self.received.setdefault(message_id, body)  # deduplicated by envelope id
        if self.mode == "no-receipt":
            return 200, b""
        payload = receipt_payload(
            message_id=message_id,
            sender=self.receipt_key.participant,
            recipient=_sender_of(envelope),
            envelope_sha256=envelope.digest,
            created_at=dt.datetime.now(dt.UTC),
        )
        return 200, dsse.sign_envelope(payload, self.receipt_key.signer).to_json()


def _sender_of(envelope: dsse.UnsafeEnvelope) -> str:
    import orjson

    sender: str = orjson.loads(envelope.payload)["sender"]
    return sender


@contextmanager
def agency_server(agency: Agency) -> Iterator[Agency]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status, answer = agency.handle(self.path, list(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    agency.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield agency
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

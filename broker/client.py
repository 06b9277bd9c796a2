"""A small client for agency systems: sign envelopes with your own key and exchange them.

    from broker.client import KeyFile, PalermoClient, new_payload
    key = KeyFile.load("de.bka.signing.json")
    with PalermoClient("http://127.0.0.1:8000") as client:
        client.login_client("de-bka-system", secret)
        answer = client.send(key, new_payload(sender="de.bka", recipient="it.central-authority",
                                              type="intel.message", legal_basis="UNTOC art. 27",
                                              purpose="investigation 42/2026", body={...}))

Errors from the node arrive as ``ProblemError`` carrying the RFC 9457 problem document.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import httpx
import orjson

from broker.core.chunks import ChunksCorrupt, open_chunks
from broker.core.crypto import (
    CryptoError,
    Signer,
    box_public_key,
    secretbox_decrypt,
    signing_public_key,
    unseal,
)
from broker.core.ids import uuid7
from broker.envelopes import dsse


class ProblemError(Exception):
    """The node answered with an RFC 9457 problem."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")
        self.status = status
        self.problem = problem


@dataclass(frozen=True)
class KeyFile:
    """A self-held Ed25519 signing key: ``{"participant", "kid", "seed"}`` (seed in base64)."""

    participant: str
    kid: str
    seed: bytes

    @classmethod
    def load(cls, path: str | Path) -> KeyFile:
        data = json.loads(Path(path).read_text())
        seed = base64.b64decode(data["seed"], validate=True)
        key = cls(participant=data["participant"], kid=data["kid"], seed=seed)
        if Signer(seed).key_id != key.kid:
            raise ValueError(f"{path}: kid does not match the key")
        return key

    def save(self, path: str | Path) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(
                {
                    "participant": self.participant,
                    "kid": self.kid,
                    "seed": base64.b64encode(self.seed).decode(),
                    "public_key": base64.b64encode(signing_public_key(self.seed)).decode(),
                },
                fh,
                indent=2,
            )

    @property
    def signer(self) -> Signer:
        return Signer(self.seed)


@dataclass(frozen=True)
class EncryptionKeyFile:
    """A self-held X25519 encryption key: ``{"participant", "kid", "private_key"}`` (base64).
    The node seals each message's content key to its public half; only this file opens it."""

    participant: str
    kid: str
    private_key: bytes

    @classmethod
    def load(cls, path: str | Path) -> EncryptionKeyFile:
        data = json.loads(Path(path).read_text())
        private = base64.b64decode(data["private_key"], validate=True)
        if len(private) != 32:
            raise ValueError(f"{path}: an X25519 private key is 32 bytes")
        return cls(participant=data["participant"], kid=data["kid"], private_key=private)

    def save(self, path: str | Path) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(
                {
                    "participant": self.participant,
                    "kid": self.kid,
                    "private_key": base64.b64encode(self.private_key).decode(),
                    "public_key": base64.b64encode(box_public_key(self.private_key)).decode(),
                },
                fh,
                indent=2,
            )


class ExportError(ValueError):
    """An exported message does not open with the key given, or not to its digest."""


def open_exported(key: EncryptionKeyFile, item: dict[str, Any]) -> dict[str, Any]:
    """The countersigned envelope of one item of ``GET /v1/messages/export``, opened with the
    participant's own private key and checked against the digest the node recorded.

    Raises:
        ExportError: the item is sealed to another key (or none), does not open, or does not
            hash to its ``envelope_sha256``.
    """
    if item.get("sealed_key") is None:
        raise ExportError(f"{item['id']}: no copy was sealed to {key.participant}")
    if item.get("enc_kid") != key.kid:
        raise ExportError(f"{item['id']}: sealed to key {item.get('enc_kid')}, not {key.kid}")
    try:
        content_key = unseal(key.private_key, base64.b64decode(item["sealed_key"]))
        envelope_bytes = secretbox_decrypt(content_key, base64.b64decode(item["ciphertext"]))
    except CryptoError as exc:
        raise ExportError(f"{item['id']}: {exc}") from exc
    envelope: dict[str, Any] = orjson.loads(envelope_bytes)
    digest = dsse.envelope_digest(envelope["payloadType"], base64.b64decode(envelope["payload"]))
    if digest != item["envelope_sha256"]:
        raise ExportError(f"{item['id']}: the envelope does not match its recorded digest")
    return envelope


def open_sealed_evidence(
    key: EncryptionKeyFile,
    *,
    file_id: str,
    sealed_key: str,
    enc_kid: str,
    chunk_count: int,
    sha256: str,
    data: BinaryIO,
) -> bytes:
    """An evidence file from ``GET /v1/cases/{id}/evidence/{file}/sealed`` (its body in
    ``data``, its ``X-*`` headers as arguments), opened with the participant's own private
    key and checked against its SHA-256.

    Raises:
        ExportError: sealed to another key, a chunk does not open or is out of place, or the
            file does not hash to ``sha256``.
    """
    if enc_kid != key.kid:
        raise ExportError(f"{file_id}: sealed to key {enc_kid}, not {key.kid}")
    try:
        file_key = unseal(key.private_key, base64.b64decode(sealed_key))
        plain = b"".join(
            open_chunks(data, key=file_key, file_id=file_id, chunk_count=chunk_count, name=file_id)
        )
    except (CryptoError, ChunksCorrupt) as exc:
        raise ExportError(f"{file_id}: {exc}") from exc
    if hashlib.sha256(plain).hexdigest() != sha256:
        raise ExportError(f"{file_id}: the file does not match its recorded SHA-256")
    return plain


def new_payload(
    *,
    sender: str,
    recipient: str,
    type: str,
    body: dict[str, Any],
    legal_basis: str | None = None,
    purpose: str | None = None,
    created_at: dt.datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A payload dict with a fresh UUIDv7 id and the current time."""
    payload: dict[str, Any] = {
        "id": str(uuid7()),
        "type": type,
        "sender": sender,
        "recipient": recipient,
        "created_at": (created_at or dt.datetime.now(dt.UTC)).isoformat(),
        "body": body,
    }
    if legal_basis is not None:
        payload["legal_basis"] = legal_basis
    if purpose is not None:
        payload["purpose"] = purpose
    payload.update(extra)
    return payload


def sign(key: KeyFile, payload: dict[str, Any]) -> dict[str, Any]:
    """The DSSE envelope of ``payload`` signed with ``key``."""
    envelope = dsse.sign_envelope(orjson.dumps(payload), key.signer)
    return envelope.to_dict()


class PalermoClient:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=30.0, transport=transport)
        self.token = token

    def __enter__(self) -> PalermoClient:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        response = self._http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase, "detail": response.text}
            raise ProblemError(response.status_code, problem)
        return response.json()

    def login(self, username: str, password: str) -> str:
        data = self._call(
            "POST",
            "/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": password},
        )
        self.token = str(data["access_token"])
        return self.token

    def login_client(self, client_id: str, client_secret: str) -> str:
        data = self._call(
            "POST",
            "/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )
        self.token = str(data["access_token"])
        return self.token

    def submit(self, envelope: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/v1/messages", json=envelope)
        return result

    def send(self, key: KeyFile, payload: dict[str, Any]) -> dict[str, Any]:
        return self.submit(sign(key, payload))

    def send_draft(self, draft: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/v1/messages", json={"draft": draft})
        return result

    def inbox(self, cursor: str | None = None, limit: int | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if cursor:
            params["cursor"] = cursor
        if limit:
            params["limit"] = limit
        result: dict[str, Any] = self._call("GET", "/v1/inbox", params=params)
        return result

    def message(self, message_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/messages/{message_id}")
        return result

    def content(self, message_id: str, justification: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "GET", f"/v1/messages/{message_id}/content", params={"justification": justification}
        )
        return result

    def export(self, justification: str, *, page_size: int = 200) -> Iterator[dict[str, Any]]:
        """Every item of ``GET /v1/messages/export``, page after page (each page is one
        logged consultation with ``justification``)."""
        after: str | None = None
        while True:
            params: dict[str, Any] = {"justification": justification, "limit": page_size}
            if after:
                params["after"] = after
            page: dict[str, Any] = self._call("GET", "/v1/messages/export", params=params)
            yield from page["items"]
            after = page["next"]
            if not after:
                return

    def receipt(self, message_id: str, envelope: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", f"/v1/messages/{message_id}/receipt", json=envelope or {}
        )
        return result

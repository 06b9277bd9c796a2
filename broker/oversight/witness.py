"""A transparency log witness (c2sp.org/tlog-witness) for Palermo nodes' audit logs.

An oversight body or a partner node runs it (``palermo witness serve``). For each log it is
configured with (origin and the log's Ed25519 verifier key) it keeps the latest checkpoint it
cosigned, and cosigns a new checkpoint only if it extends that one.

What it guarantees:

- It cosigns only a checkpoint signed by the configured key of a configured log (unknown
  origin: 404; no valid signature by that key: 403), whose ``old`` size is the size it
  recorded (else 409 with its size as ``text/x.tlog.size``), and that is consistent with the
  tree it recorded: an RFC 9162 consistency proof that verifies (else 422), or, at equal
  size, the same root (else 409).
- It never cosigns two inconsistent checkpoints of one log, nor a smaller tree after a larger
  one, across restarts: the new state is written to the state file (temporary file, fsync,
  atomic rename, fsync of the directory) before the cosignature is returned, and the check
  and the write happen under one lock (a thread lock and an exclusive ``flock`` on the state
  file's lock, so two processes on one state file also serialise).
- A refusal that proves the log misbehaved (a signed checkpoint inconsistent with the one it
  recorded) is kept as an evidence file beside the state, with the request that caused it.

It does not prove that the log is complete or honest, only that everyone who checks this
witness's cosignature sees one linear history. A lost state file means a new witness: keep it
safe and never restore an old copy.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from audit import (
    CheckpointError,
    CheckpointSignatureError,
    CosignatureSigner,
    Ed25519Verifier,
    InvalidSignatureError,
    NoteError,
    NoteSignature,
    ProofError,
    UnverifiedNoteError,
    open_checkpoint,
    verify_consistency,
)

SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63
MAX_BODY_BYTES = 64 * 1024
_OLD_LINE = re.compile(r"old (0|[1-9][0-9]*)")


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer of the witness: status, content type and body."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class _Submission:
    old: int
    proof: list[bytes]
    note: str


class _RefusedError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.answer = Answer(status, reason + "\n")


def _parse(body: bytes) -> _Submission:
    """Split an add-checkpoint body: old size line, proof lines, blank line, checkpoint."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _RefusedError(400, "the body is not UTF-8") from exc
    head, separator, note = text.partition("\n\n")
    if not separator:
        raise _RefusedError(400, "no blank line between the proof and the checkpoint")
    lines = head.split("\n")
    match = _OLD_LINE.fullmatch(lines[0])
    if match is None:
        raise _RefusedError(400, "the first line must be 'old <size>' (decimal, no leading zero)")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise _RefusedError(400, f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            value = base64.b64decode(line, validate=True)
        except ValueError as exc:
            raise _RefusedError(400, f"proof line {line[:60]!r} is not base64") from exc
        if base64.b64encode(value).decode() != line or len(value) != 32:
            raise _RefusedError(400, "a proof line must be the canonical base64 of a 32-byte hash")
        proof.append(value)
    return _Submission(int(match.group(1)), proof, note)


def _read_state(path: Path) -> dict[str, dict[str, object]]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    logs: dict[str, dict[str, object]] = raw["logs"]
    return logs


def recorded_checkpoints(state_path: Path) -> dict[str, str]:
    """Origin -> the latest checkpoint note cosigned, from a witness's state file.

    Raises:
        OSError, ValueError, KeyError: the state file is unreadable or not a witness's.
    """
    return {origin: str(entry["checkpoint"]) for origin, entry in _read_state(state_path).items()}


class Witness:
    """The witness's state and decision, independent of HTTP (see the module docstring)."""

    def __init__(
        self, *, signer: CosignatureSigner, logs: list[Ed25519Verifier], state_path: Path
    ) -> None:
        self.signer = signer
        self.logs = {verifier.name: verifier for verifier in logs}
        self.state_path = state_path
        self.evidence_dir = state_path.parent / (state_path.name + ".evidence")
        self._lock = threading.Lock()
        state_path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def vkey(self) -> str:
        """The witness's cosignature verifier key, for the nodes' PALERMO_WITNESS_KEYS."""
        return self.signer.verifier().vkey

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.state_path.with_name(self.state_path.name + ".lock")
        with self._lock, open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load(self) -> dict[str, dict[str, object]]:
        return _read_state(self.state_path)

    def _store(self, logs: dict[str, dict[str, object]]) -> None:
        temporary = self.state_path.with_name(self.state_path.name + ".tmp")
        data = json.dumps({"version": 1, "logs": logs}, indent=1, sort_keys=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.state_path)
        directory = os.open(self.state_path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def latest(self, origin: str) -> str | None:
        """The latest checkpoint note this witness cosigned for ``origin``, if any."""
        return recorded_checkpoints(self.state_path).get(origin)

    def _keep_evidence(self, origin: str, body: bytes, reason: str) -> None:
        self.evidence_dir.mkdir(exist_ok=True)
        tag = hashlib.sha256(origin.encode()).hexdigest()[:12]
        path = self.evidence_dir / f"{time.time_ns()}-{tag}.txt"
        path.write_bytes(f"reason: {reason}\norigin: {origin}\n\n".encode() + body)

    def add_checkpoint(self, body: bytes) -> Answer:
        """Handle one add-checkpoint request body (c2sp.org/tlog-witness)."""
        try:
            return self._add_checkpoint(body)
        except _RefusedError as refused:
            return refused.answer

    def _add_checkpoint(self, body: bytes) -> Answer:
        if len(body) > MAX_BODY_BYTES:
            raise _RefusedError(400, f"the body exceeds {MAX_BODY_BYTES} bytes")
        submission = _parse(body)
        origin = submission.note.partition("\n")[0]
        log = self.logs.get(origin)
        if log is None:
            raise _RefusedError(404, f"unknown log origin {origin[:200]!r}")
        try:
            checkpoint = open_checkpoint(submission.note, log, origin=origin)
        except (UnverifiedNoteError, InvalidSignatureError, CheckpointSignatureError) as exc:
            raise _RefusedError(403, f"not signed by the log's key: {exc}") from exc
        except (NoteError, CheckpointError) as exc:
            raise _RefusedError(400, f"not a valid checkpoint: {exc}") from exc
        if submission.old > checkpoint.size:
            raise _RefusedError(
                400, f"old size {submission.old} exceeds the size {checkpoint.size}"
            )
        if submission.proof and submission.old in (0, checkpoint.size):
            raise _RefusedError(
                400, "the consistency proof must be empty from size 0 or equal sizes"
            )

        with self._locked():
            logs = self._load()
            recorded = logs.get(origin)
            size = 0 if recorded is None else int(str(recorded["size"]))
            if submission.old != size:
                return Answer(409, f"{size}\n", SIZE_CONTENT_TYPE)
            if recorded is not None and size > 0:
                old_root = base64.b64decode(str(recorded["root"]))
                try:
                    verify_consistency(
                        size, checkpoint.size, submission.proof, old_root, checkpoint.root_hash
                    )
                except ProofError as exc:
                    reason = f"inconsistent with the checkpoint of size {size} cosigned before"
                    self._keep_evidence(origin, body, f"{reason}: {exc}")
                    if checkpoint.size == size:
                        return Answer(409, f"{size}\n", SIZE_CONTENT_TYPE)
                    raise _RefusedError(422, f"{reason}: {exc}") from exc
            logs[origin] = {
                "size": checkpoint.size,
                "root": base64.b64encode(checkpoint.root_hash).decode(),
                "checkpoint": submission.note,
                "updated": int(time.time()),
            }
            self._store(logs)
        cosignature = self.signer.sign(checkpoint.body().encode("utf-8"))
        line = NoteSignature(self.signer.name, self.signer.key_id, cosignature).line()
        return Answer(200, line)


def create_witness_app(witness: Witness) -> Starlette:
    """The witness's HTTP interface: ``POST /add-checkpoint``."""

    async def add_checkpoint(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return PlainTextResponse(f"the body exceeds {MAX_BODY_BYTES} bytes\n", 400)
        body = await request.body()
        answer = await run_in_threadpool(witness.add_checkpoint, body)
        return Response(answer.body, answer.status, media_type=answer.content_type)

    return Starlette(routes=[Route("/add-checkpoint", add_checkpoint, methods=["POST"])])

"""Request limits, applied before any work is done for a request (docs/security.md).

A pure ASGI middleware, so that it runs before routing, before FastAPI reads a body and before
any dependency opens a database session:

- **Credentials first.** A ``POST``/``PUT``/``PATCH``/``DELETE`` to ``/v1`` (but the token
  endpoint and the federation endpoints, which a peer node's signature authenticates) must carry
  a valid bearer token, checked without the database, or it is refused with 401 before one
  byte of its body is read.
- **Size while streaming.** A declared ``Content-Length`` over the route's limit is refused at
  once; a body without one (chunked) is counted as it arrives and cut with 413 at the limit.
  Evidence uploads have ``evidence_max_bytes``, federation batches
  ``Settings.resolved_federation_batch_max_bytes``; everything else
  ``Settings.resolved_request_max_bytes``.
- **Time.** A body that sends nothing for ``body_idle_timeout_seconds``, or (evidence aside)
  is not whole within ``body_timeout_seconds``, is cut with 408: a slow client cannot hold a
  connection, a worker or a transaction.

Errors raised while the application reads the body are Starlette ``HTTPException``s, which
FastAPI passes through to the application's handlers (problem+json on ``/v1``, an error page
on the web app's paths).
"""

from __future__ import annotations

import re
import time

import anyio
import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker.core.errors import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX, Unauthenticated
from broker.core.settings import Settings
from broker.http import bearer_claims
from broker.web import error_page, is_page

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# /v1 paths that take a body without a bearer token.
PUBLIC_API_PATHS = frozenset({"/v1/auth/token", "/v1/federation/envelopes", "/v1/federation/batch"})
FEDERATION_BATCH = "/v1/federation/batch"
EVIDENCE_UPLOAD = re.compile(r"^(/v1)?/cases/[^/]+/evidence$")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit} bytes")


class BodyTimeout(HTTPException):
    def __init__(self, why: str) -> None:
        super().__init__(408, why)


WWW_AUTHENTICATE = 'Bearer realm="palermo"'


class _Body:
    """The application's ``receive``: counts the body and times it while it arrives."""

    def __init__(
        self, receive: Receive, *, limit: int, idle: float, total: float | None, expected: bool
    ) -> None:
        self._receive = receive
        self.limit = limit
        self.idle = idle
        self.total = total
        self.deadline = None if total is None else time.monotonic() + total
        self.received = 0
        self.whole = not expected

    async def receive(self) -> Message:
        if self.whole:  # after the body, receive only waits for the client to go away
            return await self._receive()
        timeout = self.idle
        late = f"the request body was not whole within {self.total or 0:g} s"
        why = f"the request body sent nothing for {self.idle:g} s"
        if self.deadline is not None and self.deadline - time.monotonic() < timeout:
            timeout, why = self.deadline - time.monotonic(), late
            if timeout <= 0:
                raise BodyTimeout(late)
        message: Message | None = None
        with anyio.move_on_after(timeout):
            message = await self._receive()
        if message is None:
            raise BodyTimeout(why)
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise BodyTooLarge(self.limit)
            self.whole = not message.get("more_body", False)
        return message


class RequestLimits:
    """Credentials, body size and body time limits, before the application runs."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        headers = dict(scope["headers"])
        evidence = method == "POST" and EVIDENCE_UPLOAD.match(scope["path"]) is not None
        if evidence:
            limit = self.settings.evidence_max_bytes
        elif method == "POST" and scope["path"] == FEDERATION_BATCH:
            limit = self.settings.resolved_federation_batch_max_bytes
        else:
            limit = self.settings.resolved_request_max_bytes
        refusal = self._before_body(scope, headers, limit)
        if refusal is not None:
            await self._refuse(scope, send, *refusal)
            return
        body = _Body(
            receive,
            limit=limit,
            idle=self.settings.body_idle_timeout_seconds,
            total=None if evidence else self.settings.body_timeout_seconds,
            expected=method in BODY_METHODS
            or b"content-length" in headers
            or b"transfer-encoding" in headers,
        )
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, body.receive, tracking_send)
        except (BodyTooLarge, BodyTimeout) as exc:
            # Raised outside FastAPI's body parsing (a streaming endpoint, a middleware).
            if started:
                raise
            slug = "payload-too-large" if exc.status_code == 413 else "request-timeout"
            await self._refuse(scope, send, exc.status_code, slug, str(exc.detail))

    def _before_body(
        self, scope: Scope, headers: dict[bytes, bytes], limit: int
    ) -> tuple[int, str, str] | None:
        """(status, slug, detail) of a refusal that needs no byte of the body, or None."""
        path: str = scope["path"]
        if (
            scope["method"] in BODY_METHODS
            and path.startswith("/v1/")
            and path not in PUBLIC_API_PATHS
        ):
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            try:
                bearer_claims(authorization, self.settings)
            except Unauthenticated as exc:
                return 401, "unauthenticated", exc.detail
        declared = headers.get(b"content-length", b"")
        if declared:
            if not declared.isdigit() or len(declared) > 19:
                return 400, "bad-request", "Content-Length is not a size in bytes"
            if int(declared) > limit:
                return (
                    413,
                    "payload-too-large",
                    f"the request body is over the limit of {limit} bytes",
                )
        return None

    async def _refuse(self, scope: Scope, send: Send, status: int, slug: str, detail: str) -> None:
        extra = {"WWW-Authenticate": WWW_AUTHENTICATE} if status == 401 else {}
        extra["Connection"] = "close"  # the unread body is not ours to drain

        async def nothing() -> Message:
            return {"type": "http.disconnect"}

        if is_page(scope["path"]):
            page = error_page(Request(scope), status, slug=slug, detail=detail, headers=extra)
            await page(scope, nothing, send)
            return
        body = orjson.dumps(
            {
                "type": PROBLEM_TYPE_PREFIX + slug,
                "title": {
                    400: "Bad request",
                    401: "Authentication is required",
                    408: "The request body was too slow",
                    413: "The payload exceeds the size limit",
                }[status],
                "status": status,
                "detail": detail,
                "instance": scope["path"],
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                    *((k.lower().encode(), v.encode()) for k, v in extra.items()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

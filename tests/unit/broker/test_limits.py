"""Request limits before any work (broker/limits.py): credentials before the body, size while
streaming, time while receiving. The middleware is driven over raw ASGI, so the tests see
exactly which bytes it reads."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from fastapi import FastAPI, Request
from starlette.types import Message

from broker.core.settings import Settings
from broker.core.tokens import issue_token
from broker.limits import RequestLimits

SECRET = base64.b64encode(b"k" * 48).decode()


def _settings(**over: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "token_secret": SECRET,
        "public_url": "http://testserver",
        "max_payload_bytes": 1024,
        "request_max_bytes": 4096,
        "evidence_max_bytes": 10_000,
        "body_idle_timeout_seconds": 0.2,
        "body_timeout_seconds": 1.0,
    }
    return Settings(**{**values, **over})


def _token(settings: Settings) -> str:
    token, _ = issue_token(
        secret=settings.token_secret_bytes,
        issuer=settings.resolved_issuer,
        audience=settings.token_audience,
        subject="acct",
        participant_id="it.central-authority",
        roles=frozenset({"officer"}),
        kind="person",
        ttl_seconds=600,
    )
    return token


def _echo_app() -> FastAPI:
    """An application whose routes read the body as FastAPI does (JSON) and as a raw stream."""
    app = FastAPI()

    @app.post("/v1/things")
    async def things(body: dict[str, Any]) -> dict[str, int]:
        return {"keys": len(body)}

    @app.post("/v1/cases/{case_id}/evidence")
    async def evidence(case_id: str, request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"size": size}

    @app.post("/v1/federation/envelopes")
    async def federation(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.get("/v1/inbox")
    async def inbox() -> dict[str, bool]:
        return {"ok": True}

    return app


Chunk = bytes | None  # None: the client stalls here


async def _call(
    app: Callable[..., Awaitable[None]],
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    chunks: list[Chunk] | None = None,
) -> tuple[int, dict[str, str], bytes, int]:
    """Send one request over ASGI; returns status, headers, body and how many body chunks the
    application asked for."""
    pending: list[Chunk] = list(chunks or [])
    asked = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not pending:
            await asyncio.sleep(3600)  # the client keeps the connection and sends nothing
        asked += 1
        chunk = pending.pop(0)
        if chunk is None:
            await asyncio.sleep(3600)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    got = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], got, body, asked


def _limits(settings: Settings | None = None) -> RequestLimits:
    return RequestLimits(_echo_app(), settings=settings or _settings())


def test_a_body_without_credentials_is_refused_before_one_byte_is_read() -> None:
    status, headers, body, asked = asyncio.run(
        _call(_limits(), "POST", "/v1/things", chunks=[b"x" * 1000, b"y" * 1000])
    )
    assert status == 401
    assert asked == 0
    assert headers["www-authenticate"] == 'Bearer realm="palermo"'  # RFC 6750 section 3
    assert headers["content-type"] == "application/problem+json"
    assert orjson.loads(body)["type"].endswith(":unauthenticated")


def test_a_forged_token_is_refused_before_the_body_too() -> None:
    other = _settings(token_secret=base64.b64encode(b"o" * 48).decode())
    headers = {"authorization": f"Bearer {_token(other)}"}
    status, _, _, asked = asyncio.run(
        _call(_limits(), "POST", "/v1/things", headers=headers, chunks=[b"{}"])
    )
    assert (status, asked) == (401, 0)


def test_the_token_and_federation_endpoints_take_a_body_without_a_bearer_token() -> None:
    status, _, body, _ = asyncio.run(
        _call(_limits(), "POST", "/v1/federation/envelopes", chunks=[b"abc"])
    )
    assert (status, orjson.loads(body)) == (200, {"size": 3})


def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    settings = _settings()
    headers = {"authorization": f"Bearer {_token(settings)}", "content-length": "4097"}
    status, _, body, asked = asyncio.run(
        _call(_limits(settings), "POST", "/v1/things", headers=headers, chunks=[b"x"])
    )
    assert (status, asked) == (413, 0)
    assert "4096" in orjson.loads(body)["detail"]


@pytest.mark.parametrize("declared", ["12abc", "99999999999999999999999", "²"])
def test_a_content_length_that_is_not_a_size_is_a_400(declared: str) -> None:
    settings = _settings()
    headers = {"authorization": f"Bearer {_token(settings)}", "content-length": declared}
    status, _, _, asked = asyncio.run(
        _call(_limits(settings), "POST", "/v1/things", headers=headers, chunks=[b"{}"])
    )
    assert (status, asked) == (400, 0)


def test_a_chunked_body_is_cut_at_the_limit_while_it_streams() -> None:
    settings = _settings()
    headers = {"authorization": f"Bearer {_token(settings)}", "transfer-encoding": "chunked"}
    chunks: list[Chunk] = [b"x" * 1000] * 20  # 20 kB, never declared
    status, _, body, asked = asyncio.run(
        _call(_limits(settings), "POST", "/v1/things", headers=headers, chunks=chunks)
    )
    assert status == 413
    assert asked == 5  # the fifth chunk passes 4096 bytes: nothing after it is read
    assert "4096" in orjson.loads(body)["detail"]


def test_evidence_uploads_have_their_own_limit_streamed_too() -> None:
    settings = _settings()
    headers = {"authorization": f"Bearer {_token(settings)}"}
    fits: list[Chunk] = [b"x" * 1000] * 9
    status, _, body, _ = asyncio.run(
        _call(_limits(settings), "POST", "/v1/cases/c1/evidence", headers=headers, chunks=fits)
    )
    assert (status, orjson.loads(body)) == (200, {"size": 9000})
    over: list[Chunk] = [b"x" * 1000] * 11
    status, _, _, asked = asyncio.run(
        _call(_limits(settings), "POST", "/v1/cases/c1/evidence", headers=headers, chunks=over)
    )
    assert (status, asked) == (413, 11)


def test_a_stalled_body_is_cut_with_408_after_the_idle_timeout() -> None:
    settings = _settings()
    headers = {"authorization": f"Bearer {_token(settings)}", "content-length": "100"}
    status, _, body, _ = asyncio.run(
        _call(_limits(settings), "POST", "/v1/things", headers=headers, chunks=[b"{", None])
    )
    assert status == 408
    assert "nothing for 0.2 s" in orjson.loads(body)["detail"]


def test_a_trickling_body_is_cut_at_the_total_timeout() -> None:
    settings = _settings()

    async def trickle() -> tuple[int, bytes]:
        inner = _echo_app()
        app = RequestLimits(inner, settings=settings)
        sent: list[dict[str, Any]] = []

        async def receive() -> Message:
            await asyncio.sleep(0.1)  # under the idle limit, for ever
            return {"type": "http.request", "body": b" ", "more_body": True}

        async def send(message: Message) -> None:
            sent.append(dict(message))

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/things",
            "raw_path": b"/v1/things",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"authorization", f"Bearer {_token(settings)}".encode())],
            "client": ("127.0.0.1", 5000),
            "server": ("testserver", 80),
        }
        await asyncio.wait_for(app(scope, receive, send), timeout=10)
        status = next(m for m in sent if m["type"] == "http.response.start")["status"]
        return status, b"".join(m.get("body", b"") for m in sent[1:])

    status, body = asyncio.run(trickle())
    assert status == 408
    assert "not whole within 1 s" in orjson.loads(body)["detail"]


def test_a_get_passes_and_the_wait_for_a_disconnect_is_not_timed() -> None:
    status, _, body, _ = asyncio.run(_call(_limits(), "GET", "/v1/inbox"))
    assert (status, orjson.loads(body)) == (200, {"ok": True})

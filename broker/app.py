"""The ``api`` process: the FastAPI application.

Every error leaves as RFC 9457 problem+json; every response carries ``X-Request-ID``; every
log line written while serving a request carries that id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram
from pydantic import BaseModel
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.destinations import rules_from
from broker import apidocs, openapi
from broker.accounts import service as accounts_service
from broker.accounts.views import router as accounts_router
from broker.cases.views import router as cases_router
from broker.consents import service as consents_service
from broker.consents.views import router as consents_router
from broker.core.context import node_context
from broker.core.crypto import Signer
from broker.core.db import Database
from broker.core.errors import (
    PROBLEM_CONTENT_TYPE,
    PROBLEM_TYPE_PREFIX,
    PalermoError,
    Unauthenticated,
)
from broker.core.logging import bind_contextvars, clear_contextvars, configure_logging, get_logger
from broker.core.settings import Settings
from broker.delivery.service import check_adapters
from broker.delivery.views import router as delivery_router
from broker.federation.views import router as federation_router
from broker.fiu.views import router as fiu_router
from broker.http import checked_json_text
from broker.limits import WWW_AUTHENTICATE, RequestLimits
from broker.messages.views import router as messages_router
from broker.metrics import Metrics
from broker.oversight.views import router as audit_router
from broker.participants.views import router as participants_router
from broker.policy.service import node_policy, record_policy_loaded
from broker.policy.views import router as policy_router
from broker.statistics.views import router as statistics_router
from broker.web import error_page, is_page
from broker.web import install as install_web

log = get_logger("palermo.api")

REQUESTS = Histogram(
    "palermo_http_request_seconds", "HTTP request latency", ["method", "route", "status"]
)
ERRORS = Counter("palermo_problems_total", "Problem responses by type", ["type"])


def problem_response(body: dict[str, Any], status: int) -> Response:
    ERRORS.labels(body.get("type", "")).inc()
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_CONTENT_TYPE)


class RequestContextMiddleware:
    """Binds a request id to the logging context and writes one access line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 128 else uuid.uuid4().hex
        clear_contextvars()
        bind_contextvars(request_id=request_id)
        start = time.perf_counter()
        status_holder = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            route_path = getattr(route, "path", "unmatched")
            REQUESTS.labels(scope["method"], route_path, str(status_holder[0])).observe(elapsed)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status_holder[0],
                duration_ms=round(elapsed * 1000, 2),
            )


def broker_reachable(s: Settings, timeout: float = 2.0) -> None:
    """Raises (any kombu or OS error) unless the message broker accepts a connection."""
    from kombu.connection import Connection

    with Connection(s.resolved_broker_url, connect_timeout=timeout) as conn:  # type: ignore[no-untyped-call]
        conn.ensure_connection(max_retries=1, timeout=timeout)


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


class NodeInfo(BaseModel):
    node_id: str
    signing_key_id: str
    signing_public_key: str


def _first(errors: list[dict[str, Any]]) -> str:
    return f"{errors[0]['field']}: {errors[0]['message']}" if errors else ""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.check_startup()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, json=settings.log_json)
        # Production: never serve as a superuser or as the owner of the tables (fail closed).
        await anyio.to_thread.run_sync(settings.check_database_role, "the api")
        app.state.db = Database(
            settings.resolved_database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        app.state.metrics = Metrics(app.state.db, settings)
        try:
            # An unknown adapter or an unusable adapter configuration stops the node here,
            # at start, with the participants named, not at the first delivery.
            async with app.state.db.session() as session:
                await check_adapters(session, rules=rules_from(settings))
            # A change of the packs (or reference data) the node enforces is itself audited.
            async with app.state.db.session() as session:
                if await record_policy_loaded(
                    session, node_id=settings.node_id, policy=app.state.policy, actor=None
                ):
                    await session.commit()
            yield
        finally:
            await app.state.db.dispose()

    app = FastAPI(
        title="Palermo",
        version="0.1.0",
        description="Secure broker for inter-agency information exchange and mutual legal "
        "assistance. Errors are RFC 9457 problem+json.",
        lifespan=lifespan,
        dependencies=[Depends(checked_json_text)],
        # Swagger UI and ReDoc load from a public CDN: /docs is the node's own page.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.node = node_context(settings)
    app.state.callers = accounts_service.caller_for
    app.state.message_consents = consents_service.message_consents_under
    # The packs are loaded and checked now: a bad pack stops the node before it serves.
    app.state.policy = node_policy(settings)
    # Limits run inside the request context (so a refusal is logged with its request id) and
    # before anything else: routing, body parsing, sessions.
    app.add_middleware(RequestLimits, settings=settings)
    app.add_middleware(RequestContextMiddleware)

    _install_error_handlers(app)
    app.include_router(accounts_router)
    app.include_router(participants_router)
    app.include_router(messages_router)
    app.include_router(consents_router)
    app.include_router(policy_router)
    app.include_router(delivery_router)
    app.include_router(federation_router)
    app.include_router(audit_router)
    app.include_router(cases_router)
    app.include_router(fiu_router)
    app.include_router(statistics_router)
    install_web(app)

    _install_ops_routes(app, settings)
    openapi.install(app)
    apidocs.install(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as problem+json on the API's paths and as a page on the web app's."""

    @app.exception_handler(PalermoError)
    async def palermo_error(request: Request, exc: PalermoError) -> Response:
        log.info("problem", problem=exc.slug, detail=exc.detail)
        if is_page(request.url.path):
            return error_page(request, exc.status, slug=exc.slug, detail=exc.detail)
        response = problem_response(exc.problem(request.url.path), exc.status)
        if exc.status == 401 and isinstance(exc, Unauthenticated):  # RFC 6750 section 3
            challenge = WWW_AUTHENTICATE
            if request.headers.get("authorization"):
                challenge += ', error="invalid_token"'
            response.headers["WWW-Authenticate"] = challenge
        if "retry_after" in exc.extra:  # RFC 9110 section 10.2.3, with 429 and 503
            response.headers["Retry-After"] = str(exc.extra["retry_after"])
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ())),
                "message": err.get("msg", ""),
            }
            for err in exc.errors()
        ]
        if is_page(request.url.path):
            return error_page(request, 422, slug="schema-violation", detail=_first(errors))
        if any(err.get("type") == "json_invalid" for err in exc.errors()):
            body = {
                "type": PROBLEM_TYPE_PREFIX + "malformed-json",
                "title": "The request body is not valid JSON",
                "status": 400,
                "detail": "the request body is not valid JSON",
                "instance": request.url.path,
            }
            return problem_response(body, 400)
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        body = {
            "type": PROBLEM_TYPE_PREFIX + "schema-violation",
            "title": "The request does not match the schema",
            "status": 422,
            "detail": f"{first['field']}: {first['message']}",
            "instance": request.url.path,
            "errors": errors,
        }
        return problem_response(body, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        slug = {
            404: "not-found",
            405: "method-not-allowed",
            408: "request-timeout",
            413: "payload-too-large",
        }.get(exc.status_code, "http-error")
        headers = dict(exc.headers or {})  # 405 carries Allow (RFC 9110 section 15.5.6)
        if exc.status_code in (408, 413):
            headers["Connection"] = "close"
        if is_page(request.url.path):
            # Starlette's detail ("Not Found") says no more than the page's own heading.
            detail = str(exc.detail) if exc.status_code in (408, 413) else ""
            return error_page(request, exc.status_code, slug=slug, detail=detail, headers=headers)
        body = {
            "type": PROBLEM_TYPE_PREFIX + slug,
            "title": str(exc.detail),
            "status": exc.status_code,
            "detail": f"{request.method} {request.url.path}: {exc.detail}",
            "instance": request.url.path,
        }
        response = problem_response(body, exc.status_code)
        response.headers.update(headers)
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        if is_page(request.url.path):
            return error_page(request, 500, slug="internal", detail="")
        body = {
            "type": PROBLEM_TYPE_PREFIX + "internal",
            "title": "Internal error",
            "status": 500,
            "detail": "the node failed to handle this request; it is logged with its request id",
        }
        return problem_response(body, 500)


def _install_ops_routes(app: FastAPI, settings: Settings) -> None:
    """Node identity, liveness, readiness and metrics."""
    signer: Signer = app.state.node.signer

    @app.get("/v1/node", response_model=NodeInfo, tags=["node"])
    async def node_info() -> NodeInfo:
        """The node's public identity: what verifies its countersignatures."""
        import base64

        return NodeInfo(
            node_id=settings.node_id,
            signing_key_id=signer.key_id,
            signing_public_key=base64.b64encode(signer.public_key).decode(),
        )

    @app.get("/healthz", response_model=Health, tags=["health"])
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, tags=["health"])
    async def readyz(request: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            async with request.app.state.db.session() as session:
                await session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}"
        try:
            await anyio.to_thread.run_sync(broker_reachable, settings)
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"down: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics (broker/metrics.py): a bearer token when PALERMO_METRICS_TOKEN
        is set; disabled in production without one."""
        node_metrics: Metrics = request.app.state.metrics
        node_metrics.check_access(request.headers.get("authorization"))
        return Response(await node_metrics.render(), media_type=CONTENT_TYPE_LATEST)

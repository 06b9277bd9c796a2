"""The web app for officers and supervisors: server-rendered pages over the domain services.

``install`` mounts it in the FastAPI app: its routes, its static files, its security headers
and the redirect to sign-in; ``error_page`` is how the app's error handlers answer a page.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from broker.web.rendering import STATIC_DIR, SecurityHeadersMiddleware, is_page, render
from broker.web.views import (
    PasswordChangeFirst,
    SignInRequired,
    password_change_redirect,
    router,
    sign_in_redirect,
)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeadersMiddleware)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return sign_in_redirect(request, exc)

    @app.exception_handler(PasswordChangeFirst)
    async def _password_first(request: Request, exc: PasswordChangeFirst) -> Response:
        return password_change_redirect(request, exc)


def error_page(
    request: Request, status: int, *, slug: str, detail: str, headers: dict[str, str] | None = None
) -> Response:
    """An HTML page saying what went wrong, in the reader's language, with ``status``."""
    context: dict[str, Any] = {
        "status": status,
        "slug": slug,
        "detail": detail,
        "request_id": structlog.contextvars.get_contextvars().get("request_id"),
    }
    # No forms on an error page: it is rendered without looking up the session, so it cannot
    # know which CSRF token a signed-in reader's forms need.
    return render(
        request, "error.html", context, user=None, status=status, headers=headers, forms=False
    )


__all__ = ["error_page", "install", "is_page"]

"""Pages: one Jinja2 environment per language, the context every page gets, and the
headers every web response carries.

Invariants:
- Templates autoescape and use StrictUndefined: a missing value is an error, not a blank.
- Every web response but the static files is ``Cache-Control: no-store``; every one carries the
  Content-Security-Policy (no inline script or style, no framing), ``nosniff`` and a
  Referrer-Policy. ``/v1`` and the operations routes are left as they are.
- Every page carries a CSRF token for its forms: the session's when signed in, else a
  pre-session token from the ``palermo_csrf`` cookie (double submit), set when missing.
"""

from __future__ import annotations

import secrets
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker.core.settings import Settings
from broker.web import i18n
from broker.web.service import WebUser

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "palermo_session"
CSRF_COOKIE = "palermo_csrf"
# Paths that are not the web app: the API for systems and what orchestrators call.
API_PREFIXES = ("/v1/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def is_page(path: str) -> bool:
    """True for the web app's paths, whose errors are HTML pages, not problem+json."""
    return not (path == "/v1" or path.startswith(API_PREFIXES))


@cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    # Texts that come from data, not templates (the workflow tables' summaries and guards):
    # broker.web.catalogs puts them in the catalogs, ``{{ text | tr }}`` translates them.
    env.filters["tr"] = _translator(language)
    return env


def _translator(language: str) -> Any:
    catalog = i18n.translations(language)

    def tr(text: object) -> str:
        return catalog.gettext(str(text)) if text else ""

    return tr


def safe_next(target: str | None) -> str:
    """A local path to go to after a form, never another site (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    user: WebUser | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    forms: bool = True,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    language = i18n.negotiate(
        request.cookies.get(i18n.LANGUAGE_COOKIE), request.headers.get("accept-language")
    )
    timezone = i18n.timezone_or(
        request.cookies.get(i18n.TIMEZONE_COOKIE), settings.web_default_timezone
    )
    new_csrf = None
    if not forms:
        csrf = ""
    elif user is not None:
        csrf = user.csrf_token
    else:
        csrf = request.cookies.get(CSRF_COOKIE) or ""
        if len(csrf) < 32:
            csrf = new_csrf = secrets.token_urlsafe(32)
    page = environment(language).get_template(template)
    body = page.render(
        request=request,
        user=user,
        language=language,
        languages=i18n.LANGUAGE_NAMES,
        csrf_token=csrf,
        here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        fmt=i18n.Formatter(language, timezone),
        **(context or {}),
    )
    response = HTMLResponse(body, status_code=status, headers=headers)
    response.headers["cache-control"] = "no-store"
    response.headers["content-language"] = language
    if new_csrf is not None:
        set_cookie(response, settings, CSRF_COOKIE, new_csrf)
    return response


def set_cookie(
    response: Any, settings: Settings, name: str, value: str, *, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
    )


class SecurityHeadersMiddleware:
    """Adds the web app's security headers to every response outside ``API_PREFIXES``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in {name for name, _ in SECURITY_HEADERS}
                ]
                headers.extend(SECURITY_HEADERS)
                if not scope["path"].startswith("/static/"):
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)

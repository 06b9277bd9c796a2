"""``/docs``: the API's reference as one page of the node's own, rendered on the server from
the OpenAPI document (``/openapi.json``).

Invariants: the page loads nothing from another host (it works on an air-gapped network)
and runs no script: its Content-Security-Policy allows only the node's own stylesheet.
Swagger UI and ReDoc, which FastAPI would load from a public CDN, are switched off.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
METHODS = ("get", "put", "post", "patch", "delete")


def _schema_name(schema: dict[str, Any] | None) -> str:
    if not schema:
        return ""
    ref = schema.get("$ref") or (schema.get("items") or {}).get("$ref")
    if isinstance(ref, str):
        return ref.rsplit("/", 1)[-1] + ("[]" if "items" in schema else "")
    return str(schema.get("type", ""))


def _operation(method: str, path: str, op: dict[str, Any]) -> str:
    anchor = escape(op.get("operationId", f"{method}-{path}"))
    rows = []
    for p in op.get("parameters", []):
        rows.append(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
            f"<td>{'yes' if p.get('required') else 'no'}</td>"
            f"<td>{escape(_schema_name(p.get('schema')))}</td></tr>"
        )
    params = (
        "<table><thead><tr><th>parameter</th><th>in</th><th>required</th><th>type</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else ""
    )
    body = ""
    if "requestBody" in op:
        kinds = ", ".join(
            f"<code>{escape(k)}</code> {escape(_schema_name(v.get('schema')))}"
            for k, v in op["requestBody"].get("content", {}).items()
        )
        body = f"<p>Request body: {kinds}</p>"
    answers = "".join(
        f"<li><code>{escape(code)}</code> {escape(r.get('description', ''))}</li>"
        for code, r in op.get("responses", {}).items()
    )
    return (
        f'<section id="{anchor}"><h3><code>{method.upper()} {escape(path)}</code></h3>'
        f"<p>{escape(op.get('summary', ''))}</p>"
        f"<p>{escape(op.get('description', '')).replace(chr(10) + chr(10), '</p><p>')}</p>"
        f"{params}{body}<ul>{answers}</ul></section>"
    )


def render(openapi: dict[str, Any]) -> str:
    info = openapi.get("info", {})
    sections = []
    for path, item in openapi.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                sections.append(_operation(method, path, item[method]))
    schemas = "".join(
        f'<section id="schema-{escape(name)}"><h3>{escape(name)}</h3>'
        f"<pre>{escape(json.dumps(schema, indent=2, ensure_ascii=False))}</pre></section>"
        for name, schema in openapi.get("components", {}).get("schemas", {}).items()
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(info.get('title', 'API'))} API</title>"
        '<link rel="stylesheet" href="/static/palermo.css"></head>'
        '<body><main class="api-docs">'
        f"<h1>{escape(info.get('title', 'API'))} API {escape(info.get('version', ''))}</h1>"
        f"<p>{escape(info.get('description', ''))}</p>"
        '<p>The machine-readable document: <a href="/openapi.json">/openapi.json</a>.</p>'
        f"<h2>Operations</h2>{''.join(sections)}<h2>Schemas</h2>{schemas}"
        "</main></body></html>"
    )


def install(app: FastAPI) -> None:
    page: list[str] = []

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        if not page:
            page.append(render(app.openapi()))
        return HTMLResponse(
            page[0],
            headers={
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin",
            },
        )

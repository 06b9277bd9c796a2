"""/docs (issue 12): the API reference is a page of the node's own, rendered from the OpenAPI
document, that loads nothing from another host and runs no script; /redoc is gone."""

from __future__ import annotations

import re

from tests.conftest import Api


def test_docs_reference_no_external_host(api: Api) -> None:
    r = api.get("/docs")
    assert r.status_code == 200
    html = r.text
    assert "<script" not in html.lower()
    for url in re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html):
        assert url.startswith(("/", "#")), url
        assert not url.startswith("//"), url
    assert "cdn" not in html.lower()
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp  # no script at all, under default-src 'none'
    assert r.headers["x-content-type-options"] == "nosniff"


def test_docs_describe_every_operation(api: Api) -> None:
    html = api.get("/docs").text
    paths = api.get("/openapi.json").json()["paths"]
    for path, item in paths.items():
        for method in item:
            assert f"<code>{method.upper()} {path}</code>" in html


def test_redoc_is_off(api: Api) -> None:
    assert api.get("/redoc").status_code == 404

"""A TestClient that works the web app as a browser would: cookies, forms, CSRF tokens."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import PASSWORD

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


class Browser:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, follow_redirects=False, **kw)

    def submit(self, page: str, action: str, data: dict[str, str] | None = None) -> Any:
        """Open ``page``, then post the form data to ``action`` with the page's token."""
        token = csrf_of(self.client.get(page).text)
        return self.client.post(
            action, data={"csrf_token": token, **(data or {})}, follow_redirects=False
        )

    def sign_in(self, login: str, password: str = PASSWORD, **kw: Any) -> Any:
        return self.submit("/sign-in", "/sign-in", {"login": login, "password": password, **kw})

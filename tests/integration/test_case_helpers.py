"""Builders shared by the case tests: a complete MLA request, a controllable clock, and
short ways to open cases and fire events through the HTTP API."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import hashlib
from dataclasses import replace
from typing import Any

import orjson

from broker.cases.clocks import parse_clocks
from broker.cases.config import CaseConfig
from broker.cases.scheduler import run_clocks
from broker.cli.sample import MLA_REQUEST
from broker.core.context import node_context
from broker.core.db import Database
from tests.conftest import ACCOUNTS, PASSWORD, Api

# Italy asks the United States (both central authorities of the test world).
REQUESTING, REQUESTED = "it.central-authority", "us.central-authority"
DRAFTER, VETTER = "it.officer", "it.supervisor"
HANDLER, DECIDER = "us.officer", "us.supervisor"


# Logins made during a test (partners registered through the admin API) and their tokens.
TOKENS: dict[str, str] = {}


def call(api: Api, method: str, path: str, who: str, **kw: Any) -> Any:
    """A request as ``who``: a login of the test world, or one registered in this test."""
    if who in ACCOUNTS:
        return api.request(method, path, as_=who, **kw)
    headers = {"Authorization": f"Bearer {TOKENS[who]}", **kw.pop("headers", {})}
    return api.client.request(method, path, headers=headers, **kw)


def register_partner(
    api: Api, participant: str, kind: str, logins: dict[str, str]
) -> dict[str, str]:
    """Register a participant with custodial keys and person accounts through the admin API,
    as a node operator would, and log its people in (password grant). ``logins`` maps each
    login to its role."""
    r = api.post(
        "/v1/participants",
        as_="it.admin",
        json={"id": participant, "kind": kind, "display_name": participant},
    )
    assert r.status_code == 201, r.text
    for purpose in ("signing", "encryption"):
        r = api.post(
            f"/v1/participants/{participant}/keys",
            as_="it.admin",
            json={"purpose": purpose, "generate": True},
        )
        assert r.status_code == 201, r.text
    for login, role in logins.items():
        r = api.post(
            f"/v1/participants/{participant}/accounts",
            as_="it.admin",
            json={
                "kind": "person",
                "login": login,
                "display_name": login,
                "roles": [role],
                "password": PASSWORD,
            },
        )
        assert r.status_code == 201, r.text
        r = api.client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": login, "password": PASSWORD},
        )
        assert r.status_code == 200, r.text
        TOKENS[login] = r.json()["access_token"]
    return logins


def mla_request(**over: Any) -> dict[str, Any]:
    """A request that meets 18(15), in English (which the US accepts), on the IT-US treaty,
    through the central authorities, with a transfer basis (US is outside the LED area)."""
    request: dict[str, Any] = copy.deepcopy(MLA_REQUEST)  # the demo node's sample request
    request.update(over)
    return request


class FakeClock:
    """The node's case clock in tests: moved by hand, never slept on."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.now = start or dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


def use_clock(api: Api, clock: FakeClock) -> FakeClock:
    api.client.app.state.clock = clock  # type: ignore[attr-defined]
    return clock


def open_case(api: Api, as_: str = DRAFTER, expect: int = 201, **body: Any) -> dict[str, Any]:
    body.setdefault("workflow", "mla.request")
    if body["workflow"] == "mla.request":
        body.setdefault("counterpart", REQUESTED)
        body.setdefault("request", mla_request())
    r = call(api, "POST", "/v1/cases", as_, json=body)
    assert r.status_code == expect, r.text
    data: dict[str, Any] = r.json()
    return data


def fire(
    api: Api,
    case_id: str,
    event: str,
    as_: str,
    body: dict[str, Any] | None = None,
    expect: int = 201,
) -> dict[str, Any]:
    payload: dict[str, Any] = {"event": event}
    if body is not None:
        payload["body"] = body
    r = call(api, "POST", f"/v1/cases/{case_id}/events", as_, json=payload)
    assert r.status_code == expect, (event, r.status_code, r.text)
    data: dict[str, Any] = r.json()
    return data


def problem(
    api: Api,
    case_id: str,
    event: str,
    as_: str,
    body: dict[str, Any] | None = None,
    status: int = 422,
) -> dict[str, Any]:
    """Fire an event that must be refused; return the problem document."""
    data = fire(api, case_id, event, as_, body, expect=status)
    assert data["type"].startswith("urn:palermo:problem:"), data
    assert data["detail"], data
    return data


def event_payload(api: Api, fired: dict[str, Any], as_: str) -> dict[str, Any]:
    """The signed payload of a fired event, read as a party reads it: through the content
    route, with a justification (a logged consultation). The answer to firing carries only
    the envelope's digest and signatures. Checks that digest against the payload read."""
    from tests.integration.messaging_helpers import relay

    relay(api.settings)  # a party reads what is delivered to it
    r = call(
        api,
        "GET",
        f"/v1/messages/{fired['event']['message_id']}/content",
        as_,
        params={"justification": "checking the signed event in a test"},
    )
    assert r.status_code == 200, r.text
    raw = base64.b64decode(r.json()["envelope"]["payload"])
    assert hashlib.sha256(raw).hexdigest() == fired["envelope"]["payload_sha256"]
    payload: dict[str, Any] = orjson.loads(raw)
    return payload


def case_of(fired: dict[str, Any]) -> dict[str, Any]:
    case: dict[str, Any] = fired["case"]
    return case


def to_transmitted(api: Api, **request: Any) -> dict[str, Any]:
    case = open_case(api, request=mla_request(**request))
    fire(api, case["id"], "submit_for_vetting", DRAFTER)
    return case_of(fire(api, case["id"], "transmit", VETTER))


def to_assessment(api: Api, **request: Any) -> dict[str, Any]:
    case = to_transmitted(api, **request)
    fire(api, case["id"], "acknowledge", HANDLER)
    return case_of(fire(api, case["id"], "start_assessment", HANDLER))


def to_execution(api: Api, **request: Any) -> dict[str, Any]:
    case = to_assessment(api, **request)
    fire(api, case["id"], "accept", HANDLER)
    body = {"executing_authority": "US Attorney, SDNY"}
    return case_of(fire(api, case["id"], "assign_execution", HANDLER, body))


def upload(api: Api, case_id: str, as_: str, data: bytes, name: str = "records.pdf") -> str:
    r = call(
        api,
        "POST",
        f"/v1/cases/{case_id}/evidence",
        as_,
        params={"name": name},
        content=data,
        headers={"Content-Type": "application/pdf"},
    )
    assert r.status_code == 201, r.text
    file_id: str = r.json()["id"]
    return file_id


def case_config(api: Api) -> CaseConfig:
    state = api.client.app.state  # type: ignore[attr-defined]
    config: CaseConfig | None = getattr(state, "case_config", None)
    if config is None:
        config = CaseConfig.from_settings(api.settings)
        state.case_config = config
    return config


def set_clocks(api: Api, clocks: dict[str, Any], **over: Any) -> CaseConfig:
    """Replace the node's reference clocks (what PALERMO_CASE_CLOCKS_FILE configures)."""
    config = replace(case_config(api), clocks=parse_clocks(clocks, "test"), **over)
    api.client.app.state.case_config = config  # type: ignore[attr-defined]
    return config


def tick(api: Api, now: dt.datetime) -> int:
    """One pass of the node's timers at ``now`` (what the beat-scheduled task runs)."""

    async def go() -> int:
        db = Database(api.settings.resolved_database_url, pool_size=1)
        try:
            return await run_clocks(db, node_context(api.settings), case_config(api), now)
        finally:
            await db.dispose()

    return asyncio.run(go())


def get_case(api: Api, case_id: str, as_: str = DRAFTER) -> dict[str, Any]:
    r = call(api, "GET", f"/v1/cases/{case_id}", as_)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data

"""Web pages: render time of the officer's pages on an embedded node holding 10,000 messages
and 1,000 cases.

    .venv/bin/python -m bench.web [--messages 10000] [--cases 1000] [--requests 200] [--keep]

Phases, all in one run:
1. a fresh embedded node (SQLite in a temporary data directory), migrated and seeded with the
   demo participants and logins (``palermo dev``'s own seeding);
2. the real API and web app as a subprocess (``python -m broker.cli serve``), one worker;
3. ``--messages`` messages through ``POST /v1/messages`` (half from Germany to Italy, half from
   Italy to the United States), delivered by the worker's own delivery code in this process,
   and ``--cases`` MLA cases from Italy to the United States through ``/v1/cases``, spread
   over draft, vetting, transmitted and in execution;
4. the Italian officer (and supervisor, for the approval queue, and the US officer, for the
   home page of the requested side, whose cases wait on it) signs in through the sign-in
   form; each page is fetched ``--requests`` times after a warm-up, one request at a time
   over a keep-alive connection, and the wall time of each answer (status 200 checked) is
   recorded. Case and message pages rotate over the stored cases and messages.

Printed: p50, p95 and max per page, in milliseconds, and the seeding rates. Goal (issue 11):
p95 under 100 ms for every page.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.attachments import Node
from bench.common import percentile
from broker.cli.demo import DEMO_LOGINS_FILE, seed_demo
from broker.cli.sample import INTEL, MLA_REQUEST
from broker.core import migrate
from broker.core.db import Database
from broker.core.settings import Settings, write_secret_files
from broker.delivery.service import relay_outbox

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Api:
    """Bearer-token calls for the demo logins, one connection per thread."""

    def __init__(self, url: str, passwords: dict[str, str]) -> None:
        self.url = url
        self.tokens: dict[str, str] = {}
        with httpx.Client(base_url=url, timeout=60) as http:
            for login, password in passwords.items():
                r = http.post(
                    "/v1/auth/token",
                    data={"grant_type": "password", "username": login, "password": password},
                )
                r.raise_for_status()
                self.tokens[login] = r.json()["access_token"]

    def call(self, http: httpx.Client, login: str, path: str, body: dict[str, Any]) -> Any:
        r = http.post(path, json=body, headers={"Authorization": f"Bearer {self.tokens[login]}"})
        if r.status_code >= 300:
            raise RuntimeError(f"{login} POST {path}: {r.status_code} {r.text[:300]}")
        return r.json()


def _message(i: int) -> tuple[str, dict[str, Any]]:
    if i % 2:
        return "de.officer", {
            "type": "intel.message",
            "recipient": "it.central-authority",
            "purpose": f"investigation {i}/2026 BKA",
            "body": {"summary": f"Vessel sighting number {i}"},
            **INTEL,
        }
    return "it.officer", {
        "type": "intel.message",
        "recipient": "us.central-authority",
        "purpose": f"investigation RG {i}/2026",
        "transfer_basis": "appropriate_safeguards",
        "body": {"summary": f"Courier movement number {i}"},
        **INTEL,
    }


# The events each share of cases goes through, after opening.
_PATHS: list[list[tuple[str, str, dict[str, Any] | None]]] = [
    [],
    [("it.officer", "submit_for_vetting", None)],
    [("it.officer", "submit_for_vetting", None), ("it.supervisor", "transmit", None)],
    [
        ("it.officer", "submit_for_vetting", None),
        ("it.supervisor", "transmit", None),
        ("us.officer", "acknowledge", None),
        ("us.officer", "start_assessment", None),
        ("us.officer", "accept", None),
        ("us.officer", "assign_execution", {"executing_authority": "US Attorney, SDNY"}),
    ],
]


def _case(api: Api, http: httpx.Client, i: int) -> str:
    case = api.call(
        http,
        "it.officer",
        "/v1/cases",
        {"workflow": "mla.request", "counterpart": "us.central-authority", "request": MLA_REQUEST},
    )
    for login, event, body in _PATHS[i % len(_PATHS)]:
        payload: dict[str, Any] = {"event": event}
        if body is not None:
            payload["body"] = body
        api.call(http, login, f"/v1/cases/{case['id']}/events", payload)
    return str(case["id"])


def _in_threads(url: str, n: int, threads: int, work: Any) -> list[Any]:
    """``work(http, i)`` for i in range(n), spread over ``threads`` threads with a client each,
    in the order of i."""

    def chunk(k: int) -> list[Any]:
        with httpx.Client(base_url=url, timeout=120) as http:
            return [work(http, i) for i in range(k, n, threads)]

    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(chunk, range(threads)))
    # part k holds i = k, k + threads, ...: interleave them back into the order of i.
    return [parts[i % threads][i // threads] for i in range(n)]


async def _deliver_all(settings: Settings) -> int:
    """Deliver every due outbox row to the inbox, as the embedded node's relay does."""
    db = Database(settings.resolved_database_url, pool_size=1)
    done = 0
    try:
        while True:
            async with db.session() as session:
                moved = await relay_outbox(session, node_id=settings.node_id, batch_size=500)
                await session.commit()
            if not moved:
                return done
            done += moved
    finally:
        await db.dispose()


def _browser(url: str, login: str, password: str) -> httpx.Client:
    http = httpx.Client(base_url=url, timeout=60, follow_redirects=False)
    page = http.get("/sign-in")
    token = _CSRF.search(page.text)
    if token is None:
        raise RuntimeError("the sign-in page has no CSRF token")
    r = http.post(
        "/sign-in", data={"csrf_token": token.group(1), "login": login, "password": password}
    )
    if r.status_code != 303:
        raise RuntimeError(f"sign-in as {login}: {r.status_code}")
    return http


def _time_page(http: httpx.Client, paths: list[str], requests: int) -> list[float]:
    for path in paths[:10]:  # warm-up
        http.get(path).raise_for_status()
    times: list[float] = []
    for i in range(requests):
        path = paths[i % len(paths)]
        started = time.perf_counter()
        r = http.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path}: {r.status_code}")
    return times


def run(messages: int, cases: int, requests: int, data_dir: Path) -> dict[str, Any]:
    node = Node(data_dir)
    settings = Settings(data_dir=data_dir, env="development", public_url=node.url)
    write_secret_files(data_dir)
    migrate.upgrade(settings.resolved_database_url)
    seed_demo(settings)
    logins = json.loads((data_dir / DEMO_LOGINS_FILE).read_text())
    passwords = {p["login"]: p["password"] for p in logins["people"]}
    node.start()
    figures: dict[str, Any] = {}
    try:
        api = Api(
            node.url,
            {k: passwords[k] for k in ("it.officer", "it.supervisor", "de.officer", "us.officer")},
        )

        started = time.perf_counter()
        ids = _in_threads(
            node.url, messages, 8, lambda http, i: api.call(http, *_swap(_message(i)))["id"]
        )
        figures["messages_per_s"] = messages / (time.perf_counter() - started)
        started = time.perf_counter()
        figures["delivered"] = asyncio.run(_deliver_all(settings))
        figures["delivered_per_s"] = figures["delivered"] / (time.perf_counter() - started)
        started = time.perf_counter()
        case_ids = _in_threads(node.url, cases, 8, lambda http, i: _case(api, http, i))
        figures["cases_per_s"] = cases / (time.perf_counter() - started)

        officer = _browser(node.url, "it.officer", passwords["it.officer"])
        supervisor = _browser(node.url, "it.supervisor", passwords["it.supervisor"])
        requested = _browser(node.url, "us.officer", passwords["us.officer"])
        inbox_ids = [m for i, m in enumerate(ids) if i % 2]
        pages: list[tuple[str, httpx.Client, list[str]]] = [
            ("home", officer, ["/"]),
            ("inbox", officer, ["/inbox"]),
            ("sent", officer, ["/sent"]),
            (
                "message",
                officer,
                [f"/messages/{m}" for m in inbox_ids[:: max(1, len(inbox_ids) // 50)]],
            ),
            ("cases", officer, ["/cases"]),
            ("case", officer, [f"/cases/{c}" for c in case_ids[:: max(1, len(case_ids) // 50)]]),
            ("approvals", supervisor, ["/cases/approvals"]),
            ("home (supervisor)", supervisor, ["/"]),
            ("home (requested)", requested, ["/"]),
        ]
        results = {}
        for name, http, paths in pages:
            times = _time_page(http, paths, requests)
            results[name] = {
                "p50": percentile(times, 50),
                "p95": percentile(times, 95),
                "max": max(times),
            }
        figures["pages"] = results
        return figures
    finally:
        node.stop()


def _swap(pair: tuple[str, dict[str, Any]]) -> tuple[str, str, dict[str, Any]]:
    login, draft = pair
    return login, "/v1/messages", {"draft": draft}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.web", description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--cases", type=int, default=1_000)
    p.add_argument("--requests", type=int, default=200, help="timed requests per page")
    p.add_argument("--keep", action="store_true", help="keep the data directory")
    args = p.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="palermo-bench-web-"))
    try:
        f = run(args.messages, args.cases, args.requests, data_dir)
    finally:
        if args.keep:
            print(f"data directory kept: {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(
        f"seeded {args.messages} messages ({f['messages_per_s']:.0f}/s), "
        f"delivered {f['delivered']} ({f['delivered_per_s']:.0f}/s), "
        f"{args.cases} cases ({f['cases_per_s']:.1f}/s with their events)"
    )
    print(f"{'page':<20} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, r in f["pages"].items():
        print(f"{name:<20} {r['p50']:8.1f} {r['p95']:8.1f} {r['max']:8.1f}")
    worst = max(r["p95"] for r in f["pages"].values())
    print(f"worst p95: {worst:.1f} ms (goal: under 100 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

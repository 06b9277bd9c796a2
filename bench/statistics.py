"""Oversight statistics: the time of one report and its number of SQL statements, as the
number of cases grows.

    .venv/bin/python -m bench.statistics [--cases 1000 10000 50000] [--rounds 3]
        [--pg-url postgresql://postgres@127.0.0.1:5432] [--sqlite]

For each size, a fresh database made by the migrations (PostgreSQL ``palermo_bench_<random>``,
dropped at the end, or with ``--sqlite`` a file in a temporary directory) is filled directly
with rows as the services leave them: six participants in four States, ``--cases`` MLA
requests (a tenth urgent, each with a requested deadline) with four events each (transmit,
acknowledge, accept or refuse with a ground, complete), and two messages per case, a fiftieth
of them dead-lettered, then ``ANALYZE``d. ``broker.statistics.statistics`` then runs
``--rounds`` times unfiltered and with a State and type filter: **best and median seconds,
statements per report**. The number of statements does not depend on the number of cases
(no query per row).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, text

from bench.common import bench_database
from broker.cases.models import Case, CaseEvent
from broker.core import migrate
from broker.core.db import Database
from broker.messages.models import Message
from broker.participants.models import Participant
from broker.statistics import StatisticsFilter
from broker.statistics import statistics as report

PARTIES = [
    ("it.central-authority", "IT"),
    ("us.central-authority", "US"),
    ("nl.fiu", "NL"),
    ("de.bka", "DE"),
    ("it.fiu", "IT"),
    ("us.fiu", "US"),
]
PAIRS = [(0, 1), (1, 0), (0, 3), (3, 0), (2, 4), (5, 2)]
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CHUNK = 5000


def _rows(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    cases, events, messages = [], [], []
    for i in range(n):
        asking, asked = PAIRS[i % len(PAIRS)]
        case_id = str(uuid.uuid4())
        opened = START + dt.timedelta(hours=i % 8000)
        refused = i % 7 == 0
        cases.append(
            {
                "id": case_id,
                "workflow": "mla.request",
                "case_type": "request",
                "requesting_id": PARTIES[asking][0],
                "requested_id": PARTIES[asked][0],
                "opened_by": "bench",
                "opened_at": opened,
                "updated_at": opened,
                "state": "REFUSED" if refused else "EXECUTED",
                "seq": 4,
                "shared_at": opened,
                "projection": {},
                "urgent": i % 10 == 0,
                "confidential": False,
                "extraordinary_costs": False,
                "initiated_by": "written",
                "deadline": opened + dt.timedelta(days=30),
                "fields": [],
                "assistance_types": ["records"] if i % 2 else ["records", "hearing"],
                "data_subject_categories": [],
                "terms": {},
            }
        )
        steps = [("transmit", 0), ("acknowledge", 12 + i % 48)]
        steps.append(("refuse", 200) if refused else ("accept", 100 + i % 300))
        if not refused:
            steps.append(("complete", 500 + i % 900))
        for seq, (name, hours) in enumerate(steps, start=1):
            events.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "case_id": case_id,
                    "seq": seq,
                    "event": name,
                    "from_state": "X",
                    "to_state": "Y",
                    "side": "requesting" if name == "transmit" else "requested",
                    "at": opened + dt.timedelta(hours=hours),
                    "details": {"grounds": ["essential_interests"]} if name == "refuse" else {},
                    "policy_rules": [],
                }
            )
        for k in range(2):
            sender, recipient = (asking, asked) if k == 0 else (asked, asking)
            messages.append(
                {
                    "id": str(uuid.uuid4()),
                    "type": "mla.event",
                    "sender_id": PARTIES[sender][0],
                    "recipient_id": PARTIES[recipient][0],
                    "case_id": case_id,
                    "created_at": opened,
                    "accepted_at": opened,
                    "status": "dead_lettered" if i % 50 == 0 and k else "receipted",
                    "submitted_by": "bench",
                    "payload_size": 1000,
                    "envelope_sha256": "0" * 64,
                    "sender_kid": "bench",
                    "policy_hash": "sha256:bench",
                    "policy_rules": [],
                }
            )
    return cases, events, messages


async def _fill(db: Database, n: int) -> None:
    cases, events, messages = _rows(n)
    async with db.session() as session:
        await session.execute(
            insert(Participant),
            [
                {"id": pid, "kind": "central_authority", "jurisdiction": j, "display_name": pid}
                for pid, j in PARTIES
            ],
        )
        for table, rows in ((Case, cases), (CaseEvent, events), (Message, messages)):
            for i in range(0, len(rows), CHUNK):
                await session.execute(insert(table), rows[i : i + CHUNK])
        await session.commit()
    async with db.engine.connect() as conn:  # as autovacuum would have, on a live node
        await conn.execute(text("ANALYZE"))
        await conn.commit()


async def _measure(db: Database, rounds: int) -> dict[str, tuple[float, float, int]]:
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    out = {}
    now = START + dt.timedelta(days=400)
    for label, where in (
        ("unfiltered", StatisticsFilter()),
        ("state IT, mla.request", StatisticsFilter(state="IT", type="mla.request")),
    ):
        times = []
        for _ in range(rounds):
            statements = 0
            async with db.session() as session:
                began = time.perf_counter()
                await report(session, now=now, where=where, suppress_below=5)
                times.append(time.perf_counter() - began)
            used = statements
        out[label] = (min(times), statistics.median(times), used)
    return out


async def _one(url: str, n: int, rounds: int) -> dict[str, tuple[float, float, int]]:
    migrate.upgrade(url)
    db = Database(url, pool_size=2)
    try:
        began = time.perf_counter()
        await _fill(db, n)
        print(f"  filled {n} cases in {time.perf_counter() - began:.1f} s")
        return await _measure(db, rounds)
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    print("| database | cases | filter | best s | median s | statements |")
    print("|---|---:|---|---:|---:|---:|")
    for n in args.cases:
        if args.sqlite:
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{Path(tmp) / 'bench.db'}"
                figures = asyncio.run(_one(url, n, args.rounds))
        else:
            with bench_database(args.pg_url) as (_name, url):
                figures = asyncio.run(_one(url, n, args.rounds))
        kind = "SQLite" if args.sqlite else "PostgreSQL"
        for label, (best, median, used) in figures.items():
            print(f"| {kind} | {n} | {label} | {best:.3f} | {median:.3f} | {used} |")


if __name__ == "__main__":
    main()

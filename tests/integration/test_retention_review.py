"""A reasoned review extends a retention (P17: content is erased at expiry "unless a reasoned
review extends it"; LED art. 5: a periodic review of the need for storage).

The review opens PALERMO_RETENTION_REVIEW_DAYS (90) before the deadline, when the clocks
remind a case's parties; a supervisor of a party then extends it once, with reasons, by at
most PALERMO_RETENTION_MAX_EXTENSION_DAYS; one ``retention:extended`` leaf; the item stays
readable past its old deadline and is erased at the new one."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Engine, text

from broker.core.db import utcnow
from tests.conftest import Api
from tests.integration.audit_helpers import kept_text
from tests.integration.test_case_helpers import (
    DRAFTER,
    FakeClock,
    fire,
    get_case,
    set_clocks,
    tick,
    to_execution,
    use_clock,
)
from tests.integration.test_retention import WHY, at, erase_at, send

SUPERVISOR = "it.supervisor"
REASONS = "the trial of RG 1234/2026 is set for March: the material is still needed"


def _leaves(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(
            text("SELECT leaf FROM audit_events WHERE kind = 'retention:extended' ORDER BY id")
        ).all()
    return [json.loads(bytes(r[0])) for r in rows]


def _due_in(engine: Engine, message_id: str, days: int) -> dt.datetime:
    """Bring a message's deadline to ``days`` from now, as time passing would."""
    until = utcnow() + dt.timedelta(days=days)
    with engine.begin() as c:
        c.execute(
            text("UPDATE messages SET retention_until = :u WHERE id = :m"),
            {"u": until, "m": message_id},
        )
    return until


def _aware(value: Any) -> dt.datetime:
    """A timestamp as SQLite (text, naive) or PostgreSQL (aware) returns it, in UTC."""
    when = at(value) if isinstance(value, str) else value
    assert isinstance(when, dt.datetime)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _extend(api: Api, path: str, until: dt.datetime, who: str = SUPERVISOR, **over: Any) -> Any:
    body = {"until": until.isoformat(), "reason": REASONS, **over}
    return api.post(path, as_=who, json=body)


def test_a_supervisor_extends_a_message_within_its_review(api: Api, sync_engine: Engine) -> None:
    mid = send(api)["id"]
    path = f"/v1/messages/{mid}/retention"
    old = _due_in(sync_engine, mid, 200)
    r = _extend(api, path, old + dt.timedelta(days=365))
    assert r.status_code == 409, r.text  # the review opens 90 days before the deadline
    assert (old - dt.timedelta(days=90)).date().isoformat() in r.json()["detail"]

    old = _due_in(sync_engine, mid, 30)
    new = old + dt.timedelta(days=365)
    assert _extend(api, path, new, who="it.officer").status_code == 403  # supervisors only
    assert _extend(api, path, new, who="us.supervisor").status_code == 404  # not a holder
    r = _extend(api, path, new)
    assert r.status_code == 200, r.text
    assert at(r.json()["retention_until"]) == new
    (leaf,) = _leaves(sync_engine)
    assert leaf["item"] == "message"
    assert leaf["message_id"] == mid
    assert at(leaf["retention_until_before"]) == old
    assert at(leaf["retention_until"]) == new
    assert kept_text(sync_engine, leaf, "reason") == REASONS
    assert leaf["actor"]["participant"] == "it.central-authority"

    # Past the old deadline it stays; at the new one it goes.
    assert mid not in erase_at(api, old + dt.timedelta(days=1)).messages
    assert api.get(f"/v1/messages/{mid}/content", as_="it.officer", params=WHY).status_code == 200
    assert erase_at(api, new).messages == [mid]
    assert _extend(api, path, new + dt.timedelta(days=10)).status_code == 410


def test_an_extension_must_be_later_bounded_and_reasoned(api: Api, sync_engine: Engine) -> None:
    mid = send(api)["id"]
    path = f"/v1/messages/{mid}/retention"
    old = _due_in(sync_engine, mid, 10)
    cases = [
        (old - dt.timedelta(days=1), {}, "until", "after the current one"),
        (utcnow() + dt.timedelta(days=1827), {}, "until", "at most 1826 days"),
        (old + dt.timedelta(days=30), {"reason": "needed"}, "reason", "at least 10 characters"),
        (old + dt.timedelta(days=30), {"reason": "needed\u0007 for the trial"}, "reason", ""),
    ]
    for until, over, field, says in cases:
        r = _extend(api, path, until, **over)
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field
        assert says in r.json()["detail"]
    r = api.post(path, as_=SUPERVISOR, json={"until": "2031-01-01T00:00:00", "reason": REASONS})
    assert r.status_code == 422  # a deadline without its time zone
    assert _leaves(sync_engine) == []  # nothing half-stored
    row = api.get(f"/v1/messages/{mid}", as_="it.officer").json()
    assert at(row["retention_until"]) == old


def test_a_case_is_reminded_then_extended_by_review(api: Api, sync_engine: Engine) -> None:
    clock = use_clock(api, FakeClock())
    set_clocks(api, {}, retention=dt.timedelta(days=365))
    case = to_execution(api)
    fire(api, case["id"], "withdraw", DRAFTER, {"reason": "Discontinued."})
    old = at(get_case(api, case["id"])["retention_until"])
    path = f"/v1/cases/{case['id']}/retention"
    new = old + dt.timedelta(days=200)
    assert _extend(api, path, new).status_code == 409  # 365 days left: no review yet

    # The clocks remind both parties when the review opens.
    tick(api, old - dt.timedelta(days=90))
    events = get_case(api, case["id"])["timeline"]
    (reminder,) = [e for e in events if e["event"] == "retention_review"]
    assert at(reminder["details"]["retention_until"]) == old
    tick(api, old - dt.timedelta(days=89))
    events = get_case(api, case["id"])["timeline"]
    assert len([e for e in events if e["event"] == "retention_review"]) == 1  # once

    clock.now = old - dt.timedelta(days=30)
    r = _extend(api, path, new, who="us.supervisor")  # either party's supervisor
    assert r.status_code == 200, r.text
    assert at(r.json()["retention_until"]) == new
    (leaf,) = _leaves(sync_engine)
    assert (leaf["item"], leaf["case_id"]) == ("case", case["id"])
    assert at(leaf["retention_until_before"]) == old
    assert leaf["actor"]["participant"] == "us.central-authority"
    extended = [e for e in r.json()["timeline"] if e["event"] == "retention_extended"]
    assert len(extended) == 1
    # Its messages follow the case.
    with sync_engine.connect() as c:
        deadlines = {
            _aware(u)
            for (u,) in c.execute(
                text(
                    "SELECT m.retention_until FROM messages m JOIN case_events e "
                    "ON e.message_id = m.id WHERE e.case_id = :c"
                ),
                {"c": case["id"]},
            )
        }
    assert deadlines == {new}

    # Past the old deadline the case stays; a new reminder comes before the new one.
    assert erase_at(api, old + dt.timedelta(days=1)).cases == []
    tick(api, new - dt.timedelta(days=90))
    events = get_case(api, case["id"])["timeline"]
    assert len([e for e in events if e["event"] == "retention_review"]) == 2
    assert erase_at(api, new).cases == [case["id"]]


def test_a_running_case_has_no_retention_to_extend(api: Api) -> None:
    use_clock(api, FakeClock())
    case = to_execution(api)
    r = _extend(api, f"/v1/cases/{case['id']}/retention", utcnow() + dt.timedelta(days=30))
    assert r.status_code == 409, r.text
    assert "runs from its closure" in r.json()["detail"]

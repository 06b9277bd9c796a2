"""The home page, "my work": each section lists what waits for the person who signed in (an
officer, a supervisor, an FIU analyst, on the requesting or the requested side) and nothing of
other participants': messages to acknowledge, cases whose next event is theirs (from the
transition tables, as the case page's buttons), requests awaiting four-eyes approval
(UNTOC art. 18(13)), deadlines with the time left or overdue (art. 18(24)), and the notices
the node's clocks raised."""

from __future__ import annotations

import re

from broker.core.settings import Settings
from tests.conftest import Api, World
from tests.integration.messaging_helpers import envelope, relay
from tests.integration.test_case_clocks import CLOCKS
from tests.integration.test_case_helpers import (
    DRAFTER,
    VETTER,
    FakeClock,
    fire,
    mla_request,
    open_case,
    register_partner,
    set_clocks,
    tick,
    to_transmitted,
    use_clock,
)
from tests.integration.test_fiu import fiu_request
from tests.integration.web_helpers import Browser


def _home(api: Api, login: str) -> dict[str, str]:
    """The home page as ``login`` sees it, by section id ("" for sections not shown)."""
    browser = Browser(api.client)
    api.client.cookies.clear()
    browser.sign_in(login)
    r = browser.get("/")
    assert r.status_code == 200, r.text
    api.client.cookies.clear()
    sections = re.findall(
        r'<section aria-labelledby="([a-z]+)-title">(.*?)</section>', r.text, re.S
    )
    return dict(sections)


def _heading_count(section: str) -> str:
    match = re.search(r'<span class="count">\(([^)]*)\)</span>', section)
    assert match, section
    return match.group(1)


def test_each_section_lists_the_readers_own_work(
    api: Api, world: World, settings: Settings
) -> None:
    clock = use_clock(api, FakeClock())
    set_clocks(api, CLOCKS)
    register_partner(api, "it.fiu", "fiu", {"it.analyst": "officer"})
    draft = open_case(api)  # it: DRAFT, the officer submits it for vetting
    vetting = open_case(api)
    fire(api, vetting["id"], "submit_for_vetting", DRAFTER)  # it: CA_VETTING, four eyes
    sent = to_transmitted(api)  # us: TRANSMITTED, the US acknowledges (7 days, CLOCKS)
    fiu = open_case(
        api, "nl.officer", workflow="fiu.request", counterpart="it.fiu", request=fiu_request()
    )
    message = api.post("/v1/messages", as_="de.system", json=envelope(world.keys["de.bka"]))
    assert message.status_code == 202, message.text
    relay(settings)
    # Eight days on, the acknowledgement deadline has passed: a reminder, then an escalation.
    tick(api, clock.advance(days=5, hours=1))
    tick(api, clock.advance(days=3))

    officer = _home(api, "it.officer")
    assert f"/messages/{message.json()['id']}" in officer["waiting"]
    assert f"/cases/{draft['id']}/events/submit_for_vetting" in officer["moves"]
    assert vetting["id"] not in officer["moves"]  # only a supervisor transmits (18(13))
    assert sent["id"] not in officer["moves"]  # the next move is the requested State's
    assert "approvals" not in officer  # not a supervisor
    assert fiu["id"] not in officer["moves"]
    assert _heading_count(officer["moves"]) == "1"
    # The requesting side sees its deadline and the clocks' notices on its own case.
    assert sent["id"] in officer["due"]
    assert "Overdue by" in officer["due"]
    assert "Escalation" in officer["notices"]

    supervisor = _home(api, "it.supervisor")
    assert f"/cases/{vetting['id']}" in supervisor["approvals"]
    assert "You drafted it" not in supervisor["approvals"]
    assert _heading_count(supervisor["approvals"]) == "1"
    assert vetting["id"] not in supervisor["moves"]  # listed once, in the approval queue
    assert '/cases/approvals"' in supervisor["approvals"]

    requested = _home(api, "us.officer")
    assert f"/cases/{sent['id']}/events/acknowledge" in requested["moves"]
    assert draft["id"] not in requested["moves"]
    assert vetting["id"] not in requested["moves"]
    assert sent["id"] in requested["due"]
    assert "Overdue by" in requested["due"]
    assert "1 overdue" in requested["due"]
    assert "Reminder" in requested["notices"]
    assert "Escalation" in requested["notices"]

    analyst = _home(api, "nl.officer")
    assert f"/cases/{fiu['id']}/events/submit" in analyst["moves"]
    for case in (draft, vetting, sent):
        assert case["id"] not in analyst["moves"] + analyst["due"] + analyst["notices"]
    assert "No deadline is running" in analyst["due"]
    assert "raised no reminder" in analyst["notices"]
    assert "every message in your inbox is acknowledged" in analyst["waiting"]
    assert _heading_count(analyst["waiting"]) == "0"

    # The Italian FIU has not been sent the draft: nothing of it shows there.
    partner = _home(api, "it.analyst")
    assert fiu["id"] not in "".join(partner.values())


def test_an_urgent_cases_message_waits_first_then_the_longest_waiting(
    api: Api, settings: Settings
) -> None:
    transmitted = []
    for urgent in (False, False, True):
        case = open_case(api, request=mla_request(urgent=urgent))
        fire(api, case["id"], "submit_for_vetting", DRAFTER)
        transmitted.append(fire(api, case["id"], "transmit", VETTER)["event"]["message_id"])
        relay(settings)
    first, second, urgent_one = transmitted
    waiting = _home(api, "us.officer")["waiting"]
    shown = [waiting.index(f"/messages/{m}") for m in (urgent_one, first, second)]
    assert shown == sorted(shown), shown


def test_recently_sent_leaves_out_what_the_participant_sent_itself(api: Api) -> None:
    vetting = open_case(api)
    own = fire(api, vetting["id"], "submit_for_vetting", DRAFTER)["event"]["message_id"]
    sent = to_transmitted(api)
    transmitted = next(
        e["message_id"]
        for e in api.get(f"/v1/cases/{sent['id']}", as_=DRAFTER).json()["timeline"]
        if e["event"] == "transmit"
    )
    section = _home(api, DRAFTER)["sent"]
    assert f"/messages/{transmitted}" in section
    assert f"/messages/{own}" not in section
    # The sent list itself still shows every message, the participant's own included.
    browser = Browser(api.client)
    browser.sign_in(DRAFTER)
    assert f"/messages/{own}" in browser.get("/sent").text


def test_a_person_without_case_work_sees_a_sentence(api: Api) -> None:
    browser = Browser(api.client)
    browser.sign_in("oversight")
    page = browser.get("/")
    assert page.status_code == 200
    assert "Your role has no case work on this node" in page.text

"""docs/workflows.md, generated from the transition tables so the docs never drift.

    .venv/bin/python -m broker.cases.docs > docs/workflows.md     # regenerate
    .venv/bin/python -m broker.cases.docs --check docs/workflows.md  # exit 1 if stale

A unit test runs the check, so a change to a table that is not reflected in the docs fails.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from broker.cases.clocks import load_clocks
from broker.cases.diagram import mermaid
from broker.cases.tables import WORKFLOWS
from broker.cases.workflow import START, Side, Transition, Workflow
from policies.conditions import Node
from policies.engine import default_policy

INTRO = """\
# Case workflows

*Generated from `broker/cases/tables/` by `python -m broker.cases.docs`; do not edit by
hand.* A case is one workflow instance between a **requesting** and a **requested**
participant. Its state changes only through events, and each event is a signed envelope
(`mla.event`, `extradition.event`, `jit.event`, or the message type named below) of the
participant that fires it (the
node signs with the custodial key of a person's participant), decided by the policy engine
with the case's context, routed to the other side, appended to the case's history and
audited with exactly one leaf, in one transaction. The tables below are the only place the
workflows are written down: the API's `allowed_events`, `GET /v1/workflows`, the diagrams
(`GET /v1/cases/{id}/diagram`) and this page are derived from them.

{api}
How to read the tables:

- **side**: `requesting` (the participant that opened the case), `requested` (its
  counterpart), `either` (both parties: an exchange of a joint investigation team) or `node`
  (the node's own timers, which the packs do not decide: they are signed by the node).
  **roles**: the account roles that may fire the event (`officer`, `supervisor`, `system`
  for agency systems).
- **required**: the body fields the event must carry (the JSON schema of each body is in
  `GET /v1/workflows/{name}`). **guards**: checks the workflow makes that the policy engine
  cannot (they answer 422, 403 or 409 naming the guard and its citation).
- **policy**: the rules of the shipped packs (`policies/packs/`) that name the event (or the
  message type carrying it) in their condition; the general rules (baseline: legal basis and
  purpose; P6 confidentiality; P9 conditions; P14 data subjects; P16 transfers; P17
  retention) apply to every event as to every message. A denial answers 403 with every
  failing rule and its citation (and, for a rule that compares with the States' reference
  data, what it holds: `reference`, such as the languages the requested State accepts for
  `P1.language`), and stores nothing but the `message:refused` leaf.
- An event fired from a state its row does not list answers `409 invalid-state` with the
  rule that governs where it fires, when the law gives one (`rule`, `citation`: "Fired
  elsewhere" after each table), the states it fires from (`fires_from`), and the events the
  caller may fire now (`allowed_events`: its side and roles, four eyes applied).
- A consultation opened during execution (MLA) returns to `IN_EXECUTION` when it ends, by
  `back_to_assessment` or `accept_conditions` (UNTOC art. 18(25), 18(26), 18(28)).
- Before the sharing event (`transmit`, `submit`, `open_team`) the requesting participant
  drafts and vets
  alone: those events are signed and audited but addressed to the participant itself, and the
  requested side never sees them. From the sharing event on, both sides hold the same history.
- Side events (state unchanged) are listed with "—" as target.
- Notices of the node (`reminder`, `escalation`, `postponement_review`,
  `confirmation_escalation`, `retention_review`, `progress_reply`) take a place in the
  history, signed by the node, and never change the state. Each also reaches people: in the
  same transaction the node issues a `notice` message, signed by its own key, to the
  participant it is for (see "Clocks"), delivered to its inbox or webhook like any message.
- Extradition (UNTOC art. 16, P20): `refuse_national` is seen by the packs as the `refuse` it
  is; instead of closing the case it opens the domestic prosecution item (16(10)), which the
  case tracks in the states `PROSECUTION_DUE`, `PROSECUTION_SUBMITTED` and
  `PROSECUTION_REPORTED`; retention runs only from a final state, so the case is never erased
  while the item is open. A refusal from `ASSESSMENT` with no consultation on record is
  refused by P20.consultation (16(16)).
- Joint investigation team (UNTOC art. 19, P21): the request is the agreement; its `parties`
  are the team's members (the case's terms keep them as `members`, the policy context's
  `case_parties`) and its `expiry` the date at which the node fires `expire_team`. An
  `exchange` goes to the member its body names (a member beyond the two parties of the case
  receives it in its inbox, without reading the case). Only members open the team and
  exchange (P21.member-sender, P21.member-recipient), so only members ever see it; after the
  expiry the guard `team_in_term`, then P21.expired, refuse exchanges.
"""


def _leaves(node: Node) -> Iterator[Node]:
    if node.kind == "leaf":
        yield node
    for child in node.children:
        yield from _leaves(child)


def _conjuncts(node: Node) -> Iterator[Node]:
    if node.kind == "all":
        for child in node.children:
            yield from _conjuncts(child)
    else:
        yield node


def _names(operand: object) -> frozenset[str]:
    if isinstance(operand, str):
        return frozenset({operand})
    if isinstance(operand, frozenset):
        return frozenset(str(v) for v in operand)
    return frozenset()


def policy_rules(wf: Workflow, t: Transition) -> list[str]:
    """The shipped rules that name this event (as the packs see it: its ``policy_event``), or
    the specific message type that carries it, in their condition, and the rules of its kind
    of case that name no event nor message type (they decide every event of the case, as P21
    does): derived from the packs, never listed by hand."""
    if t.side is Side.SYSTEM:
        return []  # the node's own events are signed by the node, not decided by the packs
    types = {wf.message_type(t, ct) for ct in wf.case_types} - {"mla.event", "fiu.event"}
    event = t.policy_event or t.event
    found = []
    for rule in default_policy().rules:
        case_types = [
            leaf
            for leaf in _conjuncts(rule.when)
            if leaf.attr == "case_type" and leaf.op in ("eq", "in")
        ]
        if any(not (_names(leaf.operand) & wf.case_types) for leaf in case_types):
            continue  # a rule of another kind of case (extradition, FIU, MLA)
        named = [leaf for leaf in _leaves(rule.when) if leaf.attr in ("case_event", "message_type")]
        if case_types and not named:
            found.append(rule.id)
            continue
        for leaf in _leaves(rule.when):
            values = _names(leaf.operand) if leaf.op in ("eq", "in") else frozenset()
            if (leaf.attr == "case_event" and event in values) or (
                leaf.attr == "message_type" and values & types
            ):
                found.append(rule.id)
                break
    return found


API = (
    (
        "`GET /v1/workflows`, `GET /v1/workflows/{name}`",
        "the tables as JSON (any authenticated caller): states, events, sides, roles, body "
        "schemas, guards, diagrams",
    ),
    (
        "`POST /v1/cases`",
        "open a draft request with a counterpart, or a consent or feedback thread under a "
        "case (by firing its opening event)",
    ),
    (
        "`GET /v1/cases`",
        "your cases, newest first; filters `state`, `counterpart`, `overdue`, `urgent`, "
        "`workflow`, `parent_id`",
    ),
    (
        "`GET /v1/cases/{id}`",
        "state, timeline, deadlines with reasons, allowed next events, threads, evidence, "
        "restrictions, `retention_until` and `erased_at` (P17, [retention.md](retention.md))",
    ),
    (
        "`POST /v1/cases/{id}/events`",
        'fire an event: `{"event", "body"}` (the node signs) or `{"envelope"}` (self-signed); '
        "the answer holds the case, the event and the envelope's type, payload digest and "
        "signatures, never its payload (read it at `GET /v1/messages/{event.message_id}"
        "/content?justification=`, a logged consultation)",
    ),
    (
        "`POST /v1/cases/{id}/events/draft[?justification=]`",
        "the payload a self-signing client signs; a draft that carries the stored request "
        "(`transmit`, FIU `submit`) needs a justification and is a logged consultation",
    ),
    ("`GET /v1/cases/{id}/diagram`", "the Mermaid diagram, the current state highlighted"),
    ("`GET /v1/cases/{id}/request?justification=`", "the request (a logged consultation)"),
    (
        "`POST /v1/cases/{id}/evidence?name=`, `GET .../evidence`, "
        "`GET .../evidence/{file}?justification=`",
        "stream an evidence file in or out (hashed, encrypted at rest in chunks; a download "
        "is a logged consultation)",
    ),
    (
        "`POST /v1/fiu/matches`, `GET /v1/fiu/matches[/{id}]`, `POST /v1/fiu/matches/{id}/answer`",
        "anonymous matching with keyed filters; a hit opens a draft FIU request",
    ),
    (
        "`GET /v1/oversight/statistics?from=&to=&state=&type=&urgency=`",
        "oversight only: counts by type, State pair and month, turnaround, timeliness, "
        "refusals by ground and rule, postponements, overdue, consents, dead letters; small "
        "counts suppressed ([statistics.md](statistics.md))",
    ),
)


def render_api() -> str:
    lines = [
        "The API (every route needs a case-handling role unless said otherwise):",
        "",
        "| call | what |",
        "|---|---|",
    ]
    lines += [f"| {call} | {what} |" for call, what in API]
    return "\n".join(lines) + "\n"


def _cell(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "—"


def _row(wf: Workflow, t: Transition) -> str:
    sources = _cell([("start" if s == START else s) for s in t.sources])
    if len(t.sources) > 4:
        sources = f"any of {len(t.sources)} states: {sources}"
    required = sorted(t.body.model_json_schema().get("required", []))
    guards = _cell([f"`{g.id}` ({g.citation})" for g in t.guards])
    side = "node" if t.side.value == "system" else t.side.value
    if t.either_side:
        side = "either"
    types = _cell(sorted({wf.message_type(t, ct) for ct in wf.case_types}))
    to = t.target or "—"
    if t.returns_to_origin:
        back = " or ".join(sorted(t.returns_to_origin))
        to = f"{to} (or {back}, where the consultation began)"
    return (
        f"| `{t.event}` | {sources} | {to} | {side} | {_cell(sorted(t.roles))} "
        f"| {_cell(required)} | {guards} | {_cell(policy_rules(wf, t))} | {types} "
        f"| {t.citation} |"
    )


def render_workflow(wf: Workflow) -> str:
    lines = [
        f"## {wf.title} (`{wf.name}`)",
        "",
        f"Source: {wf.citation}. States: {', '.join(wf.states)}; final: "
        f"{', '.join(sorted(wf.finals))}.",
    ]
    if wf.parents:
        lines.append(
            f"A thread under a {', '.join(sorted(wf.parents))} case, opened by its first "
            "event; the participant that opens it is its requesting side."
        )
    lines += ["", "```mermaid", mermaid(wf).rstrip(), "```", ""]
    lines.append(
        "| event | from | to | side | roles | required | guards | policy | message type "
        "| citation |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    lines += [_row(wf, t) for t in wf.transitions]
    lines.append("")
    for t in wf.transitions:
        line = f"- `{t.event}`: {t.summary}"
        if t.prerequisite is not None:
            rule = t.prerequisite
            line += f" Fired elsewhere, the answer says: {rule.text} ({rule.citation})."
        lines.append(line)
    return "\n".join(lines) + "\n"


def _fact(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def render_clocks() -> str:
    lines = [
        "## Clocks",
        "",
        "There is no universal MLA deadline (18(24)): the requesting side may set one with its "
        "reason (`deadline`, `deadline_reason`; P10 refuses a deadline without a reason), and "
        "the node applies the reference clocks configured for the workflow and legal basis "
        "(`PALERMO_CASE_CLOCKS_FILE` replaces the built-in ones below). A clock pauses while "
        "the requested side waits for additional information (18(16)). The scheduler "
        "(`palermo.cases.tick`, every `PALERMO_CASE_TICK_SECONDS`) raises a reminder before "
        "each deadline and an escalation when it passes, reviews postponements on their "
        "review date (18(25)), escalates an urgent request made orally or through INTERPOL "
        "every `PALERMO_URGENT_CONFIRMATION_HOURS` until its written confirmation (P3), "
        "acknowledges a transmitted request once the requested side signed its receipt, and "
        "erases the content of ended cases after `PALERMO_CASE_RETENTION_DAYS` "
        "(`expire_retention`, with every event envelope of the case and its evidence, one "
        "`content:erased` leaf each; the history and the audit log remain; see "
        "[retention.md](retention.md)). A progress query "
        "(18(24)) is answered at once from the case state; its `since` is when the case entered "
        "its state.",
        "",
        "Every notice is delivered as a node-signed `notice` message (one per recipient, "
        "written in the transaction of the event that records it, so once however often the "
        "timers run): a reminder to the side that must act (the milestone's `side`, the "
        "requested side unless configured), an escalation to both sides, a postponement "
        "review to the requested side, an unconfirmed urgent request's escalation to the "
        "requesting side, a retention review to both, a progress reply to the requesting "
        "side; a notice of another kind (a follow-up) to the side its details name, else "
        "both. The requested side receives none before the case is shared. The message's "
        "body names the case (`case.id`, `workflow`, `state`, both parties), the notice, the "
        "event (`case_event_id`, `seq`), the rule (`rule.id`, `rule.citation`: the "
        "deadline's own citation) and the due date (`due_at`); escalations and every notice "
        "of an urgent case are urgent, and urgent messages are relayed and listed first.",
        "",
        "A clock's `when` narrows it to cases with the facts it names (`urgent`, "
        "`information_access`): Directive (EU) 2023/977 art. 5(1) gives a police information "
        "request 8 hours when it is urgent and about information directly accessible to the "
        "requested side, 3 days when urgent and about information accessible only "
        "indirectly, and 7 days otherwise.",
        "",
        "| clock | applies to | milestone | starts on | stops on | duration | reminder | "
        "citation |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for clock in load_clocks(None):
        bases = (
            "any legal basis" if clock.legal_bases is None else ", ".join(sorted(clock.legal_bases))
        )
        if clock.when:
            bases += "; " + ", ".join(f"{k} {_fact(v)}" for k, v in clock.when.items())
        for m in clock.milestones:
            span = (
                f"{m.business_days} business days"
                if m.business_days
                else " ".join(
                    part
                    for part in (
                        f"{m.days} days" if m.days else "",
                        f"{m.hours} h" if m.hours else "",
                    )
                    if part
                )
            )
            lines.append(
                f"| {clock.title} | {', '.join(sorted(clock.workflows))} ({bases}) | {m.title} "
                f"| {_cell(sorted(m.starts_on))} | {_cell(sorted(m.stops_on))} | {span} "
                f"| {m.remind_before_hours:g} h before | {m.citation} |"
            )
    return "\n".join(lines) + "\n"


DECISIONS = """\
## Decisions

- **One leaf per event.** The acceptance leaf of an event's envelope is the event's leaf:
  kind `case:transition` (or `consent:requested`, `consent:granted`, `consent:refused`),
  holding the message fields (sender, recipient, digest, policy pack and rules) and the case
  fields (case, workflow, event, sequence number, both states, side). Its later delivery and
  receipt have their own leaves, as for any message.
- **Drafting stays home.** Events before the sharing event are envelopes from the requesting
  participant to itself (the central authority's supervisors find the request to vet in
  their inbox); the requested side's history starts with `transmit` or `submit`.
- **Four eyes** is the `transmit` guard: only a supervisor of the central authority, and not
  an account that opened or submitted the request, transmits it. This is how the workflow
  carries out P1's `require_approval` obligation.
- **Confidential cases** (18(20)) are seen only by people with a case-handling role of the two
  participants; agency system accounts do not see them.
- **Consent and feedback are threads**: small cases under the case whose material they
  concern, with their own table, signed events and leaves. A granted consent is listed in
  the parent case's `terms.consents` with its conditions and its end (`valid_until`), and
  `broker.consents.service.consents_on_record` reads it with the consents granted through
  `/v1/messages/{id}/consent-requests`: one record for forwards of the case's material and
  for consent requests ([policies.md](policies.md#one-consent-two-doors)).
- **Evidence** is stored on disk under `PALERMO_EVIDENCE_DIR` (default `<data dir>/evidence`),
  one file per upload, in sealed chunks bound to the file and their position; the key is
  wrapped by the master key in `evidence_files`. Nodes with several API processes share that
  directory. Retention expiry destroys the keys and deletes the files (the `palermo.retention.erase`
  beat task and `palermo retention erase` run it at the case's `retention_until`).
- **Time**: case events and deadlines use the node's case clock (`app.state.clock`, the wall
  clock unless a test replaces it); envelope `created_at` is checked against the wall clock.
"""


def render() -> str:
    parts = [INTRO.replace("{api}", render_api())]
    parts += [render_workflow(wf) for wf in WORKFLOWS.values()]
    parts.append(render_clocks())
    parts.append(DECISIONS)
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    text = render()
    if args[:1] == ["--check"]:
        path = Path(args[1] if len(args) > 1 else "docs/workflows.md")
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            sys.stderr.write(f"{path} is stale: python -m broker.cases.docs > {path}\n")
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

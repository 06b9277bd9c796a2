"""Compose: the form of a message a participant sends itself (an intelligence message or an
FIU disclosure), the "Check" that shows the policy decision before sending, and the send.

The check is ``messages.check_draft``, the dry run of the decision the send makes (nothing
signed, stored or audited); the send is ``messages.sign_and_accept``, as a custodial draft
through ``POST /v1/messages``. A refusal keeps everything typed and links the error summary
to the fields the refusing rules read (the attributes of their conditions).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from broker.core.context import CallContext
from broker.core.db import utcnow
from broker.core.errors import SchemaViolation, UnknownRecipient
from broker.http import NodeDep, SessionDep
from broker.messages import Refused, check_draft, sign_and_accept
from broker.participants.service import list_participants
from broker.policy.service import NodePolicy
from broker.policy.views import PolicyDep
from broker.web.rendering import render
from broker.web.views import CsrfField, Handling, check_csrf, router
from policies.conditions import Node
from policies.model import Decision

# Who may send which type from the form: the participant kinds (``None``: any kind).
COMPOSE_TYPES: dict[str, frozenset[str] | None] = {
    "intel.message": None,
    "fiu.disclosure": frozenset({"fiu"}),
}
HANDLING_CODES = ("H0", "H1", "H2", "H3")
RELIABILITY = ("A", "B", "C", "X")
VALIDITY = ("1", "2", "3", "4")
SUBJECT_CATEGORIES = ("suspect", "convicted", "victim", "witness", "contact", "other")
SUBJECT_ROWS = 3
# The policy context's attributes and the form field each is typed in.
ATTR_FIELDS = {
    "message_type": "f-type",
    "recipient": "f-recipient",
    "legal_basis": "f-legal_basis",
    "purpose": "f-purpose",
    "handling_code": "f-handling_code",
    "handling_restriction": "f-handling_restriction",
    "evaluation": "f-reliability",
    "statement_kind": "f-statement_kind",
    "data_categories": "f-data_categories",
    "special_category_basis": "f-special_category_basis",
    "data_subject_categories": "f-subject-0-ref",
    "persons_uncategorised": "f-subject-0-ref",
    "permitted_recipients": "f-permitted_recipients",
    "permitted_purposes": "f-permitted_purposes",
}
# The draft's schema fields (SchemaViolation) and the form field each is typed in.
DRAFT_FIELDS = {
    "type": "f-type",
    "recipient": "f-recipient",
    "legal_basis": "f-legal_basis",
    "purpose": "f-purpose",
    "handling": "f-handling_code",
    "evaluation": "f-reliability",
    "statement_kind": "f-statement_kind",
    "data_categories": "f-data_categories",
    "special_category_basis": "f-special_category_basis",
    "data_subjects": "f-subject-0-ref",
    "permitted_recipients": "f-permitted_recipients",
    "permitted_purposes": "f-permitted_purposes",
    "body": "f-text",
}
Text = Annotated[str, Form(max_length=4000)]
Short = Annotated[str, Form(max_length=200)]


@dataclass(frozen=True, slots=True)
class Problem:
    field_id: str
    message: str
    rule: str = ""
    citation: str = ""


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def draft_of(values: dict[str, Any]) -> dict[str, Any]:
    """The custodial draft (``DraftPayload``) the form's values stand for."""
    draft: dict[str, Any] = {"type": values["type"], "recipient": values["recipient"]}
    for name in ("legal_basis", "purpose", "statement_kind"):
        if values[name]:
            draft[name] = values[name]
    if values["handling_code"]:
        handling = {"code": values["handling_code"]}
        if values["handling_restriction"]:
            handling["restriction"] = values["handling_restriction"]
        draft["handling"] = handling
    # A half grading is no grading: the policy's P13 then says what is missing.
    if values["reliability"] and values["validity"]:
        draft["evaluation"] = values["reliability"] + values["validity"]
    if categories := _lines(values["data_categories"]):
        draft["data_categories"] = categories
    if values["special_category_basis"]:
        draft["special_category_basis"] = values["special_category_basis"]
    subjects = [
        {"ref": s["ref"], "category": s["category"]} for s in values["subjects"] if s["ref"]
    ]
    if subjects:
        draft["data_subjects"] = subjects
    if values["type"] == "fiu.disclosure":
        if values["permitted_recipients"]:
            draft["permitted_recipients"] = values["permitted_recipients"]
        if purposes := _lines(values["permitted_purposes"]):
            draft["permitted_purposes"] = purposes
    if values["text"]:
        draft["body"] = {"text": values["text"]}
    return draft


def _attrs(node: Node | None) -> Iterator[str]:
    if node is None:
        return
    if node.attr:
        yield node.attr
    if node.ref:
        yield node.ref
    for child in node.children:
        yield from _attrs(child)


def fields_of_rule(policy: NodePolicy, rule_id: str) -> list[str]:
    """The form fields a rule's condition reads, in form order (first the ones it names)."""
    for rule in policy.policy.rules:
        if rule.id == rule_id:
            found: list[str] = []
            for attr in (*_attrs(rule.when), *_attrs(rule.unless)):
                field_id = ATTR_FIELDS.get(attr.split(".")[0]) or ATTR_FIELDS.get(attr)
                if field_id and field_id not in found:
                    found.append(field_id)
            return found
    return []


def refusal_problems(policy: NodePolicy, decision: Decision) -> list[Problem]:
    out = []
    for reason in decision.reasons:
        fields = [f for f in fields_of_rule(policy, reason.rule_id) if f != "f-type"]
        out.append(
            Problem(fields[0] if fields else "f-type", reason.text, reason.rule_id, reason.citation)
        )
    return out


def schema_problems(exc: SchemaViolation) -> list[Problem]:
    out = []
    for err in exc.extra.get("errors", []) or [
        {"field": exc.extra.get("field", ""), "message": exc.detail}
    ]:
        parts = [p for p in str(err.get("field", "")).split(".") if p not in ("draft", "payload")]
        out.append(Problem(DRAFT_FIELDS.get(parts[0] if parts else "", "f-type"), err["message"]))
    return out


async def _context(
    session: SessionDep, user: Any, values: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    participants = await list_participants(session)
    me = next((p for p in participants if p.id == user.caller.participant_id), None)
    kind = me.kind if me else ""
    types = [t for t, kinds in COMPOSE_TYPES.items() if kinds is None or kind in kinds]
    context: dict[str, Any] = {
        "values": values,
        "types": types,
        "participants": [p for p in participants if p.id != user.caller.participant_id],
        "handling_codes": HANDLING_CODES,
        "reliability": RELIABILITY,
        "validity": VALIDITY,
        "subject_categories": SUBJECT_CATEGORIES,
        "problems": [],
        "decision": None,
        "checked": False,
    }
    context.update(extra)
    return context


def empty_values(kind: str) -> dict[str, Any]:
    return {
        "type": kind,
        "recipient": "",
        "legal_basis": "",
        "purpose": "",
        "handling_code": "",
        "handling_restriction": "",
        "reliability": "",
        "validity": "",
        "statement_kind": "",
        "data_categories": "",
        "special_category_basis": "",
        "subjects": [{"ref": "", "category": "suspect"} for _ in range(SUBJECT_ROWS)],
        "permitted_recipients": [],
        "permitted_purposes": "",
        "text": "",
    }


def _rendered(request: Request, user: Any, context: dict[str, Any], status: int) -> Response:
    context["wrong"] = {p.field_id for p in context["problems"]}
    return render(request, "compose.html", context, user=user, status=status)


@router.get("/compose")
async def compose_page(
    request: Request, session: SessionDep, user: Handling, type: str = "intel.message"
) -> Response:
    context = await _context(session, user, empty_values(type))
    if type not in context["types"]:
        context["values"]["type"] = context["types"][0]
    await session.commit()
    return _rendered(request, user, context, 200)


@router.post("/compose")
async def compose(
    request: Request,
    session: SessionDep,
    node: NodeDep,
    policy: PolicyDep,
    user: Handling,
    csrf_token: CsrfField = "",
    action: Annotated[str, Form(max_length=10)] = "check",
    type: Short = "intel.message",
    recipient: Short = "",
    legal_basis: Short = "",
    purpose: Short = "",
    handling_code: Annotated[str, Form(max_length=2)] = "",
    handling_restriction: Text = "",
    reliability: Annotated[str, Form(max_length=1)] = "",
    validity: Annotated[str, Form(max_length=1)] = "",
    statement_kind: Annotated[str, Form(max_length=20)] = "",
    data_categories: Text = "",
    special_category_basis: Annotated[str, Form(max_length=32)] = "",
    permitted_recipients: Annotated[list[str] | None, Form()] = None,
    permitted_purposes: Text = "",
    text: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    check_csrf(request, user, csrf_token)
    form = await request.form()
    subjects = [
        {
            "ref": str(form.get(f"subject-{i}-ref", ""))[:64].strip(),
            "category": str(form.get(f"subject-{i}-category", "suspect")),
        }
        for i in range(SUBJECT_ROWS)
    ]
    values: dict[str, Any] = {
        "type": type,
        "recipient": recipient,
        "legal_basis": legal_basis.strip(),
        "purpose": purpose.strip(),
        "handling_code": handling_code,
        "handling_restriction": handling_restriction.strip(),
        "reliability": reliability,
        "validity": validity,
        "statement_kind": statement_kind,
        "data_categories": data_categories,
        "special_category_basis": special_category_basis,
        "subjects": subjects,
        "permitted_recipients": list(permitted_recipients or []),
        "permitted_purposes": permitted_purposes,
        "text": text,
    }
    context = await _context(session, user, values)
    if type not in context["types"]:
        context["problems"] = [Problem("f-type", "this message type cannot be sent from here")]
        await session.commit()
        return _rendered(request, user, context, 422)
    draft = draft_of(values)
    try:
        decision = await check_draft(session, caller=user.caller, draft=draft, policy=policy)
    except SchemaViolation as exc:
        context["problems"] = schema_problems(exc)
        await session.commit()
        return _rendered(request, user, context, 422)
    except UnknownRecipient as exc:
        context["problems"] = [Problem("f-recipient", exc.detail)]
        await session.commit()
        return _rendered(request, user, context, 422)
    context.update(decision=decision, checked=True)
    if not decision.permitted:
        context["problems"] = refusal_problems(policy, decision)
    if action != "send" or not decision.permitted:
        await session.commit()
        return _rendered(request, user, context, 200 if decision.permitted else 422)
    ctx = CallContext(node, user.caller, policy, None, utcnow())
    outcome = await sign_and_accept(session, ctx=ctx, draft=draft)
    await session.commit()
    if isinstance(outcome, Refused):  # the facts or the policy changed since the check
        context["problems"] = [
            Problem("f-type", r["text"], r["rule"], r["citation"]) for r in outcome.reasons
        ]
        return _rendered(request, user, context, 422)
    return RedirectResponse(f"/messages/{outcome.message_id}?sent=1", status_code=303)

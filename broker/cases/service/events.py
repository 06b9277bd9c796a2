"""What an event carries and changes: the envelope the node drafts for it (type,
recipient, data categories and subjects, attachments, permitted recipients and purposes),
the check that a self-signed envelope declares exactly that, the metadata kept in the clear,
and what the event changes on the case row beyond the fold (the request it amends, a
thread's terms, widened terms, the parent's consents). All of it as the row of the table
declares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel

from broker.cases import bodies
from broker.cases.models import Case
from broker.cases.policy import envelope_metadata, subjects
from broker.cases.service.loading import Loaded
from broker.cases.service.request import apply_request, open_request, seal_request
from broker.cases.workflow import Transition
from broker.core.context import NodeContext
from broker.core.errors import SchemaViolation
from broker.envelopes.schemas import DraftPayload, MessagePayload


def apply_effects(
    node: NodeContext,
    loaded: Loaded,
    t: Transition,
    request: BaseModel | None,
    details: Mapping[str, Any],
    new_case: bool,
) -> None:
    """What an event changes on the case row beyond the fold: the request it amends or
    sends, a thread's terms, the recipients and purposes a response or disclosure permits."""
    case = loaded.case
    if t.amends_request and request is not None:
        apply_request(case, request)
        case.request_ciphertext, case.request_key = seal_request(node, request)
    if new_case:
        case.terms = {k: v for k, v in details.items() if k in ("recipient", "purpose")}
    if t.widens_terms:
        _widen_terms(case, details)
    if t.sets_terms:
        case.terms = {**case.terms, **{k: details[k] for k in t.sets_terms if k in details}}
    if t.grants_parent_consent and loaded.parent is not None:
        # The consent widens what the parent case's material may be used for (P18, 18(19)),
        # on its conditions (P9, 18(26)) and until its end: the case door's record, read
        # with the message door's by ``broker.consents.service.consents_on_record``.
        parent_terms = dict(loaded.parent.terms)
        parent_terms["consents"] = [
            *parent_terms.get("consents", []),
            {
                "provider": case.requested_id,
                "recipient": case.terms.get("recipient"),
                "purpose": case.terms.get("purpose"),
                "thread": case.id,
                "conditions": list(details.get("conditions", [])),
                "valid_until": details.get("valid_until"),
            },
        ]
        loaded.parent.terms = parent_terms


def request_for(node: NodeContext, case: Case, t: Transition, body: BaseModel) -> BaseModel | None:
    """The request an event carries: an amendment in its body, else the stored one (for the
    events that send or vet it), else None."""
    if not t.carries_request:
        return None
    given: BaseModel | None = getattr(body, "request", None) or getattr(body, "disclosure", None)
    if given is not None:
        if t.request_as_stored:
            stored = open_request(node, case)
            if stored is None or given != stored:
                raise SchemaViolation(
                    "body.request: a transmitted request is the vetted one, unchanged",
                    field="body.request",
                )
        return given
    return open_request(node, case)


def event_data(body: BaseModel, request: BaseModel | None) -> dict[str, Any]:
    data = bodies.as_json(body)
    if request is not None:
        name = "disclosure" if "disclosure" in type(body).model_fields else "request"
        data[name] = request.model_dump(mode="json", exclude_none=True)
    return data


def envelope_draft(
    loaded: Loaded,
    t: Transition,
    data: dict[str, Any],
    body: BaseModel,
    request: BaseModel | None,
    recipient: str,
    seq: int,
) -> dict[str, Any]:
    case, wf, p = loaded.case, loaded.workflow, loaded.projection
    categories: list[str] = list(getattr(body, "data_categories", None) or [])
    subject_cats: list[str] = list(getattr(body, "data_subject_categories", None) or [])
    if request is not None:
        persons = getattr(request, "persons_concerned", None) or getattr(request, "subjects", [])
        if persons:
            categories = sorted({*categories, "personal"})
            subject_cats = sorted({*subject_cats, *(x.category for x in persons)})
    files = {f.id: f for f in loaded.evidence}
    attachments = [
        {
            "name": files[str(i)].name,
            "media_type": files[str(i)].media_type,
            "size": files[str(i)].size,
            "sha256": files[str(i)].sha256,
        }
        for i in getattr(body, "evidence", [])
    ]
    draft: dict[str, Any] = {
        **envelope_metadata(case),
        "type": wf.message_type(t, case.case_type),
        "recipient": recipient,
        "in_reply_to": case.head_message_id,
        "body": {
            "event": t.event,
            "workflow": wf.name,
            "seq": seq,
            "from_state": p.state,
            "data": data,
        },
    }
    if categories:
        draft["data_categories"] = categories
    if basis := getattr(body, "special_category_basis", None):
        draft["special_category_basis"] = basis
    if subject_cats:
        draft["data_subjects"] = subjects(subject_cats)
    if attachments:
        draft["attachments"] = attachments
    permitted = getattr(body, "permitted_recipients", None) or getattr(
        request, "permitted_recipients", None
    )
    purposes = getattr(body, "permitted_purposes", None) or getattr(
        request, "permitted_purposes", None
    )
    if t.permits_named_recipients:
        # P18 (Egmont; FATF R.40 INR): consent is presumed for the recipients the request
        # named, so the response (the provider's material) permits them. ``apply_request``
        # copied them into the case's terms when the request was sent.
        named = case.terms.get("permitted_recipients", [])
        permitted = list(dict.fromkeys([*(permitted or []), *named]))
    if permitted:
        draft["permitted_recipients"] = list(permitted)
    if purposes:
        draft["permitted_purposes"] = list(purposes)
    return {k: v for k, v in draft.items() if v is not None}


_ENVELOPE_COMPARED = ("id", "sender", "created_at", "expires_at", "body")


def check_matches(payload: MessagePayload, draft: dict[str, Any]) -> None:
    """A self-signed event envelope must declare exactly what the node would have."""
    expected = DraftPayload.model_validate(draft)
    want = expected.model_dump(mode="json", exclude_none=True, exclude={"expires_at", "body"})
    got = payload.model_dump(mode="json", exclude_none=True, exclude=set(_ENVELOPE_COMPARED))
    for key in sorted(set(want) | set(got)):
        if want.get(key) != got.get(key):
            raise SchemaViolation(
                f"payload.{key} must be {want.get(key)!r} for this event of this case",
                field=f"payload.{key}",
            )
    if orjson.dumps(payload.body, option=orjson.OPT_SORT_KEYS) != orjson.dumps(
        expected.body, option=orjson.OPT_SORT_KEYS
    ):
        raise SchemaViolation(
            "payload.body must be the event as the node would sign it: "
            + orjson.dumps(expected.body, option=orjson.OPT_SORT_KEYS).decode()[:500],
            field="payload.body",
        )


def details_of(t: Transition, body: BaseModel) -> dict[str, Any]:
    """The event's metadata kept in the clear: field names, codes, dates (a review date, a
    consent's end), conditions (which become restrictions), evidence ids. Never free text."""
    details: dict[str, Any] = {"fields": sorted(bodies.filled_fields(body))}
    for name in (
        "grounds",
        "kind",
        "conditions",
        "recipient",
        "purpose",
        "permitted_recipients",
        "permitted_purposes",
    ):
        value = getattr(body, name, None)
        if value:
            details[name] = list(value) if isinstance(value, list | tuple) else value
    if t.records_by_reason:
        details["reason"] = getattr(body, "reason", None)
    review = bodies.review_date_of(body)
    if review is not None:
        details["review_date"] = review.isoformat()
    valid_until = getattr(body, "valid_until", None)
    if valid_until is not None:
        details["valid_until"] = valid_until.isoformat()
    evidence = getattr(body, "evidence", None)
    if evidence:
        details["evidence"] = [str(e) for e in evidence]
    for name in sorted(t.sets_terms):
        value = body.model_dump(mode="json").get(name)
        if value is not None:
            details[name] = value
    return details


def _widen_terms(case: Case, details: Mapping[str, Any]) -> None:
    terms = dict(case.terms)
    for key in ("permitted_recipients", "permitted_purposes"):
        if details.get(key):
            terms[key] = sorted({*terms.get(key, []), *details[key]})
    case.terms = terms

"""The operator's delivery and policy pages (role ``admin``), and the reference data every
signed-in person may read.

As the other admin pages: each action calls the service of its ``/v1`` endpoint
(``broker.delivery.service``, the policy views' own functions), in one transaction committed
before the page is sent, so the audit leaves are the API's. An adapter configuration is
checked by the adapter before it is stored (``configure_adapter``); bad JSON, an unknown
adapter or a configuration it refuses is a 422 with an error summary and the input kept.
"Explain" stores nothing; a context that is not JSON, or not a context, is a 422 too.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

import adapters
from adapters.contracts import AdapterConfigError
from adapters.destinations import rules_from
from broker.core.errors import SchemaViolation
from broker.delivery import service as delivery
from broker.http import NodeDep, SessionDep, SettingsDep
from broker.participants.service import get_participant, list_participants
from broker.policy.views import PolicyDep, explain_context, read_policy
from broker.web.admin_views import Operating, problem, service_problem
from broker.web.rendering import render
from broker.web.views import CsrfField, SignedIn, check_csrf, router
from policies.vocabulary import CHANNELS

DEAD_LETTER_PAGE = 200
EXPLAIN_EXAMPLE = {
    "sender": {"id": "de.bka", "kind": "police"},
    "recipient": {"id": "us.central-authority", "kind": "central_authority"},
    "message_type": "intel.message",
    "legal_basis": "UNTOC art. 27",
    "purpose": "investigation",
    "handling_code": "H0",
    "evaluation": "B2",
    "statement_kind": "fact",
}


# --- delivery ------------------------------------------------------------------------------


@router.get("/admin/delivery")
async def delivery_page(request: Request, session: SessionDep, user: Operating) -> Response:
    """The outbox depth, the dead letters with their attempts, and each participant's
    adapter (``GET /v1/delivery/dead-letters``, ``GET /v1/participants/{id}/adapter``)."""
    depth = await delivery.outbox_depth(session)
    dead = await delivery.list_dead_letters(session, limit=DEAD_LETTER_PAGE)
    everyone = await list_participants(session)
    await session.commit()
    requeued = request.query_params.get("requeued", "")
    return render(
        request,
        "admin_delivery.html",
        {"depth": depth, "dead_letters": dead, "participants": everyone, "requeued": requeued},
        user=user,
    )


@router.post("/admin/delivery/dead-letters/{message_id}/requeue")
async def requeue_dead_letter(
    message_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    user: Operating,
    csrf_token: CsrfField = "",
) -> Response:
    """``POST /v1/delivery/dead-letters/{id}/requeue``; 404 when it is not dead-lettered."""
    check_csrf(request, user, csrf_token)
    await delivery.requeue_dead_letters(
        session, node_id=node.node_id, actor=user.caller.actor(), message_ids=[message_id]
    )
    await session.commit()
    return RedirectResponse(f"/admin/delivery?requeued={message_id}", status_code=303)


def _config_text(config: dict[str, Any]) -> str:
    return orjson.dumps(config, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


async def _adapter_context(
    session: SessionDep, participant_id: str, **extra: Any
) -> dict[str, Any]:
    participant = await get_participant(session, participant_id)
    context: dict[str, Any] = {
        "participant": participant,
        "adapters": sorted(adapters.ADAPTERS),
        "values": {
            "adapter": participant.adapter,
            "config": _config_text(dict(participant.adapter_config)),
        },
        "errors": [],
        "saved": False,
    }
    context.update(extra)
    return context


@router.get("/admin/participants/{participant_id}/adapter")
async def adapter_page(
    participant_id: str, request: Request, session: SessionDep, user: Operating
) -> Response:
    context = await _adapter_context(session, participant_id, saved="saved" in request.query_params)
    await session.commit()
    return render(request, "admin_adapter.html", context, user=user)


@router.post("/admin/participants/{participant_id}/adapter")
async def set_adapter(
    participant_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    user: Operating,
    csrf_token: CsrfField = "",
    adapter: Annotated[str, Form(max_length=32)] = "",
    config: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """``PUT /v1/participants/{id}/adapter``: the configuration as a JSON object."""
    check_csrf(request, user, csrf_token)
    context = await _adapter_context(session, participant_id)
    context["values"] = {"adapter": adapter, "config": config}
    parsed: Any = None
    try:
        parsed = orjson.loads(config) if config.strip() else {}
    except orjson.JSONDecodeError:
        context["errors"] = [problem("d-config", "json")]
    if not context["errors"] and not isinstance(parsed, dict):
        context["errors"] = [problem("d-config", "object")]
    if not context["errors"]:
        try:
            await delivery.configure_adapter(
                session,
                node_id=node.node_id,
                participant_id=participant_id,
                adapter=adapter,
                config=parsed,
                rules=rules_from(settings),
                actor=user.caller.actor(),
            )
        except AdapterConfigError as exc:
            await session.rollback()
            context = await _adapter_context(session, participant_id)
            context["values"] = {"adapter": adapter, "config": config}
            context["errors"] = [
                service_problem(
                    exc, {"adapter": "d-adapter", "adapter_config": "d-config"}, "d-config"
                )
            ]
    if context["errors"]:
        await session.commit()
        return render(request, "admin_adapter.html", context, user=user, status=422)
    await session.commit()
    return RedirectResponse(
        f"/admin/participants/{participant_id}/adapter?saved=1", status_code=303
    )


# --- policy --------------------------------------------------------------------------------


async def _policy_context(policy: PolicyDep, user: Operating, **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "policy": await read_policy(policy, user.caller),
        "context_text": _config_text(EXPLAIN_EXAMPLE),
        "explained": None,
        "errors": [],
    }
    context.update(extra)
    return context


@router.get("/admin/policy")
async def policy_page(request: Request, policy: PolicyDep, user: Operating) -> Response:
    """``GET /v1/policy``: the packs, their hashes, every rule with its citation."""
    return render(request, "admin_policy.html", await _policy_context(policy, user), user=user)


@router.post("/admin/policy/explain")
async def explain(
    request: Request,
    policy: PolicyDep,
    user: Operating,
    csrf_token: CsrfField = "",
    context: Annotated[str, Form(max_length=50_000)] = "",
) -> Response:
    """``POST /v1/policy/explain`` on a pasted context; nothing is stored."""
    check_csrf(request, user, csrf_token)
    page = await _policy_context(policy, user, context_text=context)
    parsed: Any = None
    try:
        parsed = orjson.loads(context)
    except orjson.JSONDecodeError:
        page["errors"] = [problem("e-context", "json")]
    if not page["errors"] and not isinstance(parsed, dict):
        page["errors"] = [problem("e-context", "object")]
    if not page["errors"]:
        try:
            page["explained"] = await explain_context(policy, user.caller, parsed)
        except SchemaViolation as exc:
            page["errors"] = [problem("e-context", "detail", exc.detail)]
    status = 422 if page["errors"] else 200
    return render(request, "admin_policy.html", page, user=user, status=status)


# --- reference data ------------------------------------------------------------------------


@router.get("/reference")
async def reference_page(request: Request, policy: PolicyDep, user: SignedIn) -> Response:
    """What each State accepts (languages, channels), its groups and flags, and the treaties:
    the reference data this node builds its policy contexts with."""
    reference = policy.reference
    return render(
        request,
        "reference.html",
        {
            "jurisdictions": sorted(reference.jurisdictions.values(), key=lambda j: j.code),
            "groups": sorted(reference.groups.items()),
            "instruments": reference.instruments,
            "channels": sorted(CHANNELS),
            "reference_hash": policy.reference_hash,
        },
        user=user,
    )

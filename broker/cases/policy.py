"""The policy context of a case event, and the payload of the envelope that carries it.

An event's envelope carries the case's declared metadata (legal basis, purpose, language,
channel, urgency, confidentiality, transfer basis, data categories and data-subject
categories, attachments); ``messages.accept`` builds the context from it. The case-level
fields the payload cannot give are passed as ``known`` (``policies/RULES.md``): the case type,
the state before the event, the event, the names of the filled request and event fields,
the records on file, the parties, the conditions accepted, the grounds, the assistance types,
the cost and assurance flags. These are the names ``policies.vocabulary`` lists, so the
shipped packs decide P1, P2, P6-P11, P18, P22 and the FIU rules on case events.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from broker.cases.bodies import filled_fields
from broker.cases.fold import Projection
from broker.cases.models import Case


def known_fields(
    *,
    case: Case,
    projection: Projection,
    event: str,
    body: BaseModel,
    request: BaseModel | None,
) -> dict[str, Any]:
    """The ``Context`` fields of an event beyond what its payload declares."""
    grounds = getattr(body, "grounds", None) or ()
    request_fields = filled_fields(request) if request is not None else frozenset(case.fields)
    return {
        "case_type": case.case_type,
        "case_state": projection.state,
        "case_event": event,
        "case_fields": request_fields | filled_fields(body),
        "case_records": projection.records,
        "case_parties": parties_of(case),
        "case_conditions": projection.conditions,
        "grounds": frozenset(grounds),
        "assistance_types": frozenset(case.assistance_types),
        "extraordinary_costs": case.extraordinary_costs,
        "assurance_recorded": projection.assurance,
    }


def parties_of(case: Case) -> frozenset[str]:
    """The case's parties as the packs read them: the two participants, or the members of a
    joint investigation team (its agreement's parties, UNTOC art. 19; P21), which its terms
    hold even when empty (then nobody may exchange: fail closed)."""
    if "members" in case.terms:
        return frozenset(case.terms["members"])
    return frozenset({case.requesting_id, case.requested_id})


def subjects(categories: list[str] | tuple[str, ...] | frozenset[str]) -> list[dict[str, str]]:
    """Data-subject entries of a payload from categories alone (``ref`` is a position)."""
    return [{"ref": f"s{i + 1}", "category": c} for i, c in enumerate(sorted(set(categories)))]


def envelope_metadata(case: Case) -> dict[str, Any]:
    """What every event envelope of ``case`` declares about the exchange."""
    meta: dict[str, Any] = {
        "case_id": case.id,
        "legal_basis": case.legal_basis,
        "purpose": case.purpose,
        "language": case.language,
        "channel": case.channel,
        "transfer_basis": case.transfer_basis,
        "urgent": case.urgent,
        "confidential": case.confidential,
    }
    return {k: v for k, v in meta.items() if v is not None}

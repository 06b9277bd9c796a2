"""The case's request, kept encrypted: sealed under a key of its own that the node's master
key wraps, its metadata (never its free text) copied onto the case row, and the validation
of a request or body against its model."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from broker.cases import bodies
from broker.cases.models import Case
from broker.cases.tables import WORKFLOWS
from broker.core import crypto
from broker.core.context import NodeContext
from broker.core.errors import ContentErased, SchemaViolation


def seal_request(node: NodeContext, request: BaseModel) -> tuple[bytes, bytes]:
    key = crypto.random_key()
    plain = orjson.dumps(request.model_dump(mode="json", exclude_none=True))
    return crypto.secretbox_encrypt(key, plain), crypto.secretbox_encrypt(node.master_key, key)


def erased_error(case: Case, what: str = "request") -> ContentErased:
    """The 410 problem of a case whose content was erased, naming the erasure date."""
    return ContentErased(f"the {what} of case {case.id}", case.erased_at, case_id=case.id)


def open_request(node: NodeContext, case: Case) -> BaseModel | None:
    """The case's request (drafted, vetted or received), or None once erased."""
    model = WORKFLOWS[case.workflow].request_model
    if model is None or case.request_ciphertext is None or case.request_key is None:
        return None
    key = crypto.secretbox_decrypt(node.master_key, case.request_key)
    return model.model_validate_json(crypto.secretbox_decrypt(key, case.request_ciphertext))


def apply_request(case: Case, request: BaseModel) -> None:
    """Copy the request's metadata onto the case row (never its free text)."""
    get = request.__dict__.get
    case.legal_basis = get("legal_basis")
    case.purpose = get("purpose")
    case.language = get("language")
    case.channel = get("channel")
    case.transfer_basis = get("transfer_basis")
    case.urgent = bool(get("urgent", False))
    case.confidential = bool(get("confidential", False))
    case.extraordinary_costs = bool(get("extraordinary_costs", False))
    case.initiated_by = str(get("initiated_by", "written"))
    case.deadline = get("deadline")
    case.deadline_reason = get("deadline_reason")
    case.information_access = get("information_access")
    case.fields = sorted(bodies.filled_fields(request))
    case.assistance_types = sorted(get("assistance_types", None) or [])
    persons = get("persons_concerned", None) or get("subjects", None) or []
    case.data_subject_categories = sorted(bodies.subject_categories(persons))
    terms: dict[str, Any] = {}
    for source, target in (
        ("named_recipients", "permitted_recipients"),
        ("permitted_recipients", "permitted_recipients"),
        ("permitted_purposes", "permitted_purposes"),
    ):
        values = get(source) or []
        if values:
            terms[target] = list(values)
    if "parties" in type(request).model_fields:
        # A joint investigation team's members: the parties of its agreement (UNTOC art. 19),
        # the policy context's ``case_parties`` (P21); its expiry, the date of its timers.
        terms["members"] = list(get("parties") or [])
        expiry = get("expiry")
        if expiry is not None:
            terms["expiry"] = expiry.isoformat()
    case.terms = terms


def validated(model: type[BaseModel], data: Any, prefix: str) -> BaseModel:
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        errors = [
            {
                "field": ".".join(str(p) for p in (prefix, *err["loc"]) if p != ""),
                "message": err["msg"],
            }
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise SchemaViolation(
            f"{errors[0]['field']}: {errors[0]['message']}", errors=errors
        ) from exc


def request_json(node: NodeContext, case: Case) -> dict[str, Any] | None:
    request = open_request(node, case)
    return None if request is None else request.model_dump(mode="json", exclude_none=True)

"""Declared means declared at every schema that takes a legal basis or purpose (issue 14 item
4; LED arts. 4(1)(b), 8(1); UNTOC art. 18(15)(f)): text of Unicode spaces, controls or format
characters alone is refused; the same text with a visible character is kept as written."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from broker.cases.bodies import FiuDisclosure, FiuRequest, MlaRequest, RequestConsent
from broker.consents.schemas import ConsentAnswer, ConsentCreate
from broker.envelopes.schemas import DraftPayload
from broker.fiu.schemas import MatchCreate

BLANKS = ["   ", "\u00a0", "\u2028\u2029", "\u200b", "\u200c\u200d", "\u2060", "\ufeff\t\n"]

MATCH = {
    "counterpart": "it.fiu",
    "exchange_id": "x-1",
    "filters": ["a" * 64],
    "purpose": "analysis",
    "legal_basis": "egmont",
}

DOORS: list[tuple[type[BaseModel], dict[str, Any], str]] = [
    (DraftPayload, {"type": "intel.message", "recipient": "nl.fiu"}, "legal_basis"),
    (DraftPayload, {"type": "intel.message", "recipient": "nl.fiu"}, "purpose"),
    (MlaRequest, {}, "legal_basis"),
    (MlaRequest, {}, "purpose"),
    (FiuRequest, {}, "purpose"),
    (FiuDisclosure, {}, "legal_basis"),
    (RequestConsent, {"recipient": "nl.fiu"}, "purpose"),
    (ConsentCreate, {"recipient": "nl.fiu"}, "purpose"),
    (ConsentCreate, {"recipient": "nl.fiu", "purpose": "trial"}, "legal_basis"),
    (ConsentAnswer, {}, "legal_basis"),
]


@pytest.mark.parametrize("blank", BLANKS)
@pytest.mark.parametrize(("model", "base", "field"), DOORS)
def test_a_blank_declaration_is_refused(
    model: type[BaseModel], base: dict[str, Any], field: str, blank: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        model.model_validate({**base, field: blank})
    [error] = raised.value.errors()
    assert error["loc"] == (field,)
    assert "invisible characters" in error["msg"]


@pytest.mark.parametrize(("model", "base", "field"), DOORS)
def test_a_padded_declaration_is_kept_as_written(
    model: type[BaseModel], base: dict[str, Any], field: str
) -> None:
    value = "\u00a0UNTOC art. 18\u200b "
    assert getattr(model.model_validate({**base, field: value}), field) == value


def test_a_permitted_purpose_must_be_declared_too() -> None:
    draft = {"type": "intel.message", "recipient": "nl.fiu"}
    with pytest.raises(ValidationError, match="invisible characters"):
        DraftPayload.model_validate({**draft, "permitted_purposes": ["trial", "\u3000"]})


@pytest.mark.parametrize("field", ["purpose", "legal_basis"])
def test_a_match_query_declares_its_basis_and_purpose(field: str) -> None:
    with pytest.raises(ValidationError, match="invisible characters"):
        MatchCreate.model_validate({**MATCH, field: "\u200b"})

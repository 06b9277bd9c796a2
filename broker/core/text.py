"""Free text a person types into metadata: names, reasons, purposes, legal bases.

Such text is stored in clear, written to audit leaves and shown to other people, so it holds
no control characters but tab and line breaks. (Message bodies and evidence are stored
encrypted and may hold anything.)"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from broker.core.errors import JustificationRequired

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def no_control_characters(value: str) -> str:
    """The value, if it holds no control character but tab and line breaks.

    Raises:
        ValueError: naming the first control character found.
    """
    if match := _CONTROL.search(value):
        raise ValueError(f"control character U+{ord(match.group()):04X} is not allowed here")
    return value


Text = Annotated[str, AfterValidator(no_control_characters)]


def justification(value: str | None, *, minimum: int, what: str) -> str:
    """The stripped justification a reader gives for consulting ``what`` (content, a
    request, evidence), which goes into the ``content:consulted`` audit leaf.

    Raises:
        JustificationRequired: shorter than ``minimum`` characters, or holding a control
            character.
    """
    text = (value or "").strip()
    if len(text) < minimum:
        raise JustificationRequired(
            f"say why you consult this {what}: justification of at least {minimum} characters",
            field="justification",
        )
    try:
        return no_control_characters(text)
    except ValueError as exc:
        raise JustificationRequired(f"justification: {exc}", field="justification") from exc

"""Free text a person types into metadata: names, reasons, purposes, legal bases.

Such text is stored in clear, written to audit leaves and shown to other people, so it holds
no control characters but tab and line breaks, and no lone surrogate (which UTF-8 cannot
encode: the database would refuse it). Names (of participants, accounts, files) also hold no
format character (Unicode category Cf: the bidi controls such as U+202E, zero-width spaces
and joiners, the byte order mark), which let a name read otherwise than it is
(``invoice\u202efdp.exe`` shows as ``invoiceexe.pdf``). (Message bodies and evidence are stored
encrypted and may hold anything but lone surrogates.)

``lone_surrogate_in`` finds a lone surrogate anywhere in parsed JSON, for the check every JSON
request body passes (``broker.http.checked_json_text``)."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator

from broker.core.errors import JustificationRequired

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def no_lone_surrogate(value: str) -> str:
    """The value, if UTF-8 can encode it. Raises ValueError naming the lone surrogate."""
    if match := _SURROGATE.search(value):
        raise ValueError(
            f"lone surrogate U+{ord(match.group()):04X} is not a character: send UTF-8 text"
        )
    return value


def no_control_characters(value: str) -> str:
    """The value, if it holds no control character but tab and line breaks, and no lone
    surrogate.

    Raises:
        ValueError: naming the first control character (or lone surrogate) found.
    """
    no_lone_surrogate(value)
    if match := _CONTROL.search(value):
        raise ValueError(f"control character U+{ord(match.group()):04X} is not allowed here")
    return value


def name_text(value: str) -> str:
    """The value, if it is ``Text`` that holds no format character (category Cf).

    Raises:
        ValueError: naming the first character refused.
    """
    no_control_characters(value)
    for char in value:
        if char in "\t\r\n":
            raise ValueError(f"control character U+{ord(char):04X} is not allowed in a name")
        if unicodedata.category(char) == "Cf":
            raise ValueError(
                f"format character U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')}) "
                "is not allowed in a name: it changes how the name reads"
            )
    return value


def lone_surrogate_in(value: Any) -> tuple[tuple[str | int, ...], str] | None:
    """The path to the first string (or object key) of parsed JSON ``value`` that holds a lone
    surrogate, and the reason; None when there is none."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            try:
                no_lone_surrogate(item)
            except ValueError as exc:
                return path, str(exc)
        elif isinstance(item, dict):
            for key, child in item.items():
                try:
                    no_lone_surrogate(str(key))
                except ValueError as exc:
                    return (*path, str(key).encode("utf-8", "replace").decode()), str(exc)
                stack.append(((*path, key), child))
        elif isinstance(item, list):
            stack.extend(((*path, i), child) for i, child in enumerate(item))
    return None


Text = Annotated[str, AfterValidator(no_control_characters)]
Name = Annotated[str, AfterValidator(name_text)]
"""A name a person reads: ``Text`` without format characters."""


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

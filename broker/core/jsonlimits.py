"""Limits on the shape of JSON that comes from outside: how deep it nests, how many elements
it holds.

The size of a body is limited before it is read (``broker.limits``); its shape is limited
here, once it is parsed and before anything is stored or signed. orjson serialises at most 255
levels, so JSON that nests deeper could be accepted and then never served again; and a
megabyte of ``[0,0,...]`` is half a million values to validate, encrypt and fold. Every place
that takes JSON from outside (submissions, drafts, payloads forwarded by peer nodes, case and
event bodies, adapter configuration) checks it with ``check_json``, or through the
``JsonObject`` type on a Pydantic field.

These limits are fixed, not settings: deeper JSON would break serialisation whatever an
operator chose.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

MAX_JSON_DEPTH = 64
"""Levels of arrays and objects, the outermost one counting as 1."""
MAX_JSON_ELEMENTS = 100_000
"""Values in one document (each member of an object and each item of an array is one)."""


class JsonShapeError(ValueError):
    """JSON over ``MAX_JSON_DEPTH`` or ``MAX_JSON_ELEMENTS``."""


def check_json(value: Any, *, what: str = "the JSON") -> Any:
    """``value`` (parsed JSON) unchanged, if it is within the depth and element limits.

    Raises:
        JsonShapeError: saying which limit ``what`` breaks.
    """
    elements = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise JsonShapeError(
                f"{what} nests deeper than the limit of {MAX_JSON_DEPTH} levels of "
                "arrays and objects"
            )
        elements += len(children)
        if elements > MAX_JSON_ELEMENTS:
            raise JsonShapeError(f"{what} holds more than the limit of {MAX_JSON_ELEMENTS} values")
        stack.extend((child, depth + 1) for child in children)
    return value


def _checked(value: Any) -> Any:
    return check_json(value, what="this value")


JsonObject = Annotated[dict[str, Any], AfterValidator(_checked)]
"""A JSON object from outside, within the depth and element limits."""

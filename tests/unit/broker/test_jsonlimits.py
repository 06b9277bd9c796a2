"""The JSON shape limits (broker/core/jsonlimits.py)."""

from __future__ import annotations

from typing import Any

import pytest

from broker.core.jsonlimits import MAX_JSON_DEPTH, MAX_JSON_ELEMENTS, JsonShapeError, check_json


def deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_depth_up_to_the_limit_passes_and_one_more_is_refused() -> None:
    assert check_json(deep(MAX_JSON_DEPTH)) == deep(MAX_JSON_DEPTH)
    with pytest.raises(JsonShapeError, match=str(MAX_JSON_DEPTH)):
        check_json({"a": deep(MAX_JSON_DEPTH)}, what="the body")


def test_element_count_counts_members_and_items() -> None:
    check_json({"a": [0] * (MAX_JSON_ELEMENTS - 1)})
    with pytest.raises(JsonShapeError, match=str(MAX_JSON_ELEMENTS)):
        check_json({"a": [0] * MAX_JSON_ELEMENTS})


def test_scalars_pass() -> None:
    assert check_json("x") == "x"
    assert check_json(None) is None

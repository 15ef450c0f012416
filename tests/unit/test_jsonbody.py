"""The one checked JSON body reader (httpd/jsonbody.py): finite, bounded numbers, shallow."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.httpd.jsonbody import MAX_DEPTH, NUMBER_MAX, BodyError, load_object, loads, number


@pytest.mark.parametrize(
    "raw",
    ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 400, str(2**53 + 1), "1e16"],
)
def test_a_number_that_is_not_finite_or_is_out_of_range_is_refused(raw: str) -> None:
    with pytest.raises(BodyError):
        loads('{"n": ' + raw + "}")


def test_nesting_is_bounded_and_a_deep_body_is_refused_not_a_crash() -> None:
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    for depth in (MAX_DEPTH + 1, 100_000):
        with pytest.raises(BodyError):
            loads("[" * depth + "]" * depth)


def test_only_an_object_is_a_body_and_a_number_is_not_a_flag() -> None:
    assert load_object(b'{"expires": 1700000000.5, "rects": [[0, 0, 10, 10]]}')["expires"] == (
        1700000000.5
    )
    for raw in ("[]", "1", '"x"', "null", "", "\xff", b"\xff\xfe"):
        with pytest.raises(BodyError):
            load_object(raw)
    with pytest.raises(BodyError):
        number(True)
    assert number(3) == 3.0


finite = st.floats(
    allow_nan=False, allow_infinity=False, min_value=-NUMBER_MAX, max_value=NUMBER_MAX
)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-NUMBER_MAX, NUMBER_MAX) | finite | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=12,
)


@given(values)
def test_whatever_json_python_writes_within_the_bounds_reads_back_the_same(value) -> None:
    raw = json.dumps({"v": value})
    try:
        assert loads(raw) == json.loads(raw)
    except BodyError:
        assert raw.count("[") + raw.count("{") > MAX_DEPTH  # only nesting may refuse it


@given(st.text(max_size=40))
def test_any_text_is_a_value_with_finite_numbers_or_a_body_error(raw: str) -> None:
    try:
        value = loads(raw)
    except BodyError:
        return
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float):
            assert math.isfinite(item)

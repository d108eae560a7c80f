"""RFC 7396 JSON merge patches: the RFC's own examples, and diff/apply as inverses."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventwire.catalog.patch import apply, diff, strip_nulls

# RFC 7396, Appendix A: (original, patch, result)
RFC_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("original", "patch", "result"), RFC_EXAMPLES)
def test_apply_follows_rfc_7396_appendix_a(original: Any, patch: Any, result: Any) -> None:
    before = copy.deepcopy(original)
    assert apply(original, patch) == result
    assert original == before  # never modified


def test_diff_is_the_seeds_partial_dto() -> None:
    before = {"id": "gift-456", "name": "Gift", "price": 29.99, "notes": "x"}
    after = {"id": "gift-456", "name": "Updated Gift", "price": 29.99}
    assert diff(before, after) == {"name": "Updated Gift", "notes": None}
    assert diff(before, before) == {}


def test_diff_treats_json_types_strictly() -> None:
    assert diff({"a": 1}, {"a": True}) == {"a": True}
    assert diff({"a": 1}, {"a": 1.0}) == {"a": 1.0}
    assert diff({"a": [1, 2]}, {"a": [1, 2]}) == {}


def test_diff_recurses_into_objects_and_replaces_arrays() -> None:
    before = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    after = {"a": {"b": 1, "c": 3}, "l": [1]}
    assert diff(before, after) == {"a": {"c": 3}, "l": [1]}


json_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=2), json_values, max_size=5)


@settings(max_examples=150, deadline=None)
@given(json_objects, json_objects)
def test_applying_the_diff_to_before_gives_after(before: Any, after: Any) -> None:
    patch = diff(before, after)
    assert strip_nulls(apply(before, patch)) == strip_nulls(after)
    assert apply(strip_nulls(before), patch) == strip_nulls(after)


@settings(max_examples=100, deadline=None)
@given(json_objects)
def test_a_diff_against_itself_is_empty(value: Any) -> None:
    assert diff(value, copy.deepcopy(value)) == {}

"""Topic grammar, pattern validation and the PatternIndex trie."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventwire.codes import ErrorCode
from eventwire.errors import ProtocolError
from eventwire.topics import (
    MAX_TOPIC_LENGTH,
    PatternIndex,
    is_pattern,
    pattern_matches,
    validate_pattern,
    validate_topic,
)

# --- validate_topic ---------------------------------------------------------


@pytest.mark.parametrize(
    "topic",
    [
        "gift-list:123",
        "user:456",
        "room:lobby",
        "order:789",
        "session:abc-def",
        "room:lobby:messages",
        "user:123:notifications",
        "org:acme:team:dev",
        "tenant:acme:gift-list:123",
        "a:1",
        "a1-b:-",
    ],
)
def test_valid_topics_are_returned_unchanged(topic: str) -> None:
    assert validate_topic(topic) == topic


def test_topic_of_exactly_max_length_is_valid() -> None:
    topic = "a:" + "b" * (MAX_TOPIC_LENGTH - 2)
    assert len(topic) == MAX_TOPIC_LENGTH
    assert validate_topic(topic) == topic


@pytest.mark.parametrize(
    "topic",
    [
        "gift-list",  # single segment
        "Gift-List:123",  # uppercase
        "gift-list:ABC",  # uppercase identifier
        "gift-list::123",  # empty segment
        ":123",  # empty first segment
        "1gift:123",  # leading digit in the first segment
        "-gift:123",  # leading dash in the first segment
        "gift-list:123:",  # trailing colon
        "gift list:123",  # space
        "gift_list:123",  # underscore
        "gift-list:123\n",  # trailing newline must not sneak past the regex
        "",
    ],
)
def test_invalid_topics_raise_invalid_topic(topic: str) -> None:
    with pytest.raises(ProtocolError) as info:
        validate_topic(topic)
    assert info.value.code is ErrorCode.INVALID_TOPIC
    assert info.value.details == {"topic": topic}


def test_topic_longer_than_max_is_invalid_and_not_echoed() -> None:
    topic = "a:" + "b" * (MAX_TOPIC_LENGTH - 1)
    with pytest.raises(ProtocolError) as info:
        validate_topic(topic)
    assert info.value.code is ErrorCode.INVALID_TOPIC
    assert info.value.details == {"topic": topic[:40] + "…"}  # a prefix, never the whole input
    assert topic not in info.value.message


@pytest.mark.parametrize("value", [None, 123, b"gift-list:1", ["gift-list:1"]])
def test_non_string_topic_is_invalid(value: object) -> None:
    with pytest.raises(ProtocolError) as info:
        validate_topic(value)
    assert info.value.code is ErrorCode.INVALID_TOPIC
    assert "expected a string" in info.value.message


def test_non_string_topic_is_not_described_as_too_long() -> None:
    with pytest.raises(ProtocolError) as info:
        validate_topic(123)
    assert "<too long>" not in info.value.message
    assert info.value.details.get("topic") != "<too long>"


@pytest.mark.parametrize("topic", ["system", "error", "system:x", "error:123", "system:*"])
def test_reserved_namespaces_raise_reserved_topic(topic: str) -> None:
    with pytest.raises(ProtocolError) as info:
        validate_topic(topic)
    assert info.value.code is ErrorCode.RESERVED_TOPIC
    assert info.value.details == {"topic": topic}


@pytest.mark.parametrize("topic", ["systems:x", "errors:1", "my-system:1"])
def test_names_merely_resembling_reserved_ones_are_allowed(topic: str) -> None:
    assert validate_topic(topic) == topic


@pytest.mark.parametrize("topic", ["gift-list:*", "*:messages", "user:*:notifications", "*"])
def test_wildcard_given_to_validate_topic_is_invalid(topic: str) -> None:
    with pytest.raises(ProtocolError) as info:
        validate_topic(topic)
    assert info.value.code is ErrorCode.INVALID_TOPIC
    assert "wildcard" in info.value.message


def test_error_payload_shape() -> None:
    with pytest.raises(ProtocolError) as info:
        validate_topic("Bad")
    payload = info.value.to_payload()
    assert payload["code"] == "INVALID_TOPIC"
    assert payload["details"] == {"topic": "Bad"}
    assert isinstance(payload["message"], str)


# --- patterns ---------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        "*",
        "gift-list:*",
        "user:*:notifications",
        "*:messages",
        "*:*",
        "org:*:team:*",
        "gift-list:123",
    ],
)
def test_valid_patterns(pattern: str) -> None:
    assert validate_pattern(pattern) == pattern


@pytest.mark.parametrize(
    "pattern",
    [
        "gift-list",  # single segment, not a wildcard
        "gift-list:",  # empty segment
        "gift-list:**",  # not a whole-segment wildcard
        "gift-list:12*",
        "**:messages",
        "Gift:*",
        "1gift:*",
        "a::*",
        "",
        "a:" + "b" * MAX_TOPIC_LENGTH,
    ],
)
def test_invalid_patterns(pattern: str) -> None:
    with pytest.raises(ProtocolError) as info:
        validate_pattern(pattern)
    assert info.value.code is ErrorCode.INVALID_TOPIC


def test_non_string_pattern_is_invalid() -> None:
    with pytest.raises(ProtocolError) as info:
        validate_pattern(42)
    assert info.value.code is ErrorCode.INVALID_TOPIC


def test_is_pattern() -> None:
    assert is_pattern("gift-list:*")
    assert is_pattern("*")
    assert not is_pattern("gift-list:123")


# --- PatternIndex: the seed's examples ---------------------------------------


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("gift-list:*", "gift-list:1", True),
        ("gift-list:*", "gift-list:1:items", True),
        ("gift-list:*", "gift-lists:1", False),
        ("gift-list:*", "gift-list", False),
        ("user:*:notifications", "user:123:notifications", True),
        ("user:*:notifications", "user:a:b:notifications", True),
        ("user:*:notifications", "user:123", False),
        ("user:*:notifications", "user:123:notifications:x", False),
        ("user:*:notifications", "user:notifications", False),
        ("*:messages", "room:lobby:messages", True),
        ("*:messages", "room:messages", True),
        ("*:messages", "messages", False),
        ("*:messages", "room:messages:old", False),
        ("*", "gift-list:1", True),
        ("*", "org:acme:team:dev", True),
        ("*:*", "a:b", True),
        ("*:*", "a", False),
        ("gift-list:123", "gift-list:123", True),
        ("gift-list:123", "gift-list:1234", False),
    ],
)
def test_pattern_matches(pattern: str, topic: str, expected: bool) -> None:
    assert pattern_matches(pattern, topic) is expected


def test_index_returns_every_matching_value() -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add("gift-list:*", "all-lists")
    index.add("user:*:notifications", "notifications")
    index.add("*:messages", "messages")
    index.add("*", "everything")
    index.add("room:lobby:messages", "lobby")

    assert index.match("gift-list:1") == {"all-lists", "everything"}
    assert index.match("gift-list:1:items") == {"all-lists", "everything"}
    assert index.match("gift-lists:1") == {"everything"}
    assert index.match("user:7:notifications") == {"notifications", "everything"}
    assert index.match("room:lobby:messages") == {"messages", "everything", "lobby"}
    assert index.match("room:hall:messages") == {"messages", "everything"}


def test_index_add_discard_len_patterns() -> None:
    index: PatternIndex[int] = PatternIndex()
    assert len(index) == 0
    index.add("gift-list:*", 1)
    index.add("gift-list:*", 2)
    index.add("gift-list:*", 1)  # duplicate pair: not counted twice
    index.add("room:lobby", 3)
    assert len(index) == 3
    assert sorted(index.patterns()) == [("gift-list:*", 1), ("gift-list:*", 2), ("room:lobby", 3)]

    index.discard("gift-list:*", 1)
    assert len(index) == 2
    assert index.match("gift-list:9") == {2}

    # Discarding what is not there changes nothing.
    index.discard("gift-list:*", 1)
    index.discard("room:*", 3)
    index.discard("nowhere:at:all", 3)
    index.discard("room:lobby", 99)
    assert len(index) == 2
    assert sorted(index.patterns()) == [("gift-list:*", 2), ("room:lobby", 3)]


def test_index_discard_keeps_sibling_and_ancestor_values() -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add("a:b", "ab")
    index.add("a:b:c", "abc")
    index.add("a:*", "astar")
    index.discard("a:b:c", "abc")
    assert index.match("a:b") == {"ab", "astar"}
    assert index.match("a:b:c") == {"astar"}
    index.discard("a:b", "ab")
    assert index.match("a:b") == {"astar"}
    assert sorted(index.patterns()) == [("a:*", "astar")]


def test_index_discard_everything_prunes_the_trie() -> None:
    index: PatternIndex[str] = PatternIndex()
    pairs = [
        ("gift-list:*", "x"),
        ("user:*:notifications", "y"),
        ("*:messages", "z"),
        ("*", "w"),
        ("org:acme:team:dev", "v"),
        ("*:*:*", "u"),
    ]
    for pattern, value in pairs:
        index.add(pattern, value)
    for pattern, value in reversed(pairs):
        index.discard(pattern, value)

    assert len(index) == 0
    assert index.match("gift-list:1") == set()
    assert index.match("org:acme:team:dev") == set()
    assert list(index.patterns()) == []
    root = index._root
    assert root.children == {}
    assert root.star is None
    assert root.is_empty()


# --- PatternIndex against a reference implementation ------------------------

_SEGMENTS = ["a", "b", "c"]
_STAR_RE = r"[^:]+(?::[^:]+)*"


def _reference_regex(pattern: str) -> re.Pattern[str]:
    parts = [_STAR_RE if seg == "*" else re.escape(seg) for seg in pattern.split(":")]
    return re.compile(":".join(parts))


def _reference_match(pairs: set[tuple[str, int]], topic: str) -> set[int]:
    return {value for pattern, value in pairs if _reference_regex(pattern).fullmatch(topic)}


_patterns = st.lists(st.sampled_from([*_SEGMENTS, "*"]), min_size=1, max_size=4).map(":".join)
_topics = st.lists(st.sampled_from(_SEGMENTS), min_size=1, max_size=6).map(":".join)
_operations = st.lists(
    st.tuples(st.booleans(), _patterns, st.integers(min_value=0, max_value=3)),
    max_size=30,
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=_operations, topics=st.lists(_topics, min_size=1, max_size=10))
def test_index_agrees_with_reference(
    operations: list[tuple[bool, str, int]], topics: list[str]
) -> None:
    index: PatternIndex[int] = PatternIndex()
    reference: set[tuple[str, int]] = set()
    for is_add, pattern, value in operations:
        if is_add:
            index.add(pattern, value)
            reference.add((pattern, value))
        else:
            index.discard(pattern, value)
            reference.discard((pattern, value))

    assert len(index) == len(reference)
    assert sorted(index.patterns()) == sorted(reference)
    for topic in topics:
        assert index.match(topic) == _reference_match(reference, topic), topic
    for pattern, _ in reference:
        # Every pattern matches at least the topic made by filling its wildcards.
        filled = pattern.replace("*", "a")
        assert pattern_matches(pattern, filled)

    for pattern, value in list(reference):
        index.discard(pattern, value)
    assert len(index) == 0
    assert index._root.is_empty()

"""The presence rule of the brokers, as plain data: counts per node, leases, who went."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventwire.brokers.presence.table import Share, TopicPresence

LONG = 1000.0


def test_counts_sum_over_nodes_and_transitions_are_cluster_wide() -> None:
    table = TopicPresence()
    assert table.update("a", {"u1": 1}, LONG, 0).counts == {"u1": (0, 1)}
    assert table.update("b", {"u1": 1}, LONG, 0).counts == {"u1": (1, 2)}
    assert table.update("a", {"u1": 0}, None, 0).counts == {"u1": (2, 1)}
    assert table.update("b", {"u1": 0}, None, 0).counts == {"u1": (1, 0)}
    assert table.empty


def test_a_node_past_its_lease_is_dropped_once_and_only_by_others() -> None:
    table = TopicPresence()
    table.update("dead", {"u1": 1, "u2": 2}, 10.0, 0)
    table.update("a", {"u2": 1}, LONG, 0)
    assert table.read("dead", 11.0, None).expired == []  # never by itself
    read = table.read("a", 11.0, None)
    assert (read.counts, read.expired) == ({"u2": 1}, ["u1"])
    assert table.read("a", 12.0, None).expired == []
    assert not table.update("dead", {}, LONG, 12.0).known  # it must write its members again


def test_a_write_reports_the_expired_beside_its_own_changes() -> None:
    table = TopicPresence()
    table.update("dead", {"u1": 1}, 10.0, 0)
    update = table.update("a", {"u1": 1}, LONG, 11.0)
    assert (update.counts, update.expired, update.known) == ({"u1": (0, 1)}, ["u1"], False)


def test_releasing_with_members_left_is_refused() -> None:
    table = TopicPresence()
    table.update("a", {"u1": 1}, LONG, 0)
    with pytest.raises(ValueError, match="members left"):
        table.update("a", {}, None, 0)


def test_read_of_some_members() -> None:
    table = TopicPresence()
    table.update("a", {"u1": 1, "u2": 3}, LONG, 0)
    table.update("b", {"u2": 1}, LONG, 0)
    assert table.read("a", 0, ["u2", "u3"]).counts == {"u2": 4}


def test_json_round_trip_keeps_everything() -> None:
    table = TopicPresence({"a": Share(12.5, {'["acme","Zoë"]': 2}), "b": Share(3.0, {})})
    again = TopicPresence.from_json(table.to_json())
    assert again.nodes == table.nodes
    assert TopicPresence.from_json(b"").empty


writes = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from(["u1", "u2"]), st.integers(0, 3)),
    max_size=30,
)


@given(writes)
def test_writes_report_each_members_cluster_wide_count(steps: list[tuple[str, str, int]]) -> None:
    """Before and after are the sums over nodes, so joins and leaves alternate per member."""
    table = TopicPresence()
    local: dict[tuple[str, str], int] = {}
    present = {"u1": False, "u2": False}
    for node, member, count in steps:
        expected_before = sum(c for (_, m), c in local.items() if m == member)
        local[node, member] = count
        holds = any(c for (n, _), c in local.items() if n == node)
        update = table.update(node, {member: count}, LONG if holds else None, 0)
        before, after = update.counts[member]
        assert (before, after) == (
            expected_before,
            sum(c for (_, m), c in local.items() if m == member),
        )
        if (before == 0) != (after == 0):
            assert present[member] == (before > 0)  # a join follows a leave, and back
            present[member] = after > 0
    assert table.empty == (not any(local.values()))

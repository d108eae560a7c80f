"""The NATS broker's names and URL: pure, no server needed."""

from __future__ import annotations

import sys

import pytest

from eventwire.brokers import create_broker

pytest.importorskip("nats", reason="the NATS broker needs nats-py (eventwire[nats])")

from eventwire.brokers._nats_subjects import NatsNames, parse_place
from eventwire.brokers.nats import NatsBroker


def test_topics_map_to_subjects_one_to_one() -> None:
    names = NatsNames("EVENTWIRE", "ew")
    assert names.stored("gift-list:1") == "ew.gift-list.1"
    assert names.live("room:lobby:messages") == "ew-live.room.lobby.messages"
    assert names.topic_of_live("ew-live.room.lobby.messages") == "room:lobby:messages"
    assert names.topic_of_live("other.room.lobby") is None
    assert (names.stored_all, names.live_all) == ("ew.>", "ew-live.>")


@pytest.mark.parametrize(
    ("pattern", "subject"),
    [
        ("gift-list:*", "ew-live.gift-list.>"),  # exact: both take one or more
        ("room:*:messages", "ew-live.room.>"),  # covering: filtered on receipt
        ("*:messages", "ew-live.>"),
        ("*", "ew-live.>"),
    ],
)
def test_patterns_get_a_covering_subject(pattern: str, subject: str) -> None:
    assert NatsNames("EVENTWIRE", "ew").covering(pattern) == subject


@pytest.mark.parametrize("topic", ["room:a.b", "room:a b", "room:>", "room::a", "room:*"])
def test_what_no_subject_can_carry_is_refused(topic: str) -> None:
    with pytest.raises(ValueError, match="NATS subject"):
        NatsNames("EVENTWIRE", "ew").stored(topic)


@pytest.mark.parametrize(("stream", "prefix"), [("A.B", "ew"), ("S", "a.b"), ("S", "ew-live")])
def test_stream_and_prefix_are_checked(stream: str, prefix: str) -> None:
    with pytest.raises(ValueError, match="NATS"):
        NatsNames(stream, prefix)


def test_headers_are_read_strictly() -> None:
    assert parse_place({"Ew-Seq": "3", "Ew-Epoch": "ab", "Ew-Prev": "17"}) == (3, "ab", 17)
    for headers in (None, {}, {"Ew-Seq": "1"}, {"Ew-Seq": "-1", "Ew-Epoch": "ab"}):
        with pytest.raises(ValueError, match="not an eventwire message"):
            parse_place(headers)


def test_nats_urls_make_a_nats_broker() -> None:
    broker = create_broker(
        "nats://user:secret@h1:4222,h2:4223?stream=SHOP&prefix=shop&retention=7200&replicas=3",
        history_size=5,
        history_age=60,
    )
    assert isinstance(broker, NatsBroker)
    assert (broker.names.stream, broker.names.prefix) == ("SHOP", "shop")
    assert broker.servers == ["nats://user:secret@h1:4222", "nats://user:secret@h2:4223"]
    assert broker.shown_url == "nats://user:***@h1:4222,h2:4223"
    assert (broker.history_size, broker.history_age, broker.retention) == (5, 60, 7200)
    assert broker.replicas == 3
    default = create_broker("nats://127.0.0.1:4222", history_age=60)
    assert isinstance(default, NatsBroker)
    assert (default.names.stream, default.names.prefix) == ("EVENTWIRE", "ew")
    assert default.retention == 60 + 86400


def test_bad_nats_urls_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown NATS URL options"):
        create_broker("nats://127.0.0.1:4222?prefx=shop")
    with pytest.raises(ValueError, match="retention"):
        create_broker("nats://127.0.0.1:4222?retention=10", history_age=60)


def test_a_nats_url_without_nats_py_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "nats" or n.startswith("nats.")]:
        monkeypatch.setitem(sys.modules, name, None)  # what a missing package looks like
    monkeypatch.delitem(sys.modules, "eventwire.brokers.nats")
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'eventwire\[nats\]'"):
        create_broker("nats://127.0.0.1:4222")

"""The client's list of gateway URLs: which one it uses, and how it moves on."""

from __future__ import annotations

import pytest

from eventwire.client.connection import Endpoints, shown, with_token


def test_one_url_is_always_the_current_one() -> None:
    endpoints = Endpoints("http://127.0.0.1:8000")
    assert endpoints.urls == ("ws://127.0.0.1:8000/ws",)
    assert endpoints.advance() == endpoints.current == "ws://127.0.0.1:8000/ws"
    assert [endpoints.backoff_step(attempt) for attempt in range(3)] == [0, 1, 2]


def test_several_urls_are_tried_round_robin_from_the_first() -> None:
    endpoints = Endpoints(["ws://a:1/ws", "ws://b:1/ws", "ws://c:1/ws"])
    assert endpoints.current == "ws://a:1/ws"
    tried = [endpoints.advance() for _ in range(4)]
    assert tried == ["ws://b:1/ws", "ws://c:1/ws", "ws://a:1/ws", "ws://b:1/ws"]


def test_backoff_grows_once_per_round_of_urls() -> None:
    endpoints = Endpoints(["ws://a:1/ws", "ws://b:1/ws", "ws://c:1/ws"])
    steps = [endpoints.backoff_step(attempt) for attempt in range(7)]
    assert steps == [0, 0, 0, 1, 1, 1, 2]  # a dead node costs one short wait, not a long one


def test_no_url_or_a_bad_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Endpoints([])
    with pytest.raises(ValueError, match="WebSocket URL"):
        Endpoints(["ws://a:1/ws", "ftp://b"])


def test_a_url_in_messages_hides_its_token() -> None:
    url = with_token("ws://127.0.0.1:8000/ws?x=1", "secret.jwt.value")
    assert "secret" in url
    assert shown(url) == "ws://127.0.0.1:8000/ws?x=1&token=***"
    assert shown("ws://127.0.0.1:8000/ws") == "ws://127.0.0.1:8000/ws"

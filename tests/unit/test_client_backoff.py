"""The client's reconnection backoff: it grows across connections that do not last."""

from __future__ import annotations

from eventwire.client.connection import Endpoints
from eventwire.client.reconnect import Backoff


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ceilings(backoff: Backoff, count: int) -> list[float]:
    return [backoff.delay(1.0, 64.0) for _ in range(count)]


def test_connections_that_close_at_once_do_not_reset_the_backoff() -> None:
    clock = FakeClock()
    backoff = Backoff(5.0, clock=clock, rand=lambda: 1.0)
    delays = []
    for _ in range(6):  # a node that accepts, then closes with 1011 a moment later
        delays.append(backoff.delay(1.0, 64.0))
        backoff.opened()
        clock.now += 0.2
        backoff.closed()
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]


def test_a_connection_that_lasted_starts_the_backoff_again() -> None:
    clock = FakeClock()
    backoff = Backoff(5.0, clock=clock, rand=lambda: 1.0)
    assert ceilings(backoff, 3) == [1.0, 2.0, 4.0]
    backoff.opened()
    clock.now += 4.9
    backoff.closed()
    assert ceilings(backoff, 1) == [8.0]  # 4.9 s is not stable: still growing
    backoff.opened()
    clock.now += 5.0
    backoff.closed()
    assert ceilings(backoff, 2) == [1.0, 2.0]


def test_the_cap_holds_and_closed_without_opened_changes_nothing() -> None:
    backoff = Backoff(5.0, clock=FakeClock(), rand=lambda: 1.0)
    assert ceilings(backoff, 9)[-3:] == [64.0, 64.0, 64.0]
    backoff.closed()
    assert backoff.attempts == 9


def test_the_backoff_grows_once_per_round_of_urls() -> None:
    endpoints = Endpoints(["ws://127.0.0.1:1/ws", "ws://127.0.0.1:2/ws"])
    backoff = Backoff(5.0, step=endpoints.backoff_step, clock=FakeClock(), rand=lambda: 1.0)
    assert ceilings(backoff, 6) == [1.0, 1.0, 2.0, 2.0, 4.0, 4.0]


def test_the_delay_is_drawn_with_full_jitter() -> None:
    backoff = Backoff(5.0, clock=FakeClock(), rand=lambda: 0.25)
    assert ceilings(backoff, 3) == [0.25, 0.5, 1.0]

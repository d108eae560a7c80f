"""The frame budget: a tiny allowance before AUTH, then a bucket whose dry runs are strikes."""

from __future__ import annotations

import pytest

from eventwire.server.frame_budget import FrameBudget


def budget(now: float = 0.0) -> FrameBudget:
    return FrameBudget(rate=100.0, burst=10, before_auth=3, strikes=3, now=now)


def test_before_auth_a_few_frames_then_a_flood() -> None:
    frames = budget()
    assert [frames.take(0.0, authenticated=False) for _ in range(3)] == [True] * 3
    assert not frames.flooding
    assert not frames.take(0.0, authenticated=False)
    assert frames.flooding


def test_the_allowance_does_not_refill_with_time() -> None:
    frames = budget()
    for second in range(3):
        assert frames.take(float(second * 100), authenticated=False)
    assert not frames.take(1000.0, authenticated=False)


def test_a_burst_then_a_pause_until_half_the_bucket_is_back() -> None:
    frames = budget()
    assert all(frames.take(0.0, authenticated=True) for _ in range(10))
    assert not frames.take(0.0, authenticated=True)
    assert not frames.flooding
    # One frame in debt; half a burst (5) back at 100 frames/s: 6 frames' worth.
    assert frames.pause_for(0.0) == pytest.approx(0.06)
    assert frames.pause_for(0.06) == pytest.approx(0.0)


def test_frames_in_debt_are_one_strike_not_many() -> None:
    frames = budget()
    for _ in range(10):
        frames.take(0.0, authenticated=True)
    assert not any(frames.take(0.0, authenticated=True) for _ in range(50))
    assert not frames.flooding


def test_running_dry_again_and_again_is_a_flood() -> None:
    frames, now = budget(), 0.0
    for strike in range(3):
        while frames.take(now, authenticated=True):
            pass
        assert frames.flooding == (strike == 2)
        now += frames.pause_for(now)


def test_a_full_bucket_forgives_the_strikes() -> None:
    frames, now = budget(), 0.0
    for _ in range(2):
        while frames.take(now, authenticated=True):
            pass
        now += frames.pause_for(now)
    now += 1.0  # quiet: the bucket fills up
    for _ in range(2):
        while frames.take(now, authenticated=True):
            pass
        now += frames.pause_for(now)
    assert not frames.flooding

"""The supervisor's rules, without processes: backoff and limit, counts, refusals, stop budget."""

from __future__ import annotations

import os

import pytest

from eventwire.server import Settings, load_settings
from eventwire.server.config import STOP_ALLOWANCE
from eventwire.server.workers import RestartPolicy, check_workers, worker_count


def test_restarts_back_off_exponentially_up_to_the_cap() -> None:
    policy = RestartPolicy(max_restarts=10, window=1000.0, backoff_initial=0.5, backoff_max=3.0)
    delays = [policy.delay(now) for now in (0.0, 1.0, 2.0, 3.0, 4.0)]
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_one_death_too_many_within_the_window_gives_up() -> None:
    policy = RestartPolicy(max_restarts=3, window=60.0)
    assert all(policy.delay(now) is not None for now in (0.0, 10.0, 20.0))
    assert policy.delay(30.0) is None


def test_deaths_older_than_the_window_are_forgotten() -> None:
    policy = RestartPolicy(max_restarts=2, window=60.0, backoff_initial=0.5)
    assert policy.delay(0.0) == 0.5
    assert policy.delay(10.0) == 1.0
    assert policy.delay(69.0) == 1.0  # the death at 0 s left the window; 10 s did not
    assert policy.delay(200.0) == 0.5  # a worker that ran a long time starts over


def test_zero_workers_means_one_per_usable_cpu() -> None:
    assert worker_count(3) == 3
    assert worker_count(0) == len(os.sched_getaffinity(0))


def test_auto_is_zero_in_every_source(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(workers="auto").workers == 0
    monkeypatch.setenv("EVENTWIRE_WORKERS", "auto")
    assert load_settings().workers == 0


def test_several_workers_need_a_shared_broker() -> None:
    with pytest.raises(ValueError, match="2 workers need a broker they share"):
        check_workers(Settings(broker="memory://"), 2)
    check_workers(Settings(broker="memory://"), 1)
    check_workers(Settings(broker="redis://127.0.0.1:6390/0"), 4)
    check_workers(Settings(broker="nats://127.0.0.1:4223"), 4)


def test_the_stop_budget_adds_up_every_wait_of_a_stop() -> None:
    assert Settings(shutdown_grace=5).stop_budget == 15 + STOP_ALLOWANCE
    with_presence = Settings(shutdown_grace=5, presence_topics=["room:*"])
    assert with_presence.stop_budget == 25 + STOP_ALLOWANCE
    # presence gives each of its two steps a second at least
    short = Settings(shutdown_grace=0.25, presence_events=["room:*"])
    assert short.stop_budget == 0.75 + 2 + STOP_ALLOWANCE

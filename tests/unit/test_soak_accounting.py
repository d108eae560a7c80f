"""The soak's accounting on small synthetic traces: what counts as lost, repeated, late, silent.

Each test plays a subscriber's wire into a ``SubscriberLedger`` (as the
soak's socket loop does) beside a publish ledger, then judges the run.
"""

from __future__ import annotations

import pytest
from bench.soak.accounting import Windows, judge, percentile, publish_recovery
from bench.soak.ledger import ChaosWindow, LatencyLog, PublishLedger, PublishRecord, SeqBook
from bench.soak.wire import SubscriberLedger

T = "gift-list:1"
EPOCH = "e1"


class Trace:
    """One subscriber on topic ``T`` and the publishes of a run."""

    def __init__(self) -> None:
        self.publishes = PublishLedger()
        self.latencies = LatencyLog()
        self.seqs = SeqBook()
        self.sub = SubscriberLedger(1, (T,), latencies=self.latencies, seqs=self.seqs)

    def accepted(self, *seqs: int, at: float = 0.0, status: str = "200") -> None:
        """Publishes numbered ``n == seq``, sent at ``at``, answered ``status``."""
        for seq in seqs:
            answered = seq if status == "200" else None
            self.publishes.add(PublishRecord(seq, T, at, 0.01, status, seq=answered))

    def connect(self, t: float, position: int, recovered: bool | None = None) -> None:
        self.sub.connected(t)
        self.sub.subscribing([T])
        answer = None if recovered is None else {T: recovered}
        self.sub.subscribed(t, {T: (position, EPOCH)}, answer)

    def events(self, t: float, *seqs: int, n: int | None = None) -> None:
        for seq in seqs:
            self.sub.event(t, T, seq, seq if n is None else n, sent_at=t - 0.01)

    def judge(self, chaos: tuple[ChaosWindow, ...] = ()) -> dict[str, int]:
        found = judge(self.publishes, [self.sub], self.latencies, self.seqs, chaos, settle=1.0)
        return {
            "losses": found.losses,
            "excused": found.excused,
            "duplicates": found.counts["duplicates"],
            "wire_repeats": found.counts["wire_repeats"],
            "out_of_order": found.counts["out_of_order"],
            "silences": found.silences,
            "seq_mismatches": found.seq_mismatches,
        }


CLEAN = {
    "losses": 0,
    "excused": 0,
    "duplicates": 0,
    "wire_repeats": 0,
    "out_of_order": 0,
    "silences": 0,
    "seq_mismatches": 0,
}


def test_every_event_once_in_order_is_clean() -> None:
    trace = Trace()
    trace.connect(0.0, position=0)
    trace.accepted(1, 2, 3)
    trace.events(0.5, 1, 2, 3)
    assert trace.judge() == CLEAN
    assert trace.sub.caught_up({T: 3})


def test_a_missing_event_is_a_silent_loss() -> None:
    trace = Trace()
    trace.connect(0.0, position=0)
    trace.accepted(1, 2, 3)
    trace.events(0.5, 1, 3)
    assert trace.judge() == CLEAN | {"losses": 1}
    assert trace.sub.counts["jumps"] == 1


def test_events_before_the_first_subscription_are_not_owed() -> None:
    trace = Trace()
    trace.accepted(1, 2)
    trace.connect(0.0, position=2)
    trace.accepted(3)
    trace.events(0.5, 3)
    assert trace.judge() == CLEAN


def test_an_event_before_subscribed_is_held_and_handed_over_after_it() -> None:
    trace = Trace()
    trace.accepted(1, 2)
    trace.sub.connected(0.0)
    trace.sub.subscribing([T])
    trace.events(0.1, 2)  # published while the subscription was set up
    trace.sub.subscribed(0.2, {T: (2, EPOCH)}, None)
    assert trace.sub.handed(2)
    assert trace.judge() == CLEAN


def test_recovered_false_excuses_what_the_server_said_was_lost() -> None:
    trace = Trace()
    trace.connect(0.0, position=0)
    trace.accepted(1, 2, 3, 4)
    trace.events(0.5, 1)
    trace.sub.closed(1.0, None, ours=True)
    trace.connect(2.0, position=3, recovered=False)
    trace.sub.recovery_failed_at(2.0, T, 3, EPOCH, "too_many_missed")
    trace.events(2.5, 4)
    assert trace.judge() == CLEAN | {"excused": 2}
    assert trace.sub.recovery_failed == {"too_many_missed": 1}


def test_recovery_failed_alone_excuses_up_to_its_position() -> None:
    trace = Trace()
    trace.connect(0.0, position=0)
    trace.accepted(1, 2, 3)
    trace.sub.recovery_failed_at(1.0, T, 2, EPOCH, "history_unavailable")
    trace.events(1.5, 3)
    assert trace.judge() == CLEAN | {"excused": 2}


def test_a_since_left_unanswered_is_a_loss() -> None:
    trace = Trace()
    trace.connect(0.0, position=0)
    trace.accepted(1, 2, 3)
    trace.events(0.5, 1)
    trace.sub.closed(1.0, None, ours=True)
    trace.connect(2.0, position=2)  # no ``recovered`` although ``since`` was sent
    trace.events(2.5, 3)
    assert trace.judge() == CLEAN | {"losses": 1}
    assert trace.sub.counts["unannounced_gaps"] == 1


def test_a_replay_repeating_a_live_event_is_a_wire_repeat_but_no_duplicate() -> None:
    trace = Trace()
    trace.connect(0.0, position=0)
    trace.accepted(1, 2, 3)
    trace.events(0.5, 1)
    trace.sub.closed(1.0, None, ours=True)
    assert trace.sub.since() == {T: {"seq": 1, "epoch": EPOCH}}
    trace.connect(1.5, position=3, recovered=True)
    trace.events(1.6, 2, 3, 3)  # replayed 2 and 3, then 3 again live
    assert trace.judge() == CLEAN | {"wire_repeats": 1}
    trace.sub.finish(1.7)
    assert trace.sub.examples["wire_repeats"] == [
        "sub 1 (connected to ): gift-list:1: 1 seq twice (3-3)"
    ]
    assert trace.sub.counts["deduped"] == 1


def test_the_same_seq_on_two_connections_is_no_repeat() -> None:
    trace = Trace()
    trace.connect(0.0, position=0)
    trace.accepted(1, 2)
    trace.events(0.5, 1, 2)
    trace.sub.closed(1.0, 1001, ours=False)
    trace.connect(1.5, position=2, recovered=True)
    trace.events(1.6, 2)  # at least once on the wire across connections
    assert trace.judge() == CLEAN
    assert trace.sub.close_codes == {1001: 1}


def test_a_lower_seq_after_a_higher_one_is_out_of_order_and_lost() -> None:
    trace = Trace()
    trace.connect(0.0, position=0)
    trace.accepted(1, 2, 3)
    trace.events(0.5, 1, 3, 2)
    assert trace.judge() == CLEAN | {"out_of_order": 1, "losses": 1}
    trace.sub.closed(1.0, None, ours=True)
    assert trace.sub.examples["out_of_order"] == [
        "sub 1 (connected to ): gift-list:1: 1 seq late, from 2 after 3"
    ]


def test_one_publish_under_two_seqs_is_a_duplicate_after_dedup() -> None:
    trace = Trace()
    trace.connect(0.0, position=0)
    trace.accepted(1)
    trace.events(0.5, 1)
    trace.events(0.6, 2, n=1)  # stored twice by the broker
    assert trace.judge() == CLEAN | {"duplicates": 1, "seq_mismatches": 1}


def test_a_new_epoch_excuses_what_was_sent_before_it_was_announced() -> None:
    trace = Trace()
    trace.connect(0.0, position=0)
    trace.accepted(1, 2, at=0.2)
    trace.events(0.5, 1)
    trace.sub.closed(1.0, 4010, ours=False)
    trace.sub.connected(2.0)
    trace.sub.subscribing([T])
    trace.sub.subscribed(2.0, {T: (0, "e2")}, {T: False})
    assert trace.judge() == CLEAN | {"excused": 1}
    assert trace.sub.counts["history_resets"] == 1


def test_a_refused_publish_that_was_delivered_is_counted() -> None:
    trace = Trace()
    trace.connect(0.0, position=0)
    trace.accepted(1, status="503")
    trace.events(0.5, 1)
    found = judge(trace.publishes, [trace.sub], trace.latencies, trace.seqs, (), settle=1.0)
    assert found.refused_delivered == {"503": 1}
    assert found.losses == 0


def test_a_silence_outside_chaos_while_events_were_published() -> None:
    trace = Trace()
    trace.connect(0.0, position=0)
    trace.accepted(1, at=0.5)
    trace.events(0.51, 1)
    trace.accepted(2, at=4.0)
    trace.events(4.01, 2)  # 3.5 s without an event, but none was published: a quiet topic
    assert trace.judge()["silences"] == 0
    trace.accepted(3, at=4.5)
    trace.events(8.0, 3)  # 3 waited 3.5 s
    assert trace.judge()["silences"] == 1
    found = judge(trace.publishes, [trace.sub], trace.latencies, trace.seqs, (), settle=1.0)
    assert found.silences_by_node == {"": 1}  # the node ``connect`` named (none here)
    assert found.longest_silence == pytest.approx(3.99)


def test_a_silence_inside_a_chaos_window_is_not_counted() -> None:
    trace = Trace()
    trace.connect(0.0, position=0)
    trace.accepted(1, at=1.0)
    trace.events(6.0, 1)
    freeze = ChaosWindow("broker-freeze", "redis", 0.5, 3.0, resumed_at=3.0)
    assert trace.judge((freeze,))["silences"] == 0  # 0.5 to 4.0 excluded; 4.0 to 6.0 is 2 s
    assert trace.judge()["silences"] == 1


def test_a_silence_with_nothing_published_is_not_counted() -> None:
    trace = Trace()
    trace.connect(0.0, position=0)
    trace.accepted(1, at=9.5)
    trace.events(10.0, 1)
    assert trace.judge()["silences"] == 0


def test_publish_recovery_ends_with_the_last_abnormal_answer() -> None:
    records = [
        PublishRecord(1, T, 99.0, 5.0, "503", "BROKER_UNAVAILABLE"),  # sent before: not counted
        PublishRecord(2, T, 100.2, 0.001, "503", "BROKER_UNAVAILABLE"),
        PublishRecord(3, T, 100.5, 0.02, "200", seq=1),
        PublishRecord(4, T, 101.5, 3.0, "200", seq=2),
        PublishRecord(5, T, 120.0, 9.0, "200", seq=3),  # past the horizon
    ]
    recovery = publish_recovery(records, "broker-freeze", 100.0, normal=0.1)
    assert recovery.seconds == pytest.approx(4.5)
    assert (recovery.abnormal, recovery.statuses) == (2, {"503": 1, "200": 1})
    calm = publish_recovery(records[2:3], "broker-freeze", 100.0, normal=0.1)
    assert (calm.seconds, calm.abnormal) == (0.0, 0)


def test_a_publish_failed_by_the_next_fault_is_not_this_ones() -> None:
    records = [
        PublishRecord(1, T, 100.5, 0.02, "200", seq=1),
        PublishRecord(2, T, 105.9, 0.3, "error", "ConnectError"),  # its node was killed at 106
        PublishRecord(3, T, 106.5, 0.001, "503", "BROKER_UNAVAILABLE"),
    ]
    recovery = publish_recovery(records, "broker-restart", 100.0, normal=0.1, next_fault=106.0)
    assert (recovery.seconds, recovery.abnormal) == (0.0, 0)


def test_delivery_latency_leaves_out_chaos_and_replays() -> None:
    trace = Trace()
    trace.connect(0.0, position=0)
    trace.accepted(1, 2, 3)
    trace.sub.event(1.0, T, 1, 1, sent_at=0.99)
    trace.sub.event(5.0, T, 2, 2, sent_at=2.0)  # in flight during the chaos window
    trace.sub.event(9.0, T, 3, 3, sent_at=8.95)
    chaos = (ChaosWindow("node-kill", "node-1", 3.0, 4.0),)
    found = judge(trace.publishes, [trace.sub], trace.latencies, trace.seqs, chaos, settle=1.0)
    assert found.latency["count"] == 2
    assert found.latency["max"] == pytest.approx(0.05)
    assert found.latency["all_p99"] == pytest.approx(3.0)


def test_windows_merge_and_subtract() -> None:
    windows = Windows([(5.0, 7.0), (1.0, 2.0), (6.0, 8.0)])
    assert windows.intervals == [(1.0, 2.0), (5.0, 8.0)]
    assert windows.outside(0.0, 10.0) == [(0.0, 1.0), (2.0, 5.0), (8.0, 10.0)]
    assert windows.outside(5.5, 7.5) == []
    assert windows.overlaps(1.5, 1.6)
    assert windows.overlaps(4.0, 5.1)
    assert not windows.overlaps(2.5, 4.5)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, f) for f in (0.5, 0.99, 0.999)] == [50.0, 99.0, 100.0]
    assert percentile([], 0.5) == 0.0

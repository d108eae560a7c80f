"""The soak's reading of node logs: which lines are failures, and how alike ones are grouped."""

from __future__ import annotations

from bench.soak.logscan import scan

CALLBACK_ERROR = """\
2026-12-07 21:46:53,200 INFO websockets.server: connection open
2026-12-07 21:46:53,338 ERROR asyncio: Exception in callback <bound method W._flush of <W at 0x7f>>
handle: <Handle W._flush>
Traceback (most recent call last):
  File "ws_connection.py", line 10, in _flush
    self.transport.writelines(chunks)
RuntimeError: unable to perform operation on <TCPTransport closed=True 0x55>; the handler is closed
2026-12-07 21:46:54,000 INFO websockets.server: connection closed
"""

CHAINED = """\
2026-12-07 21:45:07,852 ERROR eventwire.connection: command failed on 5404636da3b96868
Traceback (most recent call last):
  File "x.py", line 1, in f
asyncio.exceptions.CancelledError

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "x.py", line 2, in g
eventwire.brokers.base.BrokerUnavailable: position: Redis is unreachable
"""


def test_an_error_line_with_its_traceback_is_one_unexpected_incident() -> None:
    found = scan("node-1", CALLBACK_ERROR)
    assert (found.errors, found.tracebacks) == (1, 1)
    assert len(found.unexpected) == 1
    assert found.unexpected[0].startswith("node-1: 2026-12-07 21:46:53,338 ERROR asyncio:")
    assert found.unexpected[0].endswith("the handler is closed")


def test_a_chained_traceback_is_named_by_its_last_exception() -> None:
    found = scan("node-2", CHAINED)
    assert (found.errors, found.tracebacks) == (1, 2)
    assert found.unexpected == [
        "node-2: 2026-12-07 21:45:07,852 ERROR eventwire.connection: command failed on "
        "5404636da3b96868 | eventwire.brokers.base.BrokerUnavailable: "
        "position: Redis is unreachable"
    ]


def test_warnings_are_counted_not_failures() -> None:
    text = (
        "2026-12-07 21:46:45,878 WARNING eventwire.brokers.redis: redis broker "
        "redis://127.0.0.1:37075/0: link lost (no reply to PING within 1.0s); reconnecting\n"
    )
    found = scan("node-1", text)
    assert found.unexpected == []
    assert sum(found.warnings.values()) == 1


def test_a_traceback_without_a_log_line_is_unexpected() -> None:
    text = "2026-12-07 21:46:53,200 INFO x: ok\nTraceback (most recent call last):\nKeyError: 'n'\n"
    assert scan("node-3", text).unexpected == ["node-3: traceback | KeyError: 'n'"]


def test_alike_lines_of_several_nodes_are_grouped() -> None:
    found = scan("node-1", CALLBACK_ERROR)
    found.add(scan("node-3", CALLBACK_ERROR.replace("0x55", "0x66")))
    found.add(scan("node-2", CHAINED))
    groups = found.grouped()
    assert [(count, nodes) for count, nodes, _ in groups] == [(2, "node-1,node-3"), (1, "node-2")]

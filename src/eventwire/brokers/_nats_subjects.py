"""NATS subject names and message headers of the NATS broker: pure data, no connection.

A topic is a NATS subject once ``:`` becomes ``.``. eventwire's grammar
(``[a-z0-9-]`` segments) uses none of the characters a NATS token forbids
(``.``, ``*``, ``>``, whitespace), so the mapping is one-to-one and needs no
escaping; anything else is refused rather than guessed at::

    gift-list:1          stored as   ew.gift-list.1        (stream subjects ew.>)
                         heard on    ew-live.gift-list.1   (republished once stored)
    gift-list:*          heard on    ew-live.gift-list.>   (exact: * and > both take 1+)
    *:messages           heard on    ew-live.>             (covering; filtered on receipt)

Each stored message carries its place in the topic as headers::

    Ew-Seq    the topic's seq (0: the epoch marker, not an event)
    Ew-Epoch  the epoch the seq belongs to
    Ew-Prev   stream sequence of the topic's previous message (0: none)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple

from eventwire.topics import WILDCARD

__all__ = [
    "EPOCH",
    "EXPECTED_LAST",
    "PREV",
    "SEQ",
    "NatsNames",
    "Stored",
    "parse_place",
    "stored_of",
]

SEQ = "Ew-Seq"
EPOCH = "Ew-Epoch"
PREV = "Ew-Prev"
EXPECTED_LAST = "Nats-Expected-Last-Subject-Sequence"
"""JetStream stores the message only if the subject's last stream sequence is this (0: empty)."""

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")
_STREAM_RE = re.compile(r"[A-Za-z0-9_-]+")
_FORBIDDEN = re.compile(r"[.*>\s]")
"""What a NATS subject token may not contain."""


class NatsNames:
    """The stream, subjects and covering wildcards under one prefix."""

    def __init__(self, stream: str, prefix: str) -> None:
        if _STREAM_RE.fullmatch(stream) is None:
            raise ValueError(f"NATS stream name {stream!r}: use letters, digits, _ and -")
        if _TOKEN_RE.fullmatch(prefix) is None or prefix.endswith("-live"):
            raise ValueError(
                f"NATS subject prefix {prefix!r}: one token of letters, digits, _ and -,"
                " not ending in -live"
            )
        self.stream = stream
        self.prefix = prefix
        self.stored_root = prefix + "."
        self.live_root = prefix + "-live."

    @property
    def stored_all(self) -> str:
        """The stream's subjects: every topic's stored subject."""
        return self.stored_root + ">"

    @property
    def live_all(self) -> str:
        """Where the stream republishes what it stored."""
        return self.live_root + ">"

    def stored(self, topic: str) -> str:
        return self.stored_root + _tokens(topic)

    def live(self, topic: str) -> str:
        return self.live_root + _tokens(topic)

    def covering(self, pattern: str) -> str:
        """The live subject that receives at least every topic ``pattern`` matches.

        NATS' ``>`` takes one or more trailing tokens, as ``*`` takes one or
        more segments, so everything before the first ``*`` is kept and the
        rest becomes ``>``: exact for a trailing ``*``, wider otherwise.
        """
        head = pattern.split(":")
        first = head.index(WILDCARD)
        return self.live_root + ".".join([*head[:first], ">"])

    def topic_of_live(self, subject: str) -> str | None:
        """The topic of a live subject of ours, else None."""
        if not subject.startswith(self.live_root):
            return None
        return subject[len(self.live_root) :].replace(".", ":")


def _tokens(topic: str) -> str:
    if _FORBIDDEN.search(topic) is not None or "" in topic.split(":"):
        raise ValueError(
            f"topic {topic!r} cannot be a NATS subject (it has '.', '*', '>' or space)"
        )
    return topic.replace(":", ".")


class Stored(NamedTuple):
    """One stored message of a topic, as read back from the stream."""

    seq: int
    """The topic's seq; 0 for the marker that fixes an empty topic's epoch."""
    epoch: str
    stream_seq: int
    prev: int
    """Stream sequence of the topic's previous message, 0 for none."""
    time: float
    """When the server stored it, in seconds since the Unix epoch (the server's clock)."""
    body: bytes


def parse_place(headers: Mapping[str, str] | None) -> tuple[int, str, int]:
    """``(seq, epoch, prev)`` from a message's headers; ValueError if it is not ours."""
    if not headers or SEQ not in headers or EPOCH not in headers:
        raise ValueError("not an eventwire message: Ew-Seq or Ew-Epoch header missing")
    seq, prev = int(headers[SEQ]), int(headers.get(PREV, "0"))
    if seq < 0 or prev < 0 or not headers[EPOCH]:
        raise ValueError(f"not an eventwire message: bad headers {dict(headers)!r}")
    return seq, headers[EPOCH], prev


def stored_of(
    headers: Mapping[str, str] | None, stream_seq: int, when: datetime | None, body: bytes | None
) -> Stored:
    """A ``Stored`` from what a stream read returned; ValueError if the message is not ours."""
    seq, epoch, prev = parse_place(headers)
    return Stored(seq, epoch, stream_seq, prev, when.timestamp() if when else 0.0, body or b"")

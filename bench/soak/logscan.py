"""ERROR lines and tracebacks in the nodes' logs: each one is a bug until shown otherwise.

A node logs at ERROR only what it could not handle (docs: an unexpected
exception, a failed hand-over, a stop cut short); faults the soak injects
are handled by design and logged at WARNING. ``EXPECTED`` lists ERROR lines
that are right under the soak's faults, each with the reason; anything else
is "unexpected" and fails the run.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["EXPECTED", "LogFindings", "scan", "shape"]

EXPECTED: tuple[tuple[re.Pattern[str], str], ...] = ()
"""(pattern, why it is right) for ERROR lines the soak's faults should cause."""

_ERROR = re.compile(r"^\S+ \S+ (ERROR|CRITICAL) ")
_WARNING = re.compile(r"^\S+ \S+ WARNING (\S+): (.{0,60})")
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_TRACEBACK = "Traceback (most recent call last):"


@dataclass(slots=True)
class LogFindings:
    """What the logs of one run's nodes say."""

    errors: int = 0
    tracebacks: int = 0
    unexpected: list[str] = field(default_factory=list)
    expected: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    """WARNING lines by logger and the start of their message: context, not a failure."""

    def grouped(self) -> list[tuple[int, str, str]]:
        """Unexpected lines alike in all but numbers: (count, nodes, one of them), most first."""
        groups: dict[str, list[str]] = {}
        for line in self.unexpected:
            node, _, text = line.partition(": ")
            groups.setdefault(shape(text), []).append(node)
        firsts = {shape(line.partition(": ")[2]): line for line in reversed(self.unexpected)}
        return sorted(
            (
                (len(nodes), ",".join(sorted(set(nodes))), firsts[key])
                for key, nodes in groups.items()
            ),
            key=lambda group: -group[0],
        )

    def add(self, other: LogFindings) -> None:
        self.errors += other.errors
        self.tracebacks += other.tracebacks
        self.unexpected += other.unexpected
        self.expected.update(other.expected)
        self.warnings.update(other.warnings)


def scan(name: str, text: str) -> LogFindings:
    """One node's log; each incident is its ERROR line and its traceback's last line."""
    found = LogFindings()
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(_TRACEBACK):
            found.tracebacks += 1
            if _orphan(lines, index):  # printed without a log line: an uncaught exception
                found.unexpected.append(f"{name}: traceback{_exception(lines, index - 1)}")
        elif warning := _WARNING.match(line):
            found.warnings[shape(f"{warning[1]}: {warning[2]}")] += 1
        elif _ERROR.match(line):
            found.errors += 1
            reason = _expected(line)
            if reason is not None:
                found.expected[reason] += 1
            else:
                found.unexpected.append(f"{name}: {line[:300]}{_exception(lines, index)}")
    return found


def _orphan(lines: list[str], index: int) -> bool:
    """Whether the traceback at ``index`` follows no ERROR or WARNING line of its own."""
    for line in reversed(lines[max(0, index - 1000) : index]):
        if _LOG_LINE.match(line):
            return not (_ERROR.match(line) or _WARNING.match(line))
    return True


def _expected(line: str) -> str | None:
    for pattern, why in EXPECTED:
        if pattern.search(line):
            return why
    return None


def _exception(lines: list[str], index: int) -> str:
    """`` | <last exception line>`` of the traceback that follows the line at ``index``."""
    last = ""
    for line in lines[index + 1 : index + 1000]:
        if _ERROR.match(line) or _WARNING.match(line) or _LOG_LINE.match(line):
            break
        skipped = ("Traceback", "During handling", "The above exception", " ", "\t")
        if line and not line.startswith(skipped):
            last = line
    return f" | {last[:200]}" if last else ""


def shape(message: str) -> str:
    """A log line without its time, numbers and addresses, so that alike ones count together."""
    message = _LOG_LINE.sub("", message)
    return re.sub(r"0x[0-9a-f]+|[0-9a-f]{16}|\d+(\.\d+)*", "N", message)

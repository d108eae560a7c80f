"""Lint recorded traffic: JSON Lines of envelopes, one event per line.

Any line may be garbage: a line that is not UTF-8, not JSON or not an
object becomes an EW001 finding with its line number, and linting goes on.
A line holding a publish batch (``{"events": [...]}``) is linted event by
event, with paths such as ``events.3.topic``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from eventwire.catalog.lint.event_rules import lint_event
from eventwire.catalog.lint.findings import Finding, LintConfig, Severity

if TYPE_CHECKING:
    from eventwire.catalog.model import Catalog

__all__ = ["format_findings", "lint_lines", "report"]


def _malformed(config: LintConfig, message: str, source: str, line: int) -> list[Finding]:
    severity = config.severity("EW001")
    return [] if severity is None else [Finding("EW001", severity, message, source, line)]


_BLANK = object()


def _decode(raw: bytes | str) -> tuple[Any, str | None]:
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 ({exc.reason} at byte {exc.start})"
    if not text.strip():
        return _BLANK, None
    try:
        return orjson.loads(text), None
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON: {exc}"


def lint_lines(
    lines: Iterable[bytes | str],
    *,
    catalog: Catalog | None = None,
    config: LintConfig | None = None,
    source: str = "<traffic>",
    stamped_by_server: bool = False,
) -> list[Finding]:
    """Every finding about JSON Lines of events; blank lines are skipped.

    ``lines`` may be an open binary file. ``stamped_by_server``: the lines
    are publishes, whose timestamp the gateway adds.
    """
    config = config or LintConfig()
    found: list[Finding] = []
    for number, raw in enumerate(lines, 1):
        value, problem = _decode(raw)
        if problem is not None:
            found += _malformed(config, problem, source, number)
            continue
        if value is _BLANK:
            continue
        batch = value.get("events") if isinstance(value, dict) and "topic" not in value else None
        items = list(enumerate(batch)) if isinstance(batch, list) else [(None, value)]
        for at, item in items:
            prefix = "" if at is None else f"events.{at}."
            try:
                found += lint_event(
                    item,
                    catalog=catalog,
                    config=config,
                    source=source,
                    line=number,
                    prefix=prefix,
                    stamped_by_server=stamped_by_server,
                )
            except Exception as exc:  # never let one line stop the run
                found += _malformed(config, f"could not be checked: {exc!r}", source, number)
    return found


def report(findings: Iterable[Finding]) -> dict[str, Any]:
    """The machine-readable result: every finding, and counts by severity."""
    listed = list(findings)
    counts = Counter(f.severity.value for f in listed)
    summary = {severity.value: counts.get(severity.value, 0) for severity in Severity}
    return {"findings": [f.to_dict() for f in listed], "summary": summary}


def format_findings(findings: Iterable[Finding]) -> str:
    """One line per finding, then a summary: what ``eventwire lint`` prints for people."""
    listed = list(findings)
    summary = report(listed)["summary"]
    lines = [str(f) for f in listed]
    lines.append(", ".join(f"{n} {severity}(s)" for severity, n in summary.items()))
    return "\n".join(lines) + "\n"

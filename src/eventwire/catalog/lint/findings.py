"""Lint rules, findings and their configuration.

Every rule has an id, a short name, a default severity and the words of
the seed it enforces. Rule ids are grouped by what they look at:

- ``EW0xx``: the input itself (a JSONL line that is not an event);
- ``EW1xx``: topics;
- ``EW2xx``: event types and versions;
- ``EW3xx``: metadata (timestamp, user, trace);
- ``EW4xx``: payloads;
- ``EW5xx``: the catalog's declarations.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from eventwire.errors import FieldError, ValidationFailed

__all__ = [
    "RULES",
    "Finding",
    "LintConfig",
    "Rule",
    "Severity",
    "exit_status",
    "to_validation_error",
]


class Severity(enum.StrEnum):
    """How bad a finding is; errors make ``eventwire lint`` exit non-zero."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Rule:
    """One best practice or anti-pattern of the seed, made checkable."""

    id: str
    name: str
    severity: Severity
    seed: str
    """The seed's words this rule enforces."""


def _rules(*rules: Rule) -> dict[str, Rule]:
    return {rule.id: rule for rule in rules}


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

RULES = _rules(
    Rule("EW001", "malformed-line", _E, "Validate on receive: validate structure"),
    Rule("EW002", "envelope", _E, "Generic Event Schema: WebSocketEvent"),
    Rule("EW101", "topic-pattern", _E, "Consistent topic naming: Use {resource}:{id} pattern"),
    Rule("EW102", "nested-topic", _W, "Nested topics: gift-list:123:gift:456 (too complex)"),
    Rule("EW103", "unknown-resource", _W, "Document event types: Maintain event catalog"),
    Rule("EW201", "event-case", _E, 'Magic strings: event: "update" (inconsistent casing)'),
    Rule("EW202", "opaque-event", _E, 'Opaque events: event: "E001" (unclear)'),
    Rule("EW203", "event-tense", _W, 'Use: event: "GIFT_PURCHASED" (descriptive)'),
    Rule("EW204", "undeclared-event", _E, "Use enums: For event types to catch typos"),
    Rule("EW205", "custom-event", _I, "EventType = ... | string; // Allow custom events"),
    Rule("EW206", "unknown-version", _E, "Version events: For schema evolution"),
    Rule("EW207", "missing-version", _W, "Version events: For schema evolution"),
    Rule("EW301", "missing-timestamp", _E, "Include timestamps: Always add timestamp"),
    Rule("EW302", "timestamp-format", _E, "timestamp: string; // ISO 8601 timestamp"),
    Rule("EW303", "missing-user", _W, "Include user context: Add user_id for audit trails"),
    Rule("EW304", "missing-trace", _I, "Add trace IDs: For observability and debugging"),
    Rule("EW401", "payload-invalid", _E, "Validate on receive: Use Zod/Pydantic"),
    Rule("EW402", "payload-large", _W, "Keep payloads small: <10KB ideal"),
    Rule("EW403", "payload-too-large", _E, "Keep payloads small: <100KB maximum"),
    Rule("EW404", "embedded-record", _W, "Huge payloads: full database records with relations"),
    Rule("EW501", "undocumented-event", _W, "Document event types: Maintain event catalog"),
    Rule("EW502", "no-example", _I, "Document event types: Maintain event documentation"),
    Rule("EW503", "status-enum", _W, "Use enums: For event types to catch typos"),
    Rule("EW504", "reference-url", _W, "Reference Only: Client must fetch full data"),
    Rule("EW505", "embedded-model", _W, "Use: Send DTOs with only necessary fields"),
    Rule("EW506", "missing-converter", _W, "Version events: For schema evolution"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found: which rule, how bad, what, and where."""

    rule: str
    severity: Severity
    message: str
    source: str
    """The file (``traffic.jsonl``), ``publish``, or ``catalog:<name>``."""
    line: int | None = None
    path: str | None = None
    """The field (``data.payload.name``) or declaration (``gift-list.ADDED.v1``)."""

    @property
    def name(self) -> str:
        """The rule's short name, such as ``nested-topic``."""
        return RULES[self.rule].name

    @property
    def location(self) -> str:
        """``traffic.jsonl:12 data.payload.name``: the source, line and path that apply."""
        place = self.source if self.line is None else f"{self.source}:{self.line}"
        return place if self.path is None else f"{place} {self.path}"

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable form: rule, name, severity, message, source, line, path."""
        found: dict[str, Any] = {
            "rule": self.rule,
            "name": self.name,
            "severity": self.severity.value,
            "message": self.message,
            "source": self.source,
        }
        if self.line is not None:
            found["line"] = self.line
        if self.path is not None:
            found["path"] = self.path
        return found

    def __str__(self) -> str:
        return f"{self.location}: {self.severity.value} {self.rule} {self.name}: {self.message}"


Setting = Severity | Literal["off"]


@dataclass(frozen=True)
class LintConfig:
    """Per-rule severities (or ``off``) over the defaults; the gateway uses the same.

    ``LintConfig.parse(["EW303=off", "nested-topic=error"])`` reads the CLI's
    ``--rule`` options; rules are named by id or name.
    """

    overrides: Mapping[str, Setting] = field(default_factory=dict)

    @classmethod
    def parse(cls, items: Iterable[str]) -> LintConfig:
        """``RULE=SEVERITY`` items, RULE an id or a name, SEVERITY error|warning|info|off."""
        by_name = {rule.name: rule.id for rule in RULES.values()}
        overrides: dict[str, Setting] = {}
        for item in items:
            rule, _, level = item.partition("=")
            rule_id = by_name.get(rule.strip(), rule.strip().upper())
            if rule_id not in RULES:
                raise ValueError(f"unknown lint rule {rule!r}")
            level = level.strip().lower()
            if level == "off":
                overrides[rule_id] = "off"
            elif level in {s.value for s in Severity}:
                overrides[rule_id] = Severity(level)
            else:
                raise ValueError(f"{item!r}: expected RULE=error|warning|info|off")
        return cls(overrides)

    def severity(self, rule: str) -> Severity | None:
        """The severity ``rule`` reports at; None when it is off."""
        setting = self.overrides.get(rule, RULES[rule].severity)
        return None if setting == "off" else Severity(setting)


def exit_status(findings: Iterable[Finding]) -> int:
    """1 when any finding is an error, else 0: ``eventwire lint``'s exit status."""
    return 1 if any(f.severity is Severity.ERROR for f in findings) else 0


def to_validation_error(findings: Iterable[Finding]) -> ValidationFailed | None:
    """The errors among ``findings`` as one VALIDATION_ERROR, for a refused publish."""
    errors: list[FieldError] = [
        (f.path or "(root)", f"{f.message} [{f.rule}]")
        for f in findings
        if f.severity is Severity.ERROR
    ]
    return ValidationFailed(errors) if errors else None

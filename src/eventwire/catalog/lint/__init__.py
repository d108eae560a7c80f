"""``eventwire lint``: a catalog and recorded traffic against the seed's practices.

::

    from eventwire.catalog.lint import lint_catalog, lint_lines, report, exit_status

    findings = lint_catalog(catalog)
    with open("traffic.jsonl", "rb") as lines:
        findings += lint_lines(lines, catalog=catalog, source="traffic.jsonl")
    print(json.dumps(report(findings)))
    raise SystemExit(exit_status(findings))

Each :class:`Finding` has a rule id (``EW102``), a name (``nested-topic``),
a severity, a message and where it is (file, line, field or declaration).
:data:`RULES` lists every rule with the seed's words it enforces;
:class:`LintConfig` changes severities or turns rules off. The gateway runs
:func:`lint_published` at publish time with the same rules and configuration.
"""

from __future__ import annotations

from eventwire.catalog.lint.catalog_rules import lint_catalog
from eventwire.catalog.lint.event_rules import embedded_records, lint_event, lint_published
from eventwire.catalog.lint.findings import (
    RULES,
    Finding,
    LintConfig,
    Rule,
    Severity,
    exit_status,
    to_validation_error,
)
from eventwire.catalog.lint.traffic import format_findings, lint_lines, report

__all__ = [
    "RULES",
    "Finding",
    "LintConfig",
    "Rule",
    "Severity",
    "embedded_records",
    "exit_status",
    "format_findings",
    "lint_catalog",
    "lint_event",
    "lint_lines",
    "lint_published",
    "report",
    "to_validation_error",
]

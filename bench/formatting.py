"""How figures are written in docs/benchmarks.md: ratios, rates with their range, wrapped text."""

from __future__ import annotations

import math
import textwrap

from bench.scenarios import Fanout, Latency
from bench.storm import Storm

__all__ = ["busy", "count", "ms", "rates", "ratio", "spread", "wrap"]


def busy(run: Fanout | Latency | Storm) -> str:
    return f"{run.server_core_busy_pct:.0f}% (Python {run.server_user_pct:.0f}%)"


def ratio(measured: float, baseline: float) -> str:
    return f"{measured / baseline:.2f}x" if baseline > 0 else "n/a"


def rates(run: Fanout) -> str:
    """The median, with the range over trials: the figures move by 10-20% between runs."""
    each = [float(trial["deliveries_per_s"]) for trial in run.trials]
    low, high = math.floor(min(each) / 1000), math.ceil(max(each) / 1000)
    return f"{run.deliveries_per_s:,.0f} ({low}k-{high}k)"


def spread(median: str, each: list[float], digits: int = 1) -> str:
    """A median with the range of the trials it is the median of."""
    return f"{median} ({min(each):.{digits}f}-{max(each):.{digits}f})"


def ms(value: float) -> str:
    return f"{value:.1f} ms" if value >= 1 else f"{value:.2f} ms"


def count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def wrap(text: str, bullet: bool = False) -> str:
    """A paragraph or list item wrapped at 88 columns, so the Markdown reads well as text."""
    if bullet:
        return textwrap.fill(text, 88, initial_indent="- ", subsequent_indent="  ")
    return textwrap.fill(text, 88)

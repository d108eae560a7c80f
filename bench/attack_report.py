"""The attack runs' section of docs/benchmarks.md: what a flood costs honest clients."""

from __future__ import annotations

from bench.attacks import Attacks, Flood, Probe
from bench.formatting import count, ms, ratio, wrap

__all__ = ["attack_problems", "attack_section", "attack_table"]

_PROBES = {"ping": "PING → PONG round trip", "healthz": "`GET /healthz`"}
_FRAMES = {"ping": "ping frames", "pong": "unsolicited pong frames"}


def _p99(probe: Probe) -> str:
    low, high = min(probe.trial_p99_ms), max(probe.trial_p99_ms)
    return f"{ms(probe.p99_ms)} ({low:.2f}-{high:.2f})"


def _flood_rows(flood: Flood) -> list[str]:
    rows = []
    for name, label in _PROBES.items():
        alone, flooded = flood.idle[name], flood.flooded[name]
        rows.append(
            f"| {label} p99, another connection flooding {_FRAMES[flood.frame]} (lower is "
            f"better) | alone: {_p99(alone)} | flooded: {_p99(flooded)} "
            f"| {ratio(flooded.p99_ms, alone.p99_ms)} |"
        )
    return rows


def attack_table(a: Attacks) -> list[str]:
    p = a.pinger
    return [
        "| metric | baseline | measured | measured / baseline |",
        "| --- | ---: | ---: | ---: |",
        *(row for flood in a.floods for row in _flood_rows(flood)),
        f"| server RSS growth, one connection pinging for {a.plan.pinger_s:g} s and never "
        f"reading (lower is better) | goal: {p.goal_kib / 1024:.1f} MiB (`max_outbound_buffer` "
        f"+ 1 MiB) | {p.growth_kib / 1024:.2f} MiB, closed {p.close_code} "
        f"| {ratio(p.growth_kib, p.goal_kib)} |",
    ]


def _codes(codes: dict[str, int] | dict[str, float]) -> str:
    return ", ".join(f"{n:g} with {code}" for code, n in sorted(codes.items()))


def _flood_note(flood: Flood, cpu_pct: float) -> str:
    frame_bytes = int(flood.trials[0]["flooder"]["frame_bytes"])
    closed = (
        f"the server closed it {count(flood.closed, 'time')} ({_codes(flood.close_codes)}), "
        "and the flooder reconnected at once each time"
        if flood.closed
        else "the server never closed it"
    )
    windows = count(len(flood.trials), "window")
    return (
        f"*{_FRAMES[flood.frame].capitalize()}*: {flood.frames_sent:,} frames of {frame_bytes} "
        f"bytes written in {flood.flood_s:.0f} s of flooding ({windows}); {closed}. The "
        "server's own count of the connections it closed: "
        f"{_codes(flood.disconnects) or 'none'}. The attacking process used at most "
        f"{cpu_pct:.0f}% of its core: the socket, not the core, limits the flood once the "
        "server stops reading it."
    )


def _method(a: Attacks) -> list[str]:
    plan, p = a.plan, a.pinger
    every = f"{plan.interval_ms:g} ms"
    return [
        "**Flood fairness**: [bench/attack.c](../bench/attack.c), one epoll loop in C on the "
        f"load generator's core, sends two probes, one request every {every}, each waiting "
        "for its answer: the PING command on a WebSocket (PING → PONG) and `GET /healthz` on "
        f"a kept-alive HTTP/1.1 connection. For {plan.idle_s:g} s they run alone, then for "
        f"{plan.flood_s:g} s one more WebSocket connection, from the same loop, writes pre-"
        "built masked control frames as fast as its socket takes them, and "
        "reads only to find a close frame: the gateway pauses a connection past its frame "
        "budget (`frame_rate` 200/s, `frame_burst` 400) and closes one that keeps at it "
        "(4029), and the flooder then reconnects at once, so the flood lasts the whole "
        f"window. {count(plan.trials, 'window')} of each, on one fresh gateway per kind of "
        "frame, each after a second of probes not counted. The figure is the median of the "
        "windows' p99s, their range in brackets: a stall of the machine (another process on "
        "a shared core) spoils one window, one the flood causes shows in every flooded "
        "window; results.json also has the p99 of all samples pooled. A probe sends nothing "
        "while its request is unanswered, so a sample longer than the interval also counts "
        "the requests it held back, as HdrHistogram corrects coordinated omission. The goal "
        "is a p99 at most twice the one alone. The baseline is not attacked: it has no frame "
        "budget to measure.",
        *(_flood_note(flood, max(float(t["cpu_pct"]) for t in flood.trials)) for flood in a.floods),
        f"**A never-reading pinger**: one connection with a {plan.pinger_rcvbuf:,}-byte "
        f"`SO_RCVBUF` writes pings of {plan.pinger_payload} bytes (the most a control frame "
        f"carries) as fast as its socket takes them for {plan.pinger_s:g} s and never reads, "
        "so every pong owed to it stays on the server. The growth is the server's peak RSS "
        "(VmHWM, reset before, and VmRSS sampled every 10 ms) over its RSS before. It sent "
        f"{int(p.raw['frames']):,} pings; the close code is the one it read afterwards "
        f"({p.close_code}). The gateway runs with `max_outbound_buffer` "
        f"{plan.max_outbound_buffer // 1024:,} KiB, its default.",
    ]


def attack_section(a: Attacks) -> list[str]:
    return [
        "## Under attack",
        "",
        wrap(
            "eventwire only, each figure against a baseline measured in this run: what a probe "
            "sees alone against what it sees while another connection floods the gateway, and "
            "the memory a peer that never reads costs against the bound the gateway sets."
        ),
        "",
        *attack_table(a),
        "",
        *(wrap(item, bullet=True) for item in _method(a)),
        "",
    ]


def attack_problems(a: Attacks) -> list[str]:
    found = [problem for flood in a.floods for problem in flood.problems]
    found += a.pinger.problems
    if a.pinger.growth_kib > a.pinger.goal_kib:
        found.append(f"the pinger grew the server by {a.pinger.growth_kib:,} KiB, over the goal")
    return [f"- under attack: {problem}" for problem in found or ["none"]]

"""The soak's faults: a node killed, the broker frozen, the broker restarted on its data.

One fault every 30 to 45 s (``SoakPlan.chaos_every``), the kinds taken in
turn from a shuffled rotation so that even a short run sees different ones:

- ``node-kill``: a random node gets SIGKILL (its clients see their
  connections drop, its publishes in flight go unanswered) and is started
  again ``node_down`` seconds later, on a new port;
- ``broker-freeze``: the broker gets SIGSTOP, and SIGCONT ``freeze``
  seconds later; its connections stay open and nothing answers;
- ``broker-restart``: the broker gets SIGKILL and is started again
  ``broker_down`` seconds later on its files (Redis' append-only file,
  JetStream's store).

Each fault is recorded as a ``ChaosWindow``: when it started, when it ended
(the node listening again, SIGCONT sent, the broker answering), and when
every node reported ready again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import time

import httpx

from bench.soak.ledger import ChaosWindow
from bench.soak.plan import SoakPlan
from bench.soak.processes import Cluster

__all__ = ["Chaos"]

_READY_WAIT = 30.0
"""Seconds the nodes get to report ready after a fault, before the next may start."""
_NODE_STARTS = 3


class Chaos:
    """Injects faults into ``cluster`` on ``plan``'s schedule; ``windows`` records them."""

    def __init__(
        self, cluster: Cluster, plan: SoakPlan, rng: random.Random, http: httpx.AsyncClient
    ) -> None:
        self.cluster = cluster
        self.plan = plan
        self.rng = rng
        self.http = http
        self.windows: list[ChaosWindow] = []

    async def run(self, seconds: float) -> None:
        """Inject faults for ``seconds``; none starts unless it can end before then."""
        deadline = time.monotonic() + seconds
        kinds = list(self.plan.chaos_kinds)
        self.rng.shuffle(kinds)
        low, high = self.plan.chaos_every
        longest = max(self.plan.freeze, self.plan.node_down, self.plan.broker_down) + 5.0
        for kind in itertools.islice(itertools.cycle(kinds), int(seconds // low) + 1):
            wait = self.rng.uniform(low, high)
            if time.monotonic() + wait + longest > deadline:
                return
            await asyncio.sleep(wait)
            window = await self.inject(kind)
            self.windows.append(window)
            ready = await self.cluster.all_ready(self.http, _READY_WAIT)
            self.windows[-1] = dataclasses.replace(window, ready_at=ready)

    async def inject(self, kind: str) -> ChaosWindow:
        """One fault, from its start to its end."""
        if kind == "node-kill":
            return await self._node_kill()
        if kind == "broker-freeze":
            return await self._broker_freeze()
        if kind == "broker-restart":
            return await self._broker_restart()
        raise ValueError(f"unknown fault {kind!r}")

    async def _node_kill(self) -> ChaosWindow:
        node = self.rng.choice(self.cluster.nodes)
        start = time.monotonic()
        await self.cluster.kill_node(node)
        await asyncio.sleep(self.plan.node_down)
        for attempt in range(1, _NODE_STARTS + 1):
            try:
                await self.cluster.start_node(node)
                break
            except RuntimeError:
                if attempt == _NODE_STARTS:
                    raise
        return ChaosWindow("node-kill", node.name, start, time.monotonic())

    async def _broker_freeze(self) -> ChaosWindow:
        start = time.monotonic()
        self.cluster.freeze()
        try:
            await asyncio.sleep(self.plan.freeze)
        finally:
            self.cluster.thaw()
        resumed = time.monotonic()
        return ChaosWindow("broker-freeze", self.cluster.kind, start, resumed, resumed)

    async def _broker_restart(self) -> ChaosWindow:
        start = time.monotonic()
        resumed = await self.cluster.restart_broker(self.plan.broker_down)
        return ChaosWindow("broker-restart", self.cluster.kind, start, resumed, resumed)

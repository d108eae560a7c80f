"""A throwaway Redis Cluster for tests: three masters on free ports, no replicas, nothing saved.

Each master is a ``RedisProcess`` with cluster mode on, in a directory of
its own (its ``nodes.conf`` stays there, so a killed master started again
rejoins with its slots). ``redis-cli --cluster create`` assigns the slots;
the cluster is ready once every master reports ``cluster_state:ok``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.integration.redisproc import RedisProcess
from tests.integration.serverproc import STARTUP, free_port, require_binary

if TYPE_CHECKING:
    import redis  # redis-py: imported where used, the tests that need it skip without it

__all__ = ["ClusterMaster", "RedisClusterProcess", "running_cluster"]


class ClusterMaster(RedisProcess):
    """One master of the test cluster."""

    name = "redis-server"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.bus_port = free_port()  # not port + 10000, which may be past 65535

    def args(self) -> list[str]:
        return [
            *super().args(),
            "--cluster-enabled", "yes",
            "--cluster-port", str(self.bus_port),
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "5000",
        ]  # fmt: skip

    def cluster_ok(self) -> bool:
        try:
            return b"cluster_state:ok" in self.command("CLUSTER", "INFO")
        except OSError:
            return False


class RedisClusterProcess:
    """Three masters joined into one cluster on 127.0.0.1."""

    def __init__(self, workdir: Path, masters: int = 3) -> None:
        self.masters = []
        for n in range(masters):
            folder = workdir / f"master{n}"
            folder.mkdir()
            self.masters.append(ClusterMaster(folder))

    def masters_of(self, keys: Iterable[str]) -> dict[str, ClusterMaster]:
        """The master that serves each key's slot, as the cluster says now."""
        import redis

        with redis.RedisCluster(host="127.0.0.1", port=self.masters[0].port) as client:
            ports = {key: client.get_node_from_key(key).port for key in keys}
        return {key: next(m for m in self.masters if m.port == port) for key, port in ports.items()}

    def move_slot(self, key: str, to: ClusterMaster) -> None:
        """Move ``key``'s slot, and every key in it, to master ``to`` (as a resharding does)."""
        import redis

        [source] = self.masters_of([key]).values()
        clients = {m.port: redis.Redis(host="127.0.0.1", port=m.port) for m in self.masters}
        try:
            src, dst = clients[source.port], clients[to.port]
            slot = int(_run(src, "CLUSTER KEYSLOT", key))
            src_id, dst_id = _run(src, "CLUSTER MYID"), _run(dst, "CLUSTER MYID")
            _run(dst, "CLUSTER SETSLOT", slot, "IMPORTING", src_id)
            _run(src, "CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
            while keys := _run(src, "CLUSTER GETKEYSINSLOT", slot, 100):
                _run(src, "MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *keys)
            for client in [dst, src, *(c for c in clients.values() if c not in (src, dst))]:
                _run(client, "CLUSTER SETSLOT", slot, "NODE", dst_id)
        finally:
            for client in clients.values():
                client.close()

    @property
    def url(self) -> str:
        """The broker URL of the cluster, every master a seed."""
        seeds = ",".join(f"127.0.0.1:{m.port}" for m in self.masters)
        return f"redis+cluster://{seeds}/"

    def start(self) -> None:
        for master in self.masters:
            master.start()
        cli = require_binary(
            "redis-cli",
            env="EVENTWIRE_REQUIRE_REDIS",
            missing="redis-cli is not on PATH (it comes with redis-server)",
        )
        nodes = [f"127.0.0.1:{m.port}" for m in self.masters]
        subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=STARTUP,
        )
        self.wait_ok()

    def wait_ok(self) -> None:
        """Until every master agrees the cluster is up (gossip takes a moment)."""
        deadline = time.monotonic() + STARTUP
        while not all(m.cluster_ok() for m in self.masters):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Redis Cluster did not report ok within {STARTUP}s")
            time.sleep(0.02)

    def kill(self) -> None:
        for master in self.masters:
            master.kill()


def _run(client: redis.Redis, *args: str | int | bytes) -> Any:
    """One command on one master (redis-py leaves ``execute_command`` untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


@contextmanager
def running_cluster(workdir: Path) -> Iterator[RedisClusterProcess]:
    """A started cluster, killed afterwards whatever was done to it."""
    cluster = RedisClusterProcess(workdir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.kill()

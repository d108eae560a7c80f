"""A redis-server and a Redis Cluster of the contract tests' own, each started once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.redisclusterproc import RedisClusterProcess, running_cluster
from tests.integration.redisproc import RedisProcess
from tests.integration.serverproc import running


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with running(RedisProcess(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcess]:
    """Three redis-server masters joined into a Redis Cluster, started once for the session."""
    with running_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster

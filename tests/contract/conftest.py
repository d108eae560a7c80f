"""A redis-server of the contract tests' own, started once for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.redisproc import RedisProcess
from tests.integration.serverproc import running


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with running(RedisProcess(tmp_path_factory.mktemp("redis"))) as server:
        yield server

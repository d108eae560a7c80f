"""A throwaway server process for tests: own port, own directory, started and awaited.

The servers themselves live in ``bench/servers.py``, which the soak shares;
this module adds what only tests want: a missing binary skips the test
(or fails it, where the environment says the binary is required).
"""

from __future__ import annotations

import os

import pytest
from bench.servers import STARTUP, ServerProcess, find_binary, free_port, running

__all__ = ["STARTUP", "ServerProcess", "free_port", "require_binary", "running"]


def require_binary(name: str, *, env: str, missing: str, fallback: str | None = None) -> str:
    """The ``name`` binary (or ``fallback``); skips the test without one (fails if ``env``=1)."""
    binary = find_binary(name, fallback)
    if binary is None:
        if os.environ.get(env) == "1":
            pytest.fail(missing, pytrace=False)
        pytest.skip(missing)
    return binary

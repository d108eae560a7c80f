"""The `eventwire` command, run as a user runs it: as a process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from eventwire import __version__
from eventwire.server import Gateway
from tests.e2e.conftest import TIMEOUT, open_ws, recv, subscribe
from tests.processes import reap

pytestmark = pytest.mark.timeout(60)


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "eventwire",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def served(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`eventwire serve` on a free port (with ``request.param`` flags); yields it and its URL."""
    extra = getattr(request, "param", [])
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "eventwire",
        "serve",
        "--port",
        "0",
        "--shutdown-grace",
        "2",
        "--insecure",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    first = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT)).decode()
    assert first.startswith(f"eventwire {__version__} serving on http://127.0.0.1:"), first
    url = first.split()[4]
    try:
        yield process, url
    finally:
        await reap(process)


async def test_version() -> None:
    code, out, _ = await run_cli("--version")
    assert (code, out.strip()) == (0, f"eventwire {__version__}")


async def test_sigterm_closes_clients_with_1001_and_exits_cleanly(
    served: tuple[asyncio.subprocess.Process, str],
) -> None:
    process, url = served
    gateway_ws = "ws" + url.removeprefix("http") + "/ws"
    from websockets.asyncio.client import connect

    async with connect(gateway_ws) as ws:
        assert (await recv(ws))["event"] == "CONNECTED"
        process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code == 1001
    assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0


async def test_publish_command_delivers_to_subscribers(gateway: Gateway) -> None:
    async with await open_ws(gateway) as ws:
        await subscribe(ws, "gift-list:123")
        code, out, err = await run_cli(
            "publish",
            "gift-list:123",
            "ADDED",
            "--entity-id",
            "gift-456",
            "--payload",
            '{"id": "gift-456", "name": "New Gift"}',
            "--url",
            gateway.url,
        )
        assert (code, err) == (0, "")
        assert out.strip() == "published gift-list:123 ADDED seq=1"
        received = await recv(ws)
    assert received["data"]["payload"] == {"id": "gift-456", "name": "New Gift"}


async def test_publish_command_reports_errors(gateway: Gateway) -> None:
    code, _, err = await run_cli(
        "publish", "gift-list:123", "update", "--entity-id", "g", "--url", gateway.url
    )
    assert code == 1
    assert "VALIDATION_ERROR" in err
    assert '"field":"event"' in err
    code, _, err = await run_cli(
        "publish",
        "gift-list:1",
        "ADDED",
        "--entity-id",
        "g",
        "--payload",
        "{bad",
        env={"EVENTWIRE_URL": gateway.url},
    )
    assert code == 2
    assert "not JSON" in err


async def test_tail_prints_live_events(gateway: Gateway) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "eventwire",
        "tail",
        "gift-list:123",
        "room:lobby",
        "--url",
        gateway.url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        ready = (await asyncio.wait_for(process.stderr.readline(), TIMEOUT)).decode()
        assert ready.startswith("tailing gift-list:123, room:lobby")
        await gateway.publish(
            {
                "topic": "room:lobby",
                "event": "USER_JOINED",
                "data": {
                    "entity_id": "user-123",
                    "payload": {"username": "Alice"},
                    "user_id": "user-123",
                },
            }
        )
        line = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT)).decode()
    finally:
        await reap(process, signal.SIGINT, TIMEOUT)
    assert "room:lobby" in line
    assert "USER_JOINED" in line
    assert "#1" in line
    assert '{"username":"Alice"}' in line
    assert "user_id=user-123" in line
    assert "\033[" not in line  # not a terminal: no colour codes


async def test_tail_refused_topic_exits_2(gateway: Gateway) -> None:
    code, _, err = await run_cli("tail", "system", "--url", gateway.url)
    assert code == 2
    assert "RESERVED_TOPIC" in err


async def test_bad_configuration_exits_2(tmp_path: object) -> None:
    code, _, err = await run_cli("serve", "--port", "70000")
    assert code == 2
    assert "bad configuration" in err


async def test_serve_without_credentials_exits_2_and_says_how_to_configure() -> None:
    code, _, err = await run_cli("serve", "--port", "0")
    assert code == 2
    assert "no way to authenticate WebSocket connections" in err
    assert "EVENTWIRE_JWT_SECRET" in err
    assert "--insecure" in err


async def test_serve_on_a_port_in_use_exits_1_and_says_so() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = await run_cli("serve", "--insecure", "--port", str(port))
    assert code == 1
    assert f"eventwire: cannot listen on 127.0.0.1:{port}:" in err
    assert "Traceback" not in err


async def test_tail_jsonl_prints_envelopes(gateway: Gateway) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventwire", "tail", "gift-list:9", "--jsonl", "--url", gateway.url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        await asyncio.wait_for(process.stderr.readline(), TIMEOUT)  # "tailing ..."
        await gateway.publish(
            {"topic": "gift-list:9", "event": "DELETED", "data": {"entity_id": "gift-1"}}
        )
        line = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT)).decode()
    finally:
        await reap(process, signal.SIGINT, TIMEOUT)
    envelope = orjson.loads(line)
    assert envelope["topic"] == "gift-list:9"
    assert envelope["data"]["payload"] is None  # a null payload is kept
    assert envelope["seq"] == 1
    assert "user_id" not in envelope["data"]  # absent optionals left out


async def test_catalog_export_formats() -> None:
    code, out, _ = await run_cli("catalog", "export", "--catalog", "eventwire.demo:catalog")
    assert code == 0
    assert list(orjson.loads(out)["resources"]) == ["gift-list", "room", "import"]
    code, out, _ = await run_cli(
        "catalog", "export", "--catalog", "eventwire.demo:catalog", "--format", "asyncapi"
    )
    assert (code, orjson.loads(out)["asyncapi"]) == (0, "3.0.0")
    code, out, _ = await run_cli(
        "catalog", "export", "--catalog", "eventwire.demo:catalog", "--format", "typescript"
    )
    assert code == 0
    assert 'event: "GIFT_PURCHASED"' in out
    code, _, err = await run_cli("catalog", "export", "--catalog", "no.such.module:catalog")
    assert code == 2
    assert "no.such.module" in err


async def test_lint_reports_findings_and_exit_status(tmp_path: Path) -> None:
    traffic = tmp_path / "traffic.jsonl"
    traffic.write_text(
        '{"topic":"gift-list:123:gift:456","event":"update","data":{"entity_id":"x","payload":{}}}\n'
        "not json\n"
    )
    code, out, _ = await run_cli("lint", str(traffic), "--format", "json")
    assert code == 1
    rules = {f["rule"] for f in orjson.loads(out)["findings"]}
    assert {"EW102", "EW201", "EW001"} <= rules
    code, out, _ = await run_cli("lint", "--catalog", "eventwire.demo:catalog")
    assert code == 0
    code, _, _ = await run_cli(
        "lint", str(traffic), "--rule", "EW201=off", "--rule", "EW301=off", "--rule", "EW001=off"
    )
    assert code == 0


@pytest.mark.parametrize("served", [["--demo", "--allow-pattern-subscriptions"]], indirect=True)
async def test_the_quickstart_publish_works_on_the_demo_gateway(
    served: tuple[asyncio.subprocess.Process, str],
) -> None:
    """What `make run` serves, with the README's command (the demo catalog is on)."""
    _, url = served
    code, out, err = await run_cli(
        "publish", "gift-list:123", "ADDED", "--entity-id", "gift-456",
        "--payload", '{"id": "gift-456", "name": "New Gift"}', "--url", url,
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.strip() == "published gift-list:123 ADDED seq=1"
    code, _, err = await run_cli(
        "publish", "gift-list:123", "ADDED", "--entity-id", "gift-457",
        "--payload", '{"id": "gift-457"}', "--url", url,
    )  # fmt: skip
    assert code == 1
    assert "data.payload.name" in err  # the catalog names the missing field

"""A gateway running from a catalog's JSON export converts versions as the Python catalog does.

The catalog is exported with ``eventwire catalog export --format json`` and
served by ``eventwire serve --catalog catalog.json`` in a process of its own,
started in a directory where this test's code cannot be imported: declared
converters travel as data; Python ones by import path, used when the
gateway can import them, and a gateway that cannot refuses to start.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import BaseModel, ConfigDict
from websockets.asyncio.client import ClientConnection, connect

from eventwire.catalog import Add, Catalog, MapValues, Rename
from tests.e2e.conftest import TIMEOUT, barrier, command, recv
from tests.processes import reap

pytestmark = pytest.mark.timeout(60)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PostedV1(_Strict):
    text: str
    author: str
    kind: str = "chat"


class PostedV2(_Strict):
    text: str
    user: str
    kind: str = "chat"
    tags: list[str] = []


class PostedV3(_Strict):
    body: str
    user: str
    kind: str = "chat"
    tags: list[str] = []


CHAT = Catalog("chat")
"""``room.POSTED`` 1 -> 2 -> 3 (and back), declared with operations only."""
_room = CHAT.resource("room", strict=True)
_room.event("POSTED", PostedV1, description="A message.")
_room.event("POSTED", PostedV2, version=2)
_room.event("POSTED", PostedV3, version=3)
_room.evolve("POSTED", 1, 2, Rename("author", "user"), Add("tags", []))
_room.evolve("POSTED", 2, 3, Rename("text", "body"), MapValues("kind", {"chat": "message"}))

V1 = {"text": "hi @bob", "author": "ann", "kind": "chat"}
V2 = {"text": "hi @bob", "user": "ann", "kind": "chat", "tags": []}
V3 = {"body": "hi @bob", "user": "ann", "kind": "message", "tags": []}


async def run_cli(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "eventwire",
        *args,
        cwd=cwd,
        env=_without_pythonpath(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _without_pythonpath() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"NO_COLOR": "1"}


async def export_json(spec: str) -> bytes:
    """``eventwire catalog export --format json`` of ``spec``, run from the repository."""
    code, out, err = await run_cli("catalog", "export", "--catalog", spec, "--format", "json")
    assert code == 0, err
    return out.encode()


@asynccontextmanager
async def serving(catalog_json: Path) -> AsyncIterator[str]:
    """``eventwire serve --catalog catalog_json`` in its own directory; yields its HTTP URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "eventwire", "serve", "--port", "0", "--insecure", "--shutdown-grace", "1"),
        *("--catalog", str(catalog_json)),
        cwd=catalog_json.parent,
        env=_without_pythonpath(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT)).decode()
        assert " serving on http://127.0.0.1:" in first, first
        yield first.split()[4]
    finally:
        await reap(process, signal.SIGTERM, TIMEOUT)


async def subscriber(
    url: str, versions: dict[str, list[int]] | None, topic: str
) -> ClientConnection:
    ws = await connect(url.replace("http://", "ws://") + "/ws", open_timeout=TIMEOUT)
    assert (await recv(ws))["event"] == "CONNECTED"
    payload: dict[str, Any] = {"topics": [topic]}
    if versions is not None:
        payload["versions"] = versions
    await command(ws, "SUBSCRIBE", "sub", payload)
    assert (await recv(ws))["event"] == "SUBSCRIBED"
    return ws


async def publish(url: str, topic: str, event: str, version: int, payload: Any) -> None:
    body = {"topic": topic, "event": event, "version": version}
    body["data"] = {"entity_id": "msg-1", "payload": payload, "user_id": "user-1"}
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as http:
        response = await http.post("/v1/publish", json=body)
        assert response.status_code == 200, response.text


async def test_declared_converters_survive_the_json_export(tmp_path: Path) -> None:
    catalog_json = tmp_path / "chat.json"
    catalog_json.write_bytes(await export_json(f"{__name__}:CHAT"))
    async with serving(catalog_json) as url:
        old = await subscriber(url, {"room.POSTED": [1]}, "room:lobby")
        new = await subscriber(url, {"*": [3]}, "room:lobby")
        plain = await subscriber(url, None, "room:lobby")
        await publish(url, "room:lobby", "POSTED", 2, V2)  # down one step, up one step
        await publish(url, "room:lobby", "POSTED", 1, V1)  # up two steps
        await publish(url, "room:lobby", "POSTED", 3, V3)  # down two steps
        got = {
            name: [(f["version"], f["data"]["payload"]) for f in await barrier(ws)]
            for name, ws in (("old", old), ("new", new), ("plain", plain))
        }
        for ws in (old, new, plain):
            await ws.close()
    assert got["old"] == [(1, V1), (1, V1), (1, V1)]
    assert got["new"] == [(3, V3), (3, V3), (3, V3)]
    assert got["plain"] == [(2, V2), (1, V1), (3, V3)]


async def test_the_demo_catalog_from_json_uses_its_python_converter_by_path(
    tmp_path: Path,
) -> None:
    """MESSAGE_POSTED 1 -> 2 is ``eventwire.demo:add_mentions``, 2 -> 1 a declared drop."""
    exported = orjson.loads(await export_json("eventwire.demo:catalog"))
    catalog_json = tmp_path / "demo.json"
    catalog_json.write_bytes(orjson.dumps(exported))
    links = exported["resources"]["room"]["events"]["MESSAGE_POSTED"]["converters"]
    assert {link.get("python") or link["ops"][0]["op"] for link in links} == {
        "eventwire.demo:add_mentions",
        "drop",
    }
    message = {"message_id": "msg-1", "user_id": "user-1", "username": "Ann", "text": "hi @bob"}
    async with serving(catalog_json) as url:
        v1 = await subscriber(url, {"room.MESSAGE_POSTED": [1]}, "room:lobby")
        v2 = await subscriber(url, {"room.*": [2]}, "room:lobby")
        await publish(url, "room:lobby", "MESSAGE_POSTED", 1, message)
        await publish(url, "room:lobby", "MESSAGE_POSTED", 2, {**message, "mentions": ["carl"]})
        got_v1 = [(f["version"], f["data"]["payload"]) for f in await barrier(v1)]
        got_v2 = [(f["version"], f["data"]["payload"]) for f in await barrier(v2)]
        for ws in (v1, v2):
            await ws.close()
    assert got_v1 == [(1, message), (1, message)]
    assert got_v2 == [(2, {**message, "mentions": ["bob"]}), (2, {**message, "mentions": ["carl"]})]


def upgrade(payload: dict[str, Any]) -> dict[str, Any]:
    """A Python converter that only this test's code can provide."""
    return {**payload, "user": payload["author"], "tags": []}


async def test_a_gateway_that_cannot_import_a_converter_refuses_to_start(tmp_path: Path) -> None:
    dumped = orjson.loads(await export_json(f"{__name__}:CHAT"))
    links = dumped["resources"]["room"]["events"]["POSTED"]["converters"]
    links[0] = {"from": 1, "to": 2, "python": f"{__name__}:upgrade"}
    catalog_json = tmp_path / "chat.json"
    catalog_json.write_bytes(orjson.dumps(dumped))
    code, out, err = await run_cli(
        *("serve", "--port", "0", "--insecure", "--catalog", str(catalog_json)), cwd=tmp_path
    )
    assert code == 2
    assert "serving on" not in out
    assert f"converter room.POSTED 1 -> 2 '{__name__}:upgrade': no module named 'tests'" in err
    assert "declared with operations" in err
    # Reading it (export, lint) imports nothing and works.
    code, out, err = await run_cli(
        "catalog", "export", "--catalog", str(catalog_json), "--format", "typescript", cwd=tmp_path
    )
    assert code == 0, err
    assert "PostedV3" in out

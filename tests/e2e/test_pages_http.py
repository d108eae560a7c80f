"""The pages over HTTP: security headers on both transports, /demo only in demo mode, and the
absolute URLs the gateway builds following its mount prefix."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from eventwire.server import Gateway
from tests.e2e.asgiserver import PREFIX, mounted_gateway
from tests.e2e.conftest import TIMEOUT, StartGateway

POLICY = "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
PAGES = ["/inspector", "/demo", "/catalog", "/favicon.ico", "/"]
STATIC = ["/static/style.css", "/static/demo.js", "/static/js/eventwire.js", "/static/favicon.svg"]


def _assert_secured(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"].startswith(POLICY), response.url
    assert response.headers["x-content-type-options"] == "nosniff", response.url
    assert response.headers["referrer-policy"] == "no-referrer", response.url


async def _check_headers(http: httpx.AsyncClient, prefix: str = "") -> None:
    for path in PAGES + STATIC:
        response = await http.get(prefix + path)
        assert response.status_code == 200, path
        _assert_secured(response)
    for path, method in (("/v1/publish", "GET"), ("/nowhere", "GET"), ("/healthz", "GET")):
        _assert_secured(await http.request(method, prefix + path))  # errors and JSON too


@pytest.fixture
async def mounted() -> AsyncIterator[tuple[str, Gateway]]:
    """A demo gateway mounted at /realtime in a FastAPI app under uvicorn."""
    async with mounted_gateway(demo=True) as served_at:
        yield served_at


async def test_every_answer_carries_the_security_headers(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(demo=True)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT) as http:
        await _check_headers(http)


async def test_mounted_answers_carry_them_too(mounted: tuple[str, Gateway]) -> None:
    url, _ = mounted
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as http:
        await _check_headers(http, PREFIX)


async def test_the_catalog_page_may_use_its_own_inline_style_and_nothing_else(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(demo=True)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT) as http:
        page = await http.get("/catalog")
    [style] = re.findall(r"<style>(.*?)</style>", page.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    expected = f"{POLICY}; style-src 'self' 'sha256-{digest}'"
    assert page.headers["content-security-policy"] == expected
    assert "<script" not in page.text
    assert 'rel="icon" href="static/favicon.svg"' in page.text


async def test_demo_page_and_api_only_in_demo_mode(start_gateway: StartGateway) -> None:
    plain, demo = await start_gateway(), await start_gateway(demo=True)
    async with httpx.AsyncClient(base_url=plain.url, timeout=TIMEOUT) as http:
        for path in ("/demo", "/demo/api/gifts"):
            missing = await http.get(path)
            assert (missing.status_code, missing.json()["code"]) == (404, "NOT_FOUND")
        index = (await http.get("/")).json()
        assert "demo" not in index
        assert index["inspector"] == f"{plain.url}/inspector"
        assert (await http.get("/inspector")).status_code == 200
        assert b"/demo" not in (await http.get("/inspector")).content
    async with httpx.AsyncClient(base_url=demo.url, timeout=TIMEOUT) as http:
        assert (await http.get("/demo")).status_code == 200
        assert (await http.get("/")).json()["demo"] == f"{demo.url}/demo"


async def test_the_favicon_is_served(start_gateway: StartGateway) -> None:
    gateway = await start_gateway()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT) as http:
        for path in ("/favicon.ico", "/static/favicon.svg"):
            icon = await http.get(path)
            assert (icon.status_code, icon.headers["content-type"]) == (200, "image/svg+xml")
            assert icon.content.startswith(b"<svg")


async def test_urls_the_gateway_builds_follow_its_mount(mounted: tuple[str, Gateway]) -> None:
    url, _ = mounted
    base = url + PREFIX
    ws_base = "ws" + base.removeprefix("http")
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as http:
        index = (await http.get(PREFIX + "/")).json()
        asyncapi = (await http.get(PREFIX + "/asyncapi.json")).json()
        pages = {path: (await http.get(PREFIX + path)).text for path in ("/inspector", "/demo")}
    assert index["websocket"] == f"{ws_base}/ws"
    for name, path in [("publish", "/v1/publish"), ("catalog", "/v1/catalog"), ("demo", "/demo")]:
        assert index[name] == base + path
    [server] = asyncapi["servers"].values()
    assert (server["host"], server["pathname"]) == (url.removeprefix("http://"), f"{PREFIX}/ws")
    for path, text in pages.items():  # relative: the browser resolves them under the prefix
        links = re.findall(r'(?:href|src)="([^"]*)"', text)
        assert links, path
        assert all(link.startswith("static/") for link in links), (path, links)

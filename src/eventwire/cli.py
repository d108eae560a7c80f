"""The ``eventwire`` command: serve, publish, tail.

``main(argv)`` is callable from tests; it returns the exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import orjson

from eventwire import __version__
from eventwire.errors import EventwireError

if TYPE_CHECKING:
    from eventwire.server import Gateway, Settings
    from eventwire.server.worker import WorkerReady

__all__ = ["main"]

DEFAULT_URL = "http://127.0.0.1:8000"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eventwire", description="A real-time event gateway.")
    parser.add_argument("--version", action="version", version=f"eventwire {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run a gateway node")
    serve.add_argument("--config", help="TOML file (also EVENTWIRE_CONFIG)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--broker", help="broker URL, e.g. memory://")
    serve.add_argument(
        "--workers",
        type=_workers,
        help="processes sharing the port (a redis:// or nats:// broker); 0 or auto: one per CPU",
    )
    serve.add_argument("--log-level", dest="log_level")
    serve.add_argument("--demo", action="store_true", default=None, help="publish demo events")
    serve.add_argument("--max-frame", dest="max_frame", type=int)
    serve.add_argument("--max-outbound-buffer", dest="max_outbound_buffer", type=int)
    serve.add_argument("--heartbeat-interval", dest="heartbeat_interval", type=float)
    serve.add_argument("--payload-max", dest="payload_max", type=int)
    serve.add_argument("--shutdown-grace", dest="shutdown_grace", type=float)
    serve.add_argument("--history-size", dest="history_size", type=int)
    serve.add_argument("--history-age", dest="history_age", type=float)
    serve.add_argument(
        "--catalog", help="module:attribute or a .json file (also EVENTWIRE_CATALOG)"
    )
    serve.add_argument(
        "--lint",
        action="append",
        default=None,
        metavar="RULE=SEVERITY",
        help="publish-time lint severity, repeatable (also EVENTWIRE_LINT)",
    )
    serve.add_argument(
        "--allow-pattern-subscriptions",
        dest="allow_pattern_subscriptions",
        action="store_true",
        default=None,
        help="let clients subscribe to wildcard patterns (development)",
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="development only: open every door with no credentials configured (no token, no key)",
    )

    url_help = f"gateway URL (also EVENTWIRE_URL; default {DEFAULT_URL})"
    publish = commands.add_parser("publish", help="publish one event over HTTP")
    publish.add_argument("topic")
    publish.add_argument("event", help="event type, e.g. ADDED or USER_JOINED")
    publish.add_argument("--entity-id", required=True)
    publish.add_argument("--payload", default="null", help="JSON payload (default null)")
    publish.add_argument("--user-id")
    publish.add_argument("--tenant-id")
    publish.add_argument("--trace-id")
    publish.add_argument("--version", dest="event_version", type=int)
    publish.add_argument("--url", help=url_help)
    publish.add_argument("--key", help="HTTP API key (also EVENTWIRE_API_KEY)")

    tail = commands.add_parser("tail", help="print live events until Ctrl-C")
    tail.add_argument("topics", nargs="+")
    tail.add_argument("--url", help=url_help)
    tail.add_argument(
        "--token", help="a JWT (also EVENTWIRE_TOKEN); admin tokens may tail patterns"
    )
    tail.add_argument(
        "--json",
        "--jsonl",
        dest="json",
        action="store_true",
        help="one JSON envelope per line (JSONL), e.g. to record traffic",
    )
    catalog = commands.add_parser("catalog", help="the event catalog")
    catalog_commands = catalog.add_subparsers(dest="catalog_command", required=True)
    export = catalog_commands.add_parser("export", help="print the catalog in a format")
    export.add_argument("--catalog", required=True, help="module:attribute or a .json file")
    export.add_argument(
        "--format",
        dest="fmt",
        default="json",
        choices=["json", "asyncapi", "jsonschema", "typescript", "zod", "html"],
    )
    export.add_argument("--server-url", help="the WebSocket URL to name in AsyncAPI")

    token = commands.add_parser("token", help="development tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser(
        "create", help="mint a token signed with the configured key (EVENTWIRE_JWT_SECRET, ...)"
    )
    create.add_argument("--config", help="TOML file (also EVENTWIRE_CONFIG)")
    create.add_argument("--sub", required=True, help="the user id")
    create.add_argument("--tenant", help="the tenant id")
    create.add_argument("--subscribe", action="append", default=[], help="a pattern; repeatable")
    create.add_argument("--publish", action="append", default=[], help="a pattern; repeatable")
    create.add_argument("--admin", action="store_true")
    create.add_argument("--ttl", type=float, default=3600.0, help="seconds (default 3600)")

    key = commands.add_parser("key", help="HTTP API keys")
    key_commands = key.add_subparsers(dest="key_command", required=True)
    key_commands.add_parser("create", help="print a new key and the hash to configure")
    key_commands.add_parser("hash", help="print the hash of the key read from standard input")

    lint = commands.add_parser("lint", help="check a catalog and recorded traffic")
    lint.add_argument("files", nargs="*", help="JSONL files of envelopes ('-' for stdin)")
    lint.add_argument("--catalog", help="module:attribute or a .json file")
    lint.add_argument("--format", dest="fmt", default="text", choices=["text", "json"])
    lint.add_argument("--rule", action="append", default=[], help="RULE=error|warning|info|off")
    lint.add_argument(
        "--publishes", action="store_true", help="the lines are publishes (no timestamps yet)"
    )
    return parser


def _workers(text: str) -> int:
    if text == "auto":
        return 0
    count = int(text)
    if count < 0:
        raise argparse.ArgumentTypeError("expected a number of workers, 0 or auto")
    return count


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    runner = {
        "serve": _serve,
        "publish": _publish,
        "tail": _tail,
        "catalog": _catalog,
        "lint": _lint,
        "token": _token,
        "key": _key,
    }[args.command]
    try:
        return runner(args)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `eventwire catalog export ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from eventwire.server import load_settings
    from eventwire.server.serving import CannotStart, check_settings, configure_logging, serve
    from eventwire.server.workers import check_workers, worker_count

    flags = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    try:
        settings = load_settings(args.config, **flags)
        workers = worker_count(settings.workers)
        check_workers(settings, workers)
    except (ValidationError, FileNotFoundError, ValueError) as exc:
        print(f"eventwire: bad configuration: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        if workers > 1:
            check_settings(settings)  # once, here, before any worker starts
            return _serve_workers(settings, workers)

        def ready(gateway: Gateway) -> None:
            _banner(gateway.url, gateway.ws_url, settings, sys.stdout)

        return serve(settings, on_ready=ready, demo=settings.demo)
    except CannotStart as exc:
        print(f"eventwire: {exc}", file=sys.stderr)
        return exc.failure.status


def _serve_workers(settings: Settings, count: int) -> int:
    """``count`` gateway processes on one port, under a supervisor (``server/workers.py``)."""
    from eventwire.server.workers import Supervisor

    def announce(ready: WorkerReady) -> None:
        _banner(ready.url, ready.ws_url, settings, sys.stdout, workers=count)

    # A signal that comes as the supervisor exits (a second Ctrl-C, or the second
    # one ``timeout`` sends to the whole group) must not turn a clean stop into an
    # error. The supervisor takes SIGTERM and SIGINT over while it runs and puts
    # back these no-ops (which, unlike SIG_IGN, the workers do not inherit); then
    # they stay blocked, as the interpreter's exit puts the defaults back.
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    for number in stop_signals:
        signal.signal(number, _after_the_stop)
    try:
        return Supervisor(settings, count, announce).run()
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)


def _after_the_stop(signum: int, frame: object) -> None:
    """A stop signal before or after the supervisor's run: nothing to stop."""


def _banner(url: str, ws_url: str, settings: Any, out: TextIO, workers: int = 1) -> None:
    broker = _safe_url(settings.broker) + (f", {workers} workers" if workers > 1 else "")
    lines = [
        f"eventwire {__version__} serving on {url} (broker {broker})",
        f"  WebSocket  {ws_url}",
        f"  Publish    POST {url}/v1/publish",
        f"  Topics     {url}/v1/topics/{{topic}}",
        f"  Metrics    {url}/metrics{'   (each worker its own)' if workers > 1 else ''}",
        f"  Inspector  {url}/inspector",
    ]
    if settings.demo:
        lines.append(f"  Demo page  {url}/demo   (open it in two tabs)")
        lines.append("  Demo       events on gift-list:demo and room:lobby every 2s; try:")
        lines.append(f"             eventwire tail gift-list:demo room:lobby --url {url}")
    print("\n".join(lines), file=out, flush=True)


def _safe_url(url: str) -> str:
    """``url`` without its password, for logs and banners."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _base_url(args: argparse.Namespace) -> str:
    return str(args.url or os.environ.get("EVENTWIRE_URL") or DEFAULT_URL).rstrip("/")


def _publish(args: argparse.Namespace) -> int:
    from eventwire.client import Publisher
    from eventwire.errors import PublishFailed
    from eventwire.server.serving import run_loop

    try:
        payload = orjson.loads(args.payload)
    except orjson.JSONDecodeError as exc:
        print(f"eventwire: --payload is not JSON: {exc}", file=sys.stderr)
        return 2

    async def publish() -> int:
        key = args.key or os.environ.get("EVENTWIRE_API_KEY")
        async with Publisher(_base_url(args), api_key=key) as publisher:
            try:
                result = await publisher.emit(
                    args.topic,
                    args.event,
                    entity_id=args.entity_id,
                    payload=payload,
                    user_id=args.user_id,
                    tenant_id=args.tenant_id,
                    trace_id=args.trace_id,
                    version=args.event_version,
                )
            except PublishFailed as exc:
                print(f"eventwire: {exc.code}: {exc.message}", file=sys.stderr)
                if exc.details:
                    print(orjson.dumps(exc.details).decode(), file=sys.stderr)
                return 1
        print(f"published {result.topic} {result.event} seq={result.seq}")
        return 0

    return run_loop(publish())


def _tail(args: argparse.Namespace) -> int:
    from eventwire.client import Client
    from eventwire.console import event_json, format_event
    from eventwire.errors import ClientError
    from eventwire.server.serving import run_loop

    ws_url = "ws" + _base_url(args).removeprefix("http") + "/ws"
    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ

    async def tail() -> int:
        client = Client(ws_url, token=args.token or os.environ.get("EVENTWIRE_TOKEN"))
        try:
            await client.connect()
            subscription = await client.subscribe(*args.topics)
        except ClientError as exc:  # refused token or topic, unreachable gateway
            print(f"eventwire: {exc}", file=sys.stderr)
            await client.close()
            return 2
        print(f"tailing {', '.join(args.topics)} on {ws_url} (Ctrl-C to stop)", file=sys.stderr)
        try:
            async for event in subscription:
                line = event_json(event) if args.json else format_event(event, colour)
                print(line, flush=True)
        finally:
            await client.close()
        return 0

    with contextlib.suppress(KeyboardInterrupt):
        return run_loop(tail())
    return 0


def _catalog(args: argparse.Namespace) -> int:
    from eventwire.catalog import CatalogLoadError, load_catalog
    from eventwire.catalog.export import export_catalog

    try:
        catalog = load_catalog(args.catalog, import_converters=False)
    except CatalogLoadError as exc:
        print(f"eventwire: {exc}", file=sys.stderr)
        return 2
    print(export_catalog(catalog, args.fmt, server_url=args.server_url))
    return 0


def _lint(args: argparse.Namespace) -> int:
    from eventwire.catalog import CatalogLoadError, load_catalog
    from eventwire.catalog.lint import (
        LintConfig,
        exit_status,
        format_findings,
        lint_catalog,
        lint_lines,
        report,
    )

    try:
        config = LintConfig.parse(args.rule)
        catalog = load_catalog(args.catalog, import_converters=False) if args.catalog else None
    except (CatalogLoadError, ValueError) as exc:
        print(f"eventwire: {exc}", file=sys.stderr)
        return 2
    if catalog is None and not args.files:
        print("eventwire: give --catalog, JSONL files, or both", file=sys.stderr)
        return 2
    findings = lint_catalog(catalog, config) if catalog is not None else []
    for name in args.files:
        try:
            with contextlib.ExitStack() as stack:
                lines = sys.stdin.buffer if name == "-" else stack.enter_context(open(name, "rb"))
                findings += lint_lines(
                    lines,
                    catalog=catalog,
                    config=config,
                    source=name,
                    stamped_by_server=args.publishes,
                )
        except OSError as exc:
            print(f"eventwire: cannot read {name}: {exc}", file=sys.stderr)
            return 2
    if args.fmt == "json":
        print(orjson.dumps(report(findings), option=orjson.OPT_INDENT_2).decode())
    else:
        print(format_findings(findings))
    return exit_status(findings)


def _token(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from eventwire.auth import mint
    from eventwire.server import load_settings

    try:
        settings = load_settings(args.config)
        print(
            mint(
                settings,
                sub=args.sub,
                tenant=args.tenant,
                subscribe=args.subscribe,
                publish=args.publish,
                admin=args.admin,
                ttl=args.ttl,
            )
        )
    except (EventwireError, ValidationError, ValueError, FileNotFoundError) as exc:
        print(f"eventwire: cannot mint a token: {exc}", file=sys.stderr)
        return 2
    return 0


def _key(args: argparse.Namespace) -> int:
    from eventwire.auth import generate_api_key, hash_api_key

    if args.key_command == "create":
        key = generate_api_key()
        print(f"key:  {key}\nhash: {hash_api_key(key)}")
        print("Give the key to the client; put only the hash in api_keys.", file=sys.stderr)
        return 0
    key = sys.stdin.readline().strip()
    if not key:
        print("eventwire: no key on standard input", file=sys.stderr)
        return 2
    print(hash_api_key(key))
    return 0

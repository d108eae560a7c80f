"""Child processes of the benchmark: the servers under test, Redis and the C programs.

Every wait here has a deadline and every child is killed on the way out, so a
hung server or load generator fails the run instead of hanging it.
"""

from __future__ import annotations

import json
import os
import queue
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = [
    "LOADGEN_CORE",
    "SERVER_CORE",
    "BenchError",
    "LoadGen",
    "Redis",
    "Server",
    "build_binary",
    "core_jiffies",
    "free_port",
    "raise_fd_limit",
    "run_tool",
    "running_loadgen",
    "running_redis",
    "running_server",
    "running_storm",
]

SERVER_CORE = 0
LOADGEN_CORE = 1
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """The benchmark could not measure what it set out to."""


def raise_fd_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE for us and our children; return the soft limit in force."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for new_hard in (max(hard, wanted), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, new_hard), new_hard))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def core_jiffies(core: int) -> tuple[int, int]:
    """(busy, total) clock ticks of one core since boot, from /proc/stat.

    Busy includes softirq time the kernel may not charge to the server
    process: on loopback, much of TCP's receive path runs there.
    """
    prefix = f"cpu{core} "
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(prefix):
            ticks = [int(field) for field in line.split()[1:]]
            idle = ticks[3] + ticks[4]  # idle, iowait
            return sum(ticks) - idle, sum(ticks)
    raise BenchError(f"no cpu{core} in /proc/stat")


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_binary(source: Path, binary: Path) -> Path:
    """Compile one of the bench's C programs when its source is newer than the binary."""
    if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    command = ["gcc", "-O2", "-Wall", "-Wextra", "-o", str(binary), str(source)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise BenchError(f"gcc failed:\n{result.stderr}")
    return binary


def _pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv]


def _terminate(process: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class Server:
    """One server under test, pinned to ``core``; ``args`` follow its port (a broker URL)."""

    def __init__(
        self,
        kind: str,
        port: int,
        log_path: Path,
        core: int = SERVER_CORE,
        args: Sequence[str] = (),
    ) -> None:
        self.kind = kind
        self.port = port
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        argv = [sys.executable, "-m", f"bench.{kind}_server", str(port), *args]
        root = Path(__file__).resolve().parent.parent
        self.process = subprocess.Popen(
            _pinned(core, argv), cwd=root, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_listening(self, timeout: float) -> None:
        """Return once the port accepts connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.kind} server exited early; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise BenchError(f"{self.kind} server did not listen within {timeout:.0f}s")

    def _proc(self, name: str) -> str:
        try:
            return Path(f"/proc/{self.process.pid}/{name}").read_text()
        except OSError:
            raise BenchError(f"the {self.kind} server is gone; see {self.log_path}") from None

    def _status_kib(self, field: str) -> int:
        for line in self._proc("status").splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise BenchError(f"the {self.kind} server has no {field}: it exited; see {self.log_path}")

    def rss_kib(self) -> int:
        """Resident set size from /proc (VmRSS)."""
        return self._status_kib("VmRSS")

    def peak_rss_kib(self) -> int:
        """The highest resident set size since the start or ``reset_peak`` (VmHWM)."""
        return self._status_kib("VmHWM")

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (clear_refs 5); False where that is not allowed."""
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def cpu_seconds(self) -> tuple[float, float]:
        """User and system (kernel) CPU time so far."""
        fields = self._proc("stat").rsplit(")", 1)[1].split()
        return int(fields[11]) / _CLOCK_TICKS, int(fields[12]) / _CLOCK_TICKS

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def stop(self) -> int | None:
        """Stop gracefully if possible; return the exit code."""
        _terminate(self.process, grace=10)
        self._log.close()
        return self.process.returncode


@contextmanager
def running_server(
    kind: str, port: int, log_path: Path, core: int = SERVER_CORE, args: Sequence[str] = ()
) -> Iterator[Server]:
    server = Server(kind, port, log_path, core, args)
    try:
        server.wait_listening(timeout=30)
        yield server
    finally:
        server.stop()


class LoadGen:
    """The C load generator: commands on stdin, one JSON line per answer on stdout.

    ``argv`` is its command line (see the usage at the top of loadgen.c).
    """

    def __init__(self, argv: Sequence[str], log_path: Path) -> None:
        self._log: IO[bytes] = log_path.open("wb")
        self.process = subprocess.Popen(
            _pinned(LOADGEN_CORE, list(argv)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        """Move stdout lines to a queue so every read can have a timeout."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.strip())
        self._lines.put(None)

    def _line(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise BenchError(f"the load generator said nothing for {timeout:.0f}s") from None
        if line is None:
            raise BenchError(f"the load generator exited ({self.process.poll()})")
        return line

    def _tagged(self, tag: str, timeout: float) -> dict[str, Any]:
        line = self._line(timeout)
        if not line.startswith(f"{tag} "):
            raise BenchError(f"unexpected load generator output: {line[:200]}")
        answer: dict[str, Any] = json.loads(line.removeprefix(f"{tag} "))
        return answer

    def ready(self, timeout: float) -> dict[str, Any]:
        """Wait until every subscriber is confirmed."""
        return self._tagged("READY", timeout)

    def storm(self, timeout: float) -> dict[str, Any]:
        """Wait for the end of a storm (``running_storm``): every client acknowledged."""
        return self._tagged("STORM", timeout)

    def command(self, line: str, timeout: float) -> dict[str, Any]:
        """Run one phase and return its result."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self._line(timeout))
        return answer

    def stop(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
            except OSError:
                pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._log.close()


@contextmanager
def _running(argv: Sequence[str], log_path: Path) -> Iterator[LoadGen]:
    loadgen = LoadGen(argv, log_path)
    try:
        yield loadgen
    finally:
        loadgen.stop()


def running_loadgen(
    binary: Path,
    mode: str,
    port: int | Sequence[int],
    conns: int,
    log_path: Path,
    publishers: int = 1,
) -> AbstractContextManager[LoadGen]:
    """The load generator; with several ports, subscribers and publishers are spread over them."""
    ports = [port] if isinstance(port, int) else list(port)
    argv = [str(binary), mode, ",".join(map(str, ports)), str(conns), "120", str(publishers)]
    return _running(argv, log_path)


def running_storm(
    binary: Path, mode: str, port: int, clients: int, concurrency: int, timeout: float, log: Path
) -> AbstractContextManager[LoadGen]:
    """The load generator in storm mode: it connects ``clients`` as soon as it starts."""
    argv = [str(binary), "storm", mode, str(port), str(clients), str(concurrency), str(timeout)]
    return _running(argv, log)


def run_tool(argv: Sequence[str], timeout: float, log_path: Path) -> dict[str, Any]:
    """Run a one-shot C program on the load generator's core; its stdout is one JSON line."""
    with log_path.open("wb") as log:
        try:
            result = subprocess.run(
                _pinned(LOADGEN_CORE, list(argv)),
                stdout=subprocess.PIPE,
                stderr=log,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"{Path(argv[0]).name} ran over {timeout:.0f}s") from None
    if result.returncode != 0:
        raise BenchError(f"{Path(argv[0]).name} failed ({result.returncode}); see {log_path}")
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


class Redis:
    """A redis-server of the bench's own on 127.0.0.1:``port``, saving nothing.

    Never the machine's shared Redis: each broker run starts one, so no key
    of another run (or of anyone else) is in its way.
    """

    def __init__(self, port: int, workdir: Path, core: int) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise BenchError("redis-server is not on PATH (make system-deps installs it)")
        self.port = port
        self.log_path = workdir / f"redis-{port}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        argv = [
            binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
            "--save", "", "--appendonly", "no", "--protected-mode", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            _pinned(core, argv), stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def wait_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"redis-server exited early; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise BenchError(f"redis-server did not answer within {timeout:.0f}s")

    def stop(self) -> None:
        _terminate(self.process, grace=5)
        self._log.close()


@contextmanager
def running_redis(workdir: Path, core: int) -> Iterator[Redis]:
    """A fresh redis-server on a free port, pinned to ``core``; stopped afterwards."""
    redis = Redis(free_port(), workdir, core)
    try:
        redis.wait_answering(timeout=10)
        yield redis
    finally:
        redis.stop()

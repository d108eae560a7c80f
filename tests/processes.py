"""Child processes of the tests: ended, waited for, and their pipes read to the end.

asyncio closes a subprocess transport only once the process has exited and
every pipe reached EOF; a pipe left unread keeps it open, and its garbage
collection later fails whichever test happens to be running then.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

__all__ = ["reap"]


async def reap(
    process: asyncio.subprocess.Process,
    sig: signal.Signals = signal.SIGKILL,
    timeout: float = 10.0,
) -> int:
    """Send ``sig`` if the process still runs, wait for it, drain its pipes; its exit status."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
    status = await asyncio.wait_for(process.wait(), timeout)
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pipe.read(), timeout)
    return status

"""A loop that does work while there is some, then sleeps until woken or until its poll interval passes."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


class BackgroundLoop:
    """Subclasses implement `run_once` (returns how much it did) and may override `idle_seconds`."""

    name = "background-loop"
    poll_seconds = 2.0

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run_once(self) -> int:
        raise NotImplementedError

    async def idle_seconds(self) -> float:
        return self.poll_seconds

    def more_waiting(self, done: int) -> bool:
        """After a pass that did `done`, may more work be waiting? By default: whenever it did anything. A
        loop that knows a pass takes everything there is says no, and saves an empty pass."""
        return done > 0

    async def _run(self) -> None:
        while not self._stopping:
            # Cleared before the pass, not after: a wake that arrives during the pass (new work committed
            # while the pass was looking) then runs another pass instead of waiting for the poll interval.
            self._wake.clear()
            try:
                done = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s pass failed", self.name)
                done = 0
                await asyncio.sleep(min(1.0, self.poll_seconds))
            if self.more_waiting(done) or self._wake.is_set():
                continue
            try:
                timeout = await self.idle_seconds()
            except Exception:
                timeout = self.poll_seconds
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that arrives
            # as the wait completes, and stop() would then wait for a loop that went back to sleep.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

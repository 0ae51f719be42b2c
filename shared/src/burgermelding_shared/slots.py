"""Slots for CPU work, urgent first: an in-progress report's photo is decoded now, not after every ordinary
photo that arrived before it.

Ordinary work takes at most `capacity` slots (one per core: on two cores, work that all runs at once only makes
each piece wait for all the others). Urgent work may also take `reserve` slots more, so it starts at once
beside ordinary work already running, and waiting urgent work is always handed a free slot first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

T = TypeVar("T")


class PrioritySlots:
    def __init__(self, capacity: int, reserve: int = 1) -> None:
        self.capacity = max(1, capacity)
        self.reserve = max(0, reserve)
        self.busy = 0
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._ordinary: deque[asyncio.Future[None]] = deque()

    def _limit(self, urgent: bool) -> int:
        return self.capacity + (self.reserve if urgent else 0)

    @asynccontextmanager
    async def slot(self, urgent: bool = False) -> AsyncIterator[None]:
        queue = self._urgent if urgent else self._ordinary
        ahead = self._urgent or (not urgent and self._ordinary)
        if self.busy < self._limit(urgent) and not ahead:
            self.busy += 1
        else:
            ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            queue.append(ticket)
            try:
                await ticket  # handed over by whoever freed a slot: `busy` already counts us
            except asyncio.CancelledError:
                if ticket.done() and not ticket.cancelled():
                    self._release()  # handed over just as we were cancelled: pass it on
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        self.busy -= 1
        for queue, urgent in ((self._urgent, True), (self._ordinary, False)):
            while queue and self.busy < self._limit(urgent) and (urgent or not self._urgent):
                ticket = queue.popleft()
                if not ticket.done():
                    self.busy += 1
                    ticket.set_result(None)


def lower_priority(nice: int) -> None:
    """Runs in each ordinary worker thread or process as it starts: Linux schedules threads by their own nice
    value (and threads a process starts later inherit it)."""
    with contextlib.suppress(AttributeError, OSError):  # elsewhere than Linux: ordinary threads as they are
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + nice))


class PriorityExecutor:
    """CPU work in threads, urgent first. `PrioritySlots` decide what starts; ordinary work then runs in
    threads with a lower scheduling priority (nice +5 on Linux), so that when every core is busy, an urgent
    report's photo gets the processor and ordinary photos take what is left."""

    def __init__(self, capacity: int, reserve: int = 1, ordinary_nice: int = 5) -> None:
        self.slots = PrioritySlots(capacity, reserve)
        self._urgent = ThreadPoolExecutor(self.slots.capacity + self.slots.reserve, thread_name_prefix="urgent")
        self._ordinary = ThreadPoolExecutor(
            self.slots.capacity, thread_name_prefix="ordinary", initializer=lower_priority, initargs=(ordinary_nice,)
        )

    async def run(self, urgent: bool, work: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        async with self.slots.slot(urgent):
            pool = self._urgent if urgent else self._ordinary
            return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(work, *args, **kwargs))

    def shutdown(self) -> None:
        self._urgent.shutdown(wait=False, cancel_futures=True)
        self._ordinary.shutdown(wait=False, cancel_futures=True)

"""How processes tell each other that an event changed: a doorbell, not the record.

A message may be lost (a Redis restart drops pub/sub); a subscription then yields `MISSED`,
and whoever listens reads the store's change log to catch up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Final, Protocol

MISSED: Final = ""
QUEUE_SIZE = 10_000


class Subscription:
    """Messages of one channel, in order; `MISSED` when some may have been lost."""

    def __init__(self, channel: str, size: int = QUEUE_SIZE) -> None:
        self.channel = channel
        self._queue: asyncio.Queue[str] = asyncio.Queue(size)

    def put(self, message: str) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            # Falling this far behind means the reader lost track: drop it all, say so.
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(MISSED)

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        return await self._queue.get()


class Bus(Protocol):
    async def publish(self, channel: str, message: str) -> None: ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Subscription]: ...

    async def close(self) -> None: ...


def open_bus(url: str) -> Bus:
    """The bus for `url`: `memory://` (one process) or `redis://host:port/db`."""
    if url.startswith("memory:"):
        from liveqa.bus.memory import MemoryBus

        return MemoryBus()
    from liveqa.store import REDIS_SCHEMES

    if url.startswith(REDIS_SCHEMES):
        from liveqa.bus.redis import RedisBus

        return RedisBus(url)
    raise ValueError(f"No bus for {url!r}: use memory:// or redis://host:port/0")

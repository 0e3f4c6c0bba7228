"""The in-process bus: for the SQLite store, where one process serves everyone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from liveqa.bus import Subscription


class MemoryBus:
    def __init__(self) -> None:
        self._subscriptions: dict[str, set[Subscription]] = {}

    async def publish(self, channel: str, message: str) -> None:
        for subscription in self._subscriptions.get(channel, ()):
            subscription.put(message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(channel)
        self._subscriptions.setdefault(channel, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscriptions[channel]
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscriptions[channel]

    async def close(self) -> None:
        self._subscriptions.clear()

"""Redis pub/sub shared by every process: one connection per process, watched by a heartbeat.

redis-py sees neither a frozen Redis nor a half-open socket on a pure subscriber, so the bus
publishes a heartbeat to itself and reconnects when it stops hearing it. After any reconnect
every subscription yields MISSED, because messages published meanwhile are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from liveqa.bus import MISSED, Subscription
from liveqa.store.redis import connect

logger = logging.getLogger("liveqa.bus")

MAX_BACKOFF = 2.0


class RedisBus:
    def __init__(self, url: str, *, heartbeat: float = 1.0, timeout: float = 2.0) -> None:
        self.redis: redis.Redis = connect(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), retries=0),
        )
        self.heartbeat = heartbeat
        self.timeout = timeout
        self._beat_channel = f"liveqa:heartbeat:{secrets.token_hex(8)}"
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._pubsub: PubSub | None = None
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.reconnects = 0

    async def publish(self, channel: str, message: str) -> None:
        await self.redis.publish(channel, message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        self._start()
        subscription = Subscription(channel)
        subscribers = self._subscriptions.setdefault(channel, set())
        subscribers.add(subscription)
        try:
            if len(subscribers) == 1:
                await self._listen(channel)
            yield subscription
        finally:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscriptions[channel]
                await self._forget(channel)

    async def _listen(self, channel: str) -> None:
        # Wait (bounded) for the connection so that a caller who subscribes and then reads the
        # store cannot miss a change in between; if Redis is away, MISSED comes on reconnect.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), self.timeout)
        if self._pubsub is None:
            return
        try:
            await asyncio.wait_for(self._pubsub.subscribe(channel), self.timeout)
        except Exception:  # redis-py can fail oddly on a connection closing under it
            self._drop("subscribe failed")

    async def _forget(self, channel: str) -> None:
        if self._pubsub is None:
            return
        try:
            await asyncio.wait_for(self._pubsub.unsubscribe(channel), self.timeout)
        except Exception:  # e.g. AttributeError from redis-py on a connection already closed
            self._drop("unsubscribe failed")

    def _start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(), name="liveqa-bus-reader"),
                asyncio.create_task(self._beat(), name="liveqa-bus-heartbeat"),
            ]

    def _drop(self, why: str) -> None:
        if self._pubsub is not None:
            logger.warning("bus: %s; reconnecting", why)
            self._pubsub = None
            self._ready.clear()

    async def _run(self) -> None:
        delay = 0.1
        connected_before = False
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await asyncio.wait_for(
                    pubsub.subscribe(self._beat_channel, *self._subscriptions), self.timeout
                )
                self._pubsub = pubsub
                self._ready.set()
                if connected_before:
                    self.reconnects += 1
                    logger.warning("bus: reconnected; subscribers will resync")
                    for subscribers in self._subscriptions.values():
                        for subscription in subscribers:
                            subscription.put(MISSED)
                connected_before = True
                delay = 0.1
                await self._read(pubsub)
            except Exception as exc:  # whatever it was, this reader must live on
                self._drop(f"connection lost ({exc.__class__.__name__})")
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), self.timeout)  # type: ignore[no-untyped-call]
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(delay * 2, MAX_BACKOFF)

    async def _read(self, pubsub: PubSub) -> None:
        last_beat = time.monotonic()
        while self._pubsub is pubsub:
            message = await pubsub.get_message(timeout=self.heartbeat)
            now = time.monotonic()
            if message is not None:
                channel = message["channel"]
                if channel == self._beat_channel:
                    last_beat = now
                for subscription in self._subscriptions.get(channel, ()):
                    subscription.put(message["data"])
            if now - last_beat > 3 * self.heartbeat:
                raise TimeoutError("no heartbeat from Redis")

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.redis.publish(self._beat_channel, "1"), self.heartbeat * 2
                )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.redis.aclose()

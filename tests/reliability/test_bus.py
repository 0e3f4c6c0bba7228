"""The Redis bus under SIGKILL and SIGSTOP: it notices, resubscribes and says MISSED."""

from __future__ import annotations

import asyncio
import contextlib
import time

from liveqa.bus import MISSED
from liveqa.bus.redis import RedisBus
from tests.reliability.harness import pause, resume
from tests.servers import RedisServer


async def next_message(subscription: object, timeout: float) -> str:
    return await asyncio.wait_for(subscription.__anext__(), timeout)  # type: ignore[attr-defined]


async def published_until_heard(bus: RedisBus, subscription: object, timeout: float) -> str:
    """Publish 'hello' every 0.2 s until the subscription yields something other than MISSED."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            await bus.publish("room", "hello")
        try:
            message = await next_message(subscription, 0.2)
        except TimeoutError:
            continue
        if message != MISSED:
            return message
    raise TimeoutError("nothing heard")


async def test_the_bus_resubscribes_after_redis_is_killed_and_restarted(
    redis_server: RedisServer,
) -> None:
    bus = RedisBus(redis_server.url)
    try:
        async with bus.subscribe("room") as subscription:
            await bus.publish("room", "before")
            assert await next_message(subscription, 5) == "before"
            redis_server.kill()
            await asyncio.sleep(1)
            redis_server.start()
            back = time.monotonic()
            assert await next_message(subscription, 10) == MISSED
            missed_after = time.monotonic() - back
            assert await published_until_heard(bus, subscription, 5) == "hello"
            heard_after = time.monotonic() - back
    finally:
        await bus.close()
    assert bus.reconnects == 1
    print(
        f"\nbus after SIGKILL+restart: MISSED {missed_after:.2f} s and delivery {heard_after:.2f} s"
        " after Redis was back"
    )


async def test_the_bus_notices_a_frozen_redis_by_its_heartbeat(redis_server: RedisServer) -> None:
    bus = RedisBus(redis_server.url)
    assert redis_server.process is not None
    pid = redis_server.process.pid
    try:
        async with bus.subscribe("room") as subscription:
            await bus.publish("room", "before")
            assert await next_message(subscription, 5) == "before"
            pause(pid)
            try:
                await asyncio.sleep(5)  # longer than 3 missed heartbeats
            finally:
                resume(pid)
            back = time.monotonic()
            assert await next_message(subscription, 10) == MISSED
            missed_after = time.monotonic() - back
            assert await published_until_heard(bus, subscription, 5) == "hello"
            heard_after = time.monotonic() - back
    finally:
        await bus.close()
    assert bus.reconnects >= 1
    print(
        f"\nbus after SIGSTOP 5 s: MISSED {missed_after:.2f} s and delivery {heard_after:.2f} s"
        " after SIGCONT"
    )

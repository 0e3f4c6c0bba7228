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


class Proxy:
    """A loopback TCP proxy that can silently stop passing bytes: a half-open connection."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.open = True
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    while not self.open:  # blackholed: hold the bytes, close nothing
                        await asyncio.sleep(0.05)
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_the_bus_notices_a_half_open_connection(redis_server: RedisServer) -> None:
    proxy = Proxy(redis_server.port)
    port = await proxy.start()
    bus = RedisBus(f"redis://127.0.0.1:{port}/0")
    direct = RedisBus(redis_server.url)  # another process publishing on a healthy path
    try:
        async with bus.subscribe("room") as subscription:
            await direct.publish("room", "before")
            assert await next_message(subscription, 5) == "before"
            proxy.open = False
            await direct.publish("room", "lost")  # goes nowhere: the path is dead
            await asyncio.sleep(4)
            proxy.open = True
            back = time.monotonic()
            message = await next_message(subscription, 10)
            while message == "lost":  # held bytes may still arrive; then MISSED must follow
                message = await next_message(subscription, 10)
            assert message == MISSED
            missed_after = time.monotonic() - back
    finally:
        await bus.close()
        await direct.close()
        await proxy.close()
    assert bus.reconnects >= 1
    print(f"\nbus on a half-open path for 4 s: MISSED {missed_after:.2f} s after the path healed")

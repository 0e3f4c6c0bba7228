"""Redis killed, restarted and frozen during a burst of 1,000 questions from 100 people."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.reliability.crowd import Crowd, blocked_loop_warnings, during
from tests.reliability.harness import create_event, pause, resume
from tests.servers import LiveqaServer, RedisServer

pytestmark = pytest.mark.slow

PEOPLE = 100
EACH = 10
REQUEST_BOUND = 3.0  # 2 x the store's 1 s Redis timeout, plus scheduling noise


def setup(
    redis_server: RedisServer, secret_key: str, tmp_path: Path, code: str
) -> tuple[dict[str, str], dict[str, str]]:
    env = {"LIVEQA_BACKEND": redis_server.url, "LIVEQA_SECRET_KEY": secret_key}
    return env, create_event(tmp_path, env, code)


async def test_redis_killed_and_restarted_during_a_burst(
    redis_server: RedisServer,
    secret_key: str,
    tmp_path: Path,
    start_liveqa: Callable[..., LiveqaServer],
) -> None:
    env, links = setup(redis_server, secret_key, tmp_path, "KILLED")
    server = start_liveqa(**env)
    crowd = Crowd(redis_server.url, "KILLED", [server.url], links["moderator"], people=PEOPLE)
    await crowd.gather()

    async def kill_and_restart() -> None:
        redis_server.kill()
        await asyncio.sleep(2)
        await asyncio.to_thread(redis_server.start)

    try:
        deadline = time.monotonic() + 90
        back = await during(
            crowd.ask(EACH, spread=3, deadline=deadline), kill_and_restart, after=1.5
        )
        await crowd.check("redis SIGKILL 2 s + restart", back)
    finally:
        await crowd.close()
    assert not blocked_loop_warnings(server.log)


async def test_redis_paused_for_ten_seconds_during_a_burst(
    redis_server: RedisServer,
    secret_key: str,
    tmp_path: Path,
    start_liveqa: Callable[..., LiveqaServer],
) -> None:
    env, links = setup(redis_server, secret_key, tmp_path, "PAUSED")
    server = start_liveqa(**env)
    crowd = Crowd(redis_server.url, "PAUSED", [server.url], links["moderator"], people=PEOPLE)
    await crowd.gather()
    assert redis_server.process is not None
    pid = redis_server.process.pid

    async def freeze() -> None:
        pause(pid)
        try:
            await asyncio.sleep(10)
        finally:
            resume(pid)

    health: list[float] = []
    probe = asyncio.create_task(poll_health(server.url, health))
    try:
        deadline = time.monotonic() + 90
        back = await during(crowd.ask(EACH, spread=8, deadline=deadline), freeze, after=1.5)
        await crowd.check("redis SIGSTOP 10 s", back)
    finally:
        probe.cancel()
        await crowd.close()
    slowest = max(t for o in crowd.outcomes for t in o.latencies)
    warnings = blocked_loop_warnings(server.log)
    log = server.log.read_text()
    print(
        f"slowest request {slowest:.2f} s (bound {REQUEST_BOUND} s); /healthz polled "
        f"{len(health)} times, slowest {max(health):.2f} s; loop-blocked warnings (> 0.5 s): "
        f"{len(warnings)}; bus reconnects logged: {log.count('bus: reconnected')}"
    )
    assert slowest <= REQUEST_BOUND
    assert not warnings
    assert "bus: reconnected" in log  # the heartbeat noticed the frozen subscription


async def poll_health(base: str, seconds: list[float]) -> None:
    """How long /healthz takes, every 0.1 s: a blocked event loop would show here too."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while True:
            started = time.monotonic()
            with contextlib.suppress(httpx.TransportError):
                await client.get("/healthz")
                seconds.append(time.monotonic() - started)
            await asyncio.sleep(0.1)

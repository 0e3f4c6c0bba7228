"""The app process killed, or stopped with SIGTERM, while people ask and watch."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.crowd import Crowd, during
from tests.reliability.harness import create_event
from tests.servers import LiveqaServer, RedisServer

pytestmark = pytest.mark.slow

GRACE = 3  # --timeout-graceful-shutdown for these servers


async def test_app_killed_mid_burst_and_restarted(
    redis_server: RedisServer,
    secret_key: str,
    tmp_path: Path,
    start_liveqa: Callable[..., LiveqaServer],
) -> None:
    env = {"LIVEQA_BACKEND": redis_server.url, "LIVEQA_SECRET_KEY": secret_key}
    links = create_event(tmp_path, env, "APPKILL")
    server = start_liveqa(**env)
    crowd = Crowd(redis_server.url, "APPKILL", [server.url], links["moderator"], people=100)
    await crowd.gather()

    async def kill_and_restart() -> None:
        server.stop(signal.SIGKILL)
        await asyncio.to_thread(server.start)

    try:
        back = await during(
            crowd.ask(10, spread=4, deadline=time.monotonic() + 90), kill_and_restart, after=1.5
        )
        await crowd.check("app SIGKILL + restart", back, converge_within=15)
    finally:
        await crowd.close()
    retried = [o for o in crowd.outcomes if o.broken]
    assert retried, "the kill should have broken some requests, which were then retried"


async def test_two_processes_one_restarted_with_sigterm(
    redis_server: RedisServer,
    secret_key: str,
    tmp_path: Path,
    start_liveqa: Callable[..., LiveqaServer],
) -> None:
    env = {"LIVEQA_BACKEND": redis_server.url, "LIVEQA_SECRET_KEY": secret_key}
    links = create_event(tmp_path, env, "TWO")
    grace = ("--graceful-timeout", str(GRACE))
    one, two = start_liveqa(*grace, **env), start_liveqa(*grace, **env)
    crowd = Crowd(redis_server.url, "TWO", [one.url, two.url], links["moderator"], people=60)
    await crowd.gather()
    on_two = [v for v in crowd.viewers if v.base == two.url]
    stopped_in = 0.0

    async def restart_two() -> None:
        nonlocal stopped_in
        started = time.monotonic()
        await asyncio.to_thread(two.stop, signal.SIGTERM)
        stopped_in = time.monotonic() - started
        await asyncio.to_thread(two.start)

    try:
        back = await during(
            crowd.ask(10, spread=5, deadline=time.monotonic() + 90), restart_two, after=1.5
        )
        line = await crowd.check("two processes, one restarted (SIGTERM)", back, converge_within=15)
    finally:
        await crowd.close()
    codes = [v.closes[0] if v.closes else None for v in on_two]
    print(
        f"SIGTERM: process exited in {stopped_in:.2f} s (grace {GRACE} s); "
        f"close codes seen by its {len(on_two)} screens: {sorted(set(map(str, codes)))}"
    )
    assert all(code == 1012 for code in codes), codes
    assert stopped_in <= GRACE + 2
    assert "screens equal" in line

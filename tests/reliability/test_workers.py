"""`liveqa serve --workers 2`: two worker processes on one Redis behave as one server."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.crowd import Crowd, during
from tests.reliability.harness import create_event, wait_for
from tests.servers import LiveqaServer, RedisServer

pytestmark = pytest.mark.slow


async def test_workers_share_one_event_and_stop_gracefully(
    redis_server: RedisServer,
    secret_key: str,
    tmp_path: Path,
    start_liveqa: Callable[..., LiveqaServer],
) -> None:
    env = {"LIVEQA_BACKEND": redis_server.url, "LIVEQA_SECRET_KEY": secret_key}
    links = create_event(tmp_path, env, "WORKERS")
    server = start_liveqa("--workers", "2", "--graceful-timeout", "3", **env)
    crowd = Crowd(redis_server.url, "WORKERS", [server.url], links["moderator"], people=40)
    await crowd.gather()
    moderator = crowd.viewers[-1]

    async def counted() -> bool:
        # Presence sums every worker's sockets: 40 audience screens, wherever they landed.
        return moderator.presence is not None and moderator.presence["audience"] == 40

    try:
        took = await wait_for(counted, 15)

        async def nothing() -> None:
            pass

        back = await during(
            crowd.ask(5, spread=3, deadline=time.monotonic() + 60), nothing, after=0
        )
        await crowd.check("--workers 2", back, converge_within=15)
        started = time.monotonic()
        await asyncio.to_thread(server.stop, signal.SIGTERM)
        stopped = time.monotonic() - started
        await asyncio.sleep(0.5)
        codes = {v.closes[0] if v.closes else None for v in crowd.viewers}
    finally:
        await crowd.close()
    print(
        f"--workers 2: presence counted all 40 screens after {took:.1f} s; SIGTERM stopped "
        f"both workers in {stopped:.2f} s; close codes {codes}"
    )
    assert codes == {1012}
    assert stopped <= 3 + 2

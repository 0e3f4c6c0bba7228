"""Moderators see how many screens are open for their event, summed over every process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.crowd import moderator_cookies
from tests.reliability.harness import Viewer, create_event, wait_for
from tests.servers import LiveqaServer, RedisServer

pytestmark = pytest.mark.slow


async def test_presence_counts_screens_on_every_process(
    redis_server: RedisServer,
    secret_key: str,
    tmp_path: Path,
    start_liveqa: Callable[..., LiveqaServer],
) -> None:
    env = {"LIVEQA_BACKEND": redis_server.url, "LIVEQA_SECRET_KEY": secret_key}
    links = create_event(tmp_path, env, "PRESENCE")
    one, two = start_liveqa(**env), start_liveqa(**env)
    moderator = Viewer(
        one.url,
        "PRESENCE",
        role="moderator",
        cookies=await moderator_cookies(one.url, links["moderator"]),
    ).start()
    audience = [Viewer(one.url, "PRESENCE").start() for _ in range(2)]
    audience += [Viewer(two.url, "PRESENCE").start() for _ in range(3)]
    everyone = [moderator, *audience]
    try:
        await asyncio.wait_for(asyncio.gather(*(v.connected.wait() for v in everyone)), 10)

        async def shows(counts: dict[str, int]) -> bool:
            presence = moderator.presence or {}
            return {k: presence.get(k) for k in counts} == counts

        took = await wait_for(lambda: shows({"audience": 5, "moderator": 1, "panel": 0}), 10)
        await asyncio.gather(*(v.stop() for v in audience[2:]))  # the three on process two leave
        gone = await wait_for(lambda: shows({"audience": 2, "moderator": 1, "panel": 0}), 10)
        assert moderator.presence is not None and moderator.presence["type"] == "presence"
        assert all(v.presence is None for v in audience)  # only moderators are told
        print(
            f"\npresence: 5 audience screens on two processes shown after {took:.1f} s; "
            f"3 leaving shown after {gone:.1f} s"
        )
    finally:
        await asyncio.gather(*(v.stop() for v in everyone))

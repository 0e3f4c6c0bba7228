"""1% of screens stop reading (small receive buffer, MSS 1400): nobody else notices."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.reliability.crowd import event_id, moderator_cookies
from tests.reliability.harness import (
    Asker,
    Viewer,
    converged,
    create_event,
    rss_kib,
    truth,
    unsent_bytes,
    wait_for,
)
from tests.servers import LiveqaServer, RedisServer

pytestmark = pytest.mark.slow

SCREENS = 200
STALLED = 2
QUESTIONS = 1000
ASKERS = 25


async def test_stalled_screens_are_cut_off_and_the_rest_get_every_change(
    redis_server: RedisServer,
    secret_key: str,
    tmp_path: Path,
    start_liveqa: Callable[..., LiveqaServer],
) -> None:
    env = {"LIVEQA_BACKEND": redis_server.url, "LIVEQA_SECRET_KEY": secret_key}
    links = create_event(tmp_path, env, "STALL")
    server = start_liveqa(**env)
    assert server.process is not None
    event = await event_id(redis_server.url, "STALL")
    moderator = Viewer(
        server.url,
        "STALL",
        role="moderator",
        cookies=await moderator_cookies(server.url, links["moderator"]),
    ).start()
    stalled = [Viewer(server.url, "STALL", stalled=True).start() for _ in range(STALLED)]
    healthy = [Viewer(server.url, "STALL").start() for _ in range(SCREENS - STALLED - 1)]
    viewers = [moderator, *healthy]
    askers = [Asker(server.url, "STALL") for _ in range(ASKERS)]
    try:
        await asyncio.wait_for(
            asyncio.gather(*(v.connected.wait() for v in [*viewers, *stalled])), 30
        )
        await asyncio.gather(*(a.join() for a in askers))
        await wait_for(lambda: _presence(moderator, SCREENS - 1), 10)
        rss_before = rss_kib(server.process.pid)
        started = time.monotonic()
        deadline = started + 120
        text = "Why " + "so very " * 55 + "slow?"  # ~450 characters: big frames fill buffers

        async def ask_all(n: int, asker: Asker) -> None:
            for k in range(QUESTIONS // ASKERS):
                outcome = await asker.ask(f"{text} {n}-{k}", deadline=deadline)
                assert outcome.acked, outcome.error

        await asyncio.gather(*(ask_all(n, a) for n, a in enumerate(askers)))
        burst = time.monotonic() - started
        await wait_for(lambda: converged(redis_server.url, event, viewers), 30)
        rss_after = rss_kib(server.process.pid)
        # The moderator's presence counts show the stalled screens gone from the room.
        cut_off_within = await wait_for(lambda: _presence(moderator, SCREENS - 1 - STALLED), 15)
        # And their connections are reset, not left holding what they never read.
        await wait_for(_nothing_unsent(server.port), 10)
        seq, questions = await truth(redis_server.url, event)
        least = min(v.changes for v in healthy)
        print(
            f"\nstalled screens: {STALLED}/{SCREENS} stopped reading (SO_RCVBUF 4096, MSS 1400); "
            f"{QUESTIONS} questions in {burst:.1f} s; every one of {len(healthy)} healthy "
            f"screens got all {seq} changes one by one (least {least}, snapshots "
            f"{sum(v.snapshots for v in healthy)}, reconnects {sum(len(v.closes) for v in healthy)}); "
            f"stalled ones gone from presence {cut_off_within:.1f} s after the burst; "
            f"server RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MiB"
        )
        assert len(questions) == QUESTIONS
        assert all(v.changes == seq and v.snapshots == 1 and not v.closes for v in healthy)
        assert rss_after - rss_before < 50 * 1024
    finally:
        for a in askers:
            await a.close()
        await asyncio.gather(*(v.stop() for v in [*viewers, *stalled]))


def _nothing_unsent(port: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not unsent_bytes(port)

    return check


async def _presence(moderator: Viewer, audience: int) -> bool:
    return moderator.presence is not None and moderator.presence["audience"] == audience

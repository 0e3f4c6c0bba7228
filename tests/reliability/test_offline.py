"""A screen offline for 30 s while 300 changes happen: replay when the log has them, else snapshot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.crowd import event_id
from tests.reliability.harness import (
    Asker,
    Outcome,
    Viewer,
    converged,
    create_event,
    truth,
    wait_for,
)
from tests.servers import LiveqaServer, RedisServer

pytestmark = pytest.mark.slow

OFFLINE = 30.0
ASKS = 200
VOTES = 100


async def make_changes(base: str, code: str, *, over: float) -> None:
    """200 questions and 100 votes (300 changes), spread over `over` seconds."""
    askers = [Asker(base, code) for _ in range(10)]
    await asyncio.gather(*(a.join() for a in askers))
    deadline = time.monotonic() + 60
    pause = over / (ASKS + VOTES) * len(askers)
    try:

        async def ask(n: int, asker: Asker) -> None:
            for k in range(ASKS // len(askers)):
                assert (await asker.ask(f"Offline {n}-{k}?", deadline=deadline)).acked
                await asyncio.sleep(pause)

        await asyncio.gather(*(ask(n, a) for n, a in enumerate(askers)))
        ids = [o.question_id for a in askers for o in a.outcomes]

        async def vote(n: int, asker: Asker) -> None:
            for k in range(VOTES // len(askers)):
                outcome = Outcome(key=f"vote-{n}-{k}", text="")
                question = ids[(n * 7 + k * 13) % len(ids)]
                await asker.post(
                    f"/e/{code}/questions/{question}/vote", {}, outcome, deadline=deadline
                )
                assert outcome.acked, outcome.error
                await asyncio.sleep(pause)

        await asyncio.gather(*(vote(n, a) for n, a in enumerate(askers)))
    finally:
        await asyncio.gather(*(a.close() for a in askers))


async def away_and_back(backend: str, base: str, code: str) -> tuple[Viewer, int, float]:
    event = await event_id(backend, code)
    viewer = Viewer(base, code).start()
    await asyncio.wait_for(viewer.connected.wait(), 10)
    await wait_for(lambda: converged(backend, event, [viewer]), 10)
    since = viewer.seq
    await viewer.go_offline()
    started = time.monotonic()
    await make_changes(base, code, over=OFFLINE - 10)
    await asyncio.sleep(max(0.0, OFFLINE - (time.monotonic() - started)))
    offline = time.monotonic() - started
    viewer.come_back()
    await wait_for(lambda: converged(backend, event, [viewer]), 10)
    await viewer.stop()
    return viewer, since, offline


async def test_offline_screen_catches_up_by_replay_then_by_snapshot_once_trimmed(
    redis_server: RedisServer,
    secret_key: str,
    tmp_path: Path,
    start_liveqa: Callable[..., LiveqaServer],
) -> None:
    env = {"LIVEQA_BACKEND": redis_server.url, "LIVEQA_SECRET_KEY": secret_key}
    create_event(tmp_path, env, "KEPT")
    create_event(tmp_path, env, "TRIMMED")
    keeps = start_liveqa(**env)
    trims = start_liveqa(**env, LIVEQA_LOG_KEEP="50")  # its writes trim the log to ~50

    (kept, kept_since, kept_away), (trimmed, trimmed_since, trimmed_away) = await asyncio.gather(
        away_and_back(redis_server.url, keeps.url, "KEPT"),
        away_and_back(redis_server.url, trims.url, "TRIMMED"),
    )
    kept_seq, _ = await truth(redis_server.url, await event_id(redis_server.url, "KEPT"))
    trimmed_seq, _ = await truth(redis_server.url, await event_id(redis_server.url, "TRIMMED"))
    print(
        f"\noffline {kept_away:.0f} s, log kept: replayed {len(kept.replayed)} changes "
        f"(seq {kept_since + 1}..{kept_seq}), snapshots {kept.snapshots} (1 = only the first); "
        f"offline {trimmed_away:.0f} s, log trimmed to ~50: replayed {len(trimmed.replayed)}, "
        f"snapshots {trimmed.snapshots}; both views equal the store"
    )
    assert kept_seq - kept_since == ASKS + VOTES
    assert kept.replayed == list(range(kept_since + 1, kept_seq + 1))
    assert kept.snapshots == 1
    assert trimmed_seq - trimmed_since == ASKS + VOTES
    assert trimmed.replayed == [] and trimmed.snapshots == 2

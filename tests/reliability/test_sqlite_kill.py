"""SQLite mode: the process killed with SIGKILL mid-write loses nothing it acknowledged."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.crowd import Crowd, during
from tests.reliability.harness import create_event
from tests.servers import LiveqaServer

pytestmark = pytest.mark.slow


async def test_sqlite_process_killed_mid_write(
    tmp_path: Path, start_liveqa: Callable[..., LiveqaServer]
) -> None:
    database = tmp_path / "data" / "liveqa.db"
    env = {"LIVEQA_BACKEND": f"sqlite:///{database}"}
    links = create_event(tmp_path, env, "SQLITE")
    server = start_liveqa(**env)
    crowd = Crowd(env["LIVEQA_BACKEND"], "SQLITE", [server.url], links["moderator"], people=40)
    await crowd.gather()
    kills = 0

    async def kill_twice() -> None:
        nonlocal kills
        for _ in range(2):
            server.stop(signal.SIGKILL)
            kills += 1
            await asyncio.to_thread(server.start)
            await asyncio.sleep(1)

    try:
        back = await during(
            crowd.ask(10, spread=4, deadline=time.monotonic() + 90), kill_twice, after=1.0
        )
        await crowd.check(f"sqlite SIGKILL x{kills} + restart", back, converge_within=15)
    finally:
        await crowd.close()
    server.stop()
    with sqlite3.connect(database) as db:
        (integrity,) = db.execute("PRAGMA integrity_check").fetchone()
        (questions,) = db.execute("SELECT count(*) FROM questions").fetchone()
        (changes,) = db.execute("SELECT count(*) FROM changes").fetchone()
    print(
        f"sqlite after {kills} kills: integrity_check {integrity!r}, {questions} questions, "
        f"{changes} logged changes"
    )
    assert integrity == "ok"
    assert questions == changes == 400
    broken = sum(o.broken for o in crowd.outcomes)
    assert broken, "the kills should have broken some requests, which were then retried"

"""The loop-lag watchdog the Redis scenarios rely on: it does report a blocked event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

from liveqa import watchdog


async def test_a_blocked_loop_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "liveqa.watchdog")
    task = asyncio.create_task(watchdog.watch(interval=0.05, warn_after=0.3))
    await asyncio.sleep(0.1)
    time.sleep(0.6)  # something blocking the loop, as a sync Redis call would
    await asyncio.sleep(0.2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    (record,) = [r for r in caplog.records if r.name == "liveqa.watchdog"]
    assert "event loop blocked for 0." in record.getMessage()

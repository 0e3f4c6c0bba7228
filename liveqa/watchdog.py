"""A loop-lag watchdog: says so in the log when something blocked the event loop."""

from __future__ import annotations

import asyncio
import logging
import time

logger = logging.getLogger("liveqa.watchdog")

INTERVAL = 0.1
WARN_AFTER = 0.5


async def watch(interval: float = INTERVAL, warn_after: float = WARN_AFTER) -> None:
    """Sleep `interval` again and again; a late wake-up means the loop was blocked that long."""
    worst = 0.0
    while True:
        start = time.monotonic()
        await asyncio.sleep(interval)
        lag = time.monotonic() - start - interval
        if lag > warn_after:
            logger.warning("event loop blocked for %.2f s", lag)
        if lag > worst:
            worst = lag
            logger.debug("worst event loop lag so far: %.3f s", worst)

"""Keeps Python's cyclic garbage collector off the fan-out path.

With thousands of sockets the collector's full passes walk every long-lived object again and
again: measured here (bench/RESULTS.md) it took a third of the CPU at 5,000 sockets. Objects
that survived start-up and the last few seconds are frozen (left out of collections); once a
minute everything is unfrozen and collected, so garbage frozen by mistake is freed too.
"""

from __future__ import annotations

import asyncio
import gc

FREEZE_EVERY = 2.0
COLLECT_EVERY = 60.0


async def tend(freeze_every: float = FREEZE_EVERY, collect_every: float = COLLECT_EVERY) -> None:
    gc.freeze()
    since_collect = 0.0
    try:
        while True:
            await asyncio.sleep(freeze_every)
            since_collect += freeze_every
            if since_collect >= collect_every:
                since_collect = 0.0
                gc.unfreeze()
                gc.collect()
            gc.freeze()
    finally:
        gc.unfreeze()

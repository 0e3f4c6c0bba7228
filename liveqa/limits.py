"""Rate limits: fixed-window counters, in memory (one process) or in Redis (shared by all).

A limit of 0 turns that limit off.

Asking and voting are limited per participant and per address; an address gets many times a
participant's allowance because a venue's Wi-Fi puts a whole hall behind one address.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

from liveqa.model import DomainError

ADDRESS_FACTOR = 20
NEW_VOTER_WINDOW = 600
SIGN_INS = 20  # per address per 10 minutes


class SlowDown(DomainError):
    code = "slow_down"
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Counter(Protocol):
    async def hit(self, key: str, window: int) -> tuple[int, float]:
        """Count one more in `key`'s current window: (the count so far, seconds left in it)."""

    async def peek(self, key: str) -> tuple[int, float]: ...

    async def close(self) -> None: ...


def open_counter(url: str) -> Counter:
    if url.startswith(("redis:", "rediss:", "unix:", "redis+sentinel:")):
        return RedisCounter(url)
    return MemoryCounter()


class MemoryCounter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}

    async def hit(self, key: str, window: int) -> tuple[int, float]:
        now = time.monotonic()
        count, ends = self._windows.get(key, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + window
            if len(self._windows) > 100_000:
                self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
        self._windows[key] = (count + 1, ends)
        return count + 1, ends - now

    async def peek(self, key: str) -> tuple[int, float]:
        now = time.monotonic()
        count, ends = self._windows.get(key, (0, 0.0))
        return (count, ends - now) if ends > now else (0, 0.0)

    async def close(self) -> None:
        pass


HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
"""


class RedisCounter:
    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        from liveqa.store.redis import connect  # also understands redis+sentinel://

        self.redis: Any = connect(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._hit = self.redis.register_script(HIT)

    async def hit(self, key: str, window: int) -> tuple[int, float]:
        count, ttl = await self._hit(keys=[f"liveqa:limit:{key}"], args=[window * 1000])
        return int(count), max(int(ttl), 0) / 1000

    async def peek(self, key: str) -> tuple[int, float]:
        name = f"liveqa:limit:{key}"
        async with self.redis.pipeline(transaction=False) as pipe:
            count, ttl = await pipe.get(name).pttl(name).execute()
        return int(count or 0), max(int(ttl), 0) / 1000

    async def close(self) -> None:
        await self.redis.aclose()


@dataclass
class Limits:
    counter: Counter
    ask: int  # per participant per minute
    vote: int  # per participant per minute
    new_voters: int  # per address and event per 10 minutes
    lookups: int  # unknown event codes per address per minute

    async def asking(self, participant: str, address: str) -> None:
        await self._take(f"ask:p:{participant}", self.ask, 60, "questions")
        await self._take(f"ask:a:{address}", self.ask * ADDRESS_FACTOR, 60, "questions")

    async def voting(self, participant: str, address: str) -> None:
        await self._take(f"vote:p:{participant}", self.vote, 60, "votes")
        await self._take(f"vote:a:{address}", self.vote * ADDRESS_FACTOR, 60, "votes")

    async def new_voter(self, event_id: str, address: str) -> None:
        """Clearing cookies makes a new participant; each address gets only so many per event."""
        await self._take(f"voters:{event_id}:{address}", self.new_voters, NEW_VOTER_WINDOW, "votes")

    async def signing_in(self, address: str) -> None:
        await self._take(f"sign-in:{address}", SIGN_INS, 600, "sign-in attempts")

    async def entering_passcode(self, address: str) -> None:
        await self._take(f"passcode:{address}", SIGN_INS, 600, "passcode attempts")

    async def check_lookups(self, address: str) -> None:
        if self.lookups <= 0:
            return  # turned off: no read on every request
        count, left = await self.counter.peek(f"lookup:{address}")
        if 0 < self.lookups <= count:
            raise _slow_down("event codes", left)

    async def missed_lookup(self, address: str) -> None:
        if self.lookups > 0:
            await self.counter.hit(f"lookup:{address}", 60)

    async def _take(self, key: str, limit: int, window: int, what: str) -> None:
        if limit <= 0:
            return  # turned off
        count, left = await self.counter.hit(key, window)
        if count > limit:
            raise _slow_down(what, left)


def _slow_down(what: str, left: float) -> SlowDown:
    wait = max(1, math.ceil(left))
    unit = "second" if wait == 1 else "seconds"
    return SlowDown(f"Slow down: too many {what} too fast. Try again in {wait} {unit}.", wait)

"""CPU per Redis command through redis-py's asyncio client as liveqa configures it.

python bench/rediscost.py redis://127.0.0.1:6379/9   (writes one key, `liveqa-bench:cost`)

Prints CPU microseconds per GET issued one at a time and 32 at once, and per PUBLISH: the
floor under every store read, vote and doorbell.
"""

from __future__ import annotations

import asyncio
import sys
import time

import uvloop

from liveqa.store.redis import RedisStore

COMMANDS = 5000


async def main(url: str) -> None:
    redis = RedisStore(url, log_keep=1000).redis
    await redis.set("liveqa-bench:cost", "v" * 200)
    for concurrency in (1, 32):

        async def worker(n: int) -> None:
            for _ in range(n):
                await redis.get("liveqa-bench:cost")

        started = time.process_time()
        await asyncio.gather(*(worker(COMMANDS // concurrency) for _ in range(concurrency)))
        cpu = time.process_time() - started
        print(f"GET, {concurrency:2} at once: {1e6 * cpu / COMMANDS:5.0f} µs CPU per command")
    started = time.process_time()
    await asyncio.gather(*(redis.publish("liveqa-bench:cost", "x" * 300) for _ in range(COMMANDS)))
    cpu = time.process_time() - started
    print(f"PUBLISH, all at once: {1e6 * cpu / COMMANDS:5.0f} µs CPU per command")
    await redis.delete("liveqa-bench:cost")
    await redis.aclose()


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/9"))

"""Baseline "Python's limit": a bare `websockets` server fanning out with `broadcast()`.

One redis.asyncio subscription to the `bench` channel; every message goes to every socket via
`websockets.asyncio.server.broadcast()` (no per-socket await, encoded once). Compression off.
Usage: python raw_ws.py PORT REDIS_URL
"""

from __future__ import annotations

import sys

import redis.asyncio as redis
import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve

CLIENTS: set[ServerConnection] = set()


async def handler(ws: ServerConnection) -> None:
    CLIENTS.add(ws)
    try:
        await ws.wait_closed()
    finally:
        CLIENTS.discard(ws)


async def relay(url: str) -> None:
    pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("bench")
    async for message in pubsub.listen():
        broadcast(CLIENTS, message["data"].decode())


async def main(port: int, url: str) -> None:
    async with serve(
        handler, "127.0.0.1", port, compression=None, max_size=64 * 1024, backlog=4096
    ):
        await relay(url)


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), sys.argv[2]))

"""Publisher for the baselines: reads JSON lines {"seqs": [...]}, publishes one message per seq
back to back, and answers {"t0": [...]} (wall-clock ns taken just before each publish).

Usage: python publish.py raw|sio|channels REDIS_URL   (channels: run from bench/servers)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable

from payload import message, message_dict


async def publisher(kind: str, url: str) -> Callable[[int], Awaitable[None]]:
    if kind == "raw":
        import redis.asyncio as redis

        client = redis.Redis.from_url(url)

        async def raw(seq: int) -> None:
            await client.publish("bench", message(seq))

        return raw
    if kind == "sio":
        import socketio

        mgr = socketio.AsyncRedisManager(url, channel="bench-sio", write_only=True)

        async def sio(seq: int) -> None:
            await mgr.emit("change", message_dict(seq))

        return sio
    if kind == "channels":
        import os

        os.environ["REDIS_URL"] = url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chanbench.settings")
        import django

        django.setup()
        from channels.layers import get_channel_layer

        layer = get_channel_layer()

        async def channels(seq: int) -> None:
            await layer.group_send("bench", {"type": "bench.msg", "text": message(seq)})

        return channels
    raise SystemExit(f"unknown kind {kind}")


async def main(kind: str, url: str) -> None:
    publish = await publisher(kind, url)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        t0 = []
        for seq in json.loads(line)["seqs"]:
            t0.append(time.time_ns())
            await publish(seq)
        sys.stdout.write(json.dumps({"t0": t0}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    here = __file__.rsplit("/", 1)[0]
    sys.path[:0] = [here, f"{here}/servers"]
    asyncio.run(main(sys.argv[1], sys.argv[2]))

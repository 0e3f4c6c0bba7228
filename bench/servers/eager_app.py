"""A sketch of the fan-out path proposed for liveqa, on liveqa's own stack (Starlette under uvicorn
`websockets-sansio`, redis.asyncio pub/sub), for comparison in the same run.

Each message is encoded once and written to every socket *synchronously*: uvicorn's `send()`
completes without suspending while the transport is writable, so the coroutine is stepped by
hand and no task is created. Only a socket under backpressure gets a task (to finish that send)
and a bounded queue behind it; overflowing the queue cuts it off. No per-socket task otherwise,
no Event wake-ups, and `gc.freeze()` after start-up.

Run: REDIS_URL=... uvicorn --ws websockets-sansio --ws-per-message-deflate false eager_app:app
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as redis
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

QUEUE_LIMIT = 256


class Peer:
    __slots__ = ("closed", "pending", "queue", "ws")

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.queue: deque[str] = deque()
        self.pending: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()


PEERS: set[Peer] = set()


def deliver(text: str) -> None:
    for peer in list(PEERS):
        if peer.pending is not None:  # a send is waiting for the socket to drain
            if len(peer.queue) >= QUEUE_LIMIT:
                cut_off(peer)
            else:
                peer.queue.append(text)
            continue
        coro = peer.ws.send_text(text)
        try:
            waiting = coro.send(None)
        except StopIteration:
            continue  # written at once: the common case
        except Exception:
            cut_off(peer)
            continue
        peer.pending = asyncio.ensure_future(finish(peer, coro, waiting))


async def finish(peer: Peer, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Drive a send that suspended on backpressure to its end, then drain the queue."""
    try:
        while True:
            await waiting
            try:
                waiting = coro.send(None)
            except StopIteration:
                break
        while peer.queue:
            await peer.ws.send_text(peer.queue.popleft())
    except Exception:
        cut_off(peer)
    finally:
        coro.close()
        peer.pending = None


def cut_off(peer: Peer) -> None:
    PEERS.discard(peer)
    peer.queue.clear()
    if peer.pending is not None:
        peer.pending.cancel()
    peer.closed.set()


async def endpoint(ws: WebSocket) -> None:
    await ws.accept()
    peer = Peer(ws)
    PEERS.add(peer)

    async def drain() -> None:
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass

    reader = asyncio.create_task(drain())
    closed = asyncio.create_task(peer.closed.wait())
    try:
        await asyncio.wait({reader, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        cut_off(peer)
        for task in (reader, closed):
            task.cancel()


async def relay(url: str) -> None:
    pubsub = redis.Redis.from_url(url, decode_responses=True).pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("bench")
    async for message in pubsub.listen():
        deliver(message["data"])


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    task = asyncio.create_task(relay(os.environ["REDIS_URL"]))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


app = Starlette(routes=[WebSocketRoute("/", endpoint)], lifespan=lifespan)

"""Fan-out inside one process: one bus subscription per event, shared by its local sockets.

A room delivers changes in `seq` order. When it sees a gap (a message lost or out of order) it
reads the missed changes from the store's log; when the log no longer reaches back, every client
gets a fresh snapshot. Each client has a bounded queue, so a stalled phone only hurts itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from liveqa import messages
from liveqa.bus import MISSED, Bus
from liveqa.model import Change
from liveqa.store import Store

logger = logging.getLogger("liveqa.hub")

QUEUE_LIMIT = 256
MAX_OVERFLOWS = 3


class Client:
    """One websocket: what it may see, and what waits to be sent to it.

    `catch_up(since)` returns the messages that bring a client from `since` to now (a replay of
    the log, or a snapshot when `since` is None or too old) and the `seq` they reach; queued
    changes up to that `seq` are then skipped.
    """

    def __init__(
        self,
        *,
        role: str,
        participant: str,
        send: Callable[[str], Awaitable[None]],
        catch_up: Callable[[int | None], Awaitable[tuple[int, list[str]]]],
        since: int | None = None,
    ) -> None:
        self.role = role
        self.participant = participant
        self._send = send
        self._catch_up = catch_up
        self._queue: deque[tuple[int, str]] = deque()
        self._wakeup = asyncio.Event()
        self._since: int | None = since
        self._behind = True
        self.seq = 0
        self.overflows = 0
        self._wakeup.set()

    def push(self, seq: int, text: str) -> None:
        """Queue a message; `seq` 0 marks one outside the change order (presence)."""
        if len(self._queue) >= QUEUE_LIMIT:
            # Too far behind to catch up message by message: drop the backlog, send the truth.
            self._queue.clear()
            self.overflows += 1
            self.resync()
            return
        self._queue.append((seq, text))
        self._wakeup.set()

    def resync(self) -> None:
        self._since = None
        self._behind = True
        self._wakeup.set()

    async def run(self) -> None:
        """Send until the socket fails or the client falls behind too often."""
        while self.overflows < MAX_OVERFLOWS:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._behind:
                self._behind = False
                self.seq, texts = await self._catch_up(self._since)
                for text in texts:
                    await self._send(text)
            while self._queue and not self._behind:
                seq, text = self._queue.popleft()
                if seq == 0 or seq > self.seq:
                    self.seq = max(self.seq, seq)
                    await self._send(text)


class Room:
    def __init__(self, hub: Hub, event_id: str) -> None:
        self.hub = hub
        self.event_id = event_id
        self.clients: set[Client] = set()
        self.seq = 0
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name=f"liveqa-room-{event_id}")

    async def _run(self) -> None:
        store = self.hub.store
        async with self.hub.bus.subscribe(messages.channel(self.event_id)) as subscription:
            try:
                self.seq = (await store.snapshot(self.event_id)).seq
            finally:
                self.ready.set()
            async for message in subscription:
                if message == MISSED:
                    await self._catch_up()
                    continue
                try:
                    change = messages.change_from_bus(message)
                except ValueError:
                    logger.warning("room %s: unreadable bus message", self.event_id)
                    continue
                if change.seq <= self.seq:
                    continue
                if change.seq == self.seq + 1:
                    self.deliver(change)
                else:
                    await self._catch_up()

    async def _catch_up(self) -> None:
        try:
            changes = await self.hub.store.changes_since(self.event_id, self.seq)
        except Exception:
            # The next message, or the bus's MISSED after a reconnect, tries again.
            logger.warning("room %s: could not read the change log", self.event_id)
            return
        if changes is None:
            self.seq = (await self.hub.store.snapshot(self.event_id)).seq
            for client in self.clients:
                client.resync()
            return
        for change in changes:
            self.deliver(change)

    def deliver(self, change: Change) -> None:
        self.seq = change.seq
        owners = {q.participant for q in change.questions if q.participant}
        shared: dict[str, str] = {}
        for client in self.clients:
            if client.role != "moderator" and client.participant in owners:
                client.push(change.seq, messages.change(change, client.role, client.participant))
                continue
            if client.role not in shared:
                shared[client.role] = messages.change(change, client.role)
            client.push(change.seq, shared[client.role])

    def broadcast(self, text: str) -> None:
        for client in self.clients:
            client.push(0, text)


class Hub:
    def __init__(self, store: Store, bus: Bus) -> None:
        self.store = store
        self.bus = bus
        self.rooms: dict[str, Room] = {}

    async def join(self, event_id: str, client: Client) -> Room:
        """Register `client`; once this returns, no change of the event can pass it by."""
        room = self.rooms.get(event_id)
        if room is None or room.task.done():
            room = self.rooms[event_id] = Room(self, event_id)
        room.clients.add(client)
        await room.ready.wait()
        if room.task.done() and (exc := room.task.exception()) is not None:
            self.leave(room, client)
            raise exc
        return room

    def leave(self, room: Room, client: Client) -> None:
        room.clients.discard(client)
        if not room.clients and self.rooms.get(room.event_id) is room:
            del self.rooms[room.event_id]
            room.task.cancel()

    async def close(self) -> None:
        for room in list(self.rooms.values()):
            room.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await room.task
        self.rooms.clear()

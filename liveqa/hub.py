"""Fan-out inside one process: one bus subscription per event, shared by its local sockets.

A room delivers changes in `seq` order. When it sees a gap (a message lost or out of order) it
reads the missed changes from the store's log; when the log no longer reaches back, every client
gets a fresh snapshot. Every few seconds a room also checks the store's `seq` (the doorbell may
have been lost with nothing after it to reveal the gap) and tells the other processes how many
sockets it holds, so moderators see presence counts for the whole event.
Each client has a bounded queue drained by one sender task, so a stalled phone only hurts itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable

import orjson

from liveqa import messages
from liveqa.bus import MISSED, Bus
from liveqa.model import Change
from liveqa.store import Snapshot, Store

logger = logging.getLogger("liveqa.hub")

QUEUE_LIMIT = 256
MAX_OVERFLOWS = 2
TICK = 2.0
# Beyond this many missed changes a snapshot is cheaper, and one read serves everyone.
REPLAY_LIMIT = 500
ROLES = ("audience", "moderator", "panel")


class Client:
    """One websocket: what it may see, and what waits to be sent to it.

    `catch_up(since)` returns the messages that bring a client from `since` to now (a replay of
    the log, or a snapshot when `since` is None or too old) and the `seq` they reach; queued
    changes up to that `seq` are then skipped. A client that overflows its queue gets a
    snapshot instead of the backlog. One that overflows `MAX_OVERFLOWS` times in a row without
    a single message sent in between is stalled (a phone that stopped reading), not merely
    slow: it is cut off, and its sender stops even in the middle of a send nobody reads.
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
        self.sent = 0
        self.overflows = 0
        self.strikes = 0
        self._sent_at_overflow = -1
        self.cut_off = False
        self.task: asyncio.Task[None] | None = None
        self._wakeup.set()

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self.run(), name="liveqa-client")
        return self.task

    def push(self, seq: int, text: str) -> None:
        """Queue a message; `seq` 0 marks one outside the change order (presence)."""
        if self.cut_off:
            return
        if len(self._queue) >= QUEUE_LIMIT:
            # Too far behind to catch up message by message: drop the backlog, send the truth.
            self._queue.clear()
            self.overflows += 1
            self.strikes = self.strikes + 1 if self.sent == self._sent_at_overflow else 1
            self._sent_at_overflow = self.sent
            if self.strikes >= MAX_OVERFLOWS:
                self.cut_off = True
                if self.task is not None:
                    self.task.cancel()
                return
            self.resync()
            return
        self._queue.append((seq, text))
        self._wakeup.set()

    def resync(self) -> None:
        self._since = None
        self._behind = True
        self._wakeup.set()

    async def run(self) -> None:
        """Send until the socket fails or the client is cut off."""
        while not self.cut_off:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._behind:
                self._behind = False
                self.seq, texts = await self._catch_up(self._since)
                for text in texts:
                    await self._send(text)
                    self.sent += 1
            while self._queue and not self._behind:
                seq, text = self._queue.popleft()
                if seq == 0 or seq > self.seq:
                    self.seq = max(self.seq, seq)
                    await self._send(text)
                    self.sent += 1


class Room:
    def __init__(self, hub: Hub, event_id: str) -> None:
        self.hub = hub
        self.event_id = event_id
        self.channel = messages.channel(event_id)
        self.clients: set[Client] = set()
        self.seq = 0
        self.ready = asyncio.Event()
        # process id -> (when heard, counts by role): what the other processes reported.
        self.presence: dict[str, tuple[float, dict[str, int]]] = {}
        self._snapshot: Snapshot | None = None
        self._reading: asyncio.Future[Snapshot] | None = None
        self.task = asyncio.create_task(self._run(), name=f"liveqa-room-{event_id}")
        self.task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        # A room is cancelled when its last socket leaves; anything else is worth a line.
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.warning("room %s stopped: %r", self.event_id, error)

    async def _run(self) -> None:
        store = self.hub.store
        async with self.hub.bus.subscribe(self.channel) as subscription:
            try:
                self.seq = (await store.snapshot(self.event_id)).seq
            finally:
                self.ready.set()
            ticker = asyncio.create_task(self._tick(), name=f"liveqa-room-tick-{self.event_id}")
            try:
                async for message in subscription:
                    await self._receive(message)
            finally:
                ticker.cancel()

    async def _receive(self, message: str) -> None:
        if message == MISSED:
            await self._catch_up()
            return
        if message.startswith('{"presence"'):
            self._heard(message)
            return
        try:
            change = messages.change_from_bus(message)
        except (ValueError, KeyError, TypeError):
            logger.warning("room %s: unreadable bus message", self.event_id)
            return
        if change.seq <= self.seq:
            return
        if change.seq == self.seq + 1:
            self.deliver(change)
        else:
            await self._catch_up()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            counts = self.counts()
            with contextlib.suppress(Exception):
                report = {"presence": self.hub.id, **counts}
                await self.hub.bus.publish(self.channel, orjson.dumps(report).decode())
            self.presence[self.hub.id] = (time.monotonic(), counts)
            self.tell_moderators()
            await self._catch_up()

    def _heard(self, message: str) -> None:
        try:
            data = orjson.loads(message)
            counts = {role: int(data[role]) for role in ROLES}
        except (ValueError, KeyError, TypeError):
            return
        self.presence[str(data["presence"])] = (time.monotonic(), counts)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(ROLES, 0)
        for client in self.clients:
            counts[client.role] += 1
        return counts

    def tell_moderators(self) -> None:
        """Send moderators how many sockets the event has, over every process heard lately."""
        now = time.monotonic()
        totals = dict.fromkeys(ROLES, 0)
        for process, (heard, counts) in list(self.presence.items()):
            if now - heard > 3 * TICK:
                del self.presence[process]
                continue
            for role in ROLES:
                totals[role] += counts[role]
        text = messages.encode({"type": "presence", **totals})
        for client in self.clients:
            if client.role == "moderator":
                client.push(0, text)

    async def catch_up(
        self, since: int | None, role: str, participant: str
    ) -> tuple[int, list[str]]:
        """What brings a screen from `since` to now: a replay of the log, else a snapshot."""
        if since is not None and self.seq - since <= REPLAY_LIMIT:
            changes = await self.hub.store.changes_since(self.event_id, since)
            if changes is not None:
                seq = changes[-1].seq if changes else since
                return seq, [messages.change(c, role, participant) for c in changes]
        snapshot = await self.snapshot(floor=self.seq)
        store = self.hub.store
        voted = await store.voted(self.event_id, participant) if participant else set()
        text = messages.snapshot(
            role=role,
            event=snapshot.event,
            seq=snapshot.seq,
            questions=snapshot.questions,
            participant=participant,
            voted=voted,
        )
        return snapshot.seq, [text]

    async def snapshot(self, floor: int) -> Snapshot:
        """The event as stored, at `seq` >= `floor`: one read shared by everyone who asks at once.

        `floor` is the room's `seq` when the caller's queue started filling; anything older
        would leave a gap between the snapshot and the queue.
        """
        if self._snapshot is not None and self._snapshot.seq >= floor:
            return self._snapshot
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self.hub.store.snapshot(self.event_id))
            # Its readers may all be gone by the time it fails: the error is theirs, not ours.
            self._reading.add_done_callback(lambda f: f.cancelled() or f.exception())
        snapshot = await asyncio.shield(self._reading)
        if snapshot.seq < floor:
            snapshot = await self.hub.store.snapshot(self.event_id)
        if self._snapshot is None or snapshot.seq > self._snapshot.seq:
            self._snapshot = snapshot
        return snapshot

    async def _catch_up(self) -> None:
        """Bring the room to the store's `seq`; on failure the next tick or MISSED tries again."""
        try:
            changes = await self.hub.store.changes_since(self.event_id, self.seq)
        except Exception:
            logger.warning("room %s: could not read the change log", self.event_id)
            return
        if changes is None or len(changes) > QUEUE_LIMIT // 2:
            # Too much to send change by change (or no longer in the log): everyone resyncs,
            # from one shared snapshot read.
            if changes:
                self.seq = changes[-1].seq
            else:
                try:
                    self.seq = (await self.hub.store.snapshot(self.event_id)).seq
                except Exception:
                    logger.warning("room %s: could not read a snapshot", self.event_id)
                    return
            for client in self.clients:
                client.resync()
            return
        for change in changes:
            if change.seq > self.seq:
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
        self.id = secrets.token_hex(6)
        self._goodbyes: set[asyncio.Task[None]] = set()

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
            # Tell the other processes at once, rather than letting our last count expire.
            goodbye = orjson.dumps({"presence": self.id, **dict.fromkeys(ROLES, 0)}).decode()
            task = asyncio.create_task(self._say(room.channel, goodbye))
            self._goodbyes.add(task)
            task.add_done_callback(self._goodbyes.discard)

    async def _say(self, channel: str, message: str) -> None:
        with contextlib.suppress(Exception):
            await self.bus.publish(channel, message)

    async def close(self) -> None:
        for room in list(self.rooms.values()):
            room.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await room.task
        self.rooms.clear()

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
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import orjson

from liveqa import messages, wire
from liveqa.bus import MISSED, Bus
from liveqa.model import Change, Question
from liveqa.store import Snapshot, Store

logger = logging.getLogger("liveqa.hub")

QUEUE_LIMIT = 256
MAX_OVERFLOWS = 2
TICK = 2.0
# Beyond this many missed changes a snapshot is cheaper, and one read serves everyone.
REPLAY_LIMIT = 500
VOTE_INTERVAL = 0.25
ROLES = ("audience", "moderator", "panel")


class Client:
    """One websocket: what it may see, and how changes reach it.

    While the socket keeps up, a change is written at once, in the caller's turn: no task, no
    wake-up, nothing queued (uvicorn's send only suspends when the socket's buffer is full).
    A socket that is catching up or under backpressure gets a task and a bounded queue until
    it is idle again. `catch_up(since)` returns the messages that bring a client from `since`
    to now (a replay of the log, or a snapshot when `since` is None or too old) and the `seq`
    they reach; queued changes up to that `seq` are then skipped. A client that overflows its
    queue gets a snapshot instead of the backlog. One that overflows `MAX_OVERFLOWS` times in a
    row without a single message sent in between is stalled (a phone that stopped reading), not
    merely slow: it is cut off, even in the middle of a send nobody reads, and `stop` is called.
    """

    # Thousands per process: slots save a dict on every one.
    __slots__ = (
        "_behind",
        "_catch_up",
        "_queue",
        "_send",
        "_sent_at_overflow",
        "_since",
        "_started",
        "_stop",
        "cut_off",
        "overflows",
        "participant",
        "refused",
        "role",
        "sent",
        "seq",
        "strikes",
        "task",
        "write_frame",
    )

    def __init__(
        self,
        *,
        role: str,
        participant: str,
        send: Callable[[str], Coroutine[Any, Any, None]],
        catch_up: Callable[[int | None], Awaitable[tuple[int, list[str]]]],
        since: int | None = None,
        stop: Callable[[], object] = lambda: None,
        write_frame: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.role = role
        self.participant = participant
        self._send = send
        self._catch_up = catch_up
        self._stop = stop
        self.write_frame = write_frame
        # Made when first needed: most sockets never queue, and an empty deque is 600 bytes.
        self._queue: deque[tuple[int, str]] | None = None
        self._since: int | None = since
        # Until started, changes only queue: a room may deliver to a socket it has just added
        # before the socket's catch-up has run, and nothing may overtake that catch-up.
        self._started = False
        self._behind = False
        self.seq = 0
        self.sent = 0
        self.overflows = 0
        self.strikes = 0
        self._sent_at_overflow = -1
        self.cut_off = False
        self.refused = False  # no longer allowed in (the passcode changed), not merely behind
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Send what brings the socket up to date (a replay or a snapshot), then keep up."""
        self._started = True
        self._behind = True
        self._work(self._drain())

    def push(self, seq: int, text: str, frame: bytes | None = None) -> None:
        """Send or queue a message; `seq` 0 marks one outside the change order (presence).

        `frame` is `text` already encoded as a websocket frame (see `liveqa.wire`).
        """
        if self.cut_off:
            return
        if self.task is None and self._started:
            if seq:
                if seq <= self.seq:
                    return
                self.seq = seq
            if frame is not None and self.write_frame is not None and self.write_frame(frame):
                self.sent += 1
                return
            self._write(text)
            return
        if self._queue is None:
            self._queue = deque()
        if len(self._queue) >= QUEUE_LIMIT:
            # Too far behind to catch up message by message: drop the backlog, send the truth.
            self._queue = None
            self.overflows += 1
            self.strikes = self.strikes + 1 if self.sent == self._sent_at_overflow else 1
            self._sent_at_overflow = self.sent
            if self.strikes >= MAX_OVERFLOWS:
                self._cut_off()
                return
            self.resync()
            return
        self._queue.append((seq, text))

    def resync(self) -> None:
        if self.cut_off:
            return  # leaving: its owner is closing the socket
        self._since = None
        self._behind = True
        if self.task is None and self._started:
            self._work(self._drain())

    def close(self) -> None:
        """Stop for good: cancel what is under way."""
        self.cut_off = True
        self._queue = None
        if self.task is not None:
            self.task.cancel()

    def refuse(self) -> None:
        """Turn the socket away for good: its owner closes it as a policy matter."""
        self.refused = True
        self._cut_off()

    def _cut_off(self) -> None:
        if not self.cut_off:
            self.close()
            self._stop()

    def _write(self, text: str) -> None:
        send = self._send(text)
        try:
            waiting = send.send(None)
        except StopIteration:
            self.sent += 1
            return
        except Exception:
            send.close()
            self._cut_off()
            return
        self._work(self._finish(send, waiting))

    def _work(self, work: Coroutine[Any, Any, None]) -> None:
        self.task = asyncio.ensure_future(self._guard(work))

    async def _guard(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            self._cut_off()  # the socket failed, or the store did mid-catch-up: start afresh
        finally:
            if self.task is asyncio.current_task():
                self.task = None

    async def _finish(self, send: Coroutine[Any, Any, None], waiting: Any) -> None:
        """Drive a send that met backpressure to its end, then what queued up meanwhile."""
        try:
            while True:
                if waiting is None:
                    await asyncio.sleep(0)
                else:
                    await waiting
                try:
                    waiting = send.send(None)
                except StopIteration:
                    break
        finally:
            send.close()
        self.sent += 1
        await self._drain()

    async def _drain(self) -> None:
        while self._behind or self._queue:
            if self._behind:
                self._behind = False
                self.seq, texts = await self._catch_up(self._since)
                for text in texts:
                    await self._send(text)
                    self.sent += 1
                continue
            assert self._queue is not None
            seq, text = self._queue.popleft()
            if seq == 0 or seq > self.seq:
                self.seq = max(self.seq, seq)
                await self._send(text)
                self.sent += 1
        self._queue = None  # caught up: give the memory back


class Room:
    def __init__(self, hub: Hub, event_id: str) -> None:
        self.hub = hub
        self.event_id = event_id
        self.channel = messages.channel(event_id)
        self.clients: set[Client] = set()
        self.staff: set[Client] = set()  # moderators and panels: served before the audience
        self.audience: set[Client] = set()
        self.seq = 0
        self.passcode_hash = ""  # the audience's sockets were admitted under this passcode
        self.ready = asyncio.Event()
        self._votes: dict[str, Question] = {}
        self._votes_seq = 0
        self._votes_due = asyncio.Event()
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
                snapshot = await store.snapshot(self.event_id)
                self.seq, self.passcode_hash = snapshot.seq, snapshot.event.passcode_hash
            finally:
                self.ready.set()
            ticker = asyncio.create_task(self._tick(), name=f"liveqa-room-tick-{self.event_id}")
            votes = asyncio.create_task(self._send_votes(), name=f"liveqa-votes-{self.event_id}")
            try:
                async for message in subscription:
                    await self._receive(message)
            finally:
                ticker.cancel()
                votes.cancel()
                await asyncio.gather(ticker, votes, return_exceptions=True)

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
                texts = (messages.change(c, role, participant) for c in changes)
                return seq, [text for text in texts if text is not None]
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
            try:
                snapshot = await self.hub.store.snapshot(self.event_id)
            except Exception:
                logger.warning("room %s: could not read a snapshot", self.event_id)
                return
            self.seq = max(snapshot.seq, changes[-1].seq if changes else 0)
            if self._snapshot is None or snapshot.seq > self._snapshot.seq:
                self._snapshot = snapshot  # the clients' resyncs share this read
            self._admit_under(snapshot.event.passcode_hash)
            for client in self.clients:
                client.resync()
            return
        for change in changes:
            if change.seq > self.seq:
                self.deliver(change)

    def add(self, client: Client) -> None:
        self.clients.add(client)
        (self.audience if client.role == "audience" else self.staff).add(client)

    def discard(self, client: Client) -> None:
        self.clients.discard(client)
        self.staff.discard(client)
        self.audience.discard(client)

    def deliver(self, change: Change) -> None:
        """Send a change to every local socket; vote counts wait up to VOTE_INTERVAL."""
        self.seq = change.seq
        if change.event is not None:
            self._admit_under(change.event.passcode_hash)
        if change.type == "vote":
            # Counts change far faster than anything else: thousands of votes a second become
            # a few messages, each with the latest count of every question voted on.
            for question in change.questions:
                self._votes[question.id] = question
            self._votes_seq = change.seq
            self._votes_due.set()
            return
        self.flush_votes()  # so that no count arrives after the change that follows it
        self._fan_out(change)

    def _admit_under(self, passcode_hash: str) -> None:
        """Turn away the audience let in under another passcode (or none), if one is set now.

        Their pages say so, and a reload asks for the new passcode.
        """
        if passcode_hash == self.passcode_hash:
            return
        self.passcode_hash = passcode_hash
        if passcode_hash:
            for client in list(self.audience):
                client.refuse()

    def flush_votes(self) -> None:
        if self._votes:
            votes = Change(seq=self._votes_seq, type="vote", questions=tuple(self._votes.values()))
            self._votes = {}
            self._fan_out(votes)

    async def _send_votes(self) -> None:
        while True:
            await self._votes_due.wait()
            await asyncio.sleep(VOTE_INTERVAL)
            self._votes_due.clear()
            self.flush_votes()

    def _fan_out(self, change: Change) -> None:
        # Staff first, each role's message encoded once. Then the audience in one tight loop:
        # one text and one frame for all, except the asker's own sockets (with `mine`).
        seq = change.seq
        shared: dict[str, str | None] = {}
        for client in self.staff:
            if client.role not in shared:
                shared[client.role] = messages.change(change, client.role)
            if (text := shared[client.role]) is not None:
                client.push(seq, text)
        if not self.audience:
            return
        owners = {q.participant for q in change.questions if q.participant}
        text = messages.change(change, "audience")
        frame = None if text is None else wire.encode(text)
        for client in self.audience:
            if client.participant in owners:
                if (mine := messages.change(change, "audience", client.participant)) is not None:
                    client.push(seq, mine)
            elif text is not None:
                client.push(seq, text, frame)

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
        room.add(client)
        await room.ready.wait()
        if room.task.done() and (exc := room.task.exception()) is not None:
            self.leave(room, client)
            raise exc
        return room

    def leave(self, room: Room, client: Client) -> None:
        room.discard(client)
        if not room.clients and self.rooms.get(room.event_id) is room:
            del self.rooms[room.event_id]
            room.task.cancel()
            # Tell the other processes at once, rather than letting our last count expire.
            goodbye = orjson.dumps({"presence": self.id, **dict.fromkeys(ROLES, 0)}).decode()
            task = asyncio.create_task(self._say(room.channel, goodbye))
            # Both finish in the background (unsubscribing, publishing); close() waits for them.
            for ending in (room.task, task):
                self._goodbyes.add(ending)
                ending.add_done_callback(self._goodbyes.discard)

    async def _say(self, channel: str, message: str) -> None:
        with contextlib.suppress(Exception):
            await self.bus.publish(channel, message)

    async def close(self) -> None:
        for room in list(self.rooms.values()):
            room.task.cancel()
        await asyncio.gather(
            *(room.task for room in self.rooms.values()), *self._goodbyes, return_exceptions=True
        )
        self.rooms.clear()

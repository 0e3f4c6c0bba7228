"""The per-socket queue, without sockets: a stalled client is cut off, a slow one never is."""

from __future__ import annotations

import asyncio

from liveqa.hub import MAX_OVERFLOWS, QUEUE_LIMIT, Client


def client(send: object) -> Client:
    async def catch_up(since: int | None) -> tuple[int, list[str]]:
        return 0, ["snapshot"]

    return Client(role="audience", participant="", send=send, catch_up=catch_up, stop=stopped.set)  # type: ignore[arg-type]


stopped = asyncio.Event()


async def test_a_client_that_takes_nothing_is_cut_off_with_a_bounded_queue() -> None:
    stuck = asyncio.Event()

    async def send(text: str) -> None:
        stuck.set()
        await asyncio.Event().wait()  # a socket nobody reads: this send never completes

    stopped.clear()
    c = client(send)
    c.start()
    task = c.task
    assert task is not None
    await asyncio.wait_for(stuck.wait(), 5)
    pushed = 0
    while not c.cut_off:
        c.push(pushed + 1, f"change {pushed + 1}")
        pushed += 1
        assert len(c._queue or ()) <= QUEUE_LIMIT  # None: nothing queued
    assert pushed == MAX_OVERFLOWS * (QUEUE_LIMIT + 1)
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
    assert task.cancelled()
    assert stopped.is_set()  # the socket's owner is told, so it can close the socket
    c.push(pushed + 1, "after")  # ignored, not queued
    assert not c._queue


async def test_a_slow_client_that_keeps_taking_messages_is_resynced_never_cut_off() -> None:
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)
        await asyncio.sleep(0)

    c = client(send)
    c.start()
    for round in range(10):
        # One more than fits (the first is in flight, the rest queue): an overflow every round.
        for i in range(QUEUE_LIMIT + 2):
            c.push(round * 1000 + i + 1, "change")
        await asyncio.sleep(0.01)  # it gets to send a little between rounds
    assert c.overflows == 10
    assert not c.cut_off
    assert sent.count("snapshot") >= 2  # each overflow is answered with a fresh snapshot
    c.close()


async def test_a_client_that_keeps_up_gets_every_change_in_order_without_a_task() -> None:
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)  # a writable socket: uvicorn's send returns without suspending

    c = client(send)
    c.start()
    assert c.task is not None  # the snapshot needs the store
    await asyncio.wait_for(c.task, 5)
    for seq in (1, 2, 2, 3):  # a repeat is dropped
        c.push(seq, f"change {seq}")
        assert c.task is None  # written at once, in the caller's turn
    assert sent == ["snapshot", "change 1", "change 2", "change 3"]


async def test_a_send_that_meets_backpressure_finishes_then_sends_what_queued() -> None:
    sent: list[str] = []
    gate = asyncio.Event()

    async def send(text: str) -> None:
        if text == "change 1":
            await gate.wait()  # the socket's buffer is full for a while
        sent.append(text)

    c = client(send)
    c.start()
    assert c.task is not None
    await asyncio.wait_for(c.task, 5)
    c.push(1, "change 1")
    assert c.task is not None  # this one suspended: a task finishes it
    c.push(2, "change 2")
    c.push(3, "change 3")
    gate.set()
    await asyncio.wait_for(c.task, 5)
    assert sent == ["snapshot", "change 1", "change 2", "change 3"]
    c.push(4, "change 4")
    assert sent[-1] == "change 4" and c.task is None


async def test_nothing_overtakes_the_catch_up_of_a_socket_not_yet_started() -> None:
    """A new room may deliver to a socket it has just added before its owner starts it."""
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    async def catch_up(since: int | None) -> tuple[int, list[str]]:
        return 5, ["snapshot at 5"]

    def write_frame(frame: bytes) -> bool:
        sent.append(f"frame {frame!r}")
        return True

    c = Client(
        role="audience", participant="", send=send, catch_up=catch_up, write_frame=write_frame
    )
    c.push(4, "change 4", b"4")  # already in the snapshot
    c.push(6, "change 6", b"6")
    assert sent == []
    c.start()
    assert c.task is not None
    await c.task
    assert sent == ["snapshot at 5", "change 6"]

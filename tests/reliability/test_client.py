"""The per-socket queue, without sockets: a stalled client is cut off, a slow one never is."""

from __future__ import annotations

import asyncio

from liveqa.hub import MAX_OVERFLOWS, QUEUE_LIMIT, Client


def client(send: object) -> Client:
    async def catch_up(since: int | None) -> tuple[int, list[str]]:
        return 0, ["snapshot"]

    return Client(role="audience", participant="", send=send, catch_up=catch_up)  # type: ignore[arg-type]


async def test_a_client_that_takes_nothing_is_cut_off_with_a_bounded_queue() -> None:
    stuck = asyncio.Event()

    async def send(text: str) -> None:
        stuck.set()
        await asyncio.Event().wait()  # a socket nobody reads: this send never completes

    c = client(send)
    task = c.start()
    await asyncio.wait_for(stuck.wait(), 5)
    pushed = 0
    while not c.cut_off:
        c.push(pushed + 1, f"change {pushed + 1}")
        pushed += 1
        assert len(c._queue) <= QUEUE_LIMIT
    assert pushed == MAX_OVERFLOWS * (QUEUE_LIMIT + 1)
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
    assert task.cancelled()
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
        for i in range(QUEUE_LIMIT + 1):  # one more than fits: an overflow every round
            c.push(round * 1000 + i + 1, "change")
        await asyncio.sleep(0.01)  # it gets to send a little between rounds
    assert c.overflows == 10
    assert not c.cut_off
    assert sent.count("snapshot") >= 2  # each overflow is answered with a fresh snapshot
    assert c.task is not None
    c.task.cancel()

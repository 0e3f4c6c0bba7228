"""The fan-out's fast path: one encoded frame written to every audience socket under uvicorn."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.protocol import State
from websockets.server import ServerProtocol

from liveqa import wire
from liveqa.app import create_app
from liveqa.cli import SERVER_OPTIONS
from liveqa.hub import Client
from liveqa.runtime import Runtime
from liveqa.settings import Settings


@pytest.mark.parametrize("text", ["", "é" * 40, "x" * 125, "x" * 126, "x" * 65535, "x" * 65536])
def test_a_frame_encoded_once_is_the_frame_the_protocol_would_write(text: str) -> None:
    protocol = ServerProtocol()
    protocol.state = State.OPEN
    protocol.send_text(text.encode())
    assert wire.encode(text) == b"".join(protocol.data_to_send())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, Runtime]]:
    """liveqa under uvicorn, configured as `liveqa serve` configures it, in this process."""
    app = create_app(Settings(backend=f"sqlite:///{tmp_path}/db", secret_key="k"))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **SERVER_OPTIONS)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}", app.state.runtime
    finally:
        server.should_exit = True
        await task


def audience_clients(rt: Runtime) -> list[Client]:
    return [c for room in rt.hub.rooms.values() for c in room.audience]


async def test_audience_sockets_get_their_changes_through_the_fast_path(
    server: tuple[str, Runtime],
) -> None:
    address, rt = server
    event = (await rt.events.create("Panel", code="FAST")).event
    url, origin = f"ws://{address}/e/FAST/live", f"http://{address}"
    # Clients offer permessage-deflate, as browsers do; the server declines it.
    async with connect(url, origin=origin) as a, connect(url, origin=origin) as b:
        for ws in (a, b):
            assert json.loads(await ws.recv())["type"] == "snapshot"
        assert [c.write_frame is not None for c in audience_clients(rt)] == [True, True]
        question = await rt.events.ask(
            event.id, text="Is the fast path used?", participant="p", key="k"
        )
        for ws in (a, b):
            change = json.loads(await ws.recv())
            assert change["type"] == "change"
            assert [q["text"] for q in change["questions"]] == [question.text]
        assert [c.sent for c in audience_clients(rt)] == [2, 2]


async def test_a_socket_the_fast_path_refuses_still_gets_the_change_in_order() -> None:
    sent: list[str] = []
    written: list[bytes] = []
    accept = True

    def write_frame(frame: bytes) -> bool:
        if accept:
            written.append(frame)
        return accept

    async def send(text: str) -> None:
        sent.append(text)

    async def catch_up(since: int | None) -> tuple[int, list[str]]:
        return 0, []

    client = Client(
        role="audience", participant="", send=send, catch_up=catch_up, write_frame=write_frame
    )
    client.start()
    assert client.task is not None
    await client.task  # caught up (nothing to send): now changes go out as they come
    client.push(1, "one", wire.encode("one"))
    accept = False  # paused, closing: the ASGI send takes over
    client.push(2, "two", wire.encode("two"))
    client.push(3, "three")  # a copy of its own (the asker's) never has a frame
    assert written == [wire.encode("one")]
    assert sent == ["two", "three"]
    assert client.sent == 3

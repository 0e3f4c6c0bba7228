"""The websocket: server-to-client pushes only (a snapshot or replay, then changes)."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect

from liveqa import identity, messages
from liveqa.hub import Client
from liveqa.model import DomainError
from liveqa.runtime import runtime

ROLES = ("audience", "moderator", "panel")
TRY_AGAIN_LATER = 1013
POLICY_VIOLATION = 1008


async def live(websocket: WebSocket) -> None:
    rt = runtime(websocket)
    if not identity.origin_allowed(websocket, rt.settings.allowed_origins):
        await websocket.close(POLICY_VIOLATION)  # before accept: the handshake gets a 403
        return
    try:
        event = await rt.store.event_by_code(websocket.path_params["code"])
    except DomainError:
        await websocket.close(POLICY_VIOLATION)
        return
    role = websocket.query_params.get("role", "audience")
    if role not in ROLES or (
        role != "audience" and not identity.has_access(websocket, rt.signer, event, role)
    ):
        await websocket.close(POLICY_VIOLATION)
        return
    participant = (identity.participant(websocket, rt.signer) or "") if role == "audience" else ""
    since_param = websocket.query_params.get("since", "")
    since = int(since_param) if since_param.isdigit() else None

    async def catch_up(since: int | None) -> tuple[int, list[str]]:
        if since is not None:
            changes = await rt.store.changes_since(event.id, since)
            if changes is not None:
                seq = changes[-1].seq if changes else since
                return seq, [messages.change(c, role, participant) for c in changes]
        snapshot = await rt.store.snapshot(event.id)
        voted = await rt.store.voted(event.id, participant) if participant else set()
        text = messages.snapshot(
            role=role,
            event=snapshot.event,
            seq=snapshot.seq,
            questions=snapshot.questions,
            participant=participant,
            voted=voted,
        )
        return snapshot.seq, [text]

    await websocket.accept()
    client = Client(
        role=role, participant=participant, send=websocket.send_text, catch_up=catch_up, since=since
    )
    room = await rt.hub.join(event.id, client)
    sender = asyncio.create_task(client.run())
    receiver = asyncio.create_task(_drain(websocket))
    try:
        done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if sender in done and sender.exception() is None:
            # The client fell behind again and again: let it reconnect and start afresh.
            await websocket.close(TRY_AGAIN_LATER)
    finally:
        rt.hub.leave(room, client)
        for task in (sender, receiver):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _drain(websocket: WebSocket) -> None:
    """Read until the client goes away; clients only ever send pings."""
    with contextlib.suppress(WebSocketDisconnect):
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

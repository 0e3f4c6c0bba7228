"""The websocket: server-to-client pushes only (a snapshot or replay, then changes)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from liveqa import identity, wire
from liveqa.hub import Client
from liveqa.model import DomainError
from liveqa.runtime import Runtime, runtime
from liveqa.store import UNAVAILABLE, unavailable

ROLES = ("audience", "moderator", "panel")
TRY_AGAIN_LATER = 1013
POLICY_VIOLATION = 1008
CLOSE_TIMEOUT = 1.0


class Live:
    """The endpoint as a bare ASGI app, which Starlette routes to without wrapping it.

    A function endpoint gets Starlette's exception handling around it, which this one never
    needs (it closes its socket itself on every failure); as a plain app, each of thousands of
    idle sockets holds a few coroutine frames and closures less (about 1.5 KB).
    """

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        return live(WebSocket(scope, receive=receive, send=send))


async def live(websocket: WebSocket) -> None:
    rt = runtime(websocket)
    admitted = await _admit(websocket, rt)
    if admitted is None:
        return
    event_id, role, participant = admitted
    since_param = websocket.query_params.get("since", "")
    since = int(since_param) if since_param.isdigit() else None

    async def catch_up(since: int | None) -> tuple[int, list[str]]:
        return await room.catch_up(since, role, participant)

    await websocket.accept()
    server_send = websocket.scope.get(identity.FRAME_SEND)  # None: keep to the ASGI wrappers
    endpoint = asyncio.current_task()
    assert endpoint is not None
    client = Client(
        role=role,
        participant=participant,
        send=_text_sender(websocket, server_send),
        catch_up=catch_up,
        since=since,
        stop=endpoint.cancel,
        write_frame=wire.writer(server_send),
    )
    try:
        room = await rt.hub.join(event_id, client)
    except Exception:
        # The store is unreachable (Redis down): the page reconnects with backoff.
        await _close(websocket, TRY_AGAIN_LATER)
        return
    try:
        client.start()
        # Read until the client goes away (clients only ever send pings). Inline, not in a
        # function of its own: every idle socket would hold one more frame.
        with contextlib.suppress(WebSocketDisconnect):
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
    except asyncio.CancelledError:
        if not client.cut_off:
            raise  # the server is shutting down
        # Cut off for falling behind, or the store failed mid-catch-up: start afresh. Or
        # refused, because the passcode changed: the page says so and stops trying.
        endpoint.uncancel()
        if client.refused:
            await _close(websocket, POLICY_VIOLATION, "passcode changed")  # live.js knows it
        else:
            await _close(websocket, TRY_AGAIN_LATER)
        wire.reset_if_unread(server_send)
    finally:
        rt.hub.leave(room, client)
        client.close()


async def _admit(websocket: WebSocket, rt: Runtime) -> tuple[str, str, str] | None:
    """The event id, role and participant of a socket allowed in; otherwise refuse it.

    Only these outlive the handshake: the event itself is not kept for the socket's life.
    """
    if not identity.origin_allowed(websocket, rt.settings.allowed_origins):
        await websocket.close(POLICY_VIOLATION)  # before accept: the handshake gets a 403
        return None
    try:
        event = await rt.store.event_by_code(websocket.path_params["code"])
    except DomainError:
        await websocket.close(POLICY_VIOLATION)
        return None
    except UNAVAILABLE:
        # The store is unreachable: refuse the handshake with a 503 so the page retries.
        await websocket.send_denial_response(JSONResponse(unavailable(), 503))
        return None
    role = websocket.query_params.get("role", "audience")
    if role not in ROLES or (
        role != "audience" and not identity.has_access(websocket, rt.signer, event, role)
    ):
        await websocket.close(POLICY_VIOLATION)
        return None
    if not identity.passcode_ok(websocket, rt.signer, event):
        await websocket.close(POLICY_VIOLATION)
        return None
    participant = (identity.participant(websocket, rt.signer) or "") if role == "audience" else ""
    return event.id, role, participant


def _text_sender(
    websocket: WebSocket, send: Send | None
) -> Callable[[str], Coroutine[Any, Any, None]]:
    """How text reaches this socket: the server's `send` itself where the middleware allows."""
    if send is None:
        return websocket.send_text

    def write(text: str) -> Coroutine[Any, Any, None]:
        # Past Starlette's state checks: the socket is accepted, and a closed one raises.
        return cast(Coroutine[Any, Any, None], send({"type": "websocket.send", "text": text}))

    return write


async def _close(websocket: WebSocket, code: int, reason: str = "") -> None:
    # A socket nobody reads never drains, and uvicorn waits for room before a close frame.
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await websocket.close(code, reason)

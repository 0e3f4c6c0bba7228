"""Past ASGI, onto uvicorn's websocket transport: one encoded frame for many sockets, and a reset
for a socket whose reader is gone.

A change goes to thousands of audience sockets as the same bytes. A server's frames are never
masked and liveqa negotiates no compression, so the frame can be encoded once and each socket
given only a `transport.write`, where the ASGI `send` would build a message, encode the text and
frame it again for every socket (two thirds of the fan-out's CPU in the benchmark).

This reaches past ASGI into uvicorn's `websockets-sansio` protocol, so it is used only where that
protocol is recognised, and only while its own `send` would write at once: handshake done, no
close sent or received, transport not paused or closing. Anything else (another server, a socket
under backpressure, one closing) takes the ASGI `send` as before, so correctness never depends
on this path; `tests/web/test_wire.py` checks that it stays in use.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State


def encode(text: str) -> bytes:
    """`text` as one unmasked, uncompressed text frame, as a server sends it."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


def writer(send: Any) -> Callable[[bytes], bool] | None:
    """A function writing an encoded frame to the socket behind an ASGI `send`, if it can.

    Call it once the socket is accepted. The function returns False, having written nothing,
    whenever the frame must go through `send` instead.
    """
    protocol = getattr(send, "__self__", None)
    if (
        type(protocol) is not WebSocketsSansIOProtocol
        or protocol.conn.extensions
        or not protocol.handshake_complete  # not accepted (yet), or refused
        or protocol.initial_response is not None
    ):
        return None
    conn, writable = protocol.conn, protocol.writable

    def write(frame: bytes) -> bool:
        # Checked for every frame: what can change while the socket lives.
        transport = protocol.transport
        if (
            conn.state is not State.OPEN
            or protocol.close_sent
            or protocol.disconnected
            or not writable.is_set()
            or transport.is_closing()
        ):
            return False
        transport.write(frame)
        return True

    return write


def reset_if_unread(send: Any) -> bool:
    """Reset the connection behind `send` if it still holds bytes its reader has not taken.

    A phone that stopped reading never takes the close frame either, and a closed transport
    waits for its buffer to drain: the connection would linger with its unsent bytes in our
    buffers and the kernel's for as long as the phone keeps it open. A reset (SO_LINGER 0, then
    abort) frees both at once; the phone, if it wakes up, reconnects and catches up.
    """
    protocol = getattr(send, "__self__", None)
    if type(protocol) is not WebSocketsSansIOProtocol:
        return False
    transport = protocol.transport
    if transport.get_write_buffer_size() == 0:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return True

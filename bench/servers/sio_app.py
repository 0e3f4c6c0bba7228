"""Baseline peer: python-socketio (ASGI, under uvicorn) with its AsyncRedisManager.

Clients join the default namespace; the publisher is `AsyncRedisManager(write_only=True).emit()`.
Run: REDIS_URL=... uvicorn --ws websockets-sansio --ws-per-message-deflate false sio_app:app
"""

from __future__ import annotations

import os

import socketio

mgr = socketio.AsyncRedisManager(os.environ["REDIS_URL"], channel="bench-sio")
sio = socketio.AsyncServer(async_mode="asgi", client_manager=mgr, cors_allowed_origins="*")
app = socketio.ASGIApp(sio)

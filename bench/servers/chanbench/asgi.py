"""Baseline peer: Django Channels with channels_redis's pub/sub layer.

Every socket joins the group `bench`; the publisher calls `group_send`. Run under uvicorn with
DJANGO_SETTINGS_MODULE=chanbench.settings and REDIS_URL set.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chanbench.settings")

import django

django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class BenchConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        await self.channel_layer.group_add("bench", self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard("bench", self.channel_name)

    async def bench_msg(self, event: dict[str, str]) -> None:
        await self.send(text_data=event["text"])


application = ProtocolTypeRouter({"websocket": URLRouter([path("ws", BenchConsumer.as_asgi())])})

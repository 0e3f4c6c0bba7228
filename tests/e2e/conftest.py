from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import LiveqaServer


@pytest.fixture
def start_liveqa(tmp_path: Path) -> Iterator[Callable[..., LiveqaServer]]:
    """Start `python -m liveqa serve` processes; all are stopped after the test."""
    servers: list[LiveqaServer] = []

    def start(**env: str) -> LiveqaServer:
        server = LiveqaServer(env, tmp_path).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def secret_key() -> str:
    return secrets.token_urlsafe(32)

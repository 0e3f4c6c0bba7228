from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CI
from tests.servers import LiveqaServer, RedisServer, redis_binary


class DurableRedis(RedisServer):
    """AOF with `appendfsync always`, as the README recommends for an event that cannot be re-run.

    With `everysec` Redis may postpone writing its AOF buffer while a background fsync is slow
    and still answer the client, so a SIGKILL can lose acknowledged writes; the stateful test
    saw exactly that once on this (busy, shared) machine.
    """

    def start(self) -> DurableRedis:
        super().start()
        with self.client() as client:
            client.config_set("appendfsync", "always")
        return self


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own (AOF on, temporary folder), free to kill or pause."""
    if redis_binary() is None:
        if CI:
            pytest.fail("redis-server is missing, and CI=true forbids skipping the Redis tests")
        pytest.skip("redis-server is not installed")
    server = DurableRedis().start()
    yield server
    if server.process is not None:
        server.process.send_signal(18)  # SIGCONT, in case a test left it paused
    server.close()


@pytest.fixture
def secret_key() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture
def start_liveqa(tmp_path: Path) -> Iterator[Callable[..., LiveqaServer]]:
    """Start `python -m liveqa serve` processes; all are stopped after the test."""
    servers: list[LiveqaServer] = []

    def start(*args: str, **env: str) -> LiveqaServer:
        server = LiveqaServer(env, tmp_path, args).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.process is not None:
            server.stop(9)

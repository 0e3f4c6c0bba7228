from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from liveqa.bus import Bus, open_bus
from liveqa.events import Events
from liveqa.store import Store, open_store
from tests.servers import CI, RedisServer, redis_binary


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session (tests that kill Redis start their own)."""
    if redis_binary() is None:
        if CI:
            pytest.fail("redis-server is missing, and CI=true forbids skipping the Redis tests")
        pytest.skip("redis-server is not installed")
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    client = redis.Redis(port=redis_server.port)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/liveqa.db"
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
async def store(backend: str) -> AsyncIterator[Store]:
    store = open_store(backend)
    yield store
    await store.close()


@pytest.fixture
async def bus(backend: str) -> AsyncIterator[Bus]:
    bus = open_bus(backend if backend.startswith("redis") else "memory://")
    yield bus
    await bus.close()


@pytest.fixture
def events(store: Store, bus: Bus) -> Events:
    return Events(store, bus)

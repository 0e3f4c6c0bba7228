from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from liveqa.app import create_app
from liveqa.identity import make_csrf_token
from liveqa.runtime import Runtime
from liveqa.settings import Settings

ORIGIN = {"origin": "http://testserver"}


@pytest.fixture
def settings(backend: str) -> Settings:
    return Settings(backend=backend, secret_key="test-secret")


def sends_csrf(client: TestClient, secret: str = "test-secret") -> TestClient:
    """Send the CSRF token with every write, as liveqa's pages do (a header or a hidden field)."""

    def add(request: httpx.Request) -> None:
        seed = client.cookies.get("liveqa_csrf")
        if request.method in ("GET", "HEAD") or "x-csrf-token" in request.headers or not seed:
            return
        session = client.cookies.get("liveqa_session") or ""
        request.headers["x-csrf-token"] = make_csrf_token(secret, seed, session)

    client.event_hooks["request"].append(add)
    return client


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with sends_csrf(TestClient(create_app(settings))) as client:
        yield client


@pytest.fixture
def person(client: TestClient) -> Callable[[], TestClient]:
    """Another browser (its own cookies) on the same running app."""

    def make() -> TestClient:
        other = sends_csrf(TestClient(client.app))
        other.portal = client.portal
        return other

    return make


class Links:
    def __init__(self, client: TestClient, code: str, moderator_key: str, panel_key: str) -> None:
        self.client = client
        self.code = code
        self.moderator_key = moderator_key
        self.panel_key = panel_key


@pytest.fixture
def event(client: TestClient) -> Links:
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert client.portal is not None  # the client was entered with `with`
    created = client.portal.call(
        lambda: rt.events.create("Panel", code="PANEL", panelists=("Ada",))
    )
    return Links(client, created.event.code, created.moderator_key, created.panel_key)

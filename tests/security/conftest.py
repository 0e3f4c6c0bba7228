"""A scene for attacks: two events, A and B, and one browser per role.

Every role is reached the way a person reaches it: the audience opens the event page, the panel
and moderators open their links, the organiser signs in at /admin with a password.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from liveqa.app import create_app
from liveqa.events import Created
from liveqa.model import EventSettings, Question
from liveqa.passwords import hash_password
from liveqa.runtime import Runtime
from liveqa.security import Security
from liveqa.settings import Settings
from tests import servers
from tests.servers import LiveqaServer
from tests.web.conftest import sends_csrf

ORIGIN = {"origin": "http://testserver"}
PASSWORD = "a long organiser password"
ROLES = ("audience", "panel", "moderator_a", "moderator_b", "organiser")


@dataclass
class Scene:
    app: Any
    portal_client: TestClient
    a: Created
    b: Created
    people: dict[str, TestClient]

    @property
    def rt(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    @property
    def security(self) -> Security:
        security: Security = self.app.state.security
        return security

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        async def run() -> Any:
            return await fn(*args, **kwargs)

        return self.portal_client.portal.call(run)  # type: ignore[union-attr]

    def browser(self) -> TestClient:
        """A new browser with no cookies at all."""
        other = sends_csrf(TestClient(self.app))
        other.portal = self.portal_client.portal
        return other

    def question(self, event: Created, state: str = "queued", text: str = "Q?") -> Question:
        """A question of `event` in `state`, made through the use cases as people would."""
        ev = self.rt.events
        eid = event.event.id
        if state == "pending":
            self.call(ev.configure, eid, key="", premoderation=True)
        q: Question = self.call(ev.ask, eid, text=text, participant="someone", key="")
        if state == "pending":
            self.call(ev.configure, eid, key="", premoderation=False)
            return q
        if q.state.value == "pending":
            q = self.call(ev.approve, eid, q.id, key="")
        if state in ("live",):
            q = self.call(ev.promote, eid, q.id, key="")
        if state == "answered":
            q = self.call(ev.answer, eid, q.id, text="Yes.", key="")
        if state == "dismissed":
            q = self.call(ev.dismiss, eid, q.id, key="", reason="off topic")
        return q

    def stored(self, event: Created, question_id: str) -> Question:
        q: Question = self.call(self.rt.store.question, event.event.id, question_id)
        return q

    def seq(self, event: Created) -> int:
        snapshot = self.call(self.rt.store.snapshot, event.event.id)
        return int(snapshot.seq)


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)  # scrypt is slow on purpose: once per test run is enough


def sign_in(browser: TestClient, name: str = "ada", password: str = PASSWORD) -> Any:
    """Sign in as a person does: open /admin, fill in the form (with the page's CSRF token)."""
    page = browser.get("/admin").text
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert found is not None
    return browser.post(
        "/admin/sign-in",
        data={"name": name, "password": password, "csrf_token": found.group(1)},
        headers={"x-csrf-token": ""},
        follow_redirects=False,
    )


def make_scene(settings: Settings) -> Iterator[Scene]:
    app = create_app(settings)
    with sends_csrf(TestClient(app)) as first:
        rt: Runtime = app.state.runtime  # type: ignore[attr-defined]
        security: Security = app.state.security  # type: ignore[attr-defined]
        portal = first.portal
        assert portal is not None
        a = portal.call(lambda: rt.events.create("Event A", code="EVENT-A", panelists=("Ada",)))
        b = portal.call(lambda: rt.events.create("Event B", code="EVENT-B", panelists=("Ada",)))
        portal.call(lambda: security.sessions.add_organiser("ada", password_hash()))
        scene = Scene(app=app, portal_client=first, a=a, b=b, people={})
        for role in ROLES:
            person = scene.browser()
            assert person.get("/e/EVENT-A").status_code == 200
            scene.people[role] = person
        people = scene.people
        opened = people["panel"].get(f"/e/EVENT-A/panel?key={a.panel_key}")
        assert opened.status_code == 200
        assert people["moderator_a"].get(f"/e/EVENT-A/moderate?key={a.moderator_key}").is_success
        assert people["moderator_b"].get(f"/e/EVENT-B/moderate?key={b.moderator_key}").is_success
        assert sign_in(people["organiser"]).status_code == 303
        yield scene


@pytest.fixture
def settings(backend: str) -> Settings:
    return Settings(backend=backend, secret_key="test-secret")


@pytest.fixture
def scene(settings: Settings) -> Iterator[Scene]:
    yield from make_scene(settings)


@pytest.fixture(scope="module")
def shared_scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """One SQLite scene for a whole module of tests that read, or must change nothing."""
    folder = tmp_path_factory.mktemp("shared")
    yield from make_scene(
        Settings(backend=f"sqlite:///{folder}/liveqa.db", secret_key="test-secret")
    )


@pytest.fixture
def sqlite_scene(tmp_path: Any) -> Iterator[Scene]:
    """The scene on SQLite only, for the long matrices (the backends share the code above)."""
    settings = Settings(backend=f"sqlite:///{tmp_path}/liveqa.db", secret_key="test-secret")
    yield from make_scene(settings)


@dataclass
class Live:
    """`liveqa serve` in a process of its own, with one event, TOWN-HALL."""

    server: LiveqaServer
    moderator_key: str
    panel_key: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ws(self) -> str:
        return self.server.url.replace("http://", "ws://") + "/e/TOWN-HALL/live"

    def log(self) -> str:
        return self.server.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp_path = tmp_path_factory.mktemp("live")
    env = {
        "LIVEQA_BACKEND": f"sqlite:///{tmp_path}/liveqa.db",
        "LIVEQA_SECRET_KEY": "live-secret",
        "LIVEQA_ADMIN_PASSWORD": PASSWORD,
    }
    server = LiveqaServer(env, tmp_path)
    made = subprocess.run(
        [sys.executable, "-m", "liveqa", "create-event", "Town hall", "--code", "TOWN-HALL"],
        env=server.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    keys = dict(re.findall(r"/(moderate|panel)\?key=(\S+)", made.stdout))
    server.start()
    yield Live(server, keys["moderate"], keys["panel"])
    server.stop()


@pytest.fixture
def chromium() -> Iterator[Any]:
    # A payload that escaped would try to fetch from the internet: nothing resolves but us.
    with servers.chromium("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1") as browser:
        yield browser


def with_settings(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, **changes)


__all__ = ["ORIGIN", "PASSWORD", "ROLES", "EventSettings", "Scene", "sign_in", "with_settings"]

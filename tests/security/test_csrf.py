"""Cross-site request forgery against every state-changing route, enumerated from the route table
(a route added later is attacked too). The victim is a signed-in organiser, who may do anything.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from liveqa.app import routes
from liveqa.identity import make_csrf_token
from tests.security.conftest import Scene

SAFE = {"GET", "HEAD", "OPTIONS"}
WRITES = [
    (route.path, method)
    for route in routes
    if isinstance(route, Route)
    for method in sorted((route.methods or set()) - SAFE)
]
EVIL = "https://evil.example"


def test_the_route_table_has_writes() -> None:
    assert len(WRITES) >= 8, WRITES


def state(scene: Scene, victim: TestClient) -> Any:
    """Everything a forged request could change, as the victim and the store see it."""
    a = scene.call(scene.rt.store.snapshot, scene.a.event.id)
    events = sorted(e.title for e in scene.call(scene.rt.store.events))
    return (a.seq, a.event, scene.seq(scene.b), events, "Sign out" in victim.get("/admin").text)


def url(scene: Scene, path: str) -> str:
    question = scene.question(scene.a, "queued")
    values = {"code": "EVENT-A", "question": question.id, "action": "star"}
    return re.sub(r"{(\w+)}", lambda m: values.get(m.group(1), "x"), path)


def token(victim: TestClient) -> str:
    seed = victim.cookies.get("liveqa_csrf") or ""
    return make_csrf_token("test-secret", seed, victim.cookies.get("liveqa_session") or "")


@pytest.mark.parametrize(("path", "method"), WRITES)
def test_forged_writes_are_refused(shared_scene: Scene, path: str, method: str) -> None:
    scene = shared_scene
    victim = scene.people["organiser"]
    attacker = scene.browser()
    attacker.get("/")  # the attacker's own, valid token is no use on the victim's cookies
    attacks: dict[str, dict[str, Any]] = {
        "no token": {"headers": {"x-csrf-token": ""}},
        "a made-up token": {"headers": {"x-csrf-token": secrets.token_hex(32)}},
        "the attacker's token": {"headers": {"x-csrf-token": token(attacker)}},
        "a foreign Origin": {"headers": {"x-csrf-token": token(victim), "origin": EVIL}},
        "Origin null": {"headers": {"x-csrf-token": token(victim), "origin": "null"}},
        "Sec-Fetch-Site cross-site": {
            "headers": {"x-csrf-token": token(victim), "sec-fetch-site": "cross-site"}
        },
        "a form without the field": {"headers": {"x-csrf-token": ""}, "data": {"text": "x"}},
    }
    for attack, request in attacks.items():
        target = url(scene, path)
        before = state(scene, victim)
        kwargs = {"json": {"text": "forged"}} | request
        response = victim.request(method, target, **kwargs)
        assert response.status_code == 403, (attack, target, response.text)
        assert state(scene, victim) == before, (attack, target)


@pytest.mark.parametrize(("path", "method"), WRITES)
def test_the_pages_own_writes_get_through(sqlite_scene: Scene, path: str, method: str) -> None:
    scene = sqlite_scene
    victim = scene.people["organiser"]
    for as_form in (False, True):
        mine = token(victim)  # read afresh: signing out, for one, ends the session it was bound to
        request: dict[str, Any] = (
            {"headers": {"x-csrf-token": ""}, "data": {"csrf_token": mine, "text": "Mine"}}
            if as_form
            else {"headers": {"x-csrf-token": mine}, "json": {"text": "Mine"}}
        )
        response = victim.request(method, url(scene, path), **request)
        # It may be refused for its content (a wrong password), never as a forgery.
        assert "did not come from liveqa" not in response.text, (path, request)


def test_the_token_is_in_every_page_and_changes_with_the_session(sqlite_scene: Scene) -> None:
    scene = sqlite_scene
    person = scene.browser()
    page = person.get("/e/EVENT-A").text
    (meta,) = re.findall(r'<meta name="csrf-token" content="([0-9a-f]{64})">', page)
    assert meta == token(person)
    field = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert field is not None and field.group(1) == meta
    person.get(f"/e/EVENT-A/moderate?key={scene.a.moderator_key}")
    again = person.get("/e/EVENT-A").text
    assert meta not in again  # a new session (the link was used) gets a new token

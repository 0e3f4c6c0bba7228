"""The authorisation matrix: {audience, panel, moderator of A, moderator of B, organiser} x every
action, over HTTP and websocket, against event A. Every denial must be a 403 that changes nothing;
every allowed action must work. The expected table is written out here, once.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from liveqa.app import routes
from liveqa.model import Action
from tests.security.conftest import ORIGIN, ROLES, Scene

EVERYONE = frozenset(ROLES)
STAFF_A = frozenset({"moderator_a", "organiser"})
VIEWERS_A = frozenset({"panel", "moderator_a", "organiser"})
ORGANISERS = frozenset({"organiser"})

# Which state a question must be in for the action to be legal, and what the request carries.
SETUP: dict[Action, tuple[str, dict[str, Any]]] = {
    Action.APPROVE: ("pending", {}),
    Action.DISMISS: ("queued", {"reason": "off topic"}),
    Action.RESTORE: ("dismissed", {}),
    Action.PROMOTE: ("queued", {}),
    Action.BACK: ("live", {}),
    Action.DONE: ("live", {}),
    Action.ANSWER: ("queued", {"text": "In writing."}),
    Action.EDIT: ("queued", {"text": "Edited."}),
    Action.STAR: ("queued", {}),
    Action.ASSIGN: ("queued", {"panelist": "Ada"}),
    Action.DRAFT: ("queued", {"text": "A draft."}),
}


def test_every_moderator_action_is_covered() -> None:
    assert set(SETUP) == set(Action), "add the new action to SETUP so the matrix covers it"


@pytest.mark.parametrize("action", list(Action), ids=str)
def test_moderating_a_question(sqlite_scene: Scene, action: Action) -> None:
    scene = sqlite_scene
    state, body = SETUP[action]
    for role in ROLES:
        question = scene.question(scene.a, state)
        response = scene.people[role].post(
            f"/e/EVENT-A/questions/{question.id}/{action.value}", json=body
        )
        after = scene.stored(scene.a, question.id)
        if role in STAFF_A:
            assert response.status_code == 200, (role, action, response.text)
            assert after.rev == question.rev + 1, (role, action)
        else:
            assert response.status_code == 403, (role, action, response.text)
            assert after == question, (role, action)
        if after.state.value == "live":  # leave the screen free for the next role
            scene.call(scene.rt.events.back, scene.a.event.id, after.id, key="")


def test_asking_and_voting_are_for_everyone(sqlite_scene: Scene) -> None:
    scene = sqlite_scene
    for role in ROLES:
        person = scene.people[role]
        asked = person.post("/e/EVENT-A/questions", json={"text": f"From {role}"})
        assert asked.status_code == 201, (role, asked.text)
        other = scene.question(scene.a, "queued")
        voted = person.post(f"/e/EVENT-A/questions/{other.id}/vote", json={})
        assert voted.status_code == 200, (role, voted.text)
        assert scene.stored(scene.a, other.id).votes == 1


@pytest.mark.parametrize(
    ("body", "check"),
    [
        ({"state": "vote_only"}, lambda e: e.state.value == "vote_only"),
        ({"premoderation": True}, lambda e: e.settings.premoderation),
        ({"voting": False}, lambda e: not e.settings.voting),
    ],
    ids=["state", "premoderation", "voting"],
)
def test_changing_the_event(sqlite_scene: Scene, body: dict[str, Any], check: Any) -> None:
    scene = sqlite_scene
    original = scene.call(scene.rt.store.event, scene.a.event.id)
    for role in ROLES:
        response = scene.people[role].post("/e/EVENT-A/state", json=body)
        event = scene.call(scene.rt.store.event, scene.a.event.id)
        if role in STAFF_A:
            assert response.status_code == 200, (role, response.text)
            assert check(event), role
            scene.call(
                scene.rt.events.configure,
                event.id,
                key="",
                premoderation=original.settings.premoderation,
                voting=original.settings.voting,
            )
            if event.state != original.state:
                scene.call(scene.rt.events.set_state, event.id, original.state, key="")
        else:
            assert response.status_code == 403, (role, response.text)
            assert event == original, role


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/e/EVENT-A/moderate", STAFF_A),
        ("/e/EVENT-A/panel", VIEWERS_A),
        ("/e/EVENT-A", EVERYONE),
        ("/e/EVENT-A/answers", EVERYONE),
    ],
)
def test_viewing_the_screens(sqlite_scene: Scene, path: str, allowed: frozenset[str]) -> None:
    for role in ROLES:
        status = sqlite_scene.people[role].get(path).status_code
        assert status == (200 if role in allowed else 403), (role, path, status)


def test_the_organiser_screen(sqlite_scene: Scene) -> None:
    scene = sqlite_scene
    for role in ROLES:
        person = scene.people[role]
        page = person.get("/admin")
        created = person.post(
            "/admin/events", data={"title": f"By {role}", "code": f"BY-{role[:5].upper()}"}
        )
        links = person.post("/admin/events/EVENT-A/links", data={})
        events = {e.title for e in scene.call(scene.rt.store.events)}
        if role in ORGANISERS:
            assert "EVENT-A" in page.text and "Sign out" in page.text
            assert created.status_code == 201 and f"By {role}" in events
            assert links.status_code == 200 and "/moderate?key=" in links.text
        else:
            assert "EVENT-A" not in page.text and "/moderate?key=" not in page.text, role
            assert created.status_code == 403 and f"By {role}" not in events, role
            assert links.status_code == 403 and "/moderate?key=" not in links.text, role


@pytest.mark.parametrize(
    ("socket_role", "allowed"),
    [("audience", EVERYONE), ("panel", VIEWERS_A), ("moderator", STAFF_A)],
)
def test_websocket_streams(sqlite_scene: Scene, socket_role: str, allowed: frozenset[str]) -> None:
    for role in ROLES:
        person: TestClient = sqlite_scene.people[role]
        url = f"/e/EVENT-A/live?role={socket_role}"
        if role in allowed:
            with person.websocket_connect(url, headers=ORIGIN) as ws:
                assert ws.receive_json()["type"] == "snapshot", role
        else:
            with (
                pytest.raises(WebSocketDisconnect) as refused,
                person.websocket_connect(url, headers=ORIGIN) as ws,
            ):
                ws.receive_json()
            assert refused.value.code == 1008, role


def test_a_moderator_of_b_cannot_reach_a_through_b(sqlite_scene: Scene) -> None:
    """Event A's question ids sent to event B's URLs find nothing there."""
    scene = sqlite_scene
    mod_b = scene.people["moderator_b"]
    for action in Action:
        state, body = SETUP[action]
        question = scene.question(scene.a, state)
        response = mod_b.post(f"/e/EVENT-B/questions/{question.id}/{action.value}", json=body)
        assert response.status_code == 404, (action, response.text)
        assert scene.stored(scene.a, question.id) == question, action
    forged = mod_b.post("/e/EVENT-B/state", json={"state": "closed", "event_id": scene.a.event.id})
    assert forged.status_code == 200
    assert scene.call(scene.rt.store.event, scene.a.event.id).state.value == "open"


ORGANISER_ROUTES = [
    (route.path, method)
    for route in routes
    if isinstance(route, Route)
    and route.path.startswith("/admin/")
    and route.path not in ("/admin/sign-in", "/admin/sign-out")
    for method in sorted((route.methods or set()) - {"HEAD"})
]
BODIES: dict[str, dict[str, Any]] = {
    "/admin/events": {"title": "Made", "code": "MADE"},
    "/admin/events/{code}/state": {"state": "closed"},
    "/admin/events/{code}/retention": {"retention_days": "1"},
    "/admin/events/{code}/delete": {"confirm": "EVENT-A"},
    "/admin/events/{code}/passcode": {"passcode": "1234"},
}


def test_organiser_routes_are_enumerated() -> None:
    assert len(ORGANISER_ROUTES) >= 8, ORGANISER_ROUTES


@pytest.mark.parametrize(("path", "method"), ORGANISER_ROUTES)
def test_organiser_routes_are_for_organisers_only(
    sqlite_scene: Scene, path: str, method: str
) -> None:
    """Every /admin/ route, including ones added later: staff and audience get a 403 and
    change nothing; the organiser gets through."""
    scene = sqlite_scene
    scene.question(scene.a, "queued", text="=1+1 in a spreadsheet?")
    url = path.replace("{code}", "EVENT-A")
    body = BODIES.get(path, {})

    def world() -> Any:
        events = scene.call(scene.rt.store.events)
        return sorted((e.code, e.state.value, e.settings) for e in events), scene.seq(scene.a)

    before = world()
    for role in [r for r in ROLES if r != "organiser"]:
        response = scene.people[role].request(method, url, data=body)
        assert response.status_code == 403, (role, method, url, response.status_code)
        assert "=1+1" not in response.text, (role, url)
        assert world() == before, (role, method, url)
    response = scene.people["organiser"].request(method, url, data=body)
    assert response.status_code not in (401, 403) and response.status_code < 500, (
        url,
        response.status_code,
    )
    if path.endswith("export.csv"):
        assert "'=1+1 in a spreadsheet?" in response.text  # a formula no more

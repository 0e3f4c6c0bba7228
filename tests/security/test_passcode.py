"""An event with a passcode: the audience sees and does nothing until they enter it; staff pass."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.security.conftest import ORIGIN, Scene


def enter(browser: object, passcode: str) -> object:
    page = browser.get("/e/EVENT-A").text  # type: ignore[attr-defined]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    return browser.post(  # type: ignore[attr-defined]
        "/e/EVENT-A/passcode",
        data={"passcode": passcode, "csrf_token": token.group(1)},
        headers={"x-csrf-token": ""},
        follow_redirects=False,
    )


def skip_to_close(ws: Any) -> None:
    while True:
        ws.receive_json()


def test_the_audience_needs_the_passcode(sqlite_scene: Scene) -> None:
    scene = sqlite_scene
    secret_question = scene.question(scene.a, "answered", text="Only for the room?")
    organiser = scene.people["organiser"]
    set_ = organiser.post("/admin/events/EVENT-A/passcode", data={"passcode": "tulip 42"})
    assert set_.status_code == 200
    stranger = scene.browser()
    page = stranger.get("/e/EVENT-A")
    assert "This event asks for a passcode" in page.text
    assert "Only for the room?" not in page.text
    assert "Only for the room?" not in stranger.get("/e/EVENT-A/answers").text
    assert stranger.post("/e/EVENT-A/questions", json={"text": "Let me in"}).status_code == 403
    voted = stranger.post(f"/e/EVENT-A/questions/{secret_question.id}/vote", json={})
    assert voted.status_code == 403
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        stranger.websocket_connect("/e/EVENT-A/live", headers=ORIGIN) as ws,
    ):
        ws.receive_json()
    assert refused.value.code == 1008

    wrong = enter(stranger, "tulip 43")
    assert wrong.status_code == 403 and "not the passcode" in wrong.text  # type: ignore[attr-defined]
    right = enter(stranger, "tulip 42")
    assert right.status_code == 303  # type: ignore[attr-defined]
    assert "Only for the room?" in stranger.get("/e/EVENT-A").text
    assert stranger.post("/e/EVENT-A/questions", json={"text": "In now"}).status_code == 201
    with stranger.websocket_connect("/e/EVENT-A/live", headers=ORIGIN) as ws:
        assert ws.receive_json()["type"] == "snapshot"

    for role in ("moderator_a", "panel", "organiser"):  # staff never need it
        person = scene.people[role]
        path = "/e/EVENT-A/panel" if role == "panel" else "/e/EVENT-A/moderate"
        assert person.get(path).status_code == 200, role

    organiser.post("/admin/events/EVENT-A/passcode", data={"passcode": "rose 7"})
    assert "This event asks for a passcode" in stranger.get("/e/EVENT-A").text  # old one: out
    stored = scene.call(scene.rt.store.event, scene.a.event.id).passcode_hash
    assert stored.startswith("scrypt$") and "rose 7" not in stored


def test_guessing_the_passcode_is_slowed_down(sqlite_scene: Scene) -> None:
    scene = sqlite_scene
    scene.people["organiser"].post("/admin/events/EVENT-A/passcode", data={"passcode": "4821"})
    guesser = scene.browser()
    statuses = [enter(guesser, f"{n:04d}").status_code for n in range(21)]  # type: ignore[attr-defined]
    assert statuses[:20] == [403] * 20 and statuses[20] == 429
    assert enter(guesser, "4821").status_code == 429  # type: ignore[attr-defined]


def test_a_new_passcode_turns_away_open_audience_screens_not_staff(sqlite_scene: Scene) -> None:
    scene = sqlite_scene
    organiser, moderator = scene.people["organiser"], scene.people["moderator_a"]
    with (
        scene.browser().websocket_connect("/e/EVENT-A/live", headers=ORIGIN) as audience,
        moderator.websocket_connect("/e/EVENT-A/live?role=moderator", headers=ORIGIN) as staff,
    ):
        assert audience.receive_json()["type"] == "snapshot"
        assert staff.receive_json()["type"] == "snapshot"
        set_ = organiser.post("/admin/events/EVENT-A/passcode", data={"passcode": "tulip 42"})
        assert set_.status_code == 200
        started = time.monotonic()
        with pytest.raises(WebSocketDisconnect) as closed:
            skip_to_close(audience)
        assert time.monotonic() - started < 1.0
        # A refusal the page explains: reload, and enter the new passcode.
        assert (closed.value.code, closed.value.reason) == (1008, "passcode changed")
        scene.question(scene.a, "queued", text="Still here?")
        while (message := staff.receive_json())["type"] != "change" or not message["questions"]:
            pass
        assert message["questions"][0]["text"] == "Still here?"

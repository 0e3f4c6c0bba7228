"""The whole path over HTTP and websocket: write -> store -> bus -> socket, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from tests.web.conftest import ORIGIN, Links


def receive(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = ws.receive_json()
    return message


def test_snapshot_on_connect_then_changes(
    client: TestClient, event: Links, person: Callable[[], TestClient]
) -> None:
    client.get(f"/e/{event.code}")  # the audience page gives a participant cookie
    with client.websocket_connect(f"/e/{event.code}/live", headers=ORIGIN) as ws:
        snapshot = receive(ws)
        assert snapshot["type"] == "snapshot"
        assert snapshot["seq"] == 0 and snapshot["questions"] == []
        assert snapshot["event"]["title"] == "Panel"
        response = client.post(
            f"/e/{event.code}/questions",
            json={"text": "Is it live?"},
            headers={"Idempotency-Key": "k1"},
        )
        assert response.status_code == 201
        change = receive(ws)
        assert change["type"] == "change" and change["seq"] == 1
        (question,) = change["questions"]
        assert question["text"] == "Is it live?" and question["mine"] is True
        assert "participant" not in question


def test_a_retried_ask_creates_one_question(
    client: TestClient, event: Links, person: Callable[[], TestClient]
) -> None:
    client.get(f"/e/{event.code}")
    first = client.post(
        f"/e/{event.code}/questions", json={"text": "Once"}, headers={"Idempotency-Key": "k"}
    )
    again = client.post(
        f"/e/{event.code}/questions", json={"text": "Once"}, headers={"Idempotency-Key": "k"}
    )
    assert first.json()["question"]["id"] == again.json()["question"]["id"]


def test_other_audience_sees_public_questions_but_not_pending_ones(
    client: TestClient, event: Links, person: Callable[[], TestClient]
) -> None:
    client.get(f"/e/{event.code}/moderate?key={event.moderator_key}")
    client.post(f"/e/{event.code}/state", json={"premoderation": True})
    asker = person()
    asker.get(f"/e/{event.code}")
    with (
        client.websocket_connect(f"/e/{event.code}/live?role=moderator", headers=ORIGIN) as mod,
        person().websocket_connect(f"/e/{event.code}/live", headers=ORIGIN) as other,
    ):
        receive(mod), receive(other)
        q = asker.post(f"/e/{event.code}/questions", json={"text": "Screen me"}).json()["question"]
        assert q["state"] == "pending"
        assert receive(mod)["questions"][0]["state"] == "pending"
        # The rest of the audience hears nothing of a question waiting for approval...
        assert client.post(f"/e/{event.code}/questions/{q['id']}/approve").status_code == 200
        assert receive(mod)["questions"][0]["state"] == "queued"
        shown = receive(other)  # ...so the first they hear of it is its approval.
        assert shown["change"] == "question.approve"
        assert shown["questions"][0]["state"] == "queued" and "mine" not in shown["questions"][0]
        client.post(f"/e/{event.code}/questions/{q['id']}/dismiss", json={"reason": "Spam"})
        receive(mod)
        gone = receive(other)  # once seen, a dismissed question is taken away
        assert gone["questions"] == [] and gone["removed"] == [q["id"]]


def test_the_dismissed_asker_sees_the_reason_others_do_not(
    client: TestClient, event: Links, person: Callable[[], TestClient]
) -> None:
    client.get(f"/e/{event.code}/moderate?key={event.moderator_key}")
    asker = person()
    asker.get(f"/e/{event.code}")
    q = asker.post(f"/e/{event.code}/questions", json={"text": "Buy my product"}).json()["question"]
    client.post(f"/e/{event.code}/questions/{q['id']}/dismiss", json={"reason": "Advertising"})
    with asker.websocket_connect(f"/e/{event.code}/live", headers=ORIGIN) as ws:
        mine = receive(ws)["questions"]
        assert [(x["state"], x["reason"]) for x in mine] == [("dismissed", "Advertising")]
    with person().websocket_connect(f"/e/{event.code}/live", headers=ORIGIN) as ws:
        assert receive(ws)["questions"] == []


def test_reconnect_with_last_seq_replays_missed_changes(
    client: TestClient, event: Links, person: Callable[[], TestClient]
) -> None:
    client.get(f"/e/{event.code}")
    ids = [
        client.post(f"/e/{event.code}/questions", json={"text": f"Q{i}"}).json()["question"]["id"]
        for i in range(3)
    ]
    with client.websocket_connect(f"/e/{event.code}/live?since=1", headers=ORIGIN) as ws:
        replayed = [receive(ws), receive(ws)]
    assert [m["type"] for m in replayed] == ["change", "change"]
    assert [m["seq"] for m in replayed] == [2, 3]
    assert [m["questions"][0]["id"] for m in replayed] == ids[1:]
    with client.websocket_connect(f"/e/{event.code}/live?since=3", headers=ORIGIN) as ws:
        client.post(f"/e/{event.code}/questions", json={"text": "Q3"})
        assert receive(ws)["seq"] == 4


def test_votes_reach_every_socket(
    client: TestClient, event: Links, person: Callable[[], TestClient]
) -> None:
    client.get(f"/e/{event.code}")
    q = client.post(f"/e/{event.code}/questions", json={"text": "Vote"}).json()["question"]
    voter = person()
    voter.get(f"/e/{event.code}")
    with client.websocket_connect(f"/e/{event.code}/live", headers=ORIGIN) as ws:
        assert receive(ws)["questions"][0]["votes"] == 0
        assert (
            voter.post(f"/e/{event.code}/questions/{q['id']}/vote", json={}).json()["question"][
                "votes"
            ]
            == 1
        )
        assert receive(ws)["questions"][0]["votes"] == 1
        again = voter.post(f"/e/{event.code}/questions/{q['id']}/vote", json={})
        assert again.status_code == 409 and again.json()["error"] == "already_voted"
        assert (
            voter.post(f"/e/{event.code}/questions/{q['id']}/vote", json={"up": False}).json()[
                "question"
            ]["votes"]
            == 0
        )
        assert receive(ws)["questions"][0]["votes"] == 0


def test_moderator_and_panel_sockets_need_their_link(
    client: TestClient, event: Links, person: Callable[[], TestClient]
) -> None:
    import pytest
    from starlette.websockets import WebSocketDisconnect

    for role in ("moderator", "panel"):
        with pytest.raises(WebSocketDisconnect):
            with person().websocket_connect(
                f"/e/{event.code}/live?role={role}", headers=ORIGIN
            ) as ws:
                ws.receive_json()
    panel = person()
    assert (
        panel.get(
            f"/e/{event.code}/panel?key={event.panel_key}", follow_redirects=False
        ).status_code
        == 303
    )
    with panel.websocket_connect(f"/e/{event.code}/live?role=panel", headers=ORIGIN) as ws:
        assert receive(ws)["type"] == "snapshot"
    with pytest.raises(WebSocketDisconnect):
        with panel.websocket_connect(f"/e/{event.code}/live?role=moderator", headers=ORIGIN) as ws:
            ws.receive_json()


def test_a_foreign_origin_is_refused(
    client: TestClient, event: Links, person: Callable[[], TestClient]
) -> None:
    import pytest
    from starlette.websockets import WebSocketDisconnect

    for headers in ({"origin": "https://evil.example"}, {"origin": "null"}, {}):
        with pytest.raises(WebSocketDisconnect):
            with client.websocket_connect(f"/e/{event.code}/live", headers=headers) as ws:
                ws.receive_json()

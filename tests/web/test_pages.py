"""The HTTP side: pages, form posts without JavaScript, refusals with clear messages."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from tests.web.conftest import Links


def test_joining_by_code(
    client: TestClient, event: Links, person: Callable[[], TestClient]
) -> None:
    assert "Join an event" in client.get("/").text
    response = client.get("/?code=panel", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].endswith("/e/PANEL")
    missing = client.get("/?code=NOPE")
    assert missing.status_code == 404 and "no event with that code" in missing.text


def test_asking_with_a_plain_form_post(
    client: TestClient, event: Links, person: Callable[[], TestClient]
) -> None:
    page = client.get(f"/e/{event.code}")
    assert page.status_code == 200 and "liveqa_participant" in page.cookies
    response = client.post(
        f"/e/{event.code}/questions", data={"text": "<b>Hi</b> from a form", "name": "Ada"}
    )
    assert response.status_code == 200  # followed the 303 back to the page
    assert "&lt;b&gt;Hi&lt;/b&gt; from a form" in response.text
    assert "<b>Hi</b>" not in response.text


def test_a_refused_form_post_keeps_the_text_and_says_why(
    client: TestClient, event: Links, person: Callable[[], TestClient]
) -> None:
    client.get(f"/e/{event.code}")
    response = client.post(f"/e/{event.code}/questions", data={"text": "x" * 501})
    assert response.status_code == 422
    assert "501 characters long; the limit is 500" in response.text
    assert "x" * 501 in response.text


def test_json_refusals_have_a_code_and_a_message(
    client: TestClient, event: Links, person: Callable[[], TestClient]
) -> None:
    client.get(f"/e/{event.code}")
    empty = client.post(f"/e/{event.code}/questions", json={"text": "   "})
    assert empty.status_code == 422 and empty.json() == {
        "error": "empty",
        "message": "The question is empty.",
    }
    assert (
        client.post(
            f"/e/{event.code}/questions", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    assert client.post("/e/NOPE/questions", json={"text": "x"}).status_code == 404


def test_moderation_needs_the_moderator_link(
    client: TestClient, event: Links, person: Callable[[], TestClient]
) -> None:
    client.get(f"/e/{event.code}")
    q = client.post(f"/e/{event.code}/questions", json={"text": "Hello"}).json()["question"]
    assert client.post(f"/e/{event.code}/questions/{q['id']}/promote").status_code == 403
    assert client.get(f"/e/{event.code}/moderate").status_code == 403
    assert client.get(f"/e/{event.code}/moderate?key=wrong").status_code == 403
    exchanged = client.get(
        f"/e/{event.code}/moderate?key={event.moderator_key}", follow_redirects=False
    )
    assert exchanged.status_code == 303 and "key=" not in exchanged.headers["location"]
    assert client.get(f"/e/{event.code}/moderate").status_code == 200
    live = client.post(f"/e/{event.code}/questions/{q['id']}/promote")
    assert live.status_code == 200 and live.json()["question"]["state"] == "live"
    again = client.post(f"/e/{event.code}/questions/{q['id']}/promote")
    assert again.status_code == 409 and "on screen now" in again.json()["message"]
    assert "Hello" in client.get(f"/e/{event.code}/panel").text


def test_cross_site_writes_are_refused(
    client: TestClient, event: Links, person: Callable[[], TestClient]
) -> None:
    client.get(f"/e/{event.code}")
    forged = client.post(
        f"/e/{event.code}/questions",
        data={"text": "csrf"},
        headers={"origin": "https://evil.example"},
    )
    assert forged.status_code == 403
    fetch = client.post(
        f"/e/{event.code}/questions",
        json={"text": "csrf"},
        headers={"sec-fetch-site": "cross-site"},
    )
    assert fetch.status_code == 403


def test_a_browser_asking_for_an_unknown_event_gets_a_page(client: TestClient) -> None:
    for path in ("/e/NOPE", "/e/NOPE/answers"):
        page = client.get(path, headers={"accept": "text/html"})
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "There is no event with that code." in page.text
    assert client.get("/e/NOPE/answers").json()["error"] == "not_found"

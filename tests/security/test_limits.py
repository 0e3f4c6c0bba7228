"""Abuse: floods of questions, vote stuffing, guessing event codes. Each is slowed down with a
message that says how long to wait, and in Redis mode the count is shared by every process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from liveqa.app import create_app
from liveqa.settings import Settings
from tests.security.conftest import Scene, make_scene
from tests.servers import LiveqaServer
from tests.web.conftest import sends_csrf


def test_one_participant_asking_in_a_loop_is_slowed_down(scene: Scene) -> None:
    asker = scene.people["audience"]
    statuses = [
        asker.post("/e/EVENT-A/questions", json={"text": f"Spam {i}"}).status_code
        for i in range(20)
    ]
    assert statuses.count(201) == 5 and statuses.count(429) == 15
    refused = asker.post("/e/EVENT-A/questions", json={"text": "More"})
    assert refused.json()["error"] == "slow_down"
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60
    assert f"Try again in {wait} second" in refused.json()["message"]
    form = asker.post("/e/EVENT-A/questions", data={"text": "By form"}, follow_redirects=False)
    assert form.status_code == 429 and "Slow down" in form.text and "By form" in form.text
    snapshot = scene.call(scene.rt.store.snapshot, scene.a.event.id)
    assert len(snapshot.questions) == 5
    other = scene.people["moderator_b"]  # someone else at the same time is unaffected
    assert other.post("/e/EVENT-A/questions", json={"text": "Mine"}).status_code == 201


def test_voting_a_hundred_times_counts_once(scene: Scene) -> None:
    question = scene.question(scene.a)
    voter = scene.people["audience"]
    for _ in range(100):
        voter.post(f"/e/EVENT-A/questions/{question.id}/vote", json={"up": True})
    assert scene.stored(scene.a, question.id).votes == 1
    tabs = [scene.browser() for _ in range(3)]
    for tab in tabs:  # more tabs of one browser share its cookie
        tab.cookies = voter.cookies
        tab.post(f"/e/EVENT-A/questions/{question.id}/vote", json={"up": True})
    assert scene.stored(scene.a, question.id).votes == 1


@pytest.fixture
def stingy(settings: Settings) -> Iterator[Scene]:
    yield from make_scene(dataclasses.replace(settings, limit_new_voters=10))


def test_clearing_cookies_to_vote_again_is_capped_per_address(stingy: Scene) -> None:
    question = stingy.question(stingy.a)
    statuses = []
    for _ in range(50):
        fresh = stingy.browser()  # cookies cleared: a new participant, the same address
        fresh.get("/e/EVENT-A")
        statuses.append(fresh.post(f"/e/EVENT-A/questions/{question.id}/vote", json={}).status_code)
    # The scene's five people opened the page but did not vote: the cap is all newcomers'.
    assert statuses.count(200) == 10 and statuses.count(429) == 40
    assert stingy.stored(stingy.a, question.id).votes == 10


def test_guessing_event_codes_is_slowed_down(sqlite_scene: Scene) -> None:
    scene = sqlite_scene
    guesser = scene.browser()
    misses = [guesser.get(f"/e/NOPE-{i}").status_code for i in range(30)]
    assert misses == [404] * 30
    assert guesser.get("/e/NOPE-X").status_code == 429
    # Now even a right guess waits, so the answer tells nothing about which codes exist.
    blocked = guesser.get("/e/EVENT-A")
    assert blocked.status_code == 429 and "Slow down" in blocked.text
    assert guesser.get("/?code=EVENT-A").status_code == 429


def test_limits_are_shared_by_every_process_on_one_redis(redis_url: str) -> None:
    settings = Settings(backend=redis_url, secret_key="test-secret")
    one, two = create_app(settings), create_app(settings)
    with sends_csrf(TestClient(one)) as first, sends_csrf(TestClient(two)) as second:
        rt = one.state.runtime  # type: ignore[attr-defined]
        first.portal.call(lambda: rt.events.create("Shared", code="SHARED"))  # type: ignore[union-attr]
        first.get("/e/SHARED")
        second.cookies = first.cookies  # one person, their requests spread over two processes
        second.get("/e/SHARED")
        statuses = []
        for i in range(8):
            browser = first if i % 2 else second
            statuses.append(browser.post("/e/SHARED/questions", json={"text": f"Q{i}"}).status_code)
        assert statuses.count(201) == 5 and statuses.count(429) == 3


def test_forged_forwarded_for_headers_do_not_make_fresh_addresses(tmp_path: Path) -> None:
    """Behind no proxy (none trusted), X-Forwarded-For is the client's to invent: ignored."""
    env = {
        "LIVEQA_BACKEND": f"sqlite:///{tmp_path}/liveqa.db",
        "LIVEQA_SECRET_KEY": "xff",
        "LIVEQA_LIMIT_LOOKUPS": "5",
        "FORWARDED_ALLOW_IPS": "10.255.255.1",  # a proxy that is not the test client
    }
    server = LiveqaServer(env, tmp_path).start()
    try:
        statuses = [
            httpx.get(
                f"{server.url}/e/NOPE-{i}", headers={"x-forwarded-for": f"203.0.113.{i}"}
            ).status_code
            for i in range(8)
        ]
        assert statuses == [404] * 5 + [429] * 3
    finally:
        server.stop()

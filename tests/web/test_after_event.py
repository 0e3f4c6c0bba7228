"""After the event, over HTTP: written answers, the answers page, the organiser's lifecycle
controls, exports and imports, the report, and who may use them.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from liveqa.app import create_app, purging
from liveqa.bus import open_bus
from liveqa.events import Created, Events
from liveqa.model import EventSettings, EventState
from liveqa.runtime import Runtime
from liveqa.settings import Settings
from liveqa.store import open_store
from tests.web.conftest import sends_csrf

PASSWORD = "s3cret organiser words"


class Scene:
    """A running app with one event, PANEL, and the people around it."""

    def __init__(self, client: TestClient) -> None:
        self.organiser = client
        self.rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        self.created: Created = self.call(
            self.rt.events.create,
            "Budget night",
            code="PANEL",
            description="The council's budget.\nAsk anything.",
            panelists=("Ada", "Grace"),
        )
        self.id = self.created.event.id

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        async def run() -> Any:
            return await fn(*args, **kwargs)

        return self.organiser.portal.call(run)  # type: ignore[union-attr]

    def browser(self) -> TestClient:
        other = sends_csrf(TestClient(self.organiser.app))
        other.portal = self.organiser.portal
        return other

    def audience(self) -> TestClient:
        person = self.browser()
        assert person.get("/e/PANEL").status_code == 200
        return person

    def moderator(self) -> TestClient:
        person = self.browser()
        opened = person.get(f"/e/PANEL/moderate?key={self.created.moderator_key}")
        assert opened.status_code == 200
        return person

    def ask(self, text: str, *, votes: int = 0, **fields: Any) -> dict[str, Any]:
        asker = self.audience()
        question: dict[str, Any] = asker.post(
            "/e/PANEL/questions", json={"text": text, **fields}
        ).json()["question"]
        for n in range(votes):
            voter = self.audience()
            assert voter.post(f"/e/PANEL/questions/{question['id']}/vote", json={}).is_success, n
        return question


@pytest.fixture
def scene(backend: str) -> Iterator[Scene]:
    settings = Settings(backend=backend, secret_key="test-secret", admin_password=PASSWORD)
    with sends_csrf(TestClient(create_app(settings))) as client:
        client.get("/admin")
        assert client.post("/admin/sign-in", data={"password": PASSWORD}).status_code == 200
        yield Scene(client)


def close_and_answer(scene: Scene) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Three questions: one answered live, two left over and answered in writing."""
    mod = scene.moderator()
    live = scene.ask("What about parks?", votes=1, name="Lin")
    first = scene.ask("Why did rents go up?\nAnd when will they fall?", votes=3, panelist="Ada")
    second = scene.ask("Is the library staying open?", votes=2)
    assert mod.post(f"/e/PANEL/questions/{live['id']}/promote", json={}).is_success
    assert mod.post(f"/e/PANEL/questions/{live['id']}/done", json={}).is_success
    assert mod.post("/e/PANEL/state", json={"state": "closed"}).is_success
    for question, text in (
        (first, "Costs rose.\nSee https://example.org/budget.pdf, page 4."),
        (second, "Yes: until 2030."),
    ):
        url = f"/e/PANEL/questions/{question['id']}"
        assert mod.post(f"{url}/assign", json={"panelist": "Grace"}).is_success
        assert mod.post(f"{url}/draft", json={"text": "DRAFT " + text}).is_success
        assert mod.post(f"{url}/answer", json={"text": text}).is_success
    return live, first, second


def answers_of(html: str) -> list[str]:
    """The answers page as a reader sees it: each question's text, without ids or URLs."""
    items = re.findall(r'<li class="answer" id="q-[0-9a-f]+">(.*?)</li>', html, re.S)
    cleaned = []
    for item in items:
        item = re.sub(r'<p class="a-link">.*?</p>', "", item, flags=re.S)
        cleaned.append(" ".join(re.sub(r"<[^>]+>", " ", item).split()))
    return cleaned


def test_moderators_assign_draft_and_publish_after_closing(scene: Scene) -> None:
    mod = scene.moderator()
    question = scene.ask("Leftover?", panelist="Ada")
    assert mod.post("/e/PANEL/state", json={"state": "closed"}).is_success
    url = f"/e/PANEL/questions/{question['id']}"
    assigned = mod.post(f"{url}/assign", json={"panelist": "Grace"})
    assert assigned.status_code == 200 and assigned.json()["question"]["assignee"] == "Grace"
    drafted = mod.post(f"{url}/draft", json={"text": "Secret first go"})
    assert drafted.json()["question"]["draft"] == "Secret first go"
    assert "Secret first go" in mod.get("/e/PANEL/moderate").text
    for page in ("/e/PANEL", "/e/PANEL/answers"):
        html = scene.audience().get(page).text
        assert "Secret first go" not in html and "Assigned to" not in html, page
    refused = mod.post(f"{url}/assign", json={"panelist": "Nobody"})
    assert refused.status_code == 422 and "not on this event's panel" in refused.json()["message"]
    published = mod.post(f"{url}/answer", json={"text": "Here it is."})
    assert published.json()["question"]["state"] == "answered"
    assert published.json()["question"]["draft"] == ""
    assert "Here it is." in scene.audience().get("/e/PANEL").text
    assert scene.audience().post(f"{url}/draft", json={"text": "x"}).status_code == 403


def test_the_answers_page(scene: Scene) -> None:
    scene.ask("Never answered")
    _, first, _ = close_and_answer(scene)
    page = scene.browser().get("/e/PANEL/answers")
    html = page.text
    assert page.status_code == 200 and "<script" not in html
    assert "Budget night" in html and "The council&#39;s budget.<br>" in html
    assert "Ada, Grace" in html
    readable = answers_of(html)
    assert [a.split(" ", 2)[0] for a in readable] == ["3", "2", "1"]  # most voted first
    assert "Why did rents go up? And when will they fall?" in readable[0]
    assert "Answered in writing" in readable[0] and "Answered live" in readable[2]
    assert "Never answered" not in html
    link = '<a href="https://example.org/budget.pdf" rel="nofollow ugc noopener noreferrer">'
    assert f"Costs rose.<br>\nSee {link}https://example.org/budget.pdf</a>, page 4." in html
    permalink = f"/e/PANEL/answers?q={first['id']}"
    assert permalink in html
    one = scene.browser().get(permalink)
    assert one.status_code == 200 and answers_of(one.text) == readable[:1]
    assert "All answers of Budget night" in one.text
    missing = scene.browser().get("/e/PANEL/answers?q=nope", headers={"accept": "text/html"})
    assert missing.status_code == 404 and "no answer with that link" in missing.text


def test_only_web_links_are_clickable_in_answers(scene: Scene) -> None:
    mod = scene.moderator()
    question = scene.ask("Links?")
    nasty = 'javascript:alert(1) <a href="x">x</a> data:text/html,hi http://ok.example/a?b=1&c=2.'
    mod.post(f"/e/PANEL/questions/{question['id']}/answer", json={"text": nasty})
    for page in ("/e/PANEL/answers", "/e/PANEL"):
        html = scene.browser().get(page).text
        assert '<a href="x">' not in html and 'href="javascript' not in html, page
        assert 'href="data:' not in html, page
        assert '<a href="http://ok.example/a?b=1&amp;c=2" rel=' in html, page


def test_audience_pages_count_who_joined(scene: Scene) -> None:
    one, two = scene.browser(), scene.browser()
    for person in (one, one, one, two):
        assert person.get("/e/PANEL").status_code == 200
    assert scene.call(scene.rt.store.people, scene.id) == (2, 0)


def test_the_organiser_runs_the_lifecycle(scene: Scene) -> None:
    admin = scene.organiser
    page = admin.get("/admin/events/PANEL")
    assert page.status_code == 200 and "Close" in page.text and "Voting only" in page.text
    for state in ("vote_only", "closed", "archived", "open"):
        moved = admin.post("/admin/events/PANEL/state", data={"state": state})
        assert moved.status_code == 200, moved.text  # back on the event's page
        assert scene.call(scene.rt.store.event, scene.id).state.value == state
    assert "Reopen" not in admin.get("/admin/events/PANEL").text
    admin.post("/admin/events/PANEL/state", data={"state": "closed"})
    assert "Reopen" in admin.get("/admin/events/PANEL").text
    refused = admin.post("/admin/events/PANEL/state", data={"state": "draft"})
    assert refused.status_code == 409 and "it cannot become draft" in refused.text


def test_retention_is_set_at_creation_and_changed_later(scene: Scene) -> None:
    admin = scene.organiser
    created = admin.post(
        "/admin/events",
        data={"title": "Kept", "code": "KEPT", "retention_days": "30", "start": "draft"},
    )
    assert created.status_code == 201
    kept = scene.call(scene.rt.store.event_by_code, "KEPT")
    assert kept.settings.retention_days == 30 and kept.state is EventState.DRAFT
    assert "Not open yet" in admin.get("/admin").text
    assert admin.post("/admin/events/KEPT/retention", data={"retention_days": "7"}).is_success
    assert scene.call(scene.rt.store.event, kept.id).settings.retention_days == 7
    page = admin.get("/admin/events/KEPT").text
    assert 'value="7"' in page and "7 days after it closes" in page
    bad = admin.post("/admin/events/KEPT/retention", data={"retention_days": "9999"})
    assert bad.status_code == 422 and "0 (for ever) to 3650 days" in bad.text
    negative = admin.post("/admin/events/KEPT/retention", data={"retention_days": "-1"})
    assert negative.status_code == 422


def test_csv_and_json_exports(scene: Scene) -> None:
    close_and_answer(scene)
    csv_response = scene.organiser.get("/admin/events/PANEL/export.csv")
    assert csv_response.status_code == 200
    assert csv_response.headers["content-type"].startswith("text/csv")
    assert csv_response.headers["content-disposition"] == (
        'attachment; filename="PANEL-questions.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(csv_response.text)))
    assert [r["question"] for r in rows] == [
        "What about parks?",
        "Why did rents go up?\nAnd when will they fall?",
        "Is the library staying open?",
    ]
    assert rows[0]["name"] == "Lin" and rows[0]["answered"] == "live"
    assert rows[1]["panelist"] == "Ada" and rows[1]["assigned_to"] == "Grace"
    assert rows[1]["answer"].startswith("Costs rose.\n") and rows[1]["votes"] == "3"

    json_response = scene.organiser.get("/admin/events/PANEL/export.json")
    assert json_response.headers["content-disposition"] == (
        'attachment; filename="PANEL.liveqa.json"'
    )
    data = json_response.json()
    assert data["format"] == "liveqa.event/1" and data["event"]["title"] == "Budget night"
    assert {q["state"] for q in data["questions"]} == {"answered"}
    participants = {q.participant for q in scene.call(scene.rt.store.snapshot, scene.id).questions}
    assert participants and all(
        p not in csv_response.text + json_response.text for p in participants
    )
    assert "participant" not in json_response.text and "DRAFT" not in json_response.text


def test_export_then_import_recreates_the_answers_page(scene: Scene) -> None:
    close_and_answer(scene)
    original = answers_of(scene.browser().get("/e/PANEL/answers").text)
    exported = scene.organiser.get("/admin/events/PANEL/export.json").content
    taken = scene.organiser.post(
        "/admin/import", files={"file": ("PANEL.liveqa.json", exported, "application/json")}
    )
    assert (
        taken.status_code == 409 and "PANEL is taken. Give the imported event another" in taken.text
    )
    imported = scene.organiser.post(
        "/admin/import",
        data={"code": "panel-again"},
        files={"file": ("PANEL.liveqa.json", exported, "application/json")},
    )
    assert imported.status_code == 201
    assert "/e/PANEL-AGAIN/moderate?key=" in imported.text  # its new links, shown once
    assert "/moderate?key=" not in scene.organiser.get("/admin").text
    again = scene.browser().get("/e/PANEL-AGAIN/answers").text
    assert "Budget night" in again and "Ada, Grace" in again
    assert answers_of(again) == original and len(original) == 3
    event = scene.call(scene.rt.store.event_by_code, "PANEL-AGAIN")
    assert event.state is EventState.CLOSED


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"format": "liveqa.event/1", "event": {"title": "x"', "not readable JSON"),
        (b"\x89PNG\r\n\x1a\n", "not readable JSON"),
        (b'{"hello": "world"}', "This is not a liveqa export"),
        (
            b'{"format": "liveqa.event/1", "event": {"title": "T", "code": "OK-CODE"},'
            b' "questions": [{"text": "x", "state": "bogus"}]}',
            "The export is damaged",
        ),
    ],
    ids=["cut off", "not text", "another format", "bad state"],
)
def test_a_damaged_import_is_refused_clearly(scene: Scene, content: bytes, message: str) -> None:
    before = scene.call(scene.rt.store.events)
    refused = scene.organiser.post(
        "/admin/import", files={"file": ("export.json", content, "application/json")}
    )
    assert refused.status_code == 422 and message in refused.text
    assert 'role="alert"' in refused.text
    assert scene.call(scene.rt.store.events) == before
    nothing = scene.organiser.post("/admin/import", data={"code": ""})
    assert nothing.status_code == 422 and "Choose a liveqa export" in nothing.text


def test_the_report(scene: Scene) -> None:
    scene.call(scene.rt.events.configure, scene.id, key="", premoderation=True)
    mod = scene.moderator()
    question = scene.ask("Screened?")
    assert mod.post(f"/e/PANEL/questions/{question['id']}/approve", json={}).is_success
    scene.call(scene.rt.events.configure, scene.id, key="", premoderation=False)
    close_and_answer(scene)
    page = scene.organiser.get("/admin/events/PANEL/report")
    assert page.status_code == 200
    text = " ".join(re.sub(r"<[^>]+>", " ", page.text).split())
    assert "Asked 4 questions" in text and "Voted 6 votes, by 6 people" in text
    assert re.search(r"Joined \d+ people opened the audience page", text)
    assert "Answered live 1 on screen" in text and "Answered in writing 2 after the event" in text
    assert re.search(r"Time to moderation \d+ s \(median", text)
    assert "Not answered 1 still open" in text
    assert page.text.count("<svg") == 1 and "<rect" in page.text
    assert "<script" not in page.text.split("</main>")[0]


def test_deleting_an_event_asks_for_its_code(scene: Scene) -> None:
    admin = scene.organiser
    refused = admin.post("/admin/events/PANEL/delete", data={"confirm": "nope"})
    assert refused.status_code == 422 and "Type the event&#39;s code, PANEL" in refused.text
    assert scene.call(scene.rt.store.event_by_code, "PANEL")
    deleted = admin.post("/admin/events/PANEL/delete", data={"confirm": "panel"})
    assert deleted.status_code == 200 and "Deleted Budget night (PANEL)." in deleted.text
    assert scene.browser().get("/e/PANEL").status_code == 404


ORGANISER_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/admin/events/PANEL", {}),
    ("GET", "/admin/events/PANEL/report", {}),
    ("GET", "/admin/events/PANEL/export.csv", {}),
    ("GET", "/admin/events/PANEL/export.json", {}),
    ("POST", "/admin/events/PANEL/state", {"data": {"state": "closed"}}),
    ("POST", "/admin/events/PANEL/retention", {"data": {"retention_days": "1"}}),
    ("POST", "/admin/events/PANEL/delete", {"data": {"confirm": "PANEL"}}),
    ("POST", "/admin/import", {"files": {"file": ("x.json", b"{}", "application/json")}}),
]


@pytest.mark.parametrize("who", ["anonymous", "audience", "moderator"])
def test_only_organisers_reach_the_event_tools(scene: Scene, who: str) -> None:
    scene.ask("Private?", name="Lin")
    person = {"anonymous": scene.browser, "audience": scene.audience, "moderator": scene.moderator}[
        who
    ]()
    if who == "anonymous":
        person.get("/")  # a CSRF cookie, so the refusal is about who, not about forgery
    before = scene.call(scene.rt.store.snapshot, scene.id)
    events = scene.call(scene.rt.store.events)
    for method, path, body in ORGANISER_ROUTES:
        response = person.request(method, path, **body)
        assert response.status_code == 403, (who, path, response.status_code)
        assert "Private?" not in response.text and "Lin" not in response.text, (who, path)
    after = scene.call(scene.rt.store.snapshot, scene.id)
    assert (after.seq, after.event) == (before.seq, before.event)
    assert scene.call(scene.rt.store.events) == events


async def test_expired_events_are_purged_at_start_and_failures_are_logged(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    backend = f"sqlite:///{tmp_path}/liveqa.db"
    store, bus = open_store(backend), open_bus("memory://")
    long_ago = Events(store, bus, clock=lambda: time.time() - 40 * 86400)
    old = await long_ago.create("Old", code="OLD", settings=EventSettings(retention_days=30))
    await long_ago.set_state(old.event.id, EventState.CLOSED, key="close")
    kept = await long_ago.create("Kept", code="KEPT")
    await store.close()

    settings = Settings(backend=backend, secret_key="test-secret")
    with TestClient(create_app(settings)) as client:
        for _ in range(100):
            if client.get("/e/OLD").status_code == 404:
                break
            await asyncio.sleep(0.05)
        assert client.get("/e/OLD").status_code == 404
        assert client.get(f"/e/{kept.event.code}").status_code == 200

    closed = open_store(backend)
    await closed.close()  # every call now fails, as a broken backend would
    caplog.set_level(logging.ERROR, logger="liveqa.app")
    task = asyncio.create_task(purging(Events(closed, bus), every=0.01))
    await asyncio.sleep(0.1)
    assert not task.done()  # still going: a failed round waits for the next
    task.cancel()
    assert "purging expired events failed" in caplog.text


def test_archived_is_read_only_for_moderators(scene: Scene) -> None:
    mod = scene.moderator()
    question = scene.ask("Too late?")
    assert mod.post("/e/PANEL/state", json={"state": "closed"}).is_success
    archive = mod.post("/e/PANEL/state", json={"state": "archived"})
    assert archive.status_code == 403 and "Only an organiser" in archive.json()["message"]
    assert scene.organiser.post("/admin/events/PANEL/state", data={"state": "archived"}).is_success
    for body in ({"state": "open"}, {"voting": False}):
        refused = mod.post("/e/PANEL/state", json=body)
        assert refused.status_code == 403, body
    answer = mod.post(f"/e/PANEL/questions/{question['id']}/answer", json={"text": "Now?"})
    assert answer.status_code == 409 and "archived and read-only" in answer.json()["message"]
    assert scene.call(scene.rt.store.event, scene.id).state is EventState.ARCHIVED
    assert scene.organiser.post("/e/PANEL/state", json={"state": "open"}).is_success

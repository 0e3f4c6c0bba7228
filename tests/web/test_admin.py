"""The organiser's screen: closed without a password, then create events and hand out links."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from liveqa.app import create_app
from liveqa.settings import Settings
from tests.web.conftest import sends_csrf

PASSWORD = "s3cret organiser words"


@pytest.fixture
def organiser(backend: str) -> Iterator[TestClient]:
    settings = Settings(backend=backend, secret_key="test-secret", admin_password=PASSWORD)
    with sends_csrf(TestClient(create_app(settings))) as client:
        yield client


def sign_in(client: TestClient) -> None:
    client.get("/admin")
    assert client.post("/admin/sign-in", data={"password": PASSWORD}).status_code == 200


def test_the_admin_is_closed_without_a_password(client: TestClient) -> None:
    page = client.get("/admin")
    assert page.status_code == 403 and "The admin is closed" in page.text
    assert "LIVEQA_ADMIN_PASSWORD" in page.text
    assert client.post("/admin/events", data={"title": "Sneaky"}).status_code == 403


def test_a_wrong_password_is_refused(organiser: TestClient) -> None:
    organiser.get("/admin")
    wrong = organiser.post("/admin/sign-in", data={"password": "guess"})
    assert wrong.status_code == 403 and "password is wrong" in wrong.text
    assert organiser.post("/admin/events", data={"title": "Sneaky"}).status_code == 403
    assert "Admin password" in organiser.get("/admin").text


def test_creating_an_event_shows_its_links_once(organiser: TestClient) -> None:
    sign_in(organiser)
    created = organiser.post(
        "/admin/events",
        data={
            "title": "Budget <night>",
            "code": "budget-26",
            "panelists": "Ada\nGrace\n",
            "premoderation": "on",
            "names": "required",
            "max_length": "300",
        },
    )
    assert created.status_code == 201
    assert "Budget &lt;night&gt;" in created.text
    assert created.headers["cache-control"] == "no-store"
    moderator = re.search(
        r'value="(http://testserver/e/BUDGET-26/moderate\?key=[^"]+)"', created.text
    )
    panel = re.search(r'value="(http://testserver/e/BUDGET-26/panel\?key=[^"]+)"', created.text)
    assert moderator and panel
    audience = organiser.get("/e/BUDGET-26").text
    assert "Your name</label>" in audience and 'id="anonymous"' not in audience
    assert "<option>Grace</option>" in audience
    listed = organiser.get("/admin").text
    assert "BUDGET-26" in listed and "moderate?key=" not in listed

    fresh = organiser.post("/admin/events/BUDGET-26/links")
    assert fresh.status_code == 200 and "moderate?key=" in fresh.text
    stale = TestClient(organiser.app)
    stale.portal = organiser.portal
    assert stale.get(moderator[1].replace("&amp;", "&"), follow_redirects=False).status_code == 403


def test_a_bad_event_keeps_the_form(organiser: TestClient) -> None:
    sign_in(organiser)
    refused = organiser.post("/admin/events", data={"title": "Q&A", "code": "x"})
    assert refused.status_code == 422
    assert "An event code is 3 to 20 letters" in refused.text
    assert 'value="Q&amp;A"' in refused.text

"""A whole event in real browsers, on Redis, with staff and audience on different processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    ADMIN_PASSWORD,
    DISPLAY,
    Audience,
    Moderator,
    screenshot,
)
from tests.servers import LiveqaServer

pytestmark = pytest.mark.browser

NAMED = "Will the new library stay open on Sundays?"
ANONYMOUS = "Why are the buses always late on the hill route?"


@pytest.fixture
def two_processes(redis_url: str, tmp_path: Path) -> Iterator[tuple[LiveqaServer, LiveqaServer]]:
    env = {
        "LIVEQA_BACKEND": redis_url,
        "LIVEQA_SECRET_KEY": "shared-by-both-processes",
        "LIVEQA_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    audience, staff = LiveqaServer(env, tmp_path).start(), LiveqaServer(env, tmp_path).start()
    yield audience, staff
    audience.stop()
    staff.stop()


def test_a_whole_event(
    two_processes: tuple[LiveqaServer, LiveqaServer], new_page: Callable[..., Page]
) -> None:
    audience_server, staff_server = two_processes

    # The organiser creates the event on the staff process and copies its links.
    organiser = new_page(viewport=DISPLAY)
    organiser.goto(f"{staff_server.url}/admin")
    organiser.get_by_label("Admin password").fill(ADMIN_PASSWORD)
    organiser.get_by_role("button", name="Sign in").click()
    organiser.get_by_label("Title").fill("Town hall")
    organiser.get_by_label("Join code (optional)").fill("town-hall")
    organiser.get_by_label("Panelists (optional, one per line)").fill("Ada Lovelace\nGrace Hopper")
    organiser.get_by_label("Pre-moderation").check()
    organiser.get_by_role("button", name="Create event").click()
    expect(organiser.get_by_role("heading", name="Links for Town hall (TOWN-HALL)")).to_be_visible()
    moderator_link = organiser.get_by_label("Moderator", exact=True).input_value()
    panel_link = organiser.get_by_label("Panel display", exact=True).input_value()
    assert (
        "/e/TOWN-HALL/moderate?key=" in moderator_link and "/e/TOWN-HALL/panel?key=" in panel_link
    )
    expect(organiser.get_by_role("row", name="Town hall")).to_be_visible()
    screenshot(organiser, "admin")

    moderator = Moderator(new_page(viewport=DISPLAY)).open(moderator_link)
    expect(moderator.page).to_have_url(f"{staff_server.url}/e/TOWN-HALL/moderate")
    panel = new_page(viewport=DISPLAY)
    panel.goto(panel_link)
    expect(panel.get_by_text("Ask your questions at")).to_be_visible()
    screenshot(panel, "panel-waiting", full_page=False)

    # Two people in the audience, on the other process, ask: one named, one anonymous.
    sam = Audience(new_page()).open(f"{audience_server.url}/e/TOWN-HALL")
    kim = Audience(new_page()).open(f"{audience_server.url}/e/TOWN-HALL")
    sam.ask(NAMED, name="Sam", to="Ada Lovelace")
    kim.ask(ANONYMOUS, anonymous=True)
    for person, text in ((sam, NAMED), (kim, ANONYMOUS)):
        expect(person.question("mine", text)).to_contain_text("Waiting for a moderator")
    expect(sam.page.get_by_text(ANONYMOUS)).to_have_count(0)  # pre-moderated: not public yet

    # The moderator sees both arrive without a reload, with a count of those waiting.
    expect(moderator.page.locator("#waiting")).to_have_text("2 questions waiting")
    expect(moderator.item("pending", NAMED)).to_contain_text("Sam")
    expect(moderator.item("pending", NAMED)).to_contain_text("to Ada Lovelace")
    expect(moderator.item("pending", ANONYMOUS)).to_contain_text("Anonymous")
    screenshot(moderator.page, "moderator-incoming")

    moderator.approve(NAMED)
    moderator.dismiss(ANONYMOUS, "Off topic")
    expect(moderator.page.locator("#waiting")).to_have_text("")

    # Both audience pages see the approved question; the dismissed asker sees why.
    for person in (sam, kim):
        expect(person.question("queue", NAMED)).to_be_visible()
    expect(sam.question("mine", NAMED)).to_contain_text("In the queue")
    expect(kim.question("mine", ANONYMOUS)).to_contain_text("Not taken: Off topic")
    expect(sam.page.get_by_text(ANONYMOUS)).to_have_count(0)

    # A vote counts for everyone at once, and a second tap takes it back.
    kim.vote(NAMED)
    for page in (sam.page, kim.page):
        expect(page.locator('[data-list="queue"] [data-field="votes"]')).to_have_text("1")
    expect(moderator.item("queued", NAMED)).to_contain_text("1 vote")
    expect(kim.question("queue", NAMED).get_by_role("button")).to_have_attribute(
        "aria-pressed", "true"
    )
    kim.vote(NAMED)
    expect(sam.page.locator('[data-list="queue"] [data-field="votes"]')).to_have_text("0")
    kim.vote(NAMED)
    expect(sam.page.locator('[data-list="queue"] [data-field="votes"]')).to_have_text("1")
    screenshot(kim.page, "audience-asked")

    # On screen: the panel shows it, and every audience page shows it as live.
    moderator.put_on_screen(NAMED)
    expect(panel.locator("#panel-text")).to_have_text(NAMED)
    expect(panel.locator("#panel-name")).to_have_text("Sam")
    expect(panel.locator("#panel-panelist")).to_have_text("Ada Lovelace")
    for person in (sam, kim):
        expect(person.question("live", NAMED)).to_be_visible()
    expect(sam.question("mine", NAMED)).to_contain_text("On screen now")
    announcer = kim.page.locator("#live-announcer")  # what a screen reader hears, once
    expect(announcer).to_have_attribute("aria-live", "polite")
    expect(announcer).to_have_text(f"Live now: {NAMED}")
    screenshot(panel, "panel-live", full_page=False)
    screenshot(sam.page, "audience-live")
    screenshot(moderator.page, "moderator-live")

    # Answered: off the panel, into every audience page's Answered list.
    moderator.mark_answered(NAMED)
    expect(panel.get_by_text("Ask your questions at")).to_be_visible()
    expect(panel.locator("#panel-text")).to_be_hidden()
    for person in (sam, kim):
        expect(person.question("answered", NAMED)).to_be_visible()
        expect(person.page.locator('[data-list="live"] .question')).to_have_count(0)
        expect(person.page.get_by_text("Nothing on screen right now.")).to_be_visible()
    expect(sam.question("mine", NAMED)).to_contain_text("Answered")
    expect(kim.question("mine", ANONYMOUS)).to_contain_text("Not taken: Off topic")
    screenshot(kim.page, "audience-answered")

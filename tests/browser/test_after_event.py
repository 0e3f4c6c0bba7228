"""After the event in real browsers: leftover questions answered in writing and published, the
answers page and its permalinks, and the organiser's lifecycle, export, import and report.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    DISPLAY,
    PHONE,
    Api,
    Audience,
    Moderator,
    create_event,
    screenshot,
    sign_in,
)
from tests.servers import LiveqaServer

pytestmark = pytest.mark.browser

RENTS = "Why did rents go up this year, and when will they come down again?"
LIBRARY = "Is the library staying open on Sundays?"
PARKS = "What about the parks?"
RENTS_ANSWER = "Costs rose with energy prices.\nThe full budget: https://example.org/budget.pdf."
LIBRARY_ANSWER = "Yes, at least until 2030."


def test_leftover_questions_are_answered_in_writing_and_published(
    sqlite_server: LiveqaServer, new_page: Callable[..., Page]
) -> None:
    links = create_event(
        sqlite_server,
        "AFTER",
        "--panelist",
        "Ada Lovelace",
        "--panelist",
        "Grace Hopper",
        "--description",
        "The council's budget for next year.\nMinutes: https://example.org/minutes",
    )
    people = Api(sqlite_server, "AFTER")
    rents = people.ask(RENTS, name="Lin", panelist="Ada Lovelace")
    library = people.ask(LIBRARY)
    parks = people.ask(PARKS, name="Sam")
    for question, votes in ((rents, 3), (library, 2), (parks, 1)):
        for _ in range(votes):
            voter = Api(sqlite_server, "AFTER")
            response = voter.client.post(f"/e/AFTER/questions/{question['id']}/vote", json={})
            assert response.status_code == 200, response.text

    audience = Audience(new_page()).open(links["audience"])
    moderator = Moderator(new_page(viewport=DISPLAY)).open(links["moderator"])
    page = moderator.page
    moderator.put_on_screen(PARKS)
    moderator.mark_answered(PARKS)

    # The event ends with two questions never reached.
    page.get_by_label("Closed").check()
    expect(page.get_by_role("heading", name=re.compile("^Unanswered"))).to_be_visible()
    expect(page.get_by_text("The event is closed.")).to_be_visible()
    expect(audience.page.get_by_text("This event is closed to new questions.")).to_be_visible()

    # By keyboard: give the first to a panelist with a draft, come back to it, publish.
    page.keyboard.press("2")
    expect(moderator.item("queued", RENTS)).to_be_focused()
    page.keyboard.press("w")
    dialog = page.locator("#answer-dialog")
    expect(dialog.get_by_label("Written answer")).to_be_focused()
    dialog.get_by_label("Assigned to").select_option("Grace Hopper")
    dialog.get_by_label("Written answer").fill("Energy prices; check with finance")
    screenshot(page, "moderator-answer-dialog", full_page=False)
    dialog.get_by_role("button", name="Save draft").click()
    rents_item = moderator.item("queued", RENTS)
    expect(rents_item).to_contain_text("Assigned to Grace Hopper")
    expect(rents_item).to_contain_text("Draft, not published Energy prices; check with finance")
    expect(audience.page.get_by_text("check with finance")).to_have_count(0)
    expect(audience.page.get_by_text("Assigned to")).to_have_count(0)
    screenshot(page, "moderator-draft")

    expect(rents_item).to_be_focused()
    page.keyboard.press("w")
    expect(dialog.get_by_label("Written answer")).to_have_value("Energy prices; check with finance")
    expect(dialog.get_by_label("Assigned to")).to_have_value("Grace Hopper")
    dialog.get_by_label("Written answer").fill(RENTS_ANSWER)
    dialog.get_by_role("button", name="Publish").click()
    expect(moderator.item("answered", RENTS)).to_contain_text("Costs rose with energy prices.")

    # By mouse: the second one straight away.
    moderator.click("queued", LIBRARY, "answer")
    dialog.get_by_label("Written answer").fill(LIBRARY_ANSWER)
    dialog.get_by_role("button", name="Publish").click()
    expect(moderator.item("answered", LIBRARY)).to_contain_text(LIBRARY_ANSWER)
    expect(page.get_by_text("Every question has an answer.")).to_be_visible()
    screenshot(page, "moderator-after-the-event")

    # The audience page, still open, shows both, live: line breaks kept, the link clickable.
    answered = audience.question("answered", RENTS)
    expect(answered).to_contain_text("Costs rose with energy prices.")
    link = answered.get_by_role("link", name="https://example.org/budget.pdf")
    expect(link).to_have_attribute("href", "https://example.org/budget.pdf")
    expect(link).to_have_attribute("rel", "nofollow ugc noopener noreferrer")
    assert answered.locator(".answer-text br").count() == 1
    expect(audience.question("answered", LIBRARY)).to_contain_text(LIBRARY_ANSWER)
    expect(audience.page.locator('[data-count="answered"]')).to_have_text("3")
    screenshot(audience.page, "audience-answered")

    # The answers page, without JavaScript: most voted first, each with its permalink.
    reader = new_page(java_script_enabled=False)
    reader.goto(f"{sqlite_server.url}/e/AFTER/answers")
    expect(reader.get_by_role("heading", name="Event AFTER")).to_be_visible()
    expect(reader.get_by_text("Ada Lovelace, Grace Hopper")).to_be_visible()
    description = reader.locator(".description")
    expect(description).to_contain_text("The council's budget for next year.")
    expect(description.get_by_role("link", name="https://example.org/minutes")).to_be_visible()
    items = reader.locator(".answer")
    expect(items).to_have_count(3)
    expect(items.locator(".a-question")).to_have_text([RENTS, LIBRARY, PARKS])
    expect(items.locator(".a-via")).to_have_text(
        ["Answered in writing", "Answered in writing", "Answered live"]
    )
    expect(items.first.get_by_role("link", name="https://example.org/budget.pdf")).to_be_visible()
    screenshot(reader, "answers")
    reader.emulate_media(media="print")
    screenshot(reader, "answers-print")
    expect(reader.get_by_role("link", name=re.compile("^Link to this answer"))).to_have_count(0)
    reader.emulate_media(media="screen")
    fits = reader.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert fits, "the answers page scrolls sideways on a phone"

    items.nth(1).get_by_role("link", name=re.compile("^Link to this answer")).click()
    expect(reader).to_have_url(re.compile(r"/e/AFTER/answers\?q=[0-9a-f]+$"))
    expect(reader.locator(".answer")).to_have_count(1)
    expect(reader.locator(".answer .a-question")).to_have_text(LIBRARY)
    expect(reader.locator(".answer .a-answer")).to_have_text(LIBRARY_ANSWER)
    screenshot(reader, "answers-permalink")
    reader.get_by_role("link", name="All answers of Event AFTER").click()
    expect(reader.locator(".answer")).to_have_count(3)


def test_the_organiser_closes_exports_imports_and_reads_the_report(
    sqlite_server: LiveqaServer, new_page: Callable[..., Page]
) -> None:
    links = create_event(sqlite_server, "ORG-TOOLS", "--panelist", "Ada", "--premoderation")
    people = Api(sqlite_server, "ORG-TOOLS")
    staff = Api(sqlite_server, "ORG-TOOLS", links["moderator"])
    for n, text in enumerate(("Budget?", "Buses?", "Bins?", "Bikes?")):
        question = people.ask(text)
        staff.act(question, "approve")
        if n < 2:
            staff.act(question, "promote")
            staff.act(question, "done")
    leftover = people.ask("Benches?")
    staff.act(leftover, "approve")
    staff.act(leftover, "answer", text="More benches in spring.\nSee https://example.org/benches")
    moderator = Moderator(new_page(viewport=DISPLAY)).open(links["moderator"])
    Audience(new_page()).open(links["audience"])

    organiser = new_page(viewport=DISPLAY)
    sign_in(organiser, sqlite_server)
    organiser.get_by_role("link", name="Manage Event ORG-TOOLS").click()
    expect(organiser.get_by_role("heading", name="Lifecycle")).to_be_visible()
    screenshot(organiser, "admin-event")
    organiser.get_by_role("button", name="Close").click()
    expect(organiser.locator(".state-badge")).to_have_text("Closed")
    expect(moderator.page.get_by_role("heading", name=re.compile("^Unanswered"))).to_be_visible()
    organiser.get_by_role("button", name="Archive").click()
    expect(organiser.locator(".state-badge")).to_have_text("Archived")
    expect(moderator.page.get_by_text("This event is archived and read-only.")).to_be_visible()
    expect(moderator.item("queued", "Bins?").get_by_role("button")).to_have_count(0)
    moderator.page.get_by_label("Open", exact=True).check()
    expect(moderator.page.locator("#toast")).to_contain_text("Only an organiser can")
    expect(moderator.page.get_by_label("Archived", exact=True)).to_be_checked()

    keeping = organiser.get_by_role("region", name="Keeping questions")
    keeping.get_by_label("Days to keep questions after closing").fill("30")
    keeping.get_by_role("button", name="Save").click()
    expect(organiser.get_by_text("deleted for good 30 days after it closes")).to_be_visible()

    with organiser.expect_download() as csv_download:
        organiser.get_by_role("link", name="Download CSV of Event ORG-TOOLS").click()
    assert csv_download.value.suggested_filename == "ORG-TOOLS-questions.csv"
    with organiser.expect_download() as json_download:
        organiser.get_by_role("link", name="Download JSON of Event ORG-TOOLS").click()
    exported = json_download.value.path()

    organiser.get_by_role("link", name="Report").first.click()
    expect(organiser.get_by_role("heading", name="Report Event ORG-TOOLS")).to_be_visible()
    figures = organiser.locator(".figures")
    expect(figures).to_contain_text("Asked5 questions")
    expect(figures).to_contain_text("Answered live2 on screen")
    expect(figures).to_contain_text("Answered in writing1 after the event")
    expect(figures).to_contain_text("Not answered2 still open")
    expect(organiser.locator(".chart svg rect").first).to_be_attached()
    screenshot(organiser, "report")
    organiser.set_viewport_size(PHONE)
    fits = organiser.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert fits, "the report scrolls sideways on a phone"
    organiser.set_viewport_size(DISPLAY)

    # The export comes back as a new event, under a new code.
    organiser.goto(f"{sqlite_server.url}/admin")
    organiser.get_by_label("Export file (.json)").set_input_files(exported)
    organiser.get_by_role("button", name="Import event").click()
    expect(organiser.locator("#import-error")).to_contain_text("ORG-TOOLS is taken")
    organiser.get_by_label("Export file (.json)").set_input_files(exported)
    organiser.get_by_label("Code for the imported event (optional)").fill("org-copy")
    organiser.get_by_role("button", name="Import event").click()
    expect(organiser.get_by_role("heading", name=re.compile(r"\(ORG-COPY\)$"))).to_be_visible()
    assert (
        "/e/ORG-COPY/moderate?key=" in organiser.get_by_label("Moderator", exact=True).input_value()
    )

    original, copy = new_page(), new_page()
    original.goto(f"{sqlite_server.url}/e/ORG-TOOLS/answers")
    copy.goto(f"{sqlite_server.url}/e/ORG-COPY/answers")
    read = "els => els.map(e => e.innerText)"
    assert copy.locator(".answer").evaluate_all(read) == original.locator(".answer").evaluate_all(
        read
    )
    expect(copy.locator(".answer")).to_have_count(3)

    # Reopened, the event takes questions again.
    organiser.goto(f"{sqlite_server.url}/admin/events/ORG-TOOLS")
    organiser.get_by_role("button", name="Reopen").click()
    expect(organiser.locator(".state-badge")).to_have_text("Open")
    expect(moderator.page.get_by_role("heading", name=re.compile("^Queue"))).to_be_visible()

"""Each screen in a real browser: phones without JavaScript, lost connections, keyboards, big screens."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Route, WebSocketRoute, expect

from tests.browser.conftest import (
    ADMIN_PASSWORD,
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


def test_the_audience_page_works_without_javascript(
    sqlite_server: LiveqaServer, new_page: Callable[..., Page]
) -> None:
    links = create_event(sqlite_server, "NO-JS", "--panelist", "Ada")
    page = new_page(java_script_enabled=False)
    page.goto(links["audience"])
    page.get_by_role("button", name="Send question").click()
    expect(page.get_by_role("alert")).to_have_text("The question is empty.")

    page.get_by_label("Your question", exact=True).fill("Does this work on an old phone?")
    page.get_by_label("For").select_option("Ada")
    page.get_by_role("button", name="Send question").click()
    expect(page).to_have_url(re.compile(r"/e/NO-JS#mine$"))
    mine = page.locator('[data-list="mine"] .question')
    expect(mine).to_contain_text("Does this work on an old phone?")
    expect(mine).to_contain_text("In the queue")
    expect(mine).to_contain_text("to Ada")

    vote = page.locator('[data-list="queue"] .question').get_by_role("button")
    expect(vote).to_have_attribute("aria-pressed", "false")
    vote.click()
    vote = page.locator('[data-list="queue"] .question').get_by_role("button")
    expect(vote).to_have_attribute("aria-pressed", "true")
    expect(vote).to_contain_text("1")
    vote.click()
    expect(page.locator('[data-list="queue"] .question').get_by_role("button")).to_contain_text("0")
    screenshot(page, "audience-no-javascript")


def test_a_lost_reply_is_retried_without_a_duplicate(
    sqlite_server: LiveqaServer, new_page: Callable[..., Page]
) -> None:
    links = create_event(sqlite_server, "RETRY")
    page = new_page()
    audience = Audience(page).open(links["audience"])
    keys: list[str] = []

    def lose_the_first_reply(route: Route) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            route.fetch()  # the server commits the question...
            route.abort("connectionreset")  # ...but the phone never hears back
        else:
            route.continue_()

    page.route("**/e/RETRY/questions", lose_the_first_reply)
    audience.ask("Asked once, sent twice?")
    expect(audience.question("mine", "Asked once, sent twice?")).to_be_visible()
    expect(page.locator("#send-status")).to_contain_text("Sent.")
    assert len(keys) >= 2 and len(set(keys)) == 1  # a retry, with the same key
    expect(audience.question("queue", "Asked once, sent twice?")).to_have_count(1)
    page.reload()
    expect(audience.question("queue", "Asked once, sent twice?")).to_have_count(1)


def test_a_lost_connection_is_shown_and_caught_up(
    sqlite_server: LiveqaServer, new_page: Callable[..., Page]
) -> None:
    links = create_event(sqlite_server, "OFFLINE")
    page = new_page()
    audience = Audience(page).open(links["audience"])
    page.context.set_offline(True)
    expect(page.locator("#connection")).to_have_text("Reconnecting…")
    screenshot(page, "audience-reconnecting", full_page=False)
    Api(sqlite_server, "OFFLINE").ask("Asked while you were away")
    audience.ask("Typed in a tunnel")
    expect(page.locator("#send-status")).to_contain_text("Not sent yet")
    page.context.set_offline(False)
    expect(page.locator("#connection")).to_have_text("Back online")
    expect(audience.question("queue", "Asked while you were away")).to_be_visible()
    expect(audience.question("mine", "Typed in a tunnel")).to_be_visible()
    expect(page.locator("#connection")).to_be_hidden(timeout=6000)
    page.reload()
    expect(audience.question("queue", "Typed in a tunnel")).to_have_count(1)


def test_refusals_are_explained(sqlite_server: LiveqaServer, new_page: Callable[..., Page]) -> None:
    links = create_event(sqlite_server, "RULES", "--max-length", "40", "--names", "required")
    page = new_page()
    audience = Audience(page).open(links["audience"])
    page.get_by_label("Your question", exact=True).fill("x" * 45)
    expect(page.locator("#count")).to_have_text("45 / 40: 5 too many")
    page.get_by_role("button", name="Send question").click()
    expect(page.locator("#ask-error")).to_have_text(
        "The question is 45 characters long; the limit is 40."
    )
    page.get_by_label("Your question", exact=True).fill("Who are you?")
    page.get_by_role("button", name="Send question").click()
    expect(page.locator("#ask-error")).to_have_text(
        "This event asks for your name with each question."
    )
    staff = Api(sqlite_server, "RULES", links["moderator"])
    staff.state(state="vote_only")
    expect(page.get_by_text("Questions are closed; you can still vote.")).to_be_visible()
    expect(page.get_by_role("button", name="Send question")).to_be_hidden()
    staff.state(state="open", voting=False)
    expect(page.get_by_role("button", name="Send question")).to_be_visible()
    expect(page.get_by_text("Voting is turned off.")).to_be_visible()
    screenshot(page, "audience-refused")
    audience.ask("Still there?", name="Jo")
    expect(audience.question("queue", "Still there?").get_by_role("button")).to_be_hidden()


def test_the_moderator_works_by_keyboard(
    sqlite_server: LiveqaServer, new_page: Callable[..., Page]
) -> None:
    links = create_event(sqlite_server, "KEYS", "--premoderation")
    asker = Api(sqlite_server, "KEYS")
    for text in ("First in", "Second in", "Third in"):
        asker.ask(text)
    moderator = Moderator(new_page(viewport=DISPLAY)).open(links["moderator"])
    page = moderator.page
    expect(page.locator("#waiting")).to_have_text("3 questions waiting")
    expect(page.get_by_role("heading", name="Keyboard shortcuts")).to_be_visible()

    page.keyboard.press("1")
    expect(moderator.item("pending", "First in")).to_be_focused()
    page.keyboard.press("a")
    expect(moderator.item("queued", "First in")).to_be_visible()
    expect(moderator.item("pending", "Second in")).to_be_focused()
    page.keyboard.press("x")
    expect(page.locator("#dismiss-dialog")).to_be_visible()
    page.locator("#reason-text").fill("Asked twice")  # typing a reason picks "Other"
    page.keyboard.press("Enter")
    expect(moderator.item("dismissed", "Second in")).to_contain_text("Asked twice")
    asker.ask("Fourth in, arriving live")
    expect(page.locator("#waiting")).to_have_text("2 questions waiting")

    page.keyboard.press("2")
    expect(moderator.item("queued", "First in")).to_be_focused()
    page.keyboard.press("s")
    expect(moderator.item("queued", "First in")).to_have_attribute("data-starred", "true")
    page.keyboard.press("p")
    expect(moderator.item("live", "First in")).to_be_visible()
    page.keyboard.press("w")
    page.get_by_label("Written answer").fill("Yes, from March.")
    page.get_by_role("button", name="Publish").click()
    expect(moderator.item("answered", "First in")).to_contain_text("Yes, from March.")
    expect(page.locator('[data-stat="questions"]')).to_have_text("4")
    screenshot(page, "moderator-keyboard")


def test_a_conflicting_click_gets_a_clear_message(
    sqlite_server: LiveqaServer, new_page: Callable[..., Page]
) -> None:
    links = create_event(sqlite_server, "TWO-MODS", "--premoderation")
    Api(sqlite_server, "TWO-MODS").ask("Who gets it?")
    one = Moderator(new_page(viewport=DISPLAY)).open(links["moderator"])
    other_page = new_page(viewport=DISPLAY)
    held: list[str | bytes] = []
    hold = {"on": False}

    def slow_news(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        server.on_message(lambda m: held.append(m) if hold["on"] else ws.send(m))

    other_page.route_web_socket(re.compile(r".*/live\?.*"), slow_news)
    other = Moderator(other_page).open(links["moderator"])
    expect(other.item("pending", "Who gets it?")).to_be_visible()

    one.approve("Who gets it?")  # the other moderator sees this within a second...
    expect(other.item("queued", "Who gets it?")).to_be_visible()
    one.put_on_screen("Who gets it?")
    expect(other.item("live", "Who gets it?")).to_be_visible()

    hold["on"] = True  # ...but not this time: they click on what they still see
    one.click("live", "Who gets it?", "back")
    expect(one.item("queued", "Who gets it?")).to_be_visible()
    other.click("live", "Who gets it?", "done")
    expect(other.page.locator("#toast")).to_contain_text("it is in the queue")
    expect(other.page.locator("#toast")).to_contain_text("Someone may have acted on it first.")
    screenshot(other.page, "moderator-conflict", full_page=False)


def test_the_panel_fits_any_question(
    sqlite_server: LiveqaServer, new_page: Callable[..., Page]
) -> None:
    links = create_event(sqlite_server, "BIG", "--max-length", "2000", "--panelist", "Grace")
    staff = Api(sqlite_server, "BIG", links["moderator"])
    page = new_page(viewport=DISPLAY)
    page.goto(links["panel"])
    page.goto(page.url + "?next=3")
    expect(page.get_by_text("Ask your questions at")).to_be_visible()
    assert page.locator("img.qr").evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.evaluate("getComputedStyle(document.body).cursor") == "none"
    expect(page.get_by_role("button")).to_have_count(0)

    short = staff.ask("Why?", name="Lin", panelist="Grace")
    words = "How will the council make sure that every neighbourhood gets its fair share "
    long = staff.ask((words * 30)[:2000].strip())
    staff.ask("Next in line?")
    for question, name in ((short, "Lin"), (long, "Anonymous")):
        staff.act(question, "promote")
        expect(page.locator("#panel-name")).to_have_text(name)
        for size in (DISPLAY, PHONE):
            page.set_viewport_size(size)
            page.wait_for_timeout(100)
            fits = page.evaluate(
                """() => {
                  const text = document.getElementById('panel-text').getBoundingClientRect();
                  const footer = document.querySelector('.panel-footer').getBoundingClientRect();
                  const qr = document.querySelector('img.qr').getBoundingClientRect();
                  const page = document.documentElement;
                  return {
                    fits: text.bottom <= footer.top && qr.right <= innerWidth && qr.bottom <= innerHeight
                      && page.scrollHeight <= innerHeight && page.scrollWidth <= innerWidth,
                    size: parseFloat(getComputedStyle(document.getElementById('panel-text')).fontSize),
                  };
                }"""
            )
            assert fits["fits"], (size, fits)
            if size == DISPLAY:
                assert fits["size"] >= (80 if question is short else 16), fits
        page.set_viewport_size(DISPLAY)
        screenshot(page, "panel-short" if question is short else "panel-longest", full_page=False)
    expect(page.locator("#panel-panelist")).to_be_hidden()
    expect(page.locator("#next-list li")).to_have_text(["Next in line?"])


def test_user_text_is_only_ever_text(
    sqlite_server: LiveqaServer, new_page: Callable[..., Page]
) -> None:
    links = create_event(sqlite_server, "XSS")
    nasty = '<img src=x onerror="window.pwned=1"><script>window.pwned=1</script>'
    staff = Api(sqlite_server, "XSS", links["moderator"])
    question = staff.ask(nasty, name="<b>Bold</b>")
    staff.act(question, "answer", text="<i>answer</i>")
    audience = new_page()
    audience.goto(links["audience"])
    moderator = new_page(viewport=DISPLAY)
    moderator.goto(links["moderator"])
    for page in (audience, moderator):
        expect(page.get_by_text(nasty).first).to_be_visible()
        expect(page.get_by_text("<b>Bold</b>").first).to_be_visible()
        expect(page.get_by_text("<i>answer</i>").first).to_be_visible()
        assert page.evaluate("window.pwned") is None
        assert page.locator("img[src=x], b, i").count() == 0


@pytest.mark.parametrize("screen", ["audience", "moderator", "panel", "admin"])
def test_screens_are_labelled_and_have_no_inline_code(
    screen: str, sqlite_server: LiveqaServer, new_page: Callable[..., Page]
) -> None:
    links = create_event(sqlite_server, f"A11Y-{screen.upper()}", "--panelist", "Ada")
    page = new_page(viewport=DISPLAY)
    if screen == "admin":
        page.goto(f"{sqlite_server.url}/admin")
        page.get_by_label("Admin password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
    else:
        page.goto(links[screen])
    expect(page.locator("main")).to_have_count(1)
    assert page.locator("h1").count() == 1
    html = page.content()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert not re.search(r"\sstyle=", html), "inline style"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), textarea, select, button')]
          .filter(el => el.offsetParent !== null && !el.closest('template, dialog'))
          .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                        && !el.textContent.trim())
          .map(el => el.outerHTML)"""
    )
    assert unlabelled == []


def test_new_links_sign_out_the_old_moderator_screen(
    sqlite_server: LiveqaServer, new_page: Callable[..., Page]
) -> None:
    links = create_event(sqlite_server, "ROTATE")
    moderator = Moderator(new_page(viewport=DISPLAY)).open(links["moderator"])
    organiser = new_page(viewport=DISPLAY)
    sign_in(organiser, sqlite_server)
    organiser.get_by_role("row", name="Event ROTATE").get_by_role(
        "button", name="New links"
    ).click()
    fresh = organiser.get_by_label("Moderator", exact=True).input_value()
    assert fresh != links["moderator"]
    expect(moderator.page.locator("#connection")).to_have_text(
        "This screen has been signed out. Open the link you were given again."
    )
    Moderator(moderator.page).open(fresh)
    expect(moderator.page.get_by_role("heading", name="Event ROTATE")).to_be_visible()


def test_a_new_passcode_is_explained_on_open_audience_screens(
    sqlite_server: LiveqaServer, new_page: Callable[..., Page]
) -> None:
    links = create_event(sqlite_server, "GUARDED")
    audience = Audience(new_page()).open(links["audience"])
    organiser = new_page(viewport=DISPLAY)
    sign_in(organiser, sqlite_server)
    organiser.goto(f"{sqlite_server.url}/admin/events/GUARDED")
    organiser.get_by_label("Passcode the audience enters first").fill("tulip 42")
    organiser.get_by_label("Passcode the audience enters first").press("Enter")
    expect(audience.page.locator("#connection")).to_have_text(
        "This event has a new passcode. Reload the page to enter it."
    )
    audience.page.reload()
    expect(audience.page.get_by_text("This event asks for a passcode")).to_be_visible()

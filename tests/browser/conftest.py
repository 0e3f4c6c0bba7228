"""Real Chromium driving real liveqa processes; helpers that read like the people at an event."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    ViewportSize,
    expect,
)

from tests.servers import LiveqaServer, chromium

SHOTS = Path(__file__).parents[2] / "test-artifacts" / "screenshots"
PHONE = ViewportSize(width=390, height=844)
DISPLAY = ViewportSize(width=1920, height=1080)
ADMIN_PASSWORD = "correct horse battery staple"
# Generous for a shared 2-core CI machine; a hang still fails in seconds, not minutes.
expect.set_options(timeout=8000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one module: sync Playwright holds an event loop that async tests need back."""
    with chromium() as browser:
        yield browser


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """A page in a browser of its own (own cookies), phone-sized unless told otherwise."""
    contexts: list[BrowserContext] = []

    def make(**options: object) -> Page:
        context = browser.new_context(viewport=options.pop("viewport", PHONE), **options)  # type: ignore[arg-type]
        context.set_default_timeout(8000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
    """The page at phone and display sizes, into test-artifacts/screenshots/."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    for label, size in (("phone", PHONE), ("display", DISPLAY)):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)  # let the panel refit its type
        page.screenshot(
            path=str(SHOTS / f"{name}-{label}.png"), full_page=full_page, animations="disabled"
        )
    if before:
        page.set_viewport_size(before)


def create_event(server: LiveqaServer, code: str, *options: str) -> dict[str, str]:
    """`liveqa create-event` against the server's backend, parsed from what it prints."""
    out = subprocess.run(
        [sys.executable, "-m", "liveqa", "create-event", f"Event {code}", "--code", code, *options],
        cwd=server.cwd, env=server.env | {"LIVEQA_PUBLIC_URL": server.url}, capture_output=True,
        text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    links = {}
    for line in out.splitlines():
        if match := re.match(r"(Audience|Moderator|Panel):\s+(\S+)", line):
            links[match[1].lower()] = match[2]
    return links


class Api:
    """A moderator (or audience member) working the HTTP API directly, to set a scene fast."""

    def __init__(self, server: LiveqaServer, code: str, moderator_link: str = "") -> None:
        self.client = httpx.Client(base_url=server.url, timeout=10, follow_redirects=True)
        self.code = code
        page = self.client.get(moderator_link or f"/e/{code}").text
        if token := re.search(r'<meta name="csrf-token" content="([^"]*)"', page):
            self.client.headers["x-csrf-token"] = token[1]

    def ask(self, text: str, **fields: str) -> dict[str, object]:
        response = self.client.post(f"/e/{self.code}/questions", json={"text": text, **fields})
        assert response.status_code == 201, response.text
        question: dict[str, object] = response.json()["question"]
        return question

    def act(self, question: dict[str, object], action: str, **fields: object) -> None:
        url = f"/e/{self.code}/questions/{question['id']}/{action}"
        response = self.client.post(url, json=fields)
        assert response.status_code == 200, response.text

    def state(self, **fields: object) -> None:
        response = self.client.post(f"/e/{self.code}/state", json=fields)
        assert response.status_code == 200, response.text


class Audience:
    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self, url: str) -> Audience:
        self.page.goto(url)
        # Connected: the live socket has brought the page its first message.
        expect(self.page.locator("#connection")).to_have_attribute("data-state", "online")
        return self

    def ask(
        self, text: str, *, name: str | None = None, anonymous: bool = False, to: str = ""
    ) -> None:
        page = self.page
        page.get_by_label("Your question", exact=True).fill(text)
        if name is not None:
            page.get_by_label(re.compile("^Your name")).fill(name)
        if anonymous:
            page.get_by_label("Ask anonymously").check()
        if to:
            page.get_by_label("For").select_option(to)
        page.get_by_role("button", name="Send question").click()

    def queue(self) -> Locator:
        return self.page.locator('[data-list="queue"] .question')

    def question(self, section: str, text: str) -> Locator:
        return self.page.locator(f'[data-list="{section}"] .question', has_text=text)

    def vote(self, text: str) -> None:
        self.question("queue", text).get_by_role("button").click()


class Moderator:
    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self, url: str) -> Moderator:
        self.page.goto(url)
        # Connected: the live socket has brought the page its first message.
        expect(self.page.locator("#connection")).to_have_attribute("data-state", "online")
        return self

    def item(self, column: str, text: str) -> Locator:
        return self.page.locator(f'[data-list="{column}"] .mq', has_text=text)

    def click(self, column: str, text: str, action: str) -> None:
        self.item(column, text).locator(f'[data-action="{action}"]').click()

    def approve(self, text: str) -> None:
        self.click("pending", text, "approve")
        expect(self.item("queued", text)).to_be_visible()

    def dismiss(self, text: str, reason: str, column: str = "pending") -> None:
        self.click(column, text, "dismiss")
        dialog = self.page.locator("#dismiss-dialog")
        dialog.get_by_label(reason).check()
        dialog.get_by_role("button", name="Dismiss").click()
        expect(self.item("dismissed", text)).to_be_visible()

    def put_on_screen(self, text: str) -> None:
        self.click("queued", text, "promote")
        expect(self.item("live", text)).to_be_visible()

    def mark_answered(self, text: str) -> None:
        self.click("live", text, "done")
        expect(self.item("answered", text)).to_be_visible()


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveqaServer]:
    """One liveqa process on SQLite for a module's quicker scenarios (each uses its own event)."""
    cwd = tmp_path_factory.mktemp("liveqa")
    server = LiveqaServer(
        {
            "LIVEQA_BACKEND": f"sqlite:///{cwd}/liveqa.db",
            "LIVEQA_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "LIVEQA_SECRET_KEY": "browser-tests",
        },
        cwd,
    ).start()
    yield server
    server.stop()


def sign_in(page: Page, server: LiveqaServer) -> None:
    """Sign the organiser in on `page`, at /admin."""
    page.goto(f"{server.url}/admin")
    page.get_by_label("Admin password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Events", exact=True)).to_be_visible()

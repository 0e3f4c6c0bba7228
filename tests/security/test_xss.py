"""Stored XSS: public payload lists submitted as question text, display name and written answer,
then shown on the audience, moderator, panel and answers screens in Chromium.

Pass: no hooked dialog or print call, no script parsed from the page itself (only our
/static/js files run), no CSP violation (one would mean markup got in and only the CSP saved us),
no injected element or handler in the DOM, and every text shown exactly as stored.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.servers import LiveqaServer, sends_csrf

DATA = Path(__file__).parent / "data"
ORGANISER_PASSWORD = "an organiser password"
EVENT_OPTIONS = ("--code", "XSS", "--max-length", "2000", "--panelist", "Ada")
HOOKS = """
window.__xss = [];
for (const name of ["alert", "confirm", "prompt", "print"]) {
  window[name] = (...args) => { window.__xss.push(name + ": " + String(args[0])); };
}
document.addEventListener("securitypolicyviolation", (e) => {
  window.__xss.push("csp: " + e.violatedDirective + " " + e.blockedURI + " " + e.sample);
});
"""
# What the DOM must not hold: handlers, frames, plugins, and scripts that are not ours.
INJECTED = """
() => {
  const found = [];
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      if (/^on/i.test(attr.name)) found.push(el.tagName + " " + attr.name);
      if (/^\\s*(javascript|data|vbscript):/i.test(attr.value) && /href|src|action/i.test(attr.name))
        found.push(el.tagName + " " + attr.name + "=" + attr.value.slice(0, 40));
    }
    if (/^(IFRAME|FRAME|OBJECT|EMBED|BASE|META)$/.test(el.tagName) && !el.closest("head"))
      found.push(el.tagName);
    if (el.tagName === "SCRIPT" && !/\\/static\\/js\\/[a-z]+\\.js$/.test(el.src))
      found.push("SCRIPT " + el.src);
  }
  return found;
}
"""

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1200)]


def corpus() -> list[str]:
    naughty = json.loads((DATA / "blns.json").read_text())
    xss = [p["payload"] for p in json.loads((DATA / "brs-kb-xss.json").read_text())["payloads"]]
    return list(dict.fromkeys(naughty + xss))


def test_the_corpus_is_big_enough() -> None:
    assert len(corpus()) >= 500


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[LiveqaServer, str]]:
    env = {
        "LIVEQA_BACKEND": f"sqlite:///{tmp_path}/liveqa.db",
        "LIVEQA_SECRET_KEY": "xss",
        "LIVEQA_ADMIN_PASSWORD": ORGANISER_PASSWORD,
    }
    server = LiveqaServer(env, tmp_path)
    made = subprocess.run(
        [sys.executable, "-m", "liveqa", "create-event", "XSS", *EVENT_OPTIONS],
        env=server.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    link = re.search(r"/moderate\?key=(\S+)", made.stdout)
    assert link is not None
    server.start()
    yield server, link.group(1)
    server.stop()


class Watched:
    """A Chromium page with the hooks installed and every parsed script recorded."""

    def __init__(self, context: Any, base: str) -> None:
        self.page = context.new_page()
        self.base = base
        self.scripts: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        cdp = context.new_cdp_session(self.page)
        cdp.on("Debugger.scriptParsed", lambda e: self.scripts.append(e.get("url", "")))
        cdp.send("Debugger.enable")

    def open(self, path: str) -> None:
        self.page.goto(self.base + path, wait_until="load")
        self.page.wait_for_timeout(300)  # the page's script has connected and run

    def verdict(self) -> dict[str, Any]:
        ours = re.compile(re.escape(self.base) + r"/static/js/[a-z]+\.js(\?.*)?$")
        return {
            "hooked": self.page.evaluate("window.__xss"),
            "dialogs": self.dialogs,
            "foreign scripts": [
                u for u in self.scripts if u.startswith("http") and not ours.match(u)
            ],
            "injected": self.page.evaluate(INJECTED),
        }


# The texts the page does not show, as text: exactly, or for answers (laid out in paragraphs,
# line breaks as <br>) with whitespace set aside.
SHOWN = """
([texts, loose]) => {
  const squash = (t) => t.replace(/\\s+/g, "");
  const page = loose ? squash(document.body.textContent) : document.body.textContent;
  return texts.filter((t) => !page.includes(loose ? squash(t) : t));
}
"""
CLEAN = {"hooked": [], "dialogs": [], "foreign scripts": [], "injected": []}


def test_payloads_never_run_on_any_screen(chromium: Any, server: tuple[LiveqaServer, str]) -> None:
    live, moderator_key = server
    base = live.url
    payloads = corpus()
    audience = sends_csrf(httpx.Client(base_url=base, timeout=30))
    moderator = sends_csrf(httpx.Client(base_url=base, timeout=30))
    audience.get("/e/XSS")
    moderator.get(f"/e/XSS/moderate?key={moderator_key}", follow_redirects=True)
    asked: list[dict[str, Any]] = []
    refused = 0
    for payload in payloads:
        for name in (payload, payload[:40], ""):
            response = audience.post("/e/XSS/questions", json={"text": payload, "name": name})
            if response.status_code == 201:
                asked.append(response.json()["question"] | {"payload": payload})
                break
        else:
            refused += 1  # blank once control characters are gone, say: refused, fine
    assert len(asked) >= 500 and refused < len(payloads) // 10, (len(asked), refused)

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(HOOKS)
    cookie = moderator.cookies.get("liveqa_session")
    context.add_cookies([{"name": "liveqa_session", "value": cookie or "", "url": base}])

    # The panel: each question goes live in turn and the panel's script must show its text.
    panel = Watched(context, base)
    panel.open("/e/XSS/panel")
    for question in asked:
        promoted = moderator.post(f"/e/XSS/questions/{question['id']}/promote", json={})
        assert promoted.status_code == 200, promoted.text
        panel.page.wait_for_function(
            "text => document.getElementById('panel-text').textContent === text",
            arg=question["text"],
            timeout=10_000,
        )
    assert panel.verdict() == CLEAN, panel.verdict()

    # Written answers: the payload again, on every question.
    for question in asked:
        answered = moderator.post(
            f"/e/XSS/questions/{question['id']}/answer", json={"text": question["payload"]}
        )
        assert answered.status_code == 200, answered.text
        question["answer"] = answered.json()["question"]["answer"]

    texts = [q["text"] for q in asked]
    answers = [q["answer"] for q in asked]
    names = [q["name"] for q in asked if q["name"]]
    for path, must_show in (
        ("/e/XSS", {"question": texts, "answer": answers, "name": names}),
        ("/e/XSS/answers", {"question": texts, "answer": answers, "name": names}),
        ("/e/XSS/moderate", {"question": texts, "answer": answers}),
    ):
        screen = Watched(context, base)
        screen.open(path)
        screen.page.wait_for_timeout(500)  # the live script has applied its snapshot
        assert screen.verdict() == CLEAN, (path, screen.verdict())
        for what, expected in must_show.items():
            missing = screen.page.evaluate(SHOWN, [expected, what == "answer"])
            assert not missing, (path, what, len(missing), missing[:3])
    context.close()

    # The organiser's report lists questions too, beside a chart drawn on the server.
    organiser = sends_csrf(httpx.Client(base_url=base, timeout=30))
    organiser.get("/admin")
    organiser.post("/admin/sign-in", data={"name": "admin", "password": ORGANISER_PASSWORD})
    staff = chromium.new_context(viewport={"width": 1280, "height": 900})
    staff.add_init_script(HOOKS)
    session = organiser.cookies.get("liveqa_session")
    staff.add_cookies([{"name": "liveqa_session", "value": session or "", "url": base}])
    for path in ("/admin", "/admin/events/XSS", "/admin/events/XSS/report"):
        screen = Watched(staff, base)
        screen.open(path)
        assert "Organiser sign-in" not in screen.page.content(), path
        assert screen.verdict() == CLEAN, (path, screen.verdict())
    staff.close()
    assert "Traceback" not in live.log.read_text(errors="replace")

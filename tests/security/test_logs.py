"""What a real `liveqa serve` writes to its log: no link keys, passwords, session ids or question
text, and no line an attacker can forge with CR/LF.
"""

from __future__ import annotations

import logging
import re

import httpx2 as httpx
from websockets.sync.client import connect

from liveqa.logs import Redact
from tests.security.conftest import PASSWORD, Live
from tests.servers import sends_csrf

QUESTION = "What is the secret budget for project NIGHTJAR?"


def test_secrets_and_questions_stay_out_of_the_log(live: Live) -> None:
    with sends_csrf(httpx.Client(base_url=live.url)) as browser:
        browser.get(f"/e/TOWN-HALL/moderate?key={live.moderator_key}")
        browser.get(f"/e/TOWN-HALL/panel?key={live.panel_key}")
        browser.get("/e/TOWN-HALL")
        asked = browser.post("/e/TOWN-HALL/questions", json={"text": QUESTION, "name": "Ada"})
        assert asked.status_code == 201
        browser.get("/admin")
        signed_in = browser.post("/admin/sign-in", data={"name": "admin", "password": PASSWORD})
        assert signed_in.status_code == 303 and "Sign out" in browser.get("/admin").text
        session = browser.cookies.get("liveqa_session")
        cookies = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
        with connect(
            f"{live.ws}?role=moderator&key={live.moderator_key}",
            origin=live.url,  # type: ignore[arg-type]
            additional_headers={"Cookie": cookies},
            open_timeout=5,
        ) as ws:
            assert QUESTION in str(ws.recv(timeout=5))
        # A path that would start a forged log line if it were written as it came.
        browser.get("/e/%0d%0aINFO:%20%20%20%20%20forged%20admin%20login%20ok")
        browser.get(f"/?code=X&key={live.moderator_key}")
    log = live.log()
    assert "GET /e/TOWN-HALL/moderate?key=[redacted]" in log  # the request is logged, its key not
    for secret in (live.moderator_key, live.panel_key, PASSWORD, session, QUESTION, "NIGHTJAR"):
        assert secret and secret not in log, secret
    assert not re.search(r"^INFO:\s+forged", log, re.MULTILINE)
    assert "forged%20admin%20login" in log  # the attempt is there, harmless, on its own line


def test_the_log_filter_escapes_what_reaches_it() -> None:
    """Anything logged through liveqa's filter: CR, LF and ANSI escapes can start no line."""
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
        ("1.2.3.4:5", "/e/X\r\nINFO:     forged\x1b[2J?key=SECRETKEY"), None,
    )  # fmt: skip
    assert Redact().filter(record)
    line = record.getMessage()
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "SECRETKEY" not in line and "key=[redacted]" in line
    assert "\\r\\nINFO:" in line

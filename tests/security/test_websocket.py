"""The websocket under attack: cross-site hijacking, malformed and oversized frames, and staff
sockets that must close within a second of their access being taken away.
"""

from __future__ import annotations

import base64
import http.server
import os
import socket
import struct
import threading
import time
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.security.conftest import ORIGIN, Live, Scene

EVIL = "https://evil.example"


def staff_cookies(live: Live) -> str:
    with httpx.Client(base_url=live.url) as browser:
        opened = browser.get(f"/e/TOWN-HALL/moderate?key={live.moderator_key}")
        assert opened.status_code == 303
        return "; ".join(f"{k}={v}" for k, v in browser.cookies.items())


def test_cross_site_handshakes_are_refused_before_accept(live: Live) -> None:
    cookies = staff_cookies(live)
    port = live.url.rsplit(":", 1)[1]
    forged = [
        EVIL,
        "null",
        None,  # no Origin at all
        f"{live.url}.evil.example",  # our origin as a prefix of theirs
        "http://evil.example:" + port,
        "http://127.0.0.1:1",  # our host, another port
        "https://127.0.0.1:" + port,  # our host and port, another scheme
        "http://localhost:" + port,
    ]
    for origin in forged:
        for role in ("moderator", "audience"):
            with pytest.raises(InvalidStatus) as refused:
                connect(
                    f"{live.ws}?role={role}",
                    origin=origin,  # type: ignore[arg-type]
                    additional_headers={"Cookie": cookies},
                    open_timeout=5,
                )
            assert refused.value.response.status_code == 403, (origin, role)
    with connect(
        f"{live.ws}?role=moderator",
        origin=live.url,  # type: ignore[arg-type]
        additional_headers={"Cookie": cookies},
        open_timeout=5,
    ) as ws:
        assert '"snapshot"' in str(ws.recv(timeout=5))
    assert "Traceback" not in live.log()


def test_cross_site_handshakes_in_process(sqlite_scene: Scene) -> None:
    scene = sqlite_scene
    moderator = scene.people["moderator_a"]
    for origin in (EVIL, "null", "http://testserver.evil.example", "http://testserver:8080"):
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            moderator.websocket_connect(
                "/e/EVENT-A/live?role=moderator", headers={"origin": origin}
            ) as ws,
        ):
            ws.receive_json()
        assert refused.value.code == 1008, origin
    with (
        pytest.raises(WebSocketDisconnect),
        moderator.websocket_connect("/e/EVENT-A/live?role=moderator") as ws,
    ):
        ws.receive_json()


class RawSocket:
    """A websocket client that can send frames a real client library refuses to."""

    def __init__(self, live: Live) -> None:
        port = int(live.url.rsplit(":", 1)[1])
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /e/TOWN-HALL/live HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: {live.url}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, opcode: int, payload: bytes, *, masked: bool = True, fin: bool = True) -> None:
        header = bytes([(0x80 if fin else 0) | opcode])
        size = len(payload)
        mask_bit = 0x80 if masked else 0
        if size < 126:
            header += bytes([mask_bit | size])
        elif size < 65536:
            header += bytes([mask_bit | 126]) + struct.pack("!H", size)
        else:
            header += bytes([mask_bit | 127]) + struct.pack("!Q", size)
        if masked:
            mask = os.urandom(4)
            header += mask
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + payload)

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed without a close frame")
            data += chunk
        return data

    def close_code(self) -> int:
        """Read frames until the server's close frame; its status code."""
        while True:
            first, second = self._exactly(2)
            size = second & 0x7F
            if size == 126:
                size = struct.unpack("!H", self._exactly(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", self._exactly(8))[0]
            payload = self._exactly(size)
            if first & 0x0F == 0x8:
                code: int = struct.unpack("!H", payload[:2])[0]
                return code


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ((0x2, b"\x00\x01binary"), 1003),  # binary: we speak text only
        ((0x1, b"x" * 65537), 1009),  # one byte over the 64 KiB limit
        ((0x1, b"\xff\xfe not utf-8"), 1007),
        ((0x3, b"reserved opcode"), 1002),
    ],
    ids=["binary", "oversized", "invalid-utf8", "reserved-opcode"],
)
def test_bad_frames_are_closed_with_the_right_code(
    live: Live, frame: tuple[int, bytes], code: int
) -> None:
    raw = RawSocket(live)
    raw.send(*frame)
    assert raw.close_code() == code
    unmasked = RawSocket(live)
    unmasked.send(0x1, b'{"type":"ping"}', masked=False)
    assert unmasked.close_code() == 1002
    log = live.log()
    assert "Traceback" not in log and "Exception in ASGI application" not in log
    assert httpx.get(f"{live.url}/healthz").text == "ok"


def test_nonsense_text_is_ignored_and_the_socket_lives_on(live: Live) -> None:
    with connect(live.ws, origin=live.url, open_timeout=5) as ws:  # type: ignore[arg-type]
        assert '"snapshot"' in str(ws.recv(timeout=5))
        for nonsense in ("{", "[" * 60_000, "9" * 5000, '{"type":"approve","id":"x"}', ""):
            ws.send(nonsense)
        ws.send("x" * 65536)  # exactly the limit is allowed
        with httpx.Client(base_url=live.url) as browser:
            browser.get("/e/TOWN-HALL")
            token = browser.get("/e/TOWN-HALL").text.split('name="csrf-token" content="')[1][:64]
            asked = browser.post(
                "/e/TOWN-HALL/questions",
                json={"text": "Still there?"},
                headers={"x-csrf-token": token},
            )
            assert asked.status_code == 201, asked.text
        assert "Still there?" in str(ws.recv(timeout=5))
    assert "Traceback" not in live.log()


def test_a_socket_that_floods_us_with_messages_is_closed(live: Live) -> None:
    raw = RawSocket(live)
    for _ in range(25):
        raw.send(0x1, b'{"type":"ping"}')
    assert raw.close_code() == 1008
    with connect(live.ws, origin=live.url, open_timeout=5) as ws:  # type: ignore[arg-type]
        assert '"snapshot"' in str(ws.recv(timeout=5))  # everyone else is served as before


def receive_close(ws: Any, within: float) -> tuple[int, float]:
    """Skip what the socket pushes until it is closed; the close code and how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < within + 5:
        try:
            ws.receive_json()
        except WebSocketDisconnect as closed:
            return closed.code, time.monotonic() - started
    raise AssertionError("the socket stayed open")


def test_new_links_close_the_old_links_sockets_within_a_second(scene: Scene) -> None:
    moderator, panel = scene.people["moderator_a"], scene.people["panel"]
    organiser = scene.people["organiser"]
    with (
        moderator.websocket_connect("/e/EVENT-A/live?role=moderator", headers=ORIGIN) as mod_ws,
        panel.websocket_connect("/e/EVENT-A/live?role=panel", headers=ORIGIN) as panel_ws,
        organiser.websocket_connect("/e/EVENT-A/live?role=moderator", headers=ORIGIN) as org_ws,
    ):
        for ws in (mod_ws, panel_ws, org_ws):
            assert ws.receive_json()["type"] == "snapshot"
        assert organiser.post("/admin/events/EVENT-A/links", data={}).status_code == 200
        for ws in (mod_ws, panel_ws):
            code, took = receive_close(ws, within=1.0)
            assert code == 1008 and took < 1.0, (code, took)
        assert org_ws.receive_json()["type"] == "change"  # the organiser keeps watching
    assert moderator.get("/e/EVENT-A/moderate").status_code == 403
    assert panel.get("/e/EVENT-A/panel").status_code == 403


def test_signing_out_closes_that_sessions_sockets_within_a_second(scene: Scene) -> None:
    organiser: TestClient = scene.people["organiser"]
    moderator = scene.people["moderator_a"]
    with (
        organiser.websocket_connect("/e/EVENT-B/live?role=moderator", headers=ORIGIN) as org_ws,
        moderator.websocket_connect("/e/EVENT-A/live?role=moderator", headers=ORIGIN) as mod_ws,
    ):
        org_ws.receive_json()
        mod_ws.receive_json()
        old = organiser.cookies.get("liveqa_session")
        assert organiser.post("/admin/sign-out", data={}).status_code == 200
        code, took = receive_close(org_ws, within=1.0)
        assert code == 1008 and took < 1.0, (code, took)
        scene.question(scene.a, "queued")
        assert mod_ws.receive_json()["type"] == "change"  # other sessions are untouched
    replay = scene.browser()
    replay.cookies.set("liveqa_session", old or "")
    assert replay.get("/e/EVENT-B/moderate").status_code == 403


EVIL_PAGE = b"""<!doctype html><title>Win a prize</title><script>
const ws = new WebSocket(location.hash.slice(1));
window.outcome = new Promise((done) => {
  ws.onopen = () => done("opened");
  ws.onmessage = (m) => done("read: " + String(m.data).slice(0, 40));
  ws.onclose = (e) => done("closed " + e.code);
});
</script>"""


@pytest.mark.browser
def test_a_page_on_another_origin_cannot_use_the_staff_socket(live: Live, chromium: Any) -> None:
    """Cross-site websocket hijacking in a real browser: the victim is signed in as moderator,
    and a page on another origin (the same host on another port: cookies are still sent, so only
    the Origin check stands in the way) opens the moderator stream."""

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(EVIL_PAGE)

        def log_message(self, *args: Any) -> None:
            pass

    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        context = chromium.new_context()
        page = context.new_page()
        page.goto(f"{live.url}/e/TOWN-HALL/moderate?key={live.moderator_key}")
        assert page.url.endswith("/e/TOWN-HALL/moderate")  # the victim is signed in
        target = f"{live.ws}?role=moderator"
        own = page.evaluate(
            "url => new Promise(d => { const w = new WebSocket(url);"
            " w.onmessage = m => d(String(m.data).slice(0, 20)); w.onclose = e => d(e.code); })",
            target,
        )
        assert "snapshot" in str(own)  # from our own origin it works
        attack = context.new_page()
        attack.goto(f"http://127.0.0.1:{evil.server_address[1]}/#{target}")
        assert attack.evaluate("window.outcome") == "closed 1006"  # the handshake was refused
        context.close()
    finally:
        evil.shutdown()
    assert "Traceback" not in live.log()

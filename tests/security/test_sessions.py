"""Sessions and bearer links: cookie flags, rotation at sign-in, revocation at sign-out, links that
leave no secret in the URL, the store or the browser's history.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from liveqa.app import create_app
from liveqa.passwords import hash_password
from liveqa.settings import Settings
from tests.conftest import CI
from tests.security.conftest import ORIGIN, PASSWORD, Scene, sign_in
from tests.security.test_websocket import receive_close
from tests.servers import RedisServer, redis_binary
from tests.web.conftest import sends_csrf


def cookies_set(response: Any) -> dict[str, str]:
    """Each Set-Cookie header of `response`, by cookie name, as sent."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        name = SimpleCookie(header)
        found[next(iter(name))] = header
    return found


def test_cookie_flags_over_plain_http(sqlite_scene: Scene) -> None:
    scene = sqlite_scene
    browser = scene.browser()
    first = cookies_set(browser.get("/e/EVENT-A"))
    opened = browser.get(f"/e/EVENT-A/moderate?key={scene.a.moderator_key}", follow_redirects=False)
    every = first | cookies_set(opened)
    assert {"liveqa_participant", "liveqa_csrf", "liveqa_session"} <= set(every)
    for name, header in every.items():
        flags = header.lower()
        assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags, name
        assert "domain=" not in flags, name


def test_cookie_flags_over_tls(settings: Settings) -> None:
    with sends_csrf(TestClient(create_app(settings), base_url="https://testserver")) as browser:
        rt = browser.app.state.runtime  # type: ignore[attr-defined]
        created = browser.portal.call(lambda: rt.events.create("TLS", code="TLS-1"))  # type: ignore[union-attr]
        page = browser.get("/e/TLS-1")
        opened = browser.get(
            f"/e/TLS-1/moderate?key={created.moderator_key}", follow_redirects=False
        )
        every = cookies_set(page) | cookies_set(opened)
        assert {"__Host-liveqa_session", "__Host-liveqa_csrf", "liveqa_participant"} <= set(every)
        for name, header in every.items():
            assert "; secure" in header.lower(), name
        assert page.headers["strict-transport-security"].startswith("max-age=")
        assert browser.get("/e/TLS-1/moderate").status_code == 200
        plain = browser.cookies.get("__Host-liveqa_session")
        assert plain and len(plain) >= 43  # 256 bits


def test_a_link_becomes_a_session_and_a_clean_url(sqlite_scene: Scene) -> None:
    scene = sqlite_scene
    key = scene.a.moderator_key
    assert len(key) >= 22  # token_urlsafe: 6 bits a character, at least 128 bits
    browser = scene.browser()
    opened = browser.get(f"/e/EVENT-A/moderate?key={key}", follow_redirects=False)
    assert opened.status_code == 303
    assert opened.headers["location"].endswith("/e/EVENT-A/moderate")
    assert key not in opened.headers["location"]
    page = browser.get(opened.headers["location"])
    assert page.status_code == 200 and key not in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    wrong = scene.browser().get("/e/EVENT-A/moderate?key=" + "A" * len(key))
    assert wrong.status_code == 403


def test_only_hashes_are_stored(scene: Scene, backend: str) -> None:
    browser = scene.browser()
    browser.get(f"/e/EVENT-A/moderate?key={scene.a.moderator_key}")
    session = browser.cookies.get("liveqa_session")
    secrets_ = [scene.a.moderator_key, scene.a.panel_key, scene.b.moderator_key, session, PASSWORD]
    if backend.startswith("sqlite"):
        path = Path(backend.removeprefix("sqlite:///"))
        stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    else:
        client = redis.Redis.from_url(backend)
        stored = b"".join(repr(client.dump(k)).encode() + k for k in client.scan_iter("*"))
    for secret in secrets_:
        assert secret and secret.encode() not in stored
    assert b"scrypt$" in stored  # the organiser's password, hashed


def test_sign_in_rotates_the_session(scene: Scene) -> None:
    browser = scene.browser()
    browser.get(f"/e/EVENT-A/moderate?key={scene.a.moderator_key}")
    before = browser.cookies.get("liveqa_session")
    assert sign_in(browser).status_code == 303
    after = browser.cookies.get("liveqa_session")
    assert before and after and before != after
    assert browser.get("/e/EVENT-A/moderate").status_code == 200  # access carried over
    replay = scene.browser()
    replay.cookies.set("liveqa_session", before)
    assert replay.get("/e/EVENT-A/moderate").status_code == 403


def test_a_planted_session_id_is_never_adopted(sqlite_scene: Scene) -> None:
    scene = sqlite_scene
    victim = scene.browser()
    planted = "A" * 43
    victim.cookies.set("liveqa_session", planted)
    signed_in = sign_in(victim)
    assert signed_in.status_code == 303
    given = SimpleCookie(cookies_set(signed_in)["liveqa_session"])["liveqa_session"].value
    assert given and given != planted
    attacker = scene.browser()
    attacker.cookies.set("liveqa_session", planted)
    assert "Sign out" not in attacker.get("/admin").text


def test_sign_out_ends_the_session_on_the_server(scene: Scene) -> None:
    organiser = scene.people["organiser"]
    copied = organiser.cookies.get("liveqa_session")
    assert "Sign out" in organiser.get("/admin").text
    assert organiser.post("/admin/sign-out", data={}).status_code == 200
    thief = scene.browser()
    thief.cookies.set("liveqa_session", copied or "")
    thief.get("/admin")
    assert "Sign out" not in thief.get("/admin").text
    made = thief.post("/admin/events", data={"title": "Stolen", "code": "STOLEN"})
    assert made.status_code == 403


def test_wrong_passwords_and_names_look_the_same_and_are_limited(sqlite_scene: Scene) -> None:
    scene = sqlite_scene
    browser = scene.browser()
    wrong_password = sign_in(browser, "ada", "not the password at all")
    wrong_name = sign_in(browser, "nobody", PASSWORD)
    assert wrong_password.status_code == wrong_name.status_code == 403
    message = re.compile(r"That name or password is wrong\.")
    assert message.search(wrong_password.text) and message.search(wrong_name.text)
    statuses = [sign_in(browser, "ada", f"guess number {i}").status_code for i in range(20)]
    assert statuses[-1] == 429 and "Slow down" in sign_in(browser, "ada", PASSWORD).text


def test_create_admin_makes_an_organiser_who_can_sign_in(tmp_path: Path) -> None:
    backend = f"sqlite:///{tmp_path}/liveqa.db"
    env = os.environ | {"LIVEQA_BACKEND": backend, "LIVEQA_SECRET_KEY": "test-secret"}
    command = [sys.executable, "-m", "liveqa", "create-admin", "grace", "--password-stdin"]
    weak = subprocess.run(command, input="short\n", env=env, capture_output=True, text=True)
    assert weak.returncode == 2 and "at least 10 characters" in weak.stderr
    made = subprocess.run(command, input=PASSWORD + "\n", env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert PASSWORD not in made.stdout + made.stderr
    app = create_app(Settings(backend=backend, secret_key="test-secret"))
    with sends_csrf(TestClient(app)) as browser:
        assert sign_in(browser, "grace", PASSWORD).status_code == 303
        assert "Sign out" in browser.get("/admin").text


def test_a_new_password_ends_that_organisers_sessions(scene: Scene) -> None:
    organiser = scene.people["organiser"]
    other = scene.browser()
    assert sign_in(other).status_code == 303  # the same organiser on a second device
    with organiser.websocket_connect("/e/EVENT-A/live?role=moderator", headers=ORIGIN) as ws:
        ws.receive_json()
        new = hash_password("a brand new long password")
        scene.call(scene.security.sessions.add_organiser, "ada", new)
        code, took = receive_close(ws, within=1.0)
        assert code == 1008 and took < 1.0
    for device in (organiser, other):
        assert "Sign out" not in device.get("/admin").text
    assert sign_in(scene.browser(), "ada", "a brand new long password").status_code == 303


def test_staff_requests_while_redis_is_down_get_a_503_not_a_crash() -> None:
    """Who is asking cannot be known without the store: refuse with a retry, fail closed."""
    if redis_binary() is None:
        if CI:
            pytest.fail("redis-server is missing, and CI=true forbids skipping the Redis tests")
        pytest.skip("redis-server is not installed")
    server = RedisServer().start()
    try:
        app = create_app(Settings(backend=server.url, secret_key="test-secret"))
        with sends_csrf(TestClient(app)) as browser:
            rt = app.state.runtime  # type: ignore[attr-defined]
            made = browser.portal.call(lambda: rt.events.create("Down", code="DOWN"))  # type: ignore[union-attr]
            browser.get(f"/e/DOWN/moderate?key={made.moderator_key}")
            server.kill()
            page = browser.get("/e/DOWN/moderate")
            assert page.status_code == 503 and page.headers["retry-after"] == "1"
            assert page.json()["error"] == "unavailable"
    finally:
        server.close()

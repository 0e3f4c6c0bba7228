"""Security headers on every page (enumerated from the route table), and pages whose markup a
strict CSP can protect: no inline handlers, no inline styles, every inline script nonced.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

import pytest
from starlette.routing import Route

from liveqa.app import routes
from liveqa.settings import Settings
from tests.security.conftest import Scene, make_scene

PAGES = sorted(
    route.path for route in routes if isinstance(route, Route) and "GET" in (route.methods or set())
)


def fill(path: str) -> str:
    return path.replace("{code}", "EVENT-A")


def directives(csp: str) -> dict[str, str]:
    return {d.split()[0]: d.strip() for d in csp.split(";") if d.strip()}


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_the_headers(shared_scene: Scene, path: str) -> None:
    organiser = shared_scene.people["organiser"]  # sees every page
    first, second = organiser.get(fill(path)), organiser.get(fill(path))
    assert first.status_code == 200, path
    csp = directives(first.headers["content-security-policy"])
    for name, value in {
        "default-src": "default-src 'self'",
        "object-src": "object-src 'none'",
        "base-uri": "base-uri 'none'",
        "frame-ancestors": "frame-ancestors 'none'",
        "form-action": "form-action 'self'",
    }.items():
        assert csp[name] == value, (path, name)
    assert "ws://testserver" in csp["connect-src"]
    nonce = re.search(r"'nonce-([A-Za-z0-9_-]{20,})'", csp["script-src"])
    assert nonce is not None, path
    assert nonce.group(1) not in second.headers["content-security-policy"]  # fresh each time
    policy = first.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "*" not in policy
    assert first.headers["x-content-type-options"] == "nosniff"
    assert first.headers["referrer-policy"] == "no-referrer"
    assert first.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", [p for p in PAGES if "qr" not in p and "health" not in p])
def test_pages_need_nothing_inline(shared_scene: Scene, path: str) -> None:
    organiser = shared_scene.people["organiser"]
    shared_scene.question(shared_scene.a, "live")
    response = organiser.get(fill(path))
    html = response.text
    nonce = re.search(r"'nonce-([^']+)'", response.headers["content-security-policy"])
    assert nonce is not None
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html, re.IGNORECASE), path  # onclick=...
    assert not re.search(r"<[^>]+\sstyle\s*=", html, re.IGNORECASE), path
    assert "javascript:" not in html.lower(), path
    for script in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in script or f'nonce="{nonce.group(1)}"' in script, (path, script)


@pytest.fixture
def embeddable(tmp_path: object) -> Iterator[Scene]:
    settings = Settings(backend=f"sqlite:///{tmp_path}/liveqa.db", secret_key="test-secret")
    yield from make_scene(
        dataclasses.replace(settings, panel_embed_origins=("https://studio.example",))
    )


def test_only_the_panel_may_be_framed_and_only_where_configured(embeddable: Scene) -> None:
    organiser = embeddable.people["organiser"]
    panel = organiser.get("/e/EVENT-A/panel")
    assert "frame-ancestors https://studio.example" in panel.headers["content-security-policy"]
    assert "x-frame-options" not in panel.headers
    moderate = organiser.get("/e/EVENT-A/moderate")
    assert "frame-ancestors 'none'" in moderate.headers["content-security-policy"]
    assert moderate.headers["x-frame-options"] == "DENY"


def test_staff_pages_are_not_cached(shared_scene: Scene) -> None:
    for path in ("/e/EVENT-A/moderate", "/admin"):
        response = shared_scene.people["organiser"].get(path)
        assert response.headers["cache-control"] == "no-store", path

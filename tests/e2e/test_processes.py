"""liveqa as users run it: real processes, real sockets, real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
from websockets.sync.client import connect

from tests.servers import LiveqaServer, RedisServer, sends_csrf


def create_event(cwd: Path, env: dict[str, str], title: str = "Town hall") -> dict[str, str]:
    """`liveqa create-event`, parsed from what it prints."""
    import os

    out = subprocess.run(
        [sys.executable, "-m", "liveqa", "create-event", title, "--code", "TOWN-HALL"],
        cwd=cwd, env=os.environ | env, capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    links = {}
    for line in out.splitlines():
        for role in ("Audience", "Moderator", "Panel"):
            if line.startswith(f"{role}:"):
                links[role.lower()] = line.split(None, 1)[1]
    return links


def ws_url(server: LiveqaServer, code: str) -> str:
    return f"ws://127.0.0.1:{server.port}/e/{code}/live"


def test_a_question_survives_a_restart_on_sqlite(
    tmp_path: Path, start_liveqa: Callable[..., LiveqaServer]
) -> None:
    links = create_event(tmp_path, {})
    assert set(links) == {"audience", "moderator", "panel"}
    server = start_liveqa()
    with sends_csrf(httpx.Client(base_url=server.url)) as browser:
        browser.get("/e/TOWN-HALL")
        asked = browser.post("/e/TOWN-HALL/questions", json={"text": "Will you still have me?"})
        assert asked.status_code == 201
    server.stop()
    assert (tmp_path / "liveqa.db").exists()
    again = start_liveqa()
    page = httpx.get(f"{again.url}/e/TOWN-HALL")
    assert "Will you still have me?" in page.text


def test_two_processes_share_one_redis(
    redis_url: str, secret_key: str, tmp_path: Path, start_liveqa: Callable[..., LiveqaServer]
) -> None:
    env = {"LIVEQA_BACKEND": redis_url, "LIVEQA_SECRET_KEY": secret_key}
    create_event(tmp_path, env)
    one, two = start_liveqa(**env), start_liveqa(**env)
    with connect(ws_url(one, "TOWN-HALL"), origin=one.url, open_timeout=5) as ws:  # type: ignore[arg-type]
        snapshot = json.loads(ws.recv(timeout=5))
        assert snapshot["type"] == "snapshot" and snapshot["questions"] == []
        with sends_csrf(httpx.Client(base_url=two.url)) as browser:
            browser.get("/e/TOWN-HALL")
            assert (
                browser.post(
                    "/e/TOWN-HALL/questions", json={"text": "Across processes?"}
                ).status_code
                == 201
            )
        change = json.loads(ws.recv(timeout=5))
        assert change["seq"] == 1
        assert change["questions"][0]["text"] == "Across processes?"


def test_redis_url_is_honoured(
    redis_url: str, secret_key: str, tmp_path: Path, start_liveqa: Callable[..., LiveqaServer]
) -> None:
    env = {"REDIS_URL": redis_url, "LIVEQA_SECRET_KEY": secret_key}
    create_event(tmp_path, env)
    server = start_liveqa(**env)
    assert httpx.get(f"{server.url}/e/TOWN-HALL").status_code == 200
    assert not (tmp_path / "liveqa.db").exists()


def test_redis_without_append_only_file_refuses_to_start(
    secret_key: str, tmp_path: Path, start_liveqa: Callable[..., LiveqaServer]
) -> None:
    import pytest

    volatile = RedisServer(appendonly=False).start()
    try:
        env = {"LIVEQA_BACKEND": volatile.url, "LIVEQA_SECRET_KEY": secret_key}
        with pytest.raises(RuntimeError) as refused:
            start_liveqa(**env)
        assert "appendonly" in str(refused.value) and "LIVEQA_ALLOW_NO_AOF" in str(refused.value)
        assert start_liveqa(**env, LIVEQA_ALLOW_NO_AOF="true")
    finally:
        volatile.close()


def test_redis_needs_a_shared_secret_key(
    redis_url: str, tmp_path: Path, start_liveqa: Callable[..., LiveqaServer]
) -> None:
    import os

    result = subprocess.run(
        [sys.executable, "-m", "liveqa", "serve"], cwd=tmp_path,
        env=os.environ | {"LIVEQA_BACKEND": redis_url}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "LIVEQA_SECRET_KEY is required with Redis" in result.stderr

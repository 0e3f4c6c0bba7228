"""Quick checks: a frozen or stopped Redis fails requests fast with a 503, never hangs them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx

from tests.reliability.harness import create_event, pause, resume
from tests.servers import LiveqaServer, RedisServer, sends_csrf

BOUND = 3.0  # seconds a write may take when Redis does not answer (2 x its 1 s timeout)
# The rate limits as shipped: their counters live in Redis too, and must be bounded as well.
DEFAULT_LIMITS = {
    "LIVEQA_LIMIT_ASK": "5",
    "LIVEQA_LIMIT_VOTE": "60",
    "LIVEQA_LIMIT_NEW_VOTERS": "200",
    "LIVEQA_LIMIT_LOOKUPS": "30",
}


def test_a_write_to_a_frozen_redis_gets_a_503_and_its_retry_lands_once(
    redis_server: RedisServer,
    secret_key: str,
    tmp_path: Path,
    start_liveqa: Callable[..., LiveqaServer],
) -> None:
    env = {"LIVEQA_BACKEND": redis_server.url, "LIVEQA_SECRET_KEY": secret_key}
    create_event(tmp_path, env, "FROZEN")
    server = start_liveqa(**env, **DEFAULT_LIMITS)
    assert redis_server.process is not None
    with sends_csrf(httpx.Client(base_url=server.url, timeout=30)) as browser:
        browser.get("/e/FROZEN")
        pause(redis_server.process.pid)
        try:
            started = time.monotonic()
            refused = browser.post(
                "/e/FROZEN/questions",
                json={"text": "Still there?"},
                headers={"Idempotency-Key": "k1"},
            )
            waited = time.monotonic() - started
        finally:
            resume(redis_server.process.pid)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"] == "unavailable"
        assert waited < BOUND
        deadline = time.monotonic() + 10
        while (
            again := browser.post(
                "/e/FROZEN/questions",
                json={"text": "Still there?"},
                headers={"Idempotency-Key": "k1"},
            )
        ).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert again.status_code == 201
    page = httpx.get(f"{server.url}/e/FROZEN").text
    assert page.count("Still there?") == 1
    print(f"\nfrozen redis: write refused with 503 after {waited:.2f} s (bound {BOUND} s)")


def test_a_write_to_a_stopped_redis_gets_a_503_at_once(
    redis_server: RedisServer,
    secret_key: str,
    tmp_path: Path,
    start_liveqa: Callable[..., LiveqaServer],
) -> None:
    env = {"LIVEQA_BACKEND": redis_server.url, "LIVEQA_SECRET_KEY": secret_key}
    create_event(tmp_path, env, "STOPPED")
    server = start_liveqa(**env, **DEFAULT_LIMITS)
    with sends_csrf(httpx.Client(base_url=server.url, timeout=30)) as browser:
        browser.get("/e/STOPPED")
        redis_server.kill()
        started = time.monotonic()
        refused = browser.post("/e/STOPPED/questions", json={"text": "Anyone?"})
        waited = time.monotonic() - started
        assert refused.status_code == 503 and refused.json()["error"] == "unavailable"
        assert waited < BOUND
        redis_server.start()
        html = browser.post(
            "/e/STOPPED/questions", data={"text": "Anyone?"}, headers={"Accept": "text/html"}
        )
        assert html.status_code in (201, 303)
    print(f"\nstopped redis: write refused with 503 after {waited:.2f} s")

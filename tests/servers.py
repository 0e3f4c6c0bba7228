"""Real servers for tests: a redis-server of our own and liveqa processes, on free loopback ports."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import redis

NO_LIMITS = {
    "LIVEQA_LIMIT_ASK": "0",
    "LIVEQA_LIMIT_VOTE": "0",
    "LIVEQA_LIMIT_NEW_VOTERS": "0",
    "LIVEQA_LIMIT_LOOKUPS": "0",
}
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def sends_csrf(client: httpx.Client) -> httpx.Client:
    """Send the CSRF token of the last page read with every write, as liveqa's script does."""
    token = [""]

    def remember(response: httpx.Response) -> None:
        if "text/html" not in response.headers.get("content-type", ""):
            return
        if found := CSRF_META.search(response.read().decode(errors="replace")):
            token[0] = found.group(1)

    def add(request: httpx.Request) -> None:
        if request.method not in ("GET", "HEAD") and "x-csrf-token" not in request.headers:
            request.headers["x-csrf-token"] = token[0]

    client.event_hooks["response"].append(remember)
    client.event_hooks["request"].append(add)
    return client


def async_sends_csrf(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """`sends_csrf` for an AsyncClient."""
    token = [""]

    async def remember(response: httpx.Response) -> None:
        if "text/html" not in response.headers.get("content-type", ""):
            return
        if found := CSRF_META.search((await response.aread()).decode(errors="replace")):
            token[0] = found.group(1)

    async def add(request: httpx.Request) -> None:
        if request.method not in ("GET", "HEAD") and "x-csrf-token" not in request.headers:
            request.headers["x-csrf-token"] = token[0]

    client.event_hooks["response"].append(remember)
    client.event_hooks["request"].append(add)
    return client


CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@contextmanager
def chromium(*extra_args: str) -> Iterator[Any]:
    """Debian's Chromium under Playwright; missing, it fails the run under CI=true, else skips."""
    if not Path(CHROMIUM).exists():
        if CI:
            pytest.fail(f"{CHROMIUM} is missing, and CI=true forbids skipping the browser tests")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        args = [*CHROMIUM_ARGS, *extra_args]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_binary() -> str | None:
    return shutil.which("redis-server")


class RedisServer:
    """A redis-server with the append-only file on, in a temporary folder, that tests may kill."""

    def __init__(self, *, appendonly: bool = True) -> None:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="liveqa-redis-"))
        self.port = free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.dir),
                "--save", "",
                "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "everysec",
                "--logfile", str(self.dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start; see {self.dir}") from None
                time.sleep(0.05)
        client.close()
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class LiveqaServer:
    """`python -m liveqa serve` in its own process, as a user would run it."""

    def __init__(self, env: dict[str, str], cwd: Path, args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.args = args  # extra `liveqa serve` options
        # Load tests send everything from one address; tests/security turns the limits back on.
        self.env = (
            os.environ | NO_LIMITS | env | {"PORT": str(self.port), "LIVEQA_HOST": "127.0.0.1"}
        )
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.log = cwd / f"liveqa-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveqaServer:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "liveqa", "serve", *self.args],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"liveqa did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None:
            self.process.send_signal(sig)
            self.process.wait(20)
            self.process = None

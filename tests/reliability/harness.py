"""People and screens for the reliability scenarios: real sockets against real processes.

A `Viewer` is what a page's script does: keep the last `seq`, apply snapshots and changes, and
reconnect with capped, fully jittered backoff, sending `since=SEQ`. An `Asker` posts questions
with an idempotency key and retries the same key on a 503 or a broken connection, as the pages
do. The oracle is the store itself, read through liveqa's own store classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from liveqa import messages
from liveqa.model import Question
from liveqa.store import open_store
from tests.servers import async_sends_csrf

BACKOFF_BASE = 0.1
BACKOFF_CAP = 2.0


def backoff(attempt: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Full jitter (AWS architecture blog): a restarted server is not stampeded."""
    return random.uniform(0, min(cap, base * 2**attempt))


def create_event(cwd: Path, env: dict[str, str], code: str, *flags: str) -> dict[str, str]:
    """`liveqa create-event`, parsed from what it prints."""
    out = subprocess.run(
        [sys.executable, "-m", "liveqa", "create-event", "Reliability", "--code", code, *flags],
        cwd=cwd, env=os.environ | env, capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    links = {}
    for line in out.splitlines():
        for role in ("Audience", "Moderator", "Panel"):
            if line.startswith(f"{role}:"):
                links[role.lower()] = line.split(None, 1)[1]
    return links


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def unsent_bytes(port: int) -> list[int]:
    """Bytes waiting in the kernel on each server-side TCP connection of `port` (Linux)."""
    waiting = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if int(local.rsplit(":", 1)[1], 16) == port and state != "0A":  # 0A: listening
                waiting.append(int(queues.split(":")[0], 16))
    return [n for n in waiting if n]


def pause(pid: int) -> None:
    os.kill(pid, signal.SIGSTOP)


def resume(pid: int) -> None:
    os.kill(pid, signal.SIGCONT)


def key_fields(question: dict[str, Any]) -> tuple[Any, ...]:
    return (question["state"], question["votes"], question["text"], question["rev"])


async def truth(backend: str, event_id: str) -> tuple[int, list[Question]]:
    """The store's `seq` and questions, read at one instant."""
    store = open_store(backend)
    try:
        snapshot = await store.snapshot(event_id)
    finally:
        await store.close()
    return snapshot.seq, list(snapshot.questions)


def view_of(questions: list[Question], role: str, participant: str) -> dict[str, tuple[Any, ...]]:
    """What a screen of `role` should show, from the store's questions."""
    if role == "moderator":
        return {q.id: key_fields(messages.for_moderator(q)) for q in questions}
    return {
        q.id: key_fields(messages.for_audience(q))
        for q in questions
        if messages.visible(q, participant)
    }


@dataclass
class Viewer:
    """A live screen: one websocket, reconnecting with backoff, keeping `seq` and a view."""

    base: str
    code: str
    role: str = "audience"
    cookies: dict[str, str] = field(default_factory=dict)
    participant: str = ""
    stalled: bool = False
    questions: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq: int = 0
    snapshots: int = 0
    replayed: list[int] = field(default_factory=list)
    changes: int = 0
    closes: list[int | None] = field(default_factory=list)
    refused: int = 0
    presence: dict[str, Any] | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    closed_at: float = 0.0
    online: bool = True
    task: asyncio.Task[None] | None = None
    _ws: ClientConnection | None = None
    _replaying: bool = False

    @property
    def view(self) -> dict[str, tuple[Any, ...]]:
        return {i: key_fields(q) for i, q in self.questions.items()}

    def url(self) -> str:
        host = self.base.removeprefix("http://")
        since = f"&since={self.seq}" if self.snapshots else ""
        return f"ws://{host}/e/{self.code}/live?role={self.role}{since}"

    def start(self) -> Viewer:
        self.task = asyncio.create_task(self.run())
        return self

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    async def go_offline(self) -> None:
        """Drop the socket and stay away (a phone in a tunnel) until `come_back`."""
        self.online = False
        if self._ws is not None:
            await self._ws.close()

    def come_back(self) -> None:
        self.replayed.clear()
        self.online = True

    def _socket(self) -> socket.socket | None:
        if not self.stalled:
            return None
        # Internet-like: a small receive buffer and MSS 1400, so the server's kernel accepts
        # only ~46 KiB before its writes block (loopback would buffer megabytes).
        host, port = self.base.removeprefix("http://").split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1400)
        sock.settimeout(5)
        sock.connect((host, int(port)))
        sock.setblocking(False)
        return sock

    async def run(self) -> None:
        attempt = 0
        while True:
            while not self.online:
                await asyncio.sleep(0.05)
            try:
                async with connect(
                    self.url(),
                    origin=self.base,  # type: ignore[arg-type]
                    additional_headers={
                        "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())
                    },
                    open_timeout=5,
                    compression=None,
                    max_size=None,
                    max_queue=1 if self.stalled else 64,
                    sock=self._socket(),
                ) as ws:
                    self._ws = ws
                    self._replaying = self.snapshots > 0
                    self.connected.set()
                    attempt = 0
                    if self.stalled:
                        await asyncio.Future()  # never read again
                    async for raw in ws:
                        self.apply(orjson.loads(raw))
                    self.closes.append(ws.close_code)
            except InvalidStatus:
                self.refused += 1
            except (OSError, ConnectionClosed, TimeoutError) as exc:
                if isinstance(exc, ConnectionClosed):
                    self.closes.append(exc.rcvd.code if exc.rcvd else None)
            finally:
                self._ws = None
                self.connected.clear()
                self.closed_at = time.monotonic()
            await asyncio.sleep(backoff(attempt))
            attempt += 1

    def apply(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "presence":
            self.presence = message
            return
        if kind == "snapshot":
            self.snapshots += 1
            self._replaying = False
            self.questions = {q["id"]: q for q in message["questions"]}
            self.seq = message["seq"]
            return
        if kind != "change" or message["seq"] <= self.seq:
            return
        if self._replaying:
            self.replayed.append(message["seq"])
        self.changes += 1
        for question in message["questions"]:
            self.questions[question["id"]] = question
        for removed in message["removed"]:
            self.questions.pop(removed, None)
        self.seq = message["seq"]


@dataclass
class Outcome:
    key: str
    text: str
    acked: bool = False
    question_id: str = ""
    attempts: int = 0
    unavailable: int = 0
    broken: int = 0
    latencies: list[float] = field(default_factory=list)
    error: str = ""


class Asker:
    """An audience member with a cookie, asking with idempotency keys and retrying them."""

    def __init__(self, base: str, code: str, *, request_timeout: float = 15.0) -> None:
        self.base = base
        self.code = code
        self.http = async_sends_csrf(httpx.AsyncClient(base_url=base, timeout=request_timeout))
        self.outcomes: list[Outcome] = []
        self.participant = ""

    async def join(self) -> None:
        for attempt in range(50):
            with contextlib.suppress(httpx.TransportError):
                response = await self.http.get(f"/e/{self.code}")
                if response.status_code == 200:
                    return
            await asyncio.sleep(backoff(attempt))
        raise RuntimeError("could not open the event page")

    @property
    def cookies(self) -> dict[str, str]:
        return {name: value for name, value in self.http.cookies.items()}

    async def ask(self, text: str, *, deadline: float) -> Outcome:
        outcome = Outcome(key=uuid.uuid4().hex, text=text)
        self.outcomes.append(outcome)
        await self.post(
            f"/e/{self.code}/questions", {"text": text}, outcome, deadline=deadline, ok=201
        )
        return outcome

    async def post(
        self,
        path: str,
        body: dict[str, Any],
        outcome: Outcome,
        *,
        deadline: float,
        ok: int = 200,
        on_ok: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        attempt = 0
        while time.monotonic() < deadline:
            outcome.attempts += 1
            started = time.monotonic()
            try:
                response = await self.http.post(
                    path, json=body, headers={"Idempotency-Key": outcome.key}
                )
            except httpx.TransportError:
                outcome.latencies.append(time.monotonic() - started)
                outcome.broken += 1
            else:
                outcome.latencies.append(time.monotonic() - started)
                if response.status_code == ok:
                    outcome.acked = True
                    data = response.json()
                    outcome.question_id = data.get("question", {}).get("id", "")
                    return
                if response.status_code != 503:
                    outcome.error = f"{response.status_code} {response.text[:200]}"
                    return
                assert response.json()["error"] == "unavailable"
                outcome.unavailable += 1
            await asyncio.sleep(backoff(attempt, cap=1.0))
            attempt += 1
        outcome.error = "gave up at the deadline"

    async def close(self) -> None:
        await self.http.aclose()


async def wait_for(
    condition: Callable[[], Awaitable[bool]], timeout: float, every: float = 0.1
) -> float:
    """Seconds until `condition()` held; TimeoutError after `timeout`."""
    started = time.monotonic()
    while True:
        if await condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not true within {timeout} s")
        await asyncio.sleep(every)


async def converged(backend: str, event_id: str, viewers: list[Viewer]) -> bool:
    seq, questions = await truth(backend, event_id)
    # Cheap test first: comparing whole views costs CPU the server under test needs.
    if any(v.snapshots == 0 or v.seq != seq for v in viewers):
        return False
    return all(
        v.snapshots > 0 and v.seq == seq and v.view == view_of(questions, v.role, v.participant)
        for v in viewers
    )


async def diverged(backend: str, event_id: str, viewers: list[Viewer]) -> str:
    """The first divergent viewer, for a failure message."""
    seq, questions = await truth(backend, event_id)
    for i, v in enumerate(viewers):
        want = view_of(questions, v.role, v.participant)
        if v.seq != seq or v.view != want:
            missing = set(want) - set(v.view)
            extra = set(v.view) - set(want)
            wrong = [k for k in set(want) & set(v.view) if want[k] != v.view[k]]
            return (
                f"viewer {i} ({v.role}) at seq {v.seq}, store at {seq}: {len(missing)} missing, "
                f"{len(extra)} extra, {len(wrong)} differ; closes {v.closes[-5:]}"
            )
    return "none"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

"""HTTP load against liveqa: the vote storm and the ask path. Runs in liveqa's own virtualenv
(it signs participant cookies with liveqa's Signer and reads the event's seq from its store).

  python httpload.py votes '{"port":..,"redis":..,"secret":..,"code":..,"questions":[..],
                            "rate":1000,"secs":30}'
  python httpload.py asks  '{"port":..,"redis":..,"secret":..,"code":..,"moderator_cookie":..,
                            "rate":50,"secs":20}'

Prints one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from typing import Any

from httpc import HTTP

from liveqa.identity import PARTICIPANT_COOKIE, Signer
from liveqa.store import open_store

HOST = "127.0.0.1"
CONNS = 64


def cookie(signer: Signer, cfg: dict[str, Any]) -> str:
    """A new participant, with the CSRF cookie whose token goes in the header."""
    return f"{cfg['csrf_cookie']}; {PARTICIPANT_COOKIE}={signer.sign(secrets.token_hex(12))}"


async def open_loop(rate: float, secs: float, job: Any) -> dict[str, Any]:
    """Offer `rate` requests a second for `secs`; requests the server cannot take in time wait
    (at most CONNS in flight), so the achieved rate shows how far the server kept up."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    start = time.monotonic()
    stop = start + secs
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker() -> None:
        http = HTTP(HOST, job.port)
        while True:
            i = await queue.get()
            t = time.monotonic()
            try:
                status = await job.one(http, i)
            except (OSError, asyncio.IncompleteReadError):
                status = 0
            latencies.append(time.monotonic() - t)
            statuses[status] = statuses.get(status, 0) + 1
            queue.task_done()

    workers = [asyncio.create_task(worker()) for _ in range(CONNS)]
    i = 0
    while (now := time.monotonic()) < stop:
        due = int((now - start) * rate)
        while i < due:
            queue.put_nowait(i)
            i += 1
        await asyncio.sleep(0.002)
    offered = i
    unsent = 0
    while not queue.empty():  # what the server did not get to within the window is dropped
        queue.get_nowait()
        queue.task_done()
        unsent += 1
    await queue.join()
    elapsed = time.monotonic() - start
    for w in workers:
        w.cancel()
    latencies.sort()
    done = len(latencies)
    return {
        "offered": offered,
        "unsent": unsent,
        "done": done,
        "statuses": statuses,
        "elapsed": elapsed,
        "achieved_rate": done / elapsed,
        "http_p50_ms": 1000 * latencies[done // 2] if done else None,
        "http_p99_ms": 1000 * latencies[min(done - 1, done * 99 // 100)] if done else None,
    }


class Votes:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.port = cfg["port"]
        self.cfg = cfg
        self.headers = {"X-CSRF-Token": cfg["csrf_token"]}
        self.signer = Signer(cfg["secret"])
        self.code = cfg["code"]
        self.questions: list[str] = cfg["questions"]
        self.ok: dict[str, int] = dict.fromkeys(self.questions, 0)

    async def one(self, http: HTTP, i: int) -> int:
        qid = self.questions[i % len(self.questions)]
        status, _, _ = await http.request(
            "POST",
            f"/e/{self.code}/questions/{qid}/vote",
            {},
            cookie=cookie(self.signer, self.cfg),
            headers=self.headers,
        )
        if status == 200:
            self.ok[qid] += 1
        return status


async def votes(cfg: dict[str, Any]) -> dict[str, Any]:
    store = open_store(cfg["redis"])
    event = await store.event_by_code(cfg["code"])
    key = store.key(event.id, "event")  # type: ignore[attr-defined]
    before = {q.id: q.votes for q in (await store.snapshot(event.id)).questions}
    samples: list[tuple[int, int]] = []

    async def sample() -> None:
        while True:
            t = time.time_ns()
            samples.append((t, int(await store.redis.hget(key, "seq"))))  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    job = Votes(cfg)
    result = await open_loop(cfg["rate"], cfg["secs"], job)
    sampler.cancel()
    after = {q.id: q.votes for q in (await store.snapshot(event.id)).questions}
    exact = all(after[q] - before[q] == job.ok[q] for q in job.questions)
    result.update(
        votes_ok=sum(job.ok.values()),
        counts_exact=exact,
        seq_samples=samples,
        end_ns=time.time_ns(),
    )
    await store.close()
    return result


class Asks:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.port = cfg["port"]
        self.cfg = cfg
        self.headers = {"X-CSRF-Token": cfg["csrf_token"]}
        self.signer = Signer(cfg["secret"])
        self.code = cfg["code"]
        self.sent: dict[str, int] = {}
        self.tag = secrets.token_hex(4)

    async def one(self, http: HTTP, i: int) -> int:
        token = f"bench-{self.tag}-{i}-"
        self.sent[token] = time.time_ns()
        status, _, _ = await http.request(
            "POST",
            f"/e/{self.code}/questions",
            {"text": f"Question {token} from the ask-path benchmark?"},
            cookie=cookie(self.signer, self.cfg),
            headers=self.headers,
        )
        return status


async def asks(cfg: dict[str, Any]) -> dict[str, Any]:
    import websockets

    job = Asks(cfg)
    seen: dict[str, int] = {}
    port = cfg["port"]
    async with websockets.connect(
        f"ws://{HOST}:{port}/e/{cfg['code']}/live?role=moderator",
        origin=f"http://{HOST}:{port}",  # type: ignore[arg-type]
        additional_headers={"Cookie": cfg["moderator_cookie"]},
        compression=None,
        max_size=None,
    ) as ws:
        await ws.recv()  # the snapshot

        async def watch() -> None:
            async for text in ws:
                rx = time.time_ns()
                data = json.loads(text)
                for q in data.get("questions", ()):
                    for token in q.get("text", "").split():
                        if token.startswith(f"bench-{job.tag}-"):
                            seen.setdefault(token, rx)

        watcher = asyncio.create_task(watch())
        result = await open_loop(cfg["rate"], cfg["secs"], job)
        deadline = time.monotonic() + 10
        while len(seen) < len(job.sent) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        watcher.cancel()
    lat = sorted((seen[t] - job.sent[t]) / 1e6 for t in seen if t in job.sent)
    n = len(lat)
    result.update(
        asks_seen=n,
        asks_sent=len(job.sent),
        mod_p50_ms=lat[n // 2] if n else None,
        mod_p99_ms=lat[min(n - 1, n * 99 // 100)] if n else None,
        mod_max_ms=lat[-1] if n else None,
    )
    return result


if __name__ == "__main__":
    mode, cfg = sys.argv[1], json.loads(sys.argv[2])
    run = {"votes": votes, "asks": asks}[mode]
    print(json.dumps(asyncio.run(run(cfg))))

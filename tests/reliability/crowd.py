"""A crowd for the burst scenarios: askers with live screens, a moderator, and the checks."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx

from liveqa.store import open_store
from tests.reliability.harness import (
    Asker,
    Outcome,
    Viewer,
    converged,
    diverged,
    percentile,
    truth,
    wait_for,
)


async def event_id(backend: str, code: str) -> str:
    store = open_store(backend)
    try:
        return (await store.event_by_code(code)).id
    finally:
        await store.close()


async def moderator_cookies(base: str, link: str) -> dict[str, str]:
    async with httpx.AsyncClient() as browser:
        response = await browser.get(link.replace("http://127.0.0.1:8000", base))
        assert response.status_code == 303, response.text[:200]
        return dict(browser.cookies.items())


@dataclass
class Crowd:
    """`people` askers, each with a live audience screen, on `bases` in turn; one moderator."""

    backend: str
    code: str
    bases: list[str]
    moderator_link: str
    people: int = 100
    askers: list[Asker] = field(default_factory=list)
    viewers: list[Viewer] = field(default_factory=list)
    event_id: str = ""

    async def gather(self) -> None:
        self.event_id = await event_id(self.backend, self.code)
        for i in range(self.people):
            self.askers.append(Asker(self.bases[i % len(self.bases)], self.code))
        await asyncio.gather(*(a.join() for a in self.askers))
        for i, asker in enumerate(self.askers):
            cookies = asker.cookies
            participant = cookies["liveqa_participant"].strip('"').rsplit(".", 1)[0]
            # Each screen on the other process than its asker, when there are two.
            base = self.bases[(i + 1) % len(self.bases)]
            viewer = Viewer(base, self.code, cookies=cookies, participant=participant)
            self.viewers.append(viewer.start())
        moderator = Viewer(
            self.bases[0],
            self.code,
            role="moderator",
            cookies=await moderator_cookies(self.bases[0], self.moderator_link),
        )
        self.viewers.append(moderator.start())
        await asyncio.wait_for(asyncio.gather(*(v.connected.wait() for v in self.viewers)), 30)

    async def ask(self, each: int, *, spread: float, deadline: float) -> None:
        """Every asker asks `each` questions, paced over about `spread` seconds."""

        start = time.monotonic()

        async def one(n: int, asker: Asker) -> None:
            # A schedule, not pauses: questions held up by an outage go out as soon as it ends.
            for k, at in enumerate(sorted(random.uniform(0, spread) for _ in range(each))):
                await asyncio.sleep(max(0.0, start + at - time.monotonic()))
                await asker.ask(f"Question {k} from asker {n}?", deadline=deadline)

        await asyncio.gather(*(one(n, a) for n, a in enumerate(self.askers)))

    @property
    def outcomes(self) -> list[Outcome]:
        return [o for a in self.askers for o in a.outcomes]

    async def check(self, label: str, back: float, *, converge_within: float = 5.0) -> str:
        """0 acknowledged lost, 0 duplicates, every screen equal to the store; a summary line."""
        last_ack = time.monotonic()
        try:
            await wait_for(
                lambda: converged(self.backend, self.event_id, self.viewers), 30, every=0.2
            )
        except TimeoutError:
            raise AssertionError(
                f"{label}: screens did not converge: "
                f"{await diverged(self.backend, self.event_id, self.viewers)}"
            ) from None
        now = time.monotonic()
        converged_after, after_last_ack = now - back, now - last_ack
        seq, questions = await truth(self.backend, self.event_id)
        outcomes = self.outcomes
        acked = [o for o in outcomes if o.acked]
        stored = {q.id for q in questions}
        lost = [o for o in acked if o.question_id not in stored]
        texts = Counter(q.text for q in questions)
        duplicates = sum(n - 1 for n in texts.values())
        latencies = [t for o in outcomes for t in o.latencies]
        retried = [o for o in outcomes if o.attempts > 1]
        errors = [o.error for o in outcomes if o.error]
        line = (
            f"{label}: {len(acked)}/{len(outcomes)} acked, {len(retried)} retried "
            f"({sum(o.unavailable for o in outcomes)} x 503, "
            f"{sum(o.broken for o in outcomes)} broken connections), "
            f"{len(questions)} stored, {len(lost)} lost, {duplicates} duplicates; "
            f"request p50 {percentile(latencies, 50) * 1000:.0f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms; "
            f"{len(self.viewers)} screens equal to the store (seq {seq}) "
            f"{converged_after:.2f} s after the fault ended, "
            f"{after_last_ack:.2f} s after the last answer; "
            f"snapshots {sum(v.snapshots for v in self.viewers)}, "
            f"reconnects {sum(len(v.closes) for v in self.viewers)}"
        )
        print("\n" + line)
        assert not errors, errors[:5]
        assert len(acked) == len(outcomes)
        assert not lost
        assert duplicates == 0
        assert len(questions) == len(outcomes)
        assert converged_after <= converge_within, line
        return line

    async def close(self) -> None:
        await asyncio.gather(*(v.stop() for v in self.viewers))
        await asyncio.gather(*(a.close() for a in self.askers))


async def during(
    burst: Awaitable[None], fault: Callable[[], Awaitable[None]], *, after: float
) -> float:
    """Run `fault` `after` seconds into `burst`; the time the fault ended (monotonic)."""
    task = asyncio.ensure_future(burst)
    await asyncio.sleep(after)
    await fault()
    back = time.monotonic()
    await task
    return back


def blocked_loop_warnings(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if "event loop blocked" in line]

"""Random sequences of asks, votes, moderator actions, reconnects and Redis restarts.

The system under test is liveqa's own use cases, store, bus and hub (rooms and clients) on a
real SQLite file or a real redis-server; a screen is a hub client whose messages are applied the
way the pages apply them. After every step the invariants are checked against the store, and
every screen must come to show exactly what the store holds.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from liveqa.bus import Bus, open_bus
from liveqa.events import Events
from liveqa.hub import Client, Hub, Room
from liveqa.model import (
    TRANSITIONS,
    VOTABLE,
    Action,
    DomainError,
    EventSettings,
    EventState,
    QuestionState,
)
from liveqa.store import UNAVAILABLE, Store, open_store
from tests.reliability.conftest import DurableRedis
from tests.reliability.harness import key_fields, view_of
from tests.servers import RedisServer, redis_binary

T = TypeVar("T")
PEOPLE = ("ada", "bo", "cy")
ACTIONS = (  # approve and promote twice: more questions get far enough to vote on and to go live
    Action.APPROVE,
    Action.APPROVE,
    Action.PROMOTE,
    Action.DISMISS,
    Action.RESTORE,
    Action.PROMOTE,
    Action.BACK,
    Action.DONE,
    Action.ANSWER,
    Action.EDIT,
    Action.STAR,
)
SETTLE = 5.0


class Screen:
    """A live screen inside the process: a hub client applying what it is sent."""

    def __init__(self, role: str, participant: str) -> None:
        self.role = role
        self.participant = participant
        self.questions: dict[str, dict[str, Any]] = {}
        self.seq = 0
        self.synced = False
        self.regressions: list[tuple[int, int]] = []
        self.client: Client | None = None
        self.room: Room | None = None

    async def send(self, text: str) -> None:
        message = json.loads(text)
        if message["type"] == "snapshot":
            self.questions = {q["id"]: q for q in message["questions"]}
            self.seq = message["seq"]
            self.synced = True
        elif message["type"] == "change":
            # Seqs may skip (votes are coalesced, a change nobody here can see is not sent)
            # but never go back.
            if message["seq"] <= self.seq:
                self.regressions.append((self.seq, message["seq"]))
                return
            for question in message["questions"]:
                self.questions[question["id"]] = question
            for removed in message["removed"]:
                self.questions.pop(removed, None)
            self.seq = message["seq"]

    async def connect(self, hub: Hub, event_id: str) -> None:
        since = self.seq if self.synced else None

        async def catch_up(since: int | None) -> tuple[int, list[str]]:
            assert self.room is not None
            return await self.room.catch_up(since, self.role, self.participant)

        self.client = Client(
            role=self.role,
            participant=self.participant,
            send=self.send,
            catch_up=catch_up,
            since=since,
        )
        self.room = await hub.join(event_id, self.client)
        self.client.start()

    async def disconnect(self, hub: Hub) -> None:
        if self.client is not None and self.room is not None:
            hub.leave(self.room, self.client)
            task = self.client.task
            self.client.close()
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
        self.client = self.room = None

    @property
    def view(self) -> dict[str, tuple[Any, ...]]:
        return {i: key_fields(q) for i, q in self.questions.items()}


class LiveQA(RuleBasedStateMachine):
    backend = ""
    redis: RedisServer | None = None
    restarts = 0
    steps = 0
    done: collections.Counter[str]

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.store: Store = open_store(self.backend)
        self.bus: Bus = open_bus(self.backend if self.redis else "memory://")
        self.events = Events(self.store, self.bus)
        self.hub = Hub(self.store, self.bus)
        self.state: dict[str, QuestionState] = {}
        self.voters: dict[str, set[str]] = {}
        self.screens: list[Screen] = []
        self.keys: dict[str, str] = {}
        self.seq = 0
        self.event_id = ""
        self.premoderation = True
        self.turn = 0

    questions = Bundle("questions")

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def write(self, call: Callable[[], Awaitable[T]]) -> T | DomainError:
        """Run a use case; a refusal is an answer, a store error is retried (same key), as pages do."""

        async def attempt() -> T | DomainError:
            deadline = time.monotonic() + 15
            while True:
                try:
                    return await call()
                except DomainError as error:
                    return error
                except UNAVAILABLE:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)

        return self.run(attempt())

    @initialize(premoderation=st.booleans())
    def create(self, premoderation: bool) -> None:
        self.premoderation = premoderation
        created = self.run(
            self.events.create("Stateful", settings=EventSettings(premoderation=premoderation))
        )
        self.event_id = created.event.id
        if created.event.state is not EventState.OPEN:
            self.run(self.events.set_state(self.event_id, EventState.OPEN, key="open"))
        self.seq = self.run(self.store.snapshot(self.event_id)).seq
        for role, who in (("moderator", ""), ("audience", "ada"), ("audience", "bo")):
            screen = Screen(role, who)
            self.run(screen.connect(self.hub, self.event_id))
            self.screens.append(screen)

    @rule(target=questions, who=st.sampled_from(PEOPLE), n=st.integers(0, 999))
    def ask(self, who: str, n: int) -> str:
        key = f"ask-{who}-{n}-{len(self.state)}"

        async def ask() -> Any:
            return await self.events.ask(
                self.event_id, text=f"Question {n}?", participant=who, key=key
            )

        question = self.write(ask)
        assert not isinstance(question, DomainError), question
        self.done["ask"] += 1
        self.state[question.id] = (
            QuestionState.PENDING if self.premoderation else QuestionState.QUEUED
        )
        self.voters[question.id] = set()
        self.keys[question.id] = key
        # Asking again with the same key (a retry after a lost answer) changes nothing.
        again = self.write(ask)
        assert not isinstance(again, DomainError) and again.id == question.id
        return str(question.id)

    @rule(question=questions, who=st.sampled_from(PEOPLE), up=st.booleans())
    def vote(self, question: str, who: str, up: bool) -> None:
        key = f"vote-{who}-{question}-{up}-{len(self.voters[question])}-{self.seq}"
        result = self.write(
            lambda: self.events.vote(self.event_id, question, participant=who, key=key, up=up)
        )
        allowed = self.state[question] in VOTABLE and (up != (who in self.voters[question]))
        assert isinstance(result, DomainError) != allowed, (result, self.state[question], up)
        self.done["vote" if allowed else "vote refused"] += 1
        if allowed:
            (self.voters[question].add if up else self.voters[question].discard)(who)

    @rule(question=questions, action=st.sampled_from(ACTIONS), n=st.integers(0, 9))
    def moderate(self, question: str, action: Action, n: int) -> None:
        key = f"{action.value}-{question}-{self.seq}"
        ev = self.events
        before = self.state[question]
        calls = {
            Action.APPROVE: lambda: ev.approve(self.event_id, question, key=key),
            Action.DISMISS: lambda: ev.dismiss(self.event_id, question, key=key, reason="off"),
            Action.RESTORE: lambda: ev.restore(self.event_id, question, key=key),
            Action.PROMOTE: lambda: ev.promote(self.event_id, question, key=key),
            Action.BACK: lambda: ev.back(self.event_id, question, key=key),
            Action.DONE: lambda: ev.done(self.event_id, question, key=key),
            Action.ANSWER: lambda: ev.answer(self.event_id, question, key=key, text=f"A{n}"),
            Action.EDIT: lambda: ev.edit(self.event_id, question, key=key, text=f"Edited {n}?"),
            Action.STAR: lambda: ev.star(self.event_id, question, key=key, starred=n % 2 == 0),
        }
        result = self.write(calls[action])
        legal = (action, before) in TRANSITIONS
        assert isinstance(result, DomainError) != legal, (action, before, result)
        self.done[action.value if legal else "refused"] += 1
        if isinstance(result, DomainError):
            return
        if action is Action.PROMOTE:
            for other, state in self.state.items():
                if state is QuestionState.LIVE:
                    self.state[other] = QuestionState.ANSWERED
        self.state[question] = result.state
        target = TRANSITIONS[(action, before)]
        assert result.state is (target or result.state)
        if target is None:  # restore goes back to where it was dismissed from
            assert result.state in (QuestionState.PENDING, QuestionState.QUEUED)

    @precondition(lambda self: self.turn % 4 == 0)  # else reconnects crowd out the rest
    @rule(i=st.integers(0, 2))
    def reconnect(self, i: int) -> None:
        self.done["reconnect"] += 1
        screen = self.screens[i]
        self.run(screen.disconnect(self.hub))
        self.run(screen.connect(self.hub, self.event_id))

    @precondition(lambda self: self.redis is not None and self.turn % 4 == 2)
    @rule()
    def restart_redis(self) -> None:
        assert self.redis is not None
        self.redis.kill()
        self.redis.start()
        type(self).restarts += 1

    @invariant()
    def store_holds_the_truth(self) -> None:
        if not self.event_id:
            return
        type(self).steps += 1
        self.turn += 1
        snapshot = self.run(self._snapshot())
        assert snapshot.seq >= self.seq, "seq went backwards"
        self.seq = snapshot.seq
        stored = {q.id: q for q in snapshot.questions}
        assert set(stored) == set(self.state)
        for qid, question in stored.items():
            assert question.state is self.state[qid], (qid, question.state, self.state[qid])
            assert question.votes == len(self.voters[qid]) >= 0
        assert sum(q.state is QuestionState.LIVE for q in stored.values()) <= 1
        # Every screen comes to show exactly what the store holds, change by change.
        self.run(self._settle(snapshot.seq, list(snapshot.questions)))
        assert not [s.regressions for s in self.screens if s.regressions]

    async def _snapshot(self) -> Any:
        for _ in range(75):
            try:
                return await self.store.snapshot(self.event_id)
            except UNAVAILABLE:
                await asyncio.sleep(0.2)
        return await self.store.snapshot(self.event_id)

    async def _settle(self, seq: int, questions: list[Any]) -> None:
        deadline = time.monotonic() + SETTLE
        while True:
            pending = [
                s
                for s in self.screens
                if not s.synced
                # Moderators see every change; the audience and panel are sent nothing for
                # changes they cannot see, so their seq may stay behind with the same view.
                or (s.seq != seq if s.role == "moderator" else s.seq > seq)
                or s.view != view_of(questions, s.role, s.participant)
            ]
            if not pending:
                return
            for s in pending:
                if s.client is not None and s.client.cut_off:
                    # Its sender failed (the store was away): reconnect, as a page would.
                    await s.disconnect(self.hub)
                    await s.connect(self.hub, self.event_id)
            if time.monotonic() > deadline:
                s = pending[0]
                raise AssertionError(
                    f"{s.role} screen at seq {s.seq}, store at {seq}: "
                    f"{s.view} != {view_of(questions, s.role, s.participant)}"
                )
            await asyncio.sleep(0.01)

    def teardown(self) -> None:
        async def close() -> None:
            for screen in self.screens:
                await screen.disconnect(self.hub)
            await self.hub.close()
            await self.bus.close()
            await self.store.close()

        self.run(close())
        self.loop.close()


def run_machine(backend: str, redis: RedisServer | None, examples: int, steps: int) -> None:
    machine = type(
        "Machine",
        (LiveQA,),
        {"backend": backend, "redis": redis, "done": collections.Counter()},
    )
    test = machine.TestCase
    test.settings = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    started = time.monotonic()
    test().runTest()
    print(
        f"\nstateful ({'redis' if redis else 'sqlite'}): {examples} sequences of up to {steps} "
        f"steps, {machine.steps} checked states, {machine.restarts} Redis restarts, "
        f"invariants held, {time.monotonic() - started:.1f} s; {dict(machine.done)}"
    )


def test_stateful_sqlite(tmp_path: Path) -> None:
    run_machine(f"sqlite:///{tmp_path}/stateful.db", None, examples=30, steps=30)


@pytest.mark.slow
@pytest.mark.timeout(300)  # each Redis restart costs a few hundred ms; shared CPUs vary
def test_stateful_redis() -> None:
    if redis_binary() is None:
        pytest.skip("redis-server is not installed")
    server = DurableRedis().start()
    try:
        run_machine(server.url, server, examples=60, steps=30)
    finally:
        server.close()

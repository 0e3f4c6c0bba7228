"""Where events and questions live: one interface, one module per backend, chosen by URL."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis.exceptions import RedisError

from liveqa.model import Change, Event, EventState, Question

LOG_KEEP = 10_000
REDIS_SCHEMES = ("redis:", "rediss:", "unix:", "redis+sentinel:")
IDEMPOTENCY_TTL = 24 * 3600

# What a store raises when it cannot be reached in time (Redis stopped, frozen, restarting,
# loading; SQLite locked). For a write the outcome is unknown: the caller retries with the
# same idempotency key, which makes the retry safe.
UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, TimeoutError, sqlite3.OperationalError)


def unavailable() -> dict[str, Any]:
    """The body of a 503: the pages' scripts retry the same request with the same key."""
    return {
        "error": "unavailable",
        "message": "The server could not reach its database just now. Please try again.",
        "retry": True,
    }


@dataclass(frozen=True)
class Write:
    """One atomic mutation a use case asks for; the store bumps `seq` and logs it.

    Each question is written only if the stored one still has `rev - 1` (a new one has rev 1),
    so two moderators acting on one question get one success and one Conflict. Votes are
    counted by the store alone and never change `rev`.
    `live` is the id of the question the caller saw on screen ("" for none); when given, the
    commit fails if another question went live meanwhile, so at most one is ever live.
    `event_states`, when given, are the event states the commit may happen in.
    """

    type: str
    key: str
    questions: tuple[Question, ...] = ()
    live: str | None = None
    event: Event | None = None
    event_states: frozenset[EventState] | None = None


@dataclass(frozen=True)
class Snapshot:
    event: Event
    seq: int
    questions: tuple[Question, ...]


class Store(Protocol):
    # True: `commit` and `vote` publish the change on the bus's channel for the event
    # (`messages.channel`) in the same atomic step, so the use cases do not. A Redis store
    # shares its server with the Redis bus.
    announces: bool

    async def close(self) -> None: ...

    async def add_event(self, event: Event) -> None:
        """Save a new event; CodeTaken if its join code is in use."""

    async def event(self, event_id: str) -> Event: ...

    async def event_by_code(self, code: str) -> Event: ...

    async def events(self) -> list[Event]: ...

    async def question(self, event_id: str, question_id: str) -> Question: ...

    async def snapshot(self, event_id: str) -> Snapshot:
        """The event, its questions and `seq`, read at one instant."""

    async def commit(self, event_id: str, write: Write) -> Change:
        """Apply `write` atomically, or return the first result if its key was seen before.

        Raises Conflict when an expectation no longer holds, EventClosed when the event left
        `write.event_states`.
        """

    async def vote(
        self, event_id: str, question_id: str, participant: str, up: bool, key: str
    ) -> Change:
        """Count or withdraw one participant's vote, at most once per question."""

    async def voted(self, event_id: str, participant: str) -> set[str]:
        """Ids of the questions this participant has a vote on."""

    async def changes_since(self, event_id: str, seq: int) -> list[Change] | None:
        """Changes after `seq`, oldest first, carrying the questions as they are now.

        None when the log no longer reaches back that far (the caller needs a snapshot).
        """

    async def recall(self, event_id: str, key: str) -> Change | None:
        """The change an idempotency key produced, if it was committed."""

    async def join(self, event_id: str, participant: str) -> None:
        """Note that a participant opened the event, for the event's report."""

    async def people(self, event_id: str) -> tuple[int, int]:
        """How many participants joined the event, and how many have a vote in it."""

    async def restore(self, event: Event, questions: Sequence[Question]) -> None:
        """Save an imported event with its questions as they are, vote counts included."""

    async def delete_event(self, event_id: str) -> None:
        """Remove the event and every trace of its questions, votes and log."""


def open_store(url: str, *, log_keep: int = LOG_KEEP) -> Store:
    """The store for `url`: `sqlite:///path.db` or `redis://host:port/db`."""
    if url.startswith("sqlite:"):
        from liveqa.store.sqlite import SQLiteStore

        return SQLiteStore(url, log_keep=log_keep)
    if url.startswith(REDIS_SCHEMES):
        from liveqa.store.redis import RedisStore

        return RedisStore(url, log_keep=log_keep)
    raise ValueError(f"No store for {url!r}: use sqlite:///path.db or redis://host:port/0")

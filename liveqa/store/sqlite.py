"""The embedded store: one SQLite file (WAL, synchronous=FULL), written by one thread."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from liveqa.model import (
    VOTABLE,
    AlreadyVoted,
    Change,
    CodeTaken,
    Conflict,
    Event,
    EventClosed,
    IllegalTransition,
    NotFound,
    NotVoted,
    Question,
    QuestionState,
)
from liveqa.store import IDEMPOTENCY_TTL, Snapshot, Write

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0,
    live TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS questions (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    data TEXT NOT NULL,
    rev INTEGER NOT NULL,
    votes INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS questions_by_event ON questions(event_id, created_at);
CREATE TABLE IF NOT EXISTS votes (
    event_id TEXT NOT NULL,
    question_id TEXT NOT NULL REFERENCES questions(id) ON DELETE CASCADE,
    participant TEXT NOT NULL,
    PRIMARY KEY (question_id, participant)
);
CREATE INDEX IF NOT EXISTS votes_by_participant ON votes(event_id, participant);
CREATE TABLE IF NOT EXISTS changes (
    event_id TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    question_ids TEXT NOT NULL,
    has_event INTEGER NOT NULL,
    PRIMARY KEY (event_id, seq)
);
CREATE TABLE IF NOT EXISTS participants (
    event_id TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    participant TEXT NOT NULL,
    PRIMARY KEY (event_id, participant)
);
CREATE TABLE IF NOT EXISTS idempotency (
    event_id TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    question_ids TEXT NOT NULL,
    has_event INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (event_id, key)
);
"""


def sqlite_path(url: str) -> str:
    # sqlite:///liveqa.db is relative, sqlite:////var/lib/liveqa.db absolute (SQLAlchemy's rule).
    rest = url.removeprefix("sqlite:").removeprefix("//")
    path = rest.removeprefix("/") if not rest.startswith("//") else rest[1:]
    if not path:
        raise ValueError(f"{url!r} names no file: use sqlite:///liveqa.db")
    return path


class Database:
    """One SQLite file (WAL, synchronous=FULL) whose connection belongs to one thread.

    Every statement runs on that thread, in order: one writer, and no locking in Python.
    """

    def __init__(self, url: str, schema: str, name: str) -> None:
        self.path = sqlite_path(url)
        self.schema = schema
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA secure_delete=ON")  # a purged question leaves no bytes behind
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(self.schema)
            self._db = db
        return self._db

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._connect()))

    async def transaction(
        self, fn: Callable[[sqlite3.Connection], T], begin: str = "BEGIN IMMEDIATE"
    ) -> T:
        """`fn` in one transaction: IMMEDIATE for writes, plain BEGIN for consistent reads."""

        def run(db: sqlite3.Connection) -> T:
            db.execute(begin)
            try:
                result = fn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        return await self.run(run)

    async def close(self) -> None:
        def close(db: sqlite3.Connection) -> None:
            db.close()

        if self._db is not None:
            await self.run(close)
            self._db = None
        self._executor.shutdown(wait=True)


class SQLiteStore:
    announces = False  # the use cases ring the bus themselves

    def __init__(self, url: str, *, log_keep: int) -> None:
        self.db = Database(url, SCHEMA, "liveqa-sqlite")
        self.path = self.db.path
        self.log_keep = log_keep
        self._run = self.db.run
        self._transaction = self.db.transaction

    async def close(self) -> None:
        await self.db.close()

    async def add_event(self, event: Event) -> None:
        def add(db: sqlite3.Connection) -> None:
            try:
                db.execute(
                    "INSERT INTO events (id, code, data) VALUES (?, ?, ?)",
                    (event.id, event.code, json.dumps(event.to_record())),
                )
            except sqlite3.IntegrityError:
                raise CodeTaken(f"The event code {event.code} is taken.") from None

        await self._transaction(add)

    async def event(self, event_id: str) -> Event:
        return await self._run(lambda db: _event(db, "id", event_id))

    async def event_by_code(self, code: str) -> Event:
        return await self._run(lambda db: _event(db, "code", code.upper()))

    async def events(self) -> list[Event]:
        def rows(db: sqlite3.Connection) -> list[Event]:
            cursor = db.execute("SELECT data FROM events ORDER BY rowid DESC")
            return [Event.from_record(json.loads(data)) for (data,) in cursor]

        return await self._run(rows)

    async def question(self, event_id: str, question_id: str) -> Question:
        return await self._run(lambda db: _question(db, event_id, question_id))

    async def snapshot(self, event_id: str) -> Snapshot:
        def read(db: sqlite3.Connection) -> Snapshot:
            event = _event(db, "id", event_id)
            (seq,) = db.execute("SELECT seq FROM events WHERE id = ?", (event_id,)).fetchone()
            cursor = db.execute(
                "SELECT data, rev, votes FROM questions WHERE event_id = ? ORDER BY created_at",
                (event_id,),
            )
            questions = tuple(_load(*row) for row in cursor)
            return Snapshot(event=event, seq=seq, questions=questions)

        return await self._transaction(read, begin="BEGIN")

    async def commit(self, event_id: str, write: Write) -> Change:
        def commit(db: sqlite3.Connection) -> Change:
            earlier = _recall(db, event_id, write.key)
            if earlier is not None:
                return earlier
            row = db.execute("SELECT live, data FROM events WHERE id = ?", (event_id,)).fetchone()
            if row is None:
                raise NotFound("No such event.")
            live, data = row
            if write.event_states is not None:
                state = Event.from_record(json.loads(data)).state
                if state not in write.event_states:
                    raise EventClosed("The event changed state just now; reload to see it.")
            if write.live is not None and write.live != live:
                raise Conflict("Another question went on screen just now; look again.")
            for question in write.questions:
                found = db.execute(
                    "SELECT rev FROM questions WHERE id = ? AND event_id = ?",
                    (question.id, event_id),
                ).fetchone()
                if (found[0] if found else 0) != question.rev - 1:
                    raise Conflict("Someone else changed this question just now; look again.")
            for question in write.questions:
                db.execute(
                    "INSERT INTO questions (id, event_id, data, rev, votes, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE"
                    " SET data = excluded.data, rev = excluded.rev",
                    (
                        question.id,
                        event_id,
                        _dump(question),
                        question.rev,
                        question.votes,
                        question.created_at,
                    ),
                )
                if question.state is QuestionState.LIVE:
                    live = question.id
                elif live == question.id:
                    live = ""
            if write.event is not None:
                db.execute(
                    "UPDATE events SET data = ? WHERE id = ?",
                    (json.dumps(write.event.to_record()), event_id),
                )
            db.execute("UPDATE events SET live = ? WHERE id = ?", (live, event_id))
            ids = [q.id for q in write.questions]
            return _log(self, db, event_id, write.type, ids, write.event is not None, write.key)

        return await self._transaction(commit)

    async def vote(
        self, event_id: str, question_id: str, participant: str, up: bool, key: str
    ) -> Change:
        def vote(db: sqlite3.Connection) -> Change:
            earlier = _recall(db, event_id, key)
            if earlier is not None:
                return earlier
            event = _event(db, "id", event_id)
            event.check_can_vote()
            question = _question(db, event_id, question_id)
            if question.state not in VOTABLE:
                raise IllegalTransition("Voting on this question has ended.")
            if up:
                inserted = db.execute(
                    "INSERT OR IGNORE INTO votes (event_id, question_id, participant)"
                    " VALUES (?, ?, ?)",
                    (event_id, question_id, participant),
                ).rowcount
                if not inserted:
                    raise AlreadyVoted("You have already voted for this question.")
            else:
                deleted = db.execute(
                    "DELETE FROM votes WHERE question_id = ? AND participant = ?",
                    (question_id, participant),
                ).rowcount
                if not deleted:
                    raise NotVoted("You have not voted for this question.")
            db.execute(
                "UPDATE questions SET votes = votes + ? WHERE id = ?",
                (1 if up else -1, question_id),
            )
            return _log(self, db, event_id, "vote", [question_id], False, key)

        return await self._transaction(vote)

    async def voted(self, event_id: str, participant: str) -> set[str]:
        def read(db: sqlite3.Connection) -> set[str]:
            cursor = db.execute(
                "SELECT question_id FROM votes WHERE event_id = ? AND participant = ?",
                (event_id, participant),
            )
            return {question_id for (question_id,) in cursor}

        return await self._run(read)

    async def changes_since(self, event_id: str, seq: int) -> list[Change] | None:
        def read(db: sqlite3.Connection) -> list[Change] | None:
            row = db.execute("SELECT seq FROM events WHERE id = ?", (event_id,)).fetchone()
            if row is None:
                raise NotFound("No such event.")
            if seq == row[0]:
                return []
            if seq > row[0]:
                return None
            rows = db.execute(
                "SELECT seq, type, question_ids, has_event FROM changes"
                " WHERE event_id = ? AND seq > ? ORDER BY seq",
                (event_id, seq),
            ).fetchall()
            if not rows or rows[0][0] != seq + 1:
                return None
            return [_change(db, event_id, *r) for r in rows]

        return await self._transaction(read, begin="BEGIN")

    async def recall(self, event_id: str, key: str) -> Change | None:
        return await self._run(lambda db: _recall(db, event_id, key))

    async def join(self, event_id: str, participant: str) -> None:
        def join(db: sqlite3.Connection) -> None:
            # A page served while its event was being purged must not bring it back.
            db.execute(
                "INSERT OR IGNORE INTO participants (event_id, participant)"
                " SELECT id, ? FROM events WHERE id = ?",
                (participant, event_id),
            )

        await self._run(join)

    async def people(self, event_id: str) -> tuple[int, int]:
        def count(db: sqlite3.Connection) -> tuple[int, int]:
            (joined,) = db.execute(
                "SELECT COUNT(*) FROM participants WHERE event_id = ?", (event_id,)
            ).fetchone()
            (voters,) = db.execute(
                "SELECT COUNT(DISTINCT participant) FROM votes WHERE event_id = ?", (event_id,)
            ).fetchone()
            return joined, voters

        return await self._run(count)

    async def restore(self, event: Event, questions: Sequence[Question]) -> None:
        def restore(db: sqlite3.Connection) -> None:
            try:
                db.execute(
                    "INSERT INTO events (id, code, data, live) VALUES (?, ?, ?, ?)",
                    (
                        event.id,
                        event.code,
                        json.dumps(event.to_record()),
                        next((q.id for q in questions if q.state is QuestionState.LIVE), ""),
                    ),
                )
            except sqlite3.IntegrityError:
                raise CodeTaken(f"The event code {event.code} is taken.") from None
            db.executemany(
                "INSERT INTO questions (id, event_id, data, rev, votes, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(q.id, event.id, _dump(q), q.rev, q.votes, q.created_at) for q in questions],
            )

        await self._transaction(restore)

    async def delete_event(self, event_id: str) -> None:
        def delete(db: sqlite3.Connection) -> None:
            # Foreign keys cascade to questions, votes, changes, participants and keys.
            db.execute("DELETE FROM events WHERE id = ?", (event_id,))

        await self._transaction(delete)
        # Copy the zeroed pages into the database file now; PASSIVE never blocks other work.
        await self._run(lambda db: db.execute("PRAGMA wal_checkpoint(PASSIVE)"))


def _dump(question: Question) -> str:
    return json.dumps(question.to_dict())


def _load(data: str, rev: int, votes: int) -> Question:
    return Question.from_dict(json.loads(data) | {"rev": rev, "votes": votes})


def _event(db: sqlite3.Connection, column: str, value: str) -> Event:
    row = db.execute(f"SELECT data FROM events WHERE {column} = ?", (value,)).fetchone()
    if row is None:
        raise NotFound("There is no event with that code.")
    return Event.from_record(json.loads(row[0]))


def _question(db: sqlite3.Connection, event_id: str, question_id: str) -> Question:
    row = db.execute(
        "SELECT data, rev, votes FROM questions WHERE id = ? AND event_id = ?",
        (question_id, event_id),
    ).fetchone()
    if row is None:
        raise NotFound("There is no such question in this event.")
    return _load(*row)


def _questions(db: sqlite3.Connection, event_id: str, ids: Iterable[str]) -> tuple[Question, ...]:
    found = []
    for question_id in ids:
        row = db.execute(
            "SELECT data, rev, votes FROM questions WHERE id = ? AND event_id = ?",
            (question_id, event_id),
        ).fetchone()
        if row is not None:
            found.append(_load(*row))
    return tuple(found)


def _change(
    db: sqlite3.Connection, event_id: str, seq: int, type: str, ids: str, has_event: Any
) -> Change:
    return Change(
        seq=seq,
        type=type,
        questions=_questions(db, event_id, filter(None, ids.split(","))),
        event=_event(db, "id", event_id) if has_event else None,
    )


def _log(
    store: SQLiteStore,
    db: sqlite3.Connection,
    event_id: str,
    type: str,
    ids: list[str],
    has_event: bool,
    key: str,
) -> Change:
    (seq,) = db.execute(
        "UPDATE events SET seq = seq + 1 WHERE id = ? RETURNING seq", (event_id,)
    ).fetchone()
    db.execute(
        "INSERT INTO changes (event_id, seq, type, question_ids, has_event) VALUES (?, ?, ?, ?, ?)",
        (event_id, seq, type, ",".join(ids), int(has_event)),
    )
    db.execute(
        "DELETE FROM changes WHERE event_id = ? AND seq <= ?", (event_id, seq - store.log_keep)
    )
    if key:
        now = time.time()
        db.execute(
            "INSERT INTO idempotency"
            " (event_id, key, seq, type, question_ids, has_event, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event_id, key, seq, type, ",".join(ids), int(has_event), now + IDEMPOTENCY_TTL),
        )
        db.execute("DELETE FROM idempotency WHERE expires_at < ?", (now,))
    return _change(db, event_id, seq, type, ",".join(ids), has_event)


def _recall(db: sqlite3.Connection, event_id: str, key: str) -> Change | None:
    if not key:
        return None
    row = db.execute(
        "SELECT seq, type, question_ids, has_event FROM idempotency"
        " WHERE event_id = ? AND key = ? AND expires_at >= ?",
        (event_id, key, time.time()),
    ).fetchone()
    return _change(db, event_id, *row) if row else None

"""Server-side sessions and organiser accounts, in the same place as the events.

A session id is a 256-bit bearer secret kept only in an HttpOnly cookie; the backend stores its
SHA-256, so a leaked database or Redis dump holds no usable cookie. Deleting the record (sign-out,
a new link, an expiry) ends the session everywhere at once, open websockets included.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from liveqa.store.sqlite import Database

T = TypeVar("T")

ORGANISER_TTL = 12 * 3600
LINK_TTL = 7 * 24 * 3600
PREFIX = "liveqa"


@dataclass(frozen=True)
class Session:
    id: str
    expires_at: float
    organiser: str = ""
    # The tail of the organiser's password hash at sign-in: a new password ends the session.
    credential: str = ""
    # "event_id:role" -> the first 16 hex digits of that role's key hash when it was granted, so
    # a regenerated or revoked link takes what it unlocked with it.
    grants: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {"organiser": self.organiser, "credential": self.credential}
        return json.dumps(data | {"grants": dict(self.grants), "expires_at": self.expires_at})

    @classmethod
    def from_json(cls, session_id: str, raw: str) -> Session:
        data = json.loads(raw)
        return cls(
            id=session_id,
            expires_at=float(data["expires_at"]),
            organiser=str(data.get("organiser", "")),
            credential=str(data.get("credential", "")),
            grants={str(k): str(v) for k, v in data.get("grants", {}).items()},
        )


def new_session(
    *, organiser: str = "", credential: str = "", grants: Mapping[str, str] | None = None
) -> Session:
    ttl = ORGANISER_TTL if organiser else LINK_TTL
    return Session(
        id=secrets.token_urlsafe(32),
        expires_at=time.time() + ttl,
        organiser=organiser,
        credential=credential,
        grants=dict(grants or {}),
    )


def digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions(Protocol):
    async def close(self) -> None: ...

    async def save(self, session: Session) -> None: ...

    async def get(self, session_id: str) -> Session | None:
        """The session, or None when it never existed, was ended or has expired."""

    async def delete(self, session_id: str) -> None: ...

    async def add_organiser(self, name: str, password_hash: str) -> None:
        """Create an organiser, or give an existing one a new password."""

    async def password_hash(self, name: str) -> str | None: ...

    async def has_organisers(self) -> bool: ...


def open_sessions(url: str) -> Sessions:
    if url.startswith("sqlite:"):
        return SQLiteSessions(url)
    return RedisSessions(url)


SCHEMA = """
CREATE TABLE IF NOT EXISTS organisers (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""


class SQLiteSessions:
    """Tables beside the events in the same file, on their own connection and thread."""

    def __init__(self, url: str) -> None:
        self.db = Database(url, SCHEMA, "liveqa-sessions")
        self._run = self.db.run

    async def close(self) -> None:
        await self.db.close()

    async def save(self, session: Session) -> None:
        def save(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM sessions WHERE expires_at < ?", (time.time(),))
            db.execute(
                "INSERT OR REPLACE INTO sessions (id_hash, data, expires_at) VALUES (?, ?, ?)",
                (digest(session.id), session.to_json(), session.expires_at),
            )

        await self._run(save)

    async def get(self, session_id: str) -> Session | None:
        def get(db: sqlite3.Connection) -> Session | None:
            row = db.execute(
                "SELECT data FROM sessions WHERE id_hash = ? AND expires_at > ?",
                (digest(session_id), time.time()),
            ).fetchone()
            return Session.from_json(session_id, row[0]) if row else None

        return await self._run(get)

    async def delete(self, session_id: str) -> None:
        await self._run(
            lambda db: db.execute("DELETE FROM sessions WHERE id_hash = ?", (digest(session_id),))
        )

    async def add_organiser(self, name: str, password_hash: str) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT INTO organisers (name, password_hash, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash",
                (name, password_hash, time.time()),
            )
        )

    async def password_hash(self, name: str) -> str | None:
        def get(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT password_hash FROM organisers WHERE name = ?", (name,)
            ).fetchone()
            return str(row[0]) if row else None

        return await self._run(get)

    async def has_organisers(self) -> bool:
        return await self._run(
            lambda db: db.execute("SELECT 1 FROM organisers LIMIT 1").fetchone() is not None
        )


class RedisSessions:
    """One string per session with Redis' own expiry; every app process sees the same ones."""

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        from liveqa.store.redis import connect  # also understands redis+sentinel://

        self.redis: Any = connect(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )

    async def close(self) -> None:
        await self.redis.aclose()

    async def save(self, session: Session) -> None:
        ttl = max(1, int(session.expires_at - time.time()))
        await self.redis.set(_session_key(session.id), session.to_json(), ex=ttl)

    async def get(self, session_id: str) -> Session | None:
        raw = await self.redis.get(_session_key(session_id))
        return Session.from_json(session_id, raw) if raw else None

    async def delete(self, session_id: str) -> None:
        await self.redis.delete(_session_key(session_id))

    async def add_organiser(self, name: str, password_hash: str) -> None:
        await self.redis.hset(f"{PREFIX}:organisers", name, password_hash)

    async def password_hash(self, name: str) -> str | None:
        value = await self.redis.hget(f"{PREFIX}:organisers", name)
        return str(value) if value is not None else None

    async def has_organisers(self) -> bool:
        return bool(await self.redis.hlen(f"{PREFIX}:organisers"))


def _session_key(session_id: str) -> str:
    return f"{PREFIX}:session:{digest(session_id)}"

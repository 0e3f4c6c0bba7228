"""What the security layer needs at run time: sessions, organisers, rate limits, the secret."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from liveqa.limits import Limits, open_counter
from liveqa.passwords import hash_password
from liveqa.sessions import Session, Sessions, open_sessions
from liveqa.settings import Settings

logger = logging.getLogger("liveqa.security")

FIRST_ORGANISER = "admin"


@dataclass
class Security:
    settings: Settings
    secret: str
    sessions: Sessions
    limits: Limits

    @classmethod
    async def open(cls, settings: Settings) -> Security:
        sessions = open_sessions(settings.backend)
        counter = open_counter(settings.backend)
        security = cls(
            settings=settings,
            secret=settings.secret_key,
            sessions=sessions,
            limits=Limits(
                counter=counter,
                ask=settings.limit_ask,
                vote=settings.limit_vote,
                new_voters=settings.limit_new_voters,
                lookups=settings.limit_lookups,
            ),
        )
        try:
            await security.first_organiser()
        except BaseException:
            await security.close()
            raise
        return security

    async def first_organiser(self) -> None:
        """With LIVEQA_ADMIN_PASSWORD set and no organiser yet, create `admin` with it."""
        password = self.settings.admin_password
        if password and not await self.sessions.has_organisers():
            await self.sessions.add_organiser(FIRST_ORGANISER, hash_password(password))
            logger.info("created the organiser %r from LIVEQA_ADMIN_PASSWORD", FIRST_ORGANISER)

    async def session(self, session_id: str) -> Session | None:
        """The live session with this id: not ended, not expired, its password not changed."""
        session = await self.sessions.get(session_id)
        if session is not None and session.organiser:
            stored = await self.sessions.password_hash(session.organiser)
            if stored is None or not hmac.compare_digest(stored[-16:], session.credential):
                return None
        return session

    async def close(self) -> None:
        await self.sessions.close()
        await self.limits.counter.close()

"""The use cases: the only code that changes events and questions, and that announces changes.

Each one validates with the model, commits to the store atomically (apply, bump `seq`, log the
change) and then publishes the change, unless the store announces it in the commit itself (the
Redis store does, from the same script: one command less, and no commit without its doorbell).
Each write carries an idempotency key: repeating the key returns the first result and changes
nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from liveqa import export, messages, passwords
from liveqa.bus import Bus
from liveqa.model import (
    ASKING,
    MAX_ANSWER_LENGTH,
    MAX_REASON_LENGTH,
    MODERATING,
    Action,
    Change,
    Event,
    EventSettings,
    EventState,
    InvalidInput,
    Question,
    QuestionState,
    clean_code,
    clean_line,
    clean_panelist,
    clean_text,
    new_event,
    new_question,
)
from liveqa.store import Store, Write

logger = logging.getLogger("liveqa.events")
MIN_PASSCODE_LENGTH, MAX_PASSCODE_LENGTH = 4, 40


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A bearer secret for a moderator or panel link: 128 bits and more."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Created:
    event: Event
    moderator_key: str
    panel_key: str


class Events:
    def __init__(self, store: Store, bus: Bus, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock

    async def create(
        self,
        title: str,
        *,
        code: str = "",
        description: str = "",
        panelists: tuple[str, ...] = (),
        settings: EventSettings | None = None,
        draft: bool = False,
    ) -> Created:
        """A new event, open at once or (`draft`) set up first and opened later."""
        moderator_key, panel_key = new_key(), new_key()
        event = new_event(
            title=title,
            now=self.clock(),
            code=code,
            description=description,
            panelists=panelists,
            settings=settings,
            moderator_key_hash=hash_key(moderator_key),
            panel_key_hash=hash_key(panel_key),
        )
        if draft:
            event = dataclasses.replace(event, state=EventState.DRAFT)
        await self.store.add_event(event)
        return Created(event=event, moderator_key=moderator_key, panel_key=panel_key)

    async def set_passcode(self, event_id: str, passcode: str) -> Event:
        """Ask the audience for `passcode` before they see or ask anything; "" removes it.

        A new passcode turns away everyone who entered the old one.
        """
        passcode = clean_line(passcode, limit=MAX_PASSCODE_LENGTH, what="passcode")
        if passcode and len(passcode) < MIN_PASSCODE_LENGTH:
            raise InvalidInput(f"A passcode needs at least {MIN_PASSCODE_LENGTH} characters.")
        stored = await asyncio.to_thread(passwords.hash_password, passcode) if passcode else ""
        event = await self.store.event(event_id)
        event = dataclasses.replace(event, passcode_hash=stored)
        return await self._save_event(event, uuid.uuid4().hex)

    async def new_links(self, event_id: str) -> Created:
        """Fresh moderator and panel keys; the old links, and what they unlocked, stop working.

        Only hashes are stored, so this is also how an organiser gets to see the links again.
        """
        moderator_key, panel_key = new_key(), new_key()
        event = await self.store.event(event_id)
        event = dataclasses.replace(
            event, moderator_key_hash=hash_key(moderator_key), panel_key_hash=hash_key(panel_key)
        )
        event = await self._save_event(event, uuid.uuid4().hex)
        return Created(event=event, moderator_key=moderator_key, panel_key=panel_key)

    async def ask(
        self,
        event_id: str,
        *,
        text: str,
        participant: str,
        key: str,
        name: str = "",
        panelist: str = "",
    ) -> Question:
        key = _scoped(participant, key)
        if (earlier := await self.store.recall(event_id, key)) is not None:
            return earlier.questions[0]
        event = await self.store.event(event_id)
        question = new_question(
            event,
            text=text,
            participant=participant,
            now=self.clock(),
            name=name,
            panelist=panelist,
        )
        write = Write(type="question.asked", key=key, questions=(question,), event_states=ASKING)
        return (await self._commit(event_id, write)).questions[0]

    async def vote(
        self, event_id: str, question_id: str, *, participant: str, key: str, up: bool = True
    ) -> Question:
        change = await self.store.vote(
            event_id, question_id, participant, up, _scoped(participant, key)
        )
        await self._publish(event_id, change)
        return change.questions[0]

    async def approve(self, event_id: str, question_id: str, *, key: str) -> Question:
        return await self._move(event_id, question_id, Action.APPROVE, key)

    async def dismiss(
        self, event_id: str, question_id: str, *, key: str, reason: str = ""
    ) -> Question:
        reason = clean_line(reason, limit=MAX_REASON_LENGTH, what="reason")
        return await self._move(event_id, question_id, Action.DISMISS, key, reason=reason)

    async def restore(self, event_id: str, question_id: str, *, key: str) -> Question:
        return await self._move(event_id, question_id, Action.RESTORE, key, reason="")

    async def edit(self, event_id: str, question_id: str, *, text: str, key: str) -> Question:
        event = await self.store.event(event_id)
        text = clean_text(text, limit=event.settings.max_length, what="question")
        return await self._move(event_id, question_id, Action.EDIT, key, text=text)

    async def star(
        self, event_id: str, question_id: str, *, key: str, starred: bool = True
    ) -> Question:
        return await self._move(event_id, question_id, Action.STAR, key, starred=starred)

    async def answer(self, event_id: str, question_id: str, *, text: str, key: str) -> Question:
        """Publish a written answer; the draft, if any, is done with."""
        text = clean_text(text, limit=MAX_ANSWER_LENGTH, what="answer")
        return await self._move(event_id, question_id, Action.ANSWER, key, answer=text, draft="")

    async def back(self, event_id: str, question_id: str, *, key: str) -> Question:
        """Take the live question off screen, back to the queue."""
        return await self._move(event_id, question_id, Action.BACK, key)

    async def done(self, event_id: str, question_id: str, *, key: str) -> Question:
        """Mark the live question answered."""
        return await self._move(event_id, question_id, Action.DONE, key)

    async def promote(
        self, event_id: str, question_id: str, *, key: str, previous: Action = Action.DONE
    ) -> Question:
        """Put a question on screen; the one there before goes to answered (or back, if asked)."""
        if previous not in (Action.DONE, Action.BACK):
            raise ValueError("previous must be DONE or BACK")
        key = key or uuid.uuid4().hex
        if (earlier := await self.store.recall(event_id, key)) is not None:
            return _pick(earlier, question_id)
        snapshot = await self.store.snapshot(event_id)
        snapshot.event.check_can_moderate()
        now = self.clock()
        questions = {q.id: q for q in snapshot.questions}
        if question_id not in questions:
            await self.store.question(event_id, question_id)  # raises NotFound
        promoted = questions[question_id].apply(Action.PROMOTE, now)
        current = next((q for q in snapshot.questions if q.state is QuestionState.LIVE), None)
        writes = (promoted,) if current is None else (current.apply(previous, now), promoted)
        write = Write(
            type="question.promote",
            key=key,
            questions=writes,
            live=current.id if current else "",
            event_states=MODERATING,
        )
        return _pick(await self._commit(event_id, write), question_id)

    async def assign(self, event_id: str, question_id: str, *, panelist: str, key: str) -> Question:
        """Give a question to a panelist to answer in writing ("" takes it back)."""
        event = await self.store.event(event_id)
        panelist = clean_panelist(event, panelist)
        return await self._move(event_id, question_id, Action.ASSIGN, key, assignee=panelist)

    async def draft(self, event_id: str, question_id: str, *, text: str, key: str) -> Question:
        """Save a written answer that only moderators see until it is published."""
        text = clean_text(text, limit=MAX_ANSWER_LENGTH, what="answer", required=False)
        return await self._move(event_id, question_id, Action.DRAFT, key, draft=text)

    async def import_event(self, data: object, *, code: str = "") -> Created:
        """Recreate an event from its JSON export, with new links (and a new code, if given)."""
        event, questions = export.from_json(data, now=self.clock())
        if code:
            event = dataclasses.replace(event, code=clean_code(code))
        moderator_key, panel_key = new_key(), new_key()
        event = dataclasses.replace(
            event, moderator_key_hash=hash_key(moderator_key), panel_key_hash=hash_key(panel_key)
        )
        await self.store.restore(event, questions)
        return Created(event=event, moderator_key=moderator_key, panel_key=panel_key)

    async def delete(self, event_id: str) -> None:
        await self.store.delete_event(event_id)

    async def purge_expired(self) -> list[Event]:
        """Delete every event whose retention period after closing has run out."""
        now = self.clock()
        expired = [e for e in await self.store.events() if e.expired(now)]
        for event in expired:
            await self.store.delete_event(event.id)
            logger.info("purged event %s after its retention period", event.id)
        return expired

    async def set_state(self, event_id: str, state: EventState, *, key: str) -> Event:
        event = await self.store.event(event_id)
        if state is event.state:
            return event
        return await self._save_event(event.move_to(state, self.clock()), key)

    async def configure(
        self,
        event_id: str,
        *,
        key: str,
        premoderation: bool | None = None,
        voting: bool | None = None,
        retention_days: int | None = None,
    ) -> Event:
        event = await self.store.event(event_id)
        settings = event.settings
        if premoderation is not None:
            settings = dataclasses.replace(settings, premoderation=premoderation)
        if voting is not None:
            settings = dataclasses.replace(settings, voting=voting)
        if retention_days is not None:
            settings = dataclasses.replace(settings, retention_days=retention_days)
        return await self._save_event(dataclasses.replace(event, settings=settings), key)

    async def _save_event(self, event: Event, key: str) -> Event:
        key = key or uuid.uuid4().hex
        change = await self._commit(event.id, Write(type="event.updated", key=key, event=event))
        return change.event or event

    async def _move(
        self, event_id: str, question_id: str, action: Action, key: str, **changes: object
    ) -> Question:
        key = key or uuid.uuid4().hex
        if (earlier := await self.store.recall(event_id, key)) is not None:
            return _pick(earlier, question_id)
        event = await self.store.event(event_id)
        event.check_can_moderate()
        question = await self.store.question(event_id, question_id)
        moved = question.apply(action, self.clock(), **changes)
        write = Write(
            type=f"question.{action.value}", key=key, questions=(moved,), event_states=MODERATING
        )
        return _pick(await self._commit(event_id, write), question_id)

    async def _commit(self, event_id: str, write: Write) -> Change:
        change = await self.store.commit(event_id, write)
        await self._publish(event_id, change)
        return change

    async def _publish(self, event_id: str, change: Change) -> None:
        if self.store.announces:
            return  # the store rang the doorbell in the commit itself
        try:
            await self.bus.publish(messages.channel(event_id), messages.change_to_bus(change))
        except Exception:
            # The change is committed: listeners find it in the log at their next change or
            # resync, so a failed doorbell costs latency, never data.
            logger.warning("publish of change %s failed; listeners will catch up", change.seq)


def _scoped(participant: str, key: str) -> str:
    # One participant cannot replay (or block) another's key.
    return f"{participant}:{key or uuid.uuid4().hex}"


def _pick(change: Change, question_id: str) -> Question:
    return next(q for q in change.questions if q.id == question_id)

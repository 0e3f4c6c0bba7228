"""Events, questions, the question lifecycle and its limits. Pure: no I/O, no async."""

from __future__ import annotations

import dataclasses
import enum
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT_LIMIT = 2000
DEFAULT_MAX_LENGTH = 500
MAX_NAME_LENGTH = 40
MAX_TITLE_LENGTH = 120
MAX_DESCRIPTION_LENGTH = 2000
MAX_ANSWER_LENGTH = 5000
MAX_REASON_LENGTH = 200
MAX_PANELISTS = 20
MAX_RETENTION_DAYS = 3650
DAY = 24 * 3600
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,19}$")


class DomainError(Exception):
    """A request the rules refuse; `code` is stable, the message is for people."""

    code = "refused"
    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    code = "invalid"
    status = 422


class TextTooLong(InvalidInput):
    code = "too_long"


class EmptyText(InvalidInput):
    code = "empty"


class NameRequired(InvalidInput):
    code = "name_required"


class NotFound(DomainError):
    code = "not_found"
    status = 404


class EventClosed(DomainError):
    code = "event_closed"


class VotingClosed(DomainError):
    code = "voting_closed"


class AlreadyVoted(DomainError):
    code = "already_voted"


class NotVoted(DomainError):
    code = "not_voted"


class IllegalTransition(DomainError):
    code = "illegal_transition"


class Conflict(DomainError):
    """Someone else changed the same thing first; the caller should look again."""

    code = "conflict"


class CodeTaken(DomainError):
    code = "code_taken"


class EventState(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    VOTE_ONLY = "vote_only"
    CLOSED = "closed"
    ARCHIVED = "archived"


class NameMode(enum.StrEnum):
    ANONYMOUS = "anonymous"
    REQUIRED = "required"
    CHOICE = "choice"


class QuestionState(enum.StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    LIVE = "live"
    ANSWERED = "answered"
    DISMISSED = "dismissed"


class Action(enum.StrEnum):
    APPROVE = "approve"
    DISMISS = "dismiss"
    RESTORE = "restore"
    PROMOTE = "promote"
    BACK = "back"
    DONE = "done"
    ANSWER = "answer"
    EDIT = "edit"
    STAR = "star"
    ASSIGN = "assign"
    DRAFT = "draft"


S = QuestionState
# The lifecycle in one table: (action, from) -> to. RESTORE goes back to where the question was.
TRANSITIONS: Mapping[tuple[Action, QuestionState], QuestionState | None] = {
    (Action.APPROVE, S.PENDING): S.QUEUED,
    (Action.DISMISS, S.PENDING): S.DISMISSED,
    (Action.DISMISS, S.QUEUED): S.DISMISSED,
    (Action.RESTORE, S.DISMISSED): None,
    (Action.PROMOTE, S.QUEUED): S.LIVE,
    (Action.BACK, S.LIVE): S.QUEUED,
    (Action.DONE, S.LIVE): S.ANSWERED,
    (Action.ANSWER, S.QUEUED): S.ANSWERED,
    (Action.ANSWER, S.LIVE): S.ANSWERED,
    (Action.ANSWER, S.ANSWERED): S.ANSWERED,
    (Action.EDIT, S.PENDING): S.PENDING,
    (Action.EDIT, S.QUEUED): S.QUEUED,
    (Action.EDIT, S.LIVE): S.LIVE,
    (Action.EDIT, S.ANSWERED): S.ANSWERED,
    (Action.STAR, S.PENDING): S.PENDING,
    (Action.STAR, S.QUEUED): S.QUEUED,
    (Action.STAR, S.LIVE): S.LIVE,
    (Action.STAR, S.ANSWERED): S.ANSWERED,
    (Action.ASSIGN, S.QUEUED): S.QUEUED,
    (Action.ASSIGN, S.ANSWERED): S.ANSWERED,
    (Action.DRAFT, S.QUEUED): S.QUEUED,
    (Action.DRAFT, S.ANSWERED): S.ANSWERED,
}
E = EventState
# The event's own lifecycle; the organiser can always reopen.
EVENT_TRANSITIONS: Mapping[EventState, frozenset[EventState]] = {
    E.DRAFT: frozenset({E.OPEN}),
    E.OPEN: frozenset({E.VOTE_ONLY, E.CLOSED}),
    E.VOTE_ONLY: frozenset({E.OPEN, E.CLOSED}),
    E.CLOSED: frozenset({E.OPEN, E.VOTE_ONLY, E.ARCHIVED}),
    E.ARCHIVED: frozenset({E.OPEN, E.CLOSED}),
}
VOTABLE = frozenset({S.QUEUED, S.LIVE})
PUBLIC = frozenset({S.QUEUED, S.LIVE, S.ANSWERED})
ASKING = frozenset({EventState.OPEN})
VISIBLE_DRAFT = frozenset({EventState.DRAFT})
VOTING = frozenset({EventState.OPEN, EventState.VOTE_ONLY})
MODERATING = frozenset({EventState.DRAFT, EventState.OPEN, EventState.VOTE_ONLY, EventState.CLOSED})

_REFUSALS = {
    S.PENDING: "it is still waiting for approval",
    S.QUEUED: "it is in the queue",
    S.LIVE: "it is on screen now",
    S.ANSWERED: "it has been answered",
    S.DISMISSED: "it was dismissed",
}

# How a moderator says each action, for refusals they can read.
VERBS = {
    Action.PROMOTE: "put on screen",
    Action.BACK: "take off screen",
    Action.DONE: "mark answered",
    Action.ANSWER: "answer",
}


def next_state(action: Action, question: Question) -> QuestionState:
    """Where `action` takes `question`, or IllegalTransition with a reason a moderator can read."""
    if (action, question.state) not in TRANSITIONS:
        raise IllegalTransition(
            f"Cannot {VERBS.get(action, action.value)} this question: {_REFUSALS[question.state]}."
        )
    target = TRANSITIONS[(action, question.state)]
    if target is None:
        return question.restore_to or S.QUEUED
    return target


@dataclass(frozen=True)
class EventSettings:
    premoderation: bool = False
    names: NameMode = NameMode.CHOICE
    voting: bool = True
    max_length: int = DEFAULT_MAX_LENGTH
    retention_days: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.max_length <= MAX_TEXT_LIMIT:
            raise InvalidInput(f"The question length limit must be 1 to {MAX_TEXT_LIMIT}.")
        if not 0 <= self.retention_days <= MAX_RETENTION_DAYS:
            raise InvalidInput(
                f"Keep questions for 0 (for ever) to {MAX_RETENTION_DAYS} days after closing."
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "premoderation": self.premoderation,
            "names": self.names.value,
            "voting": self.voting,
            "max_length": self.max_length,
            "retention_days": self.retention_days,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventSettings:
        return cls(
            premoderation=bool(data.get("premoderation", False)),
            names=NameMode(data.get("names", NameMode.CHOICE)),
            voting=bool(data.get("voting", True)),
            max_length=int(data.get("max_length", DEFAULT_MAX_LENGTH)),
            retention_days=int(data.get("retention_days", 0)),
        )


@dataclass(frozen=True)
class Event:
    id: str
    code: str
    title: str
    description: str = ""
    panelists: tuple[str, ...] = ()
    settings: EventSettings = field(default_factory=EventSettings)
    state: EventState = EventState.OPEN
    created_at: float = 0.0
    closed_at: float = 0.0
    moderator_key_hash: str = ""
    panel_key_hash: str = ""
    passcode_hash: str = ""  # set: the audience must enter the passcode first

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "title": self.title,
            "description": self.description,
            "panelists": list(self.panelists),
            "settings": self.settings.to_dict(),
            "state": self.state.value,
            "created_at": self.created_at,
            "closed_at": self.closed_at,
        }

    def to_record(self) -> dict[str, Any]:
        return self.to_dict() | {
            "moderator_key_hash": self.moderator_key_hash,
            "panel_key_hash": self.panel_key_hash,
            "passcode_hash": self.passcode_hash,
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Event:
        return cls(
            id=data["id"],
            code=data["code"],
            title=data["title"],
            description=data.get("description", ""),
            panelists=tuple(data.get("panelists", ())),
            settings=EventSettings.from_dict(data.get("settings", {})),
            state=EventState(data.get("state", EventState.OPEN)),
            created_at=float(data.get("created_at", 0.0)),
            closed_at=float(data.get("closed_at", 0.0)),
            moderator_key_hash=data.get("moderator_key_hash", ""),
            panel_key_hash=data.get("panel_key_hash", ""),
            passcode_hash=data.get("passcode_hash", ""),
        )

    def move_to(self, state: EventState, now: float) -> Event:
        """The event in `state`, if its lifecycle allows the move."""
        if state not in EVENT_TRANSITIONS[self.state]:
            raise IllegalTransition(
                f"This event is {self.state.value.replace('_', ' ')}; it cannot become "
                f"{state.value.replace('_', ' ')}."
            )
        closed_at = now if state is EventState.CLOSED else self.closed_at
        if state in (EventState.OPEN, EventState.VOTE_ONLY):
            closed_at = 0.0
        return dataclasses.replace(self, state=state, closed_at=closed_at)

    def expired(self, now: float) -> bool:
        """Whether the retention period after closing has run out."""
        days = self.settings.retention_days
        return bool(days and self.closed_at and now >= self.closed_at + days * DAY)

    def check_can_ask(self) -> None:
        if self.state is EventState.DRAFT:
            raise EventClosed("This event has not opened yet.")
        if self.state is EventState.VOTE_ONLY:
            raise EventClosed("Questions are closed; you can still vote.")
        if self.state not in ASKING:
            raise EventClosed("This event is closed to new questions.")

    def check_can_vote(self) -> None:
        if not self.settings.voting:
            raise VotingClosed("Voting is turned off for this event.")
        if self.state is EventState.DRAFT:
            raise VotingClosed("This event has not opened yet.")
        if self.state not in VOTING:
            raise VotingClosed("This event is closed; voting has ended.")

    def check_can_moderate(self) -> None:
        if self.state not in MODERATING:
            raise EventClosed("This event is archived and read-only.")


@dataclass(frozen=True)
class Question:
    id: str
    event_id: str
    text: str
    participant: str
    state: QuestionState
    created_at: float
    updated_at: float
    name: str = ""
    panelist: str = ""
    votes: int = 0
    starred: bool = False
    answer: str = ""
    reason: str = ""
    restore_to: QuestionState | None = None
    assignee: str = ""
    draft: str = ""
    moderated_at: float = 0.0
    answered_via: str = ""
    rev: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Everything; for the store and moderators. Audience views drop `participant`."""
        return {
            "id": self.id,
            "event_id": self.event_id,
            "text": self.text,
            "participant": self.participant,
            "state": self.state.value,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "name": self.name,
            "panelist": self.panelist,
            "votes": self.votes,
            "starred": self.starred,
            "answer": self.answer,
            "reason": self.reason,
            "restore_to": self.restore_to.value if self.restore_to else "",
            "assignee": self.assignee,
            "draft": self.draft,
            "moderated_at": self.moderated_at,
            "answered_via": self.answered_via,
            "rev": self.rev,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Question:
        restore = data.get("restore_to") or ""
        starred = data.get("starred", False)
        return cls(
            id=data["id"],
            event_id=data["event_id"],
            text=data["text"],
            participant=data["participant"],
            state=QuestionState(data["state"]),
            created_at=float(data["created_at"]),
            updated_at=float(data["updated_at"]),
            name=data.get("name", ""),
            panelist=data.get("panelist", ""),
            votes=int(data.get("votes", 0)),
            starred=starred if isinstance(starred, bool) else starred in ("1", "true", "True"),
            answer=data.get("answer", ""),
            reason=data.get("reason", ""),
            restore_to=QuestionState(restore) if restore else None,
            assignee=data.get("assignee", ""),
            draft=data.get("draft", ""),
            moderated_at=float(data.get("moderated_at", 0.0)),
            answered_via=data.get("answered_via", ""),
            rev=int(data.get("rev", 1)),
        )

    @property
    def public(self) -> bool:
        return self.state in PUBLIC

    def apply(self, action: Action, now: float, **changes: Any) -> Question:
        """The question after `action`, checked against the lifecycle table; rev goes up by one."""
        target = next_state(action, self)
        restore_to = self.state if target is S.DISMISSED else None
        moderated_at = self.moderated_at
        if action in (Action.APPROVE, Action.DISMISS) and not moderated_at:
            moderated_at = now
        answered_via = self.answered_via
        if target is S.ANSWERED and not answered_via:
            answered_via = "live" if action is Action.DONE else "writing"
        if target is not S.ANSWERED:
            answered_via = ""
        return dataclasses.replace(
            self,
            state=target,
            restore_to=restore_to,
            moderated_at=moderated_at,
            answered_via=answered_via,
            updated_at=now,
            rev=self.rev + 1,
            **changes,
        )


_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]"
)


def clean_text(value: str, *, limit: int, what: str, required: bool = True) -> str:
    """Normalise user text (NFC, no control characters, trimmed) and check its length."""
    text = _CONTROL.sub("", unicodedata.normalize("NFC", value))
    # A lone CR is a line break to a browser's parser: store what screens will show.
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if required and not text:
        raise EmptyText(f"The {what} is empty.")
    if len(text) > limit:
        raise TextTooLong(f"The {what} is {len(text)} characters long; the limit is {limit}.")
    return text


def clean_line(value: str, *, limit: int, what: str, required: bool = False) -> str:
    """Like clean_text, but for one-line fields: whitespace runs collapse to one space."""
    return clean_text(" ".join(value.split()), limit=limit, what=what, required=required)


def clean_name(event: Event, name: str) -> str:
    name = clean_line(name, limit=MAX_NAME_LENGTH, what="name")
    if event.settings.names is NameMode.ANONYMOUS:
        return ""
    if event.settings.names is NameMode.REQUIRED and not name:
        raise NameRequired("This event asks for your name with each question.")
    return name


def clean_panelist(event: Event, panelist: str) -> str:
    panelist = clean_line(panelist, limit=MAX_NAME_LENGTH, what="panelist")
    if panelist and panelist not in event.panelists:
        raise InvalidInput(f"{panelist!r} is not on this event's panel.")
    return panelist


def clean_code(code: str) -> str:
    code = code.strip().upper()
    if not CODE_PATTERN.match(code):
        raise InvalidInput(
            "An event code is 3 to 20 letters, digits or dashes, starting with a letter or digit."
        )
    return code


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))


def new_id() -> str:
    return secrets.token_hex(8)


def new_event(
    *,
    title: str,
    now: float,
    code: str = "",
    description: str = "",
    panelists: tuple[str, ...] = (),
    settings: EventSettings | None = None,
    moderator_key_hash: str = "",
    panel_key_hash: str = "",
) -> Event:
    names = tuple(
        dict.fromkeys(
            p
            for p in (clean_line(p, limit=MAX_NAME_LENGTH, what="panelist name") for p in panelists)
            if p
        )
    )
    if len(names) > MAX_PANELISTS:
        raise InvalidInput(f"An event can have at most {MAX_PANELISTS} panelists.")
    return Event(
        id=new_id(),
        code=clean_code(code) if code else new_code(),
        title=clean_line(title, limit=MAX_TITLE_LENGTH, what="title", required=True),
        description=clean_text(
            description, limit=MAX_DESCRIPTION_LENGTH, what="description", required=False
        ),
        panelists=names,
        settings=settings or EventSettings(),
        created_at=now,
        moderator_key_hash=moderator_key_hash,
        panel_key_hash=panel_key_hash,
    )


def new_question(
    event: Event,
    *,
    text: str,
    participant: str,
    now: float,
    name: str = "",
    panelist: str = "",
) -> Question:
    """A question as asked, after every check the rules make of it."""
    event.check_can_ask()
    return Question(
        id=new_id(),
        event_id=event.id,
        text=clean_text(text, limit=event.settings.max_length, what="question"),
        participant=participant,
        state=S.PENDING if event.settings.premoderation else S.QUEUED,
        created_at=now,
        updated_at=now,
        name=clean_name(event, name),
        panelist=clean_panelist(event, panelist),
    )


@dataclass(frozen=True)
class Change:
    """One committed mutation of an event, numbered by the event's `seq`."""

    seq: int
    type: str
    questions: tuple[Question, ...] = ()
    event: Event | None = None

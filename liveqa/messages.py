"""Every JSON shape that crosses the bus or a websocket, encoded once per role."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from liveqa.model import PUBLIC, Change, Event, Question

PRIVATE = ("participant",)
STAFF_ONLY = ("restore_to", "assignee", "draft")
OWNER_ONLY = ("reason",)


def channel(event_id: str) -> str:
    return f"liveqa:event:{event_id}"


def encode(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def change_to_bus(change: Change) -> str:
    """A change for the bus. Each question is a row of its record, `rev` and `votes` (the last
    two win over the record's own), the form the Redis store's scripts write it in."""
    return encode(
        {
            "seq": change.seq,
            "type": change.type,
            "rows": [[q.to_dict(), q.rev, q.votes] for q in change.questions],
            "event": change.event.to_record() if change.event else None,
        }
    )


def change_from_bus(message: str) -> Change:
    data = orjson.loads(message)
    return Change(
        seq=data["seq"],
        type=data["type"],
        questions=tuple(
            Question.from_dict(record | {"rev": rev, "votes": votes})
            for record, rev, votes in data["rows"]
        ),
        event=Event.from_record(data["event"]) if data["event"] else None,
    )


def for_moderator(question: Question) -> dict[str, Any]:
    data = question.to_dict()
    for name in PRIVATE:
        del data[name]
    return data


def for_audience(question: Question, *, mine: bool = False) -> dict[str, Any]:
    """What the audience may see of a question; the asker also sees why it was dismissed."""
    data = for_moderator(question)
    for name in STAFF_ONLY:
        del data[name]
    if mine:
        data["mine"] = True
    else:
        for name in OWNER_ONLY:
            del data[name]
    return data


def visible(question: Question, participant: str) -> bool:
    return question.public or question.participant == participant


def snapshot(
    *,
    role: str,
    event: Event,
    seq: int,
    questions: Iterable[Question],
    participant: str = "",
    voted: Iterable[str] = (),
) -> str:
    if role == "moderator":
        shown = [for_moderator(q) for q in questions]
    else:
        shown = [
            for_audience(q, mine=bool(participant) and q.participant == participant)
            for q in questions
            if visible(q, participant)
        ]
    return encode(
        {
            "type": "snapshot",
            "seq": seq,
            "event": event.to_dict(),
            "questions": shown,
            "voted": sorted(voted),
        }
    )


def change(change: Change, role: str, participant: str = "") -> str | None:
    """A change as one role sees it, or None if it shows them nothing.

    `participant` gets their own questions in full, pending and dismissed ones included.
    """
    questions: list[dict[str, Any]] = []
    removed: list[str] = []
    for q in change.questions:
        if role == "moderator":
            questions.append(for_moderator(q))
        elif visible(q, participant):
            questions.append(
                for_audience(q, mine=bool(participant) and q.participant == participant)
            )
        elif q.restore_to in PUBLIC:  # dismissed after being shown: take it away
            removed.append(q.id)
    if not questions and not removed and change.event is None:
        return None
    message: dict[str, Any] = {
        "type": "change",
        "seq": change.seq,
        "change": change.type,
        "questions": questions,
        "removed": removed,
    }
    if change.event is not None:
        message["event"] = change.event.to_dict()
    return encode(message)

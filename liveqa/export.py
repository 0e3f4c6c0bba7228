"""An event's questions as CSV and JSON for organisers, and the JSON back into an event.

The JSON format, `liveqa.event/1`:

    {"format": "liveqa.event/1",
     "event": {"code", "title", "description", "panelists": [...], "settings": {...},
               "state", "created_at", "closed_at"},
     "questions": [{"text", "name", "panelist", "assignee", "state", "votes", "starred",
                    "answer", "answered_via", "reason", "created_at", "updated_at",
                    "moderated_at"}]}

`panelist` is whom the asker directed the question to, `assignee` the panelist a moderator
gave it to for a written answer. Unpublished drafts are not exported.

Times are Unix seconds. Participant ids never leave liveqa, so an import cannot tell who voted:
it keeps the counts, and everyone may vote afresh.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from liveqa.model import (
    MAX_ANSWER_LENGTH,
    MAX_NAME_LENGTH,
    MAX_REASON_LENGTH,
    Event,
    EventSettings,
    EventState,
    InvalidInput,
    Question,
    QuestionState,
    clean_line,
    clean_text,
    new_event,
    new_id,
)

FORMAT = "liveqa.event/1"
MAX_QUESTIONS = 20_000
CSV_COLUMNS = (
    "asked_at",
    "state",
    "votes",
    "starred",
    "name",
    "panelist",
    "assigned_to",
    "question",
    "answer",
    "answered",
)
QUESTION_FIELDS = (
    "text",
    "name",
    "panelist",
    "assignee",
    "state",
    "votes",
    "starred",
    "answer",
    "answered_via",
    "reason",
    "created_at",
    "updated_at",
    "moderated_at",
)


def to_json(event: Event, questions: Iterable[Question]) -> dict[str, Any]:
    data = event.to_dict()
    return {
        "format": FORMAT,
        "event": {k: data[k] for k in data if k != "id"},
        "questions": [
            {k: v for k, v in q.to_dict().items() if k in QUESTION_FIELDS} for q in questions
        ],
    }


def to_csv(questions: Iterable[Question]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for q in questions:
        writer.writerow(
            _cell(value)
            for value in (
                datetime.fromtimestamp(q.created_at, UTC).isoformat(timespec="seconds"),
                q.state.value,
                q.votes,
                "yes" if q.starred else "",
                q.name,
                q.panelist,
                q.assignee,
                q.text,
                q.answer,
                q.answered_via,
            )
        )
    return out.getvalue()


def _cell(value: object) -> str:
    # A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def from_json(data: object, *, now: float) -> tuple[Event, list[Question]]:
    """A new event (new ids) and its questions, from `to_json`'s output; InvalidInput if not."""
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise InvalidInput(f"This is not a liveqa export (format {FORMAT}).")
    raw_event, raw_questions = data.get("event"), data.get("questions")
    if not isinstance(raw_event, Mapping) or not isinstance(raw_questions, Sequence):
        raise InvalidInput("The export needs an event and a list of questions.")
    if len(raw_questions) > MAX_QUESTIONS:
        raise InvalidInput(f"An import can hold at most {MAX_QUESTIONS} questions.")
    try:
        settings = EventSettings.from_dict(_mapping(raw_event.get("settings", {})))
        event = new_event(
            title=str(raw_event.get("title", "")),
            now=float(raw_event.get("created_at") or now),
            code=str(raw_event.get("code", "")),
            description=str(raw_event.get("description", "")),
            panelists=tuple(str(p) for p in raw_event.get("panelists", ())),
            settings=settings,
        )
        event = dataclasses.replace(
            event,
            state=EventState(raw_event.get("state", EventState.CLOSED)),
            closed_at=float(raw_event.get("closed_at") or 0.0),
        )
        questions = [_question(event, _mapping(q)) for q in raw_questions]
    except (TypeError, ValueError, KeyError) as error:
        raise InvalidInput(f"The export is damaged: {error}.") from None
    live = [q for q in questions if q.state is QuestionState.LIVE]
    for extra in live[1:]:
        questions[questions.index(extra)] = dataclasses.replace(extra, state=QuestionState.QUEUED)
    return event, questions


def _mapping(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError("expected an object")
    return value


def _via(value: object, state: QuestionState) -> str:
    if state is not QuestionState.ANSWERED:
        return ""
    if value not in ("live", "writing"):
        return "writing"
    return str(value)


def _question(event: Event, data: Mapping[str, Any]) -> Question:
    state = QuestionState(data.get("state", QuestionState.QUEUED))
    created = float(data.get("created_at") or event.created_at)
    return Question(
        id=new_id(),
        event_id=event.id,
        text=clean_text(
            str(data.get("text", "")), limit=event.settings.max_length, what="question"
        ),
        participant="",
        state=state,
        created_at=created,
        updated_at=float(data.get("updated_at") or created),
        name=clean_line(str(data.get("name", "")), limit=MAX_NAME_LENGTH, what="name"),
        panelist=clean_line(str(data.get("panelist", "")), limit=MAX_NAME_LENGTH, what="panelist"),
        assignee=clean_line(str(data.get("assignee", "")), limit=MAX_NAME_LENGTH, what="panelist"),
        votes=max(0, int(data.get("votes", 0))),
        starred=bool(data.get("starred", False)),
        answer=clean_text(
            str(data.get("answer", "")), limit=MAX_ANSWER_LENGTH, what="answer", required=False
        ),
        answered_via=_via(data.get("answered_via", ""), state),
        reason=clean_line(str(data.get("reason", "")), limit=MAX_REASON_LENGTH, what="reason"),
        restore_to=QuestionState.QUEUED if state is QuestionState.DISMISSED else None,
        moderated_at=float(data.get("moderated_at") or 0.0),
    )

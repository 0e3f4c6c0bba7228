"""After the event: written answers, the event lifecycle, export and the report; no I/O."""

from __future__ import annotations

import csv
import io
import json

import pytest

from liveqa import export, report
from liveqa.model import (
    DAY,
    Action,
    Event,
    EventSettings,
    EventState,
    IllegalTransition,
    InvalidInput,
    Question,
    QuestionState,
    new_event,
    new_question,
)

S = QuestionState
E = EventState


def test_the_event_lifecycle() -> None:
    event = new_event(title="AGM", now=0)
    assert event.state is E.OPEN
    closed = event.move_to(E.VOTE_ONLY, 10).move_to(E.CLOSED, 20)
    assert (closed.state, closed.closed_at) == (E.CLOSED, 20)
    archived = closed.move_to(E.ARCHIVED, 30)
    assert archived.closed_at == 20
    reopened = archived.move_to(E.OPEN, 40)
    assert (reopened.state, reopened.closed_at) == (E.OPEN, 0)
    import dataclasses

    draft = dataclasses.replace(new_event(title="x", now=0), state=E.DRAFT)
    with pytest.raises(IllegalTransition, match="This event is draft; it cannot become closed"):
        draft.move_to(E.CLOSED, 1)
    with pytest.raises(IllegalTransition):
        event.move_to(E.DRAFT, 1)


def test_archived_events_are_read_only_and_drafts_take_no_questions() -> None:
    event = new_event(title="AGM", now=0).move_to(E.CLOSED, 1).move_to(E.ARCHIVED, 2)
    with pytest.raises(Exception, match="read-only"):
        event.check_can_moderate()
    import dataclasses

    draft = dataclasses.replace(new_event(title="AGM", now=0), state=E.DRAFT)
    with pytest.raises(Exception, match="not opened yet"):
        new_question(draft, text="Early?", participant="p", now=1)


def test_retention_counts_from_closing() -> None:
    keep = new_event(title="x", now=0, settings=EventSettings(retention_days=30))
    closed = keep.move_to(E.CLOSED, 100)
    assert not closed.expired(100 + 29 * DAY)
    assert closed.expired(100 + 30 * DAY)
    assert not keep.expired(10**12)  # never closed
    assert not new_event(title="x", now=0).move_to(E.CLOSED, 1).expired(10**12)  # keep for ever


def test_written_answers_are_drafted_then_published() -> None:
    event = new_event(title="x", now=0, panelists=("Ada",))
    q = new_question(event, text="Leftover?", participant="p", now=1)
    q = q.apply(Action.ASSIGN, 2, assignee="Ada").apply(Action.DRAFT, 3, draft="First go")
    assert (q.state, q.assignee, q.draft, q.answered_via) == (S.QUEUED, "Ada", "First go", "")
    q = q.apply(Action.ANSWER, 4, answer="Final", draft="")
    assert (q.state, q.answer, q.answered_via) == (S.ANSWERED, "Final", "writing")
    live = new_question(event, text="On air", participant="p", now=1)
    live = live.apply(Action.PROMOTE, 2).apply(Action.DONE, 3)
    assert live.answered_via == "live"
    assert live.apply(Action.ANSWER, 4, answer="More").answered_via == "live"


def make_questions() -> tuple[Event, list[Question]]:
    event = new_event(title="Panel", now=0, panelists=("Ada",), code="PANEL")
    a = new_question(event, text='=HYPERLINK("x")', participant="p1", now=60, name="Ann")
    b = new_question(event, text="Why?", participant="p2", now=200)
    a = a.apply(Action.PROMOTE, 300).apply(Action.DONE, 400)
    b = b.apply(Action.ANSWER, 500, answer="Because.\nSecond line")
    c = new_question(event, text="Spam", participant="p2", now=250).apply(
        Action.DISMISS, 260, reason="ad"
    )
    return event, [a, b, c]


def test_csv_export_neutralises_formulas_and_has_no_participant_ids() -> None:
    _, questions = make_questions()
    text = export.to_csv(questions)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["question"] == '\'=HYPERLINK("x")'
    assert rows[0]["name"] == "Ann" and rows[0]["answered"] == "live"
    assert rows[1]["answer"] == "Because.\nSecond line"
    assert "p1" not in text and "p2" not in text


def test_json_export_round_trips() -> None:
    event, questions = make_questions()
    data = json.loads(json.dumps(export.to_json(event, questions)))
    assert "participant" not in json.dumps(data)
    again, imported = export.from_json(data, now=1000)
    assert again.id != event.id and again.code == "PANEL" and again.panelists == ("Ada",)
    assert [(q.text, q.state, q.answer, q.votes, q.name) for q in imported] == [
        (q.text, q.state, q.answer, q.votes, q.name) for q in questions
    ]


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        {"format": "other"},
        {"format": export.FORMAT},
        {"format": export.FORMAT, "event": {}, "questions": [{"state": "bogus", "text": "x"}]},
    ],
)
def test_a_damaged_import_is_refused_clearly(bad: object) -> None:
    with pytest.raises(InvalidInput):
        export.from_json(bad, now=0)


def test_the_report_tells_the_story() -> None:
    event, questions = make_questions()
    story = report.build(event, questions, joined=40, voters=12)
    assert (story.joined, story.askers, story.voters, story.questions) == (40, 2, 12, 3)
    assert (story.answered_live, story.answered_in_writing, story.dismissed) == (1, 1, 1)
    assert story.median_moderation_seconds == 10
    assert story.bucket_seconds == 60
    assert sum(n for _, n in story.timeline) == 3
    svg = report.chart(story)
    assert svg.startswith("<svg") and svg.count("<rect") == len(story.timeline)
    assert "<script" not in svg


def test_waits_read_naturally() -> None:
    assert [report.wait(s) for s in (None, 4.4, 60, 125, 3600 + 600)] == [
        "no question was screened",
        "4 s",
        "1 min",
        "2 min 5 s",
        "1 h 10 min",
    ]


def test_the_chart_keeps_its_labels_apart() -> None:
    event = new_event(title="Panel", now=0)
    burst = [new_question(event, text="x", participant="p", now=30) for _ in range(3)]
    one_minute = report.chart(report.build(event, burst, joined=3, voters=0))
    assert one_minute.count("00:00 UTC") == 2  # the bar's tooltip and the start label only
    spread = [*burst, new_question(event, text="y", participant="q", now=20 * 60)]
    hour = report.chart(report.build(event, spread, joined=3, voters=0))
    assert ">00:00 UTC</text>" in hour and ">00:21 UTC</text>" in hour

"""The question lifecycle and the rules on input, with no I/O."""

from __future__ import annotations

import pytest

from liveqa.model import (
    TRANSITIONS,
    VERBS,
    Action,
    EmptyText,
    EventClosed,
    EventSettings,
    EventState,
    IllegalTransition,
    InvalidInput,
    NameMode,
    NameRequired,
    Question,
    QuestionState,
    TextTooLong,
    VotingClosed,
    clean_text,
    new_event,
    new_question,
)

S = QuestionState


def make_event(**settings: object) -> object:
    return new_event(
        title="Town hall", now=1.0, panelists=("Ada", "Grace"), settings=EventSettings(**settings)
    )  # type: ignore[arg-type]


def ask(event: object, text: str = "Will waiting lists fall?", **kw: object) -> Question:
    return new_question(event, text=text, participant="p1", now=2.0, **kw)  # type: ignore[arg-type]


def test_a_question_waits_for_approval_only_under_premoderation() -> None:
    assert ask(make_event()).state is S.QUEUED
    assert ask(make_event(premoderation=True)).state is S.PENDING


def test_the_full_lifecycle_follows_the_table() -> None:
    q = ask(make_event(premoderation=True))
    q = q.apply(Action.APPROVE, 3.0)
    assert (q.state, q.rev) == (S.QUEUED, 2)
    q = q.apply(Action.PROMOTE, 4.0)
    assert q.state is S.LIVE
    q = q.apply(Action.BACK, 5.0).apply(Action.PROMOTE, 6.0).apply(Action.DONE, 7.0)
    assert (q.state, q.updated_at, q.rev) == (S.ANSWERED, 7.0, 6)


def test_restore_returns_a_dismissed_question_to_where_it_was() -> None:
    pending = ask(make_event(premoderation=True))
    assert pending.apply(Action.DISMISS, 3.0).apply(Action.RESTORE, 4.0).state is S.PENDING
    queued = ask(make_event())
    dismissed = queued.apply(Action.DISMISS, 3.0, reason="Off topic")
    assert (dismissed.state, dismissed.reason, dismissed.restore_to) == (
        S.DISMISSED,
        "Off topic",
        S.QUEUED,
    )
    restored = dismissed.apply(Action.RESTORE, 4.0, reason="")
    assert (restored.state, restored.restore_to) == (S.QUEUED, None)


@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize("action", list(Action))
def test_every_move_outside_the_table_is_refused(action: Action, state: S) -> None:
    q = ask(make_event())
    q = Question.from_dict(q.to_dict() | {"state": state.value, "restore_to": "queued"})
    if (action, state) in TRANSITIONS:
        q.apply(action, 3.0)
    else:
        with pytest.raises(IllegalTransition) as refused:
            q.apply(action, 3.0)
        verb = VERBS.get(action, action.value)
        assert refused.value.message.startswith(f"Cannot {verb} this question")


def test_a_live_question_cannot_be_dismissed_or_promoted_again() -> None:
    live = ask(make_event()).apply(Action.PROMOTE, 3.0)
    with pytest.raises(IllegalTransition, match="on screen"):
        live.apply(Action.PROMOTE, 4.0)
    with pytest.raises(IllegalTransition):
        live.apply(Action.DISMISS, 4.0)


def test_text_limits() -> None:
    event = make_event(max_length=20)
    with pytest.raises(TextTooLong, match="21 characters long; the limit is 20"):
        ask(event, "x" * 21)
    assert ask(event, "x" * 20).text == "x" * 20
    with pytest.raises(EmptyText):
        ask(event, "  \n\t ")
    with pytest.raises(EmptyText):
        ask(event, "\u200b\x00")


def test_text_is_normalised_and_stripped_of_control_characters() -> None:
    assert clean_text(" Cafe\u0301\x07 ok \r\n", limit=50, what="question") == "Café ok"
    assert clean_text("a\u202eb", limit=50, what="q") == "ab"


def test_default_limit_is_500() -> None:
    assert EventSettings().max_length == 500
    with pytest.raises(InvalidInput):
        EventSettings(max_length=0)


def test_names_follow_the_event_setting() -> None:
    assert ask(make_event(names=NameMode.ANONYMOUS), name="Ada").name == ""
    assert ask(make_event(names=NameMode.CHOICE), name="  Ada   L. ").name == "Ada L."
    assert ask(make_event(names=NameMode.CHOICE)).name == ""
    with pytest.raises(NameRequired):
        ask(make_event(names=NameMode.REQUIRED))


def test_directed_to_must_be_a_panelist() -> None:
    assert ask(make_event(), panelist="Ada").panelist == "Ada"
    with pytest.raises(InvalidInput, match="not on this event's panel"):
        ask(make_event(), panelist="Mallory")


def test_closed_and_vote_only_events_refuse_questions() -> None:
    import dataclasses

    for state, message in [(EventState.CLOSED, "closed"), (EventState.VOTE_ONLY, "still vote")]:
        event = dataclasses.replace(make_event(), state=state)  # type: ignore[type-var]
        with pytest.raises(EventClosed, match=message):
            ask(event)


def test_voting_rules() -> None:
    import dataclasses

    make_event().check_can_vote()  # type: ignore[attr-defined]
    with pytest.raises(VotingClosed):
        make_event(voting=False).check_can_vote()  # type: ignore[attr-defined]
    closed = dataclasses.replace(make_event(), state=EventState.CLOSED)  # type: ignore[type-var]
    with pytest.raises(VotingClosed):
        closed.check_can_vote()


def test_codes_are_validated() -> None:
    assert new_event(title="x", now=0, code=" nhs-lead ").code == "NHS-LEAD"
    with pytest.raises(InvalidInput):
        new_event(title="x", now=0, code="a b")
    assert len(new_event(title="x", now=0).code) == 6

"""One contract for both stores (SQLite, Redis) and both buses, through the use cases."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from liveqa import messages
from liveqa.bus import Bus
from liveqa.events import Events
from liveqa.model import (
    Action,
    AlreadyVoted,
    Change,
    CodeTaken,
    Conflict,
    EventClosed,
    EventSettings,
    EventState,
    IllegalTransition,
    NotFound,
    NotVoted,
    QuestionState,
    TextTooLong,
    VotingClosed,
)
from liveqa.store import Store

S = QuestionState


async def make_event(events: Events, **settings: object) -> str:
    created = await events.create(
        "Health policy panel", panelists=("Ada",), settings=EventSettings(**settings)
    )  # type: ignore[arg-type]
    return created.event.id


async def test_an_event_is_found_by_id_and_code(events: Events, store: Store) -> None:
    created = await events.create("Town hall", code="nhs-lead", description="Ask away")
    assert (await store.event(created.event.id)).title == "Town hall"
    assert (await store.event_by_code("NHS-LEAD")).id == created.event.id
    assert (await store.event_by_code("nhs-lead")).id == created.event.id
    assert [e.id for e in await store.events()] == [created.event.id]
    with pytest.raises(CodeTaken):
        await events.create("Again", code="NHS-LEAD")
    with pytest.raises(NotFound):
        await store.event_by_code("NOPE")


async def test_a_code_always_finds_the_event_that_holds_it_now(
    events: Events, store: Store
) -> None:
    first = (await events.create("Morning", code="PANEL")).event
    assert (await store.event_by_code("PANEL")).id == first.id
    await events.set_state(first.id, EventState.CLOSED, key="close")
    assert (await store.event_by_code("PANEL")).state == EventState.CLOSED  # never a stale copy
    await events.delete(first.id)
    with pytest.raises(NotFound):
        await store.event_by_code("PANEL")
    second = (await events.create("Evening", code="PANEL")).event
    assert (await store.event_by_code("panel")).id == second.id


async def test_ask_is_stored_and_numbered(events: Events, store: Store) -> None:
    event_id = await make_event(events)
    q = await events.ask(event_id, text="Why?", participant="p1", key="k1", name="Ada L")
    stored = await store.question(event_id, q.id)
    assert (stored.text, stored.name, stored.state, stored.votes, stored.rev) == (
        "Why?",
        "Ada L",
        S.QUEUED,
        0,
        1,
    )
    snapshot = await store.snapshot(event_id)
    assert snapshot.seq == 1
    assert [x.id for x in snapshot.questions] == [q.id]


async def test_repeating_an_idempotency_key_returns_the_first_result(
    events: Events, store: Store
) -> None:
    event_id = await make_event(events)
    first = await events.ask(event_id, text="Once", participant="p1", key="same")
    again = await events.ask(event_id, text="Once", participant="p1", key="same")
    assert again.id == first.id
    assert len((await store.snapshot(event_id)).questions) == 1
    # Another participant's identical key is their own.
    other = await events.ask(event_id, text="Once", participant="p2", key="same")
    assert other.id != first.id
    # A retry after the event closed still gets its first answer.
    await events.set_state(event_id, EventState.CLOSED, key="close")
    assert (await events.ask(event_id, text="Once", participant="p1", key="same")).id == first.id
    with pytest.raises(EventClosed):
        await events.ask(event_id, text="New", participant="p1", key="new")


async def test_concurrent_retries_of_one_key_create_one_question(
    events: Events, store: Store
) -> None:
    event_id = await make_event(events)
    results = await asyncio.gather(
        *(events.ask(event_id, text="Race", participant="p1", key="k") for _ in range(10))
    )
    assert len({q.id for q in results}) == 1
    assert len((await store.snapshot(event_id)).questions) == 1


async def test_refusals(events: Events) -> None:
    event_id = await make_event(events, max_length=10)
    with pytest.raises(TextTooLong):
        await events.ask(event_id, text="x" * 11, participant="p", key="a")
    q = await events.ask(event_id, text="ok", participant="p", key="b")
    with pytest.raises(IllegalTransition):
        await events.approve(event_id, q.id, key="c")  # already queued
    with pytest.raises(NotFound):
        await events.approve(event_id, "nope", key="d")


async def test_votes_count_once_per_participant(events: Events, store: Store) -> None:
    event_id = await make_event(events)
    q = await events.ask(event_id, text="Vote me", participant="asker", key="a")
    assert (await events.vote(event_id, q.id, participant="v1", key="1")).votes == 1
    with pytest.raises(AlreadyVoted):
        await events.vote(event_id, q.id, participant="v1", key="2")
    assert (await events.vote(event_id, q.id, participant="v1", key="1")).votes == 1  # retry
    assert await store.voted(event_id, "v1") == {q.id}
    assert (await events.vote(event_id, q.id, participant="v1", key="3", up=False)).votes == 0
    with pytest.raises(NotVoted):
        await events.vote(event_id, q.id, participant="v1", key="4", up=False)
    assert await store.voted(event_id, "v1") == set()
    assert (await store.question(event_id, q.id)).votes == 0


async def test_votes_need_voting_on_and_a_votable_question(events: Events) -> None:
    event_id = await make_event(events, voting=False)
    q = await events.ask(event_id, text="No votes here", participant="a", key="a")
    with pytest.raises(VotingClosed):
        await events.vote(event_id, q.id, participant="v", key="v")
    event_id = await make_event(events, premoderation=True)
    pending = await events.ask(event_id, text="Pending", participant="a", key="a")
    with pytest.raises(IllegalTransition):
        await events.vote(event_id, pending.id, participant="v", key="v")
    await events.approve(event_id, pending.id, key="ok")
    await events.set_state(event_id, EventState.CLOSED, key="closed")
    with pytest.raises(VotingClosed):
        await events.vote(event_id, pending.id, participant="v", key="v2")


async def test_200_concurrent_votes_give_exactly_200(events: Events, store: Store) -> None:
    event_id = await make_event(events)
    q = await events.ask(event_id, text="Popular", participant="asker", key="a")
    await asyncio.gather(
        *(events.vote(event_id, q.id, participant=f"v{i}", key=f"k{i}") for i in range(200))
    )
    assert (await store.question(event_id, q.id)).votes == 200
    assert (await store.snapshot(event_id)).seq == 201


async def test_the_same_participant_voting_at_once_counts_once(
    events: Events, store: Store
) -> None:
    event_id = await make_event(events)
    q = await events.ask(event_id, text="Stuff me", participant="asker", key="a")
    results = await asyncio.gather(
        *(events.vote(event_id, q.id, participant="greedy", key=f"k{i}") for i in range(50)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, AlreadyVoted) for r in results if isinstance(r, Exception))
    assert (await store.question(event_id, q.id)).votes == 1


async def test_moderation_lifecycle(events: Events, store: Store) -> None:
    event_id = await make_event(events, premoderation=True)
    q = await events.ask(event_id, text="Screen me", participant="p", key="a")
    assert q.state is S.PENDING
    q = await events.dismiss(event_id, q.id, key="b", reason="Off topic")
    assert (q.state, q.reason) == (S.DISMISSED, "Off topic")
    q = await events.restore(event_id, q.id, key="c")
    assert (q.state, q.reason) == (S.PENDING, "")
    q = await events.approve(event_id, q.id, key="d")
    q = await events.edit(event_id, q.id, text="Screened", key="e")
    q = await events.star(event_id, q.id, key="f")
    assert (q.text, q.starred, q.state) == ("Screened", True, S.QUEUED)
    q = await events.promote(event_id, q.id, key="g")
    assert q.state is S.LIVE
    q = await events.done(event_id, q.id, key="h")
    assert q.state is S.ANSWERED
    q = await events.answer(event_id, q.id, text="Written answer\nwith lines", key="i")
    assert (await store.question(event_id, q.id)).answer == "Written answer\nwith lines"


async def test_promoting_sends_the_live_one_to_answered_or_back(
    events: Events, store: Store
) -> None:
    event_id = await make_event(events)
    a = await events.ask(event_id, text="A", participant="p", key="a")
    b = await events.ask(event_id, text="B", participant="p", key="b")
    c = await events.ask(event_id, text="C", participant="p", key="c")
    await events.promote(event_id, a.id, key="1")
    await events.promote(event_id, b.id, key="2")
    assert (await store.question(event_id, a.id)).state is S.ANSWERED
    await events.promote(event_id, c.id, key="3", previous=Action.BACK)
    assert (await store.question(event_id, b.id)).state is S.QUEUED
    live = [q for q in (await store.snapshot(event_id)).questions if q.state is S.LIVE]
    assert [q.id for q in live] == [c.id]


async def test_two_moderators_promoting_at_once_leave_exactly_one_live(
    events: Events, store: Store
) -> None:
    event_id = await make_event(events)
    for round in range(10):
        a = await events.ask(event_id, text=f"A{round}", participant="p", key=f"a{round}")
        b = await events.ask(event_id, text=f"B{round}", participant="p", key=f"b{round}")
        results = await asyncio.gather(
            events.promote(event_id, a.id, key=f"pa{round}"),
            events.promote(event_id, b.id, key=f"pb{round}"),
            return_exceptions=True,
        )
        assert all(not isinstance(r, Exception) or isinstance(r, Conflict) for r in results)
        live = [q for q in (await store.snapshot(event_id)).questions if q.state is S.LIVE]
        assert len(live) == 1


async def test_two_moderators_acting_on_one_question_get_one_success(
    events: Events, store: Store
) -> None:
    event_id = await make_event(events, premoderation=True)
    q = await events.ask(event_id, text="Contested", participant="p", key="a")
    results = await asyncio.gather(
        events.approve(event_id, q.id, key="m1"),
        events.approve(event_id, q.id, key="m2"),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(failures) == 1
    assert isinstance(failures[0], (Conflict, IllegalTransition))
    assert (await store.question(event_id, q.id)).rev == 2


async def test_a_write_from_a_stale_read_is_refused(events: Events, store: Store) -> None:
    from liveqa.store import Write

    event_id = await make_event(events, premoderation=True)
    q = await events.ask(event_id, text="Contested", participant="p", key="a")
    stale = await store.question(event_id, q.id)
    await events.dismiss(event_id, q.id, key="m1", reason="spam")
    with pytest.raises(Conflict, match="Someone else changed this question"):
        await store.commit(
            event_id,
            Write(type="question.approve", key="m2", questions=(stale.apply(Action.APPROVE, 9.0),)),
        )
    assert (await store.question(event_id, q.id)).state is S.DISMISSED


async def test_votes_do_not_make_moderators_conflict(events: Events, store: Store) -> None:
    event_id = await make_event(events)
    q = await events.ask(event_id, text="Busy", participant="p", key="a")
    await asyncio.gather(
        events.star(event_id, q.id, key="star"),
        *(events.vote(event_id, q.id, participant=f"v{i}", key=f"{i}") for i in range(20)),
    )
    stored = await store.question(event_id, q.id)
    assert (stored.starred, stored.votes) == (True, 20)


async def test_changes_since_replays_the_log_and_admits_when_it_is_trimmed(
    backend: str, events: Events
) -> None:
    from liveqa.store import open_store

    event_id = await make_event(events)
    a = await events.ask(event_id, text="A", participant="p", key="a")
    b = await events.ask(event_id, text="B", participant="p", key="b")
    await events.vote(event_id, a.id, participant="v", key="v")
    changes = await events.store.changes_since(event_id, 1)
    assert changes is not None
    assert [(c.seq, c.type, [q.id for q in c.questions]) for c in changes] == [
        (2, "question.asked", [b.id]),
        (3, "vote", [a.id]),
    ]
    assert changes[1].questions[0].votes == 1
    assert await events.store.changes_since(event_id, 3) == []
    assert await events.store.changes_since(event_id, 99) is None
    small = open_store(backend, log_keep=2)
    try:
        short = Events(small, events.bus)
        # Redis trims whole stream nodes (100 entries), so write well past one.
        for i in range(250):
            await short.vote(event_id, b.id, participant=f"x{i}", key=f"x{i}")
        assert await small.changes_since(event_id, 1) is None
        recent = await small.changes_since(event_id, 251)
        assert recent is not None and [c.seq for c in recent] == [252, 253]
    finally:
        await small.close()


async def test_event_state_and_settings_are_changes(events: Events, store: Store) -> None:
    event_id = await make_event(events)
    event = await events.set_state(event_id, EventState.VOTE_ONLY, key="s")
    assert event.state is EventState.VOTE_ONLY
    event = await events.configure(event_id, key="c", premoderation=True)
    assert event.settings.premoderation and event.state is EventState.VOTE_ONLY
    changes = await store.changes_since(event_id, 0)
    assert changes is not None and [c.event is not None for c in changes] == [True, True]


async def announced(
    bus: Bus, event_id: str, count: int, act: Callable[[], Awaitable[object]]
) -> list[Change]:
    """The first `count` changes announced for the event once `act` has run."""
    async with bus.subscribe(messages.channel(event_id)) as subscription:
        await act()
        received = []
        async with asyncio.timeout(5):
            async for message in subscription:
                received.append(messages.change_from_bus(message))
                if len(received) == count:
                    break
    return received


async def test_every_change_is_published_with_its_seq(events: Events, bus: Bus) -> None:
    event_id = await make_event(events)

    async def act() -> None:
        q = await events.ask(event_id, text="Hello", participant="p", key="a")
        await events.vote(event_id, q.id, participant="v", key="b")
        await events.promote(event_id, q.id, key="c")

    received = await announced(bus, event_id, 3, act)
    assert [(c.seq, c.type) for c in received] == [
        (1, "question.asked"),
        (2, "vote"),
        (3, "question.promote"),
    ]
    assert received[2].questions[0].state is S.LIVE
    assert received[1].questions[0].votes == 1


async def test_what_is_published_is_what_was_stored(events: Events, bus: Bus, store: Store) -> None:
    """The Redis store announces changes from its scripts; screens must read the same thing."""
    event_id = await make_event(events)
    text = 'Ünïcode "quotes" and </script>'

    async def act() -> None:
        q = await events.ask(event_id, text=text, participant="p", key="a")
        await events.vote(event_id, q.id, participant="v", key="b")
        await events.star(event_id, q.id, key="c")
        await events.set_state(event_id, EventState.VOTE_ONLY, key="d")

    received = await announced(bus, event_id, 4, act)
    stored = await store.changes_since(event_id, 0)
    assert stored is not None
    # The log carries questions as they are now; the messages, as they were then.
    asked, voted, starred, state = received
    assert asked.questions[0].text == text
    assert (voted.questions[0].votes, voted.questions[0].rev) == (1, 1)
    now = (await store.snapshot(event_id)).questions[0]
    assert starred.questions == (now,) and now.starred
    assert (
        state.event == (await store.event(event_id)) and state.event.state is EventState.VOTE_ONLY
    )
    assert [c.seq for c in received] == [c.seq for c in stored] == [1, 2, 3, 4]


async def test_reading_a_missing_event_says_not_found(store: Store) -> None:
    for read in (store.snapshot("nope"), store.changes_since("nope", 0), store.event("nope")):
        with pytest.raises(NotFound):
            await read
    # The store still works after a refused read (no transaction left open).
    assert await store.events() == []

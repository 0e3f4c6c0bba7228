"""After the event, on both stores: import, report counts, purge leaving nothing behind."""

from __future__ import annotations

import sqlite3

import pytest
import redis

from liveqa import export
from liveqa.events import Events
from liveqa.model import (
    DAY,
    CodeTaken,
    EventSettings,
    EventState,
    IllegalTransition,
    NotFound,
    QuestionState,
)
from liveqa.store import Store

S = QuestionState


async def busy_event(events: Events, retention_days: int = 0) -> str:
    created = await events.create(
        "Panel",
        code="PANEL",
        panelists=("Ada",),
        settings=EventSettings(retention_days=retention_days),
    )
    event_id = created.event.id
    a = await events.ask(event_id, text="Live one", participant="p1", key="a", name="Ann")
    b = await events.ask(event_id, text="Leftover", participant="p2", key="b")
    await events.vote(event_id, b.id, participant="p3", key="v")
    await events.vote(event_id, b.id, participant="p1", key="v")
    await events.promote(event_id, a.id, key="p")
    await events.done(event_id, a.id, key="d")
    await events.store.join(event_id, "p1")
    await events.store.join(event_id, "p1")
    await events.store.join(event_id, "p4")
    return event_id


async def test_unanswered_questions_are_answered_in_writing_after_closing(
    events: Events, store: Store
) -> None:
    event_id = await busy_event(events)
    await events.set_state(event_id, EventState.CLOSED, key="close")
    (leftover,) = [q for q in (await store.snapshot(event_id)).questions if q.state is S.QUEUED]
    await events.assign(event_id, leftover.id, panelist="Ada", key="as")
    draft = await events.draft(event_id, leftover.id, text="Working on it", key="dr")
    assert (draft.assignee, draft.draft, draft.state) == ("Ada", "Working on it", S.QUEUED)
    published = await events.answer(event_id, leftover.id, text="Here it is", key="pub")
    assert (published.state, published.answer, published.draft, published.answered_via) == (
        S.ANSWERED,
        "Here it is",
        "",
        "writing",
    )
    await events.set_state(event_id, EventState.ARCHIVED, key="arch")
    with pytest.raises(Exception, match="read-only"):
        await events.answer(event_id, leftover.id, text="Too late", key="late")
    with pytest.raises(IllegalTransition):
        await events.set_state(event_id, EventState.DRAFT, key="back")
    assert (
        await events.set_state(event_id, EventState.OPEN, key="reopen")
    ).state is EventState.OPEN


async def test_people_are_counted_once(events: Events, store: Store) -> None:
    event_id = await busy_event(events)
    assert await store.people(event_id) == (2, 2)


async def test_export_then_import_recreates_the_event(events: Events, store: Store) -> None:
    event_id = await busy_event(events)
    snapshot = await store.snapshot(event_id)
    data = export.to_json(snapshot.event, snapshot.questions)
    with pytest.raises(CodeTaken):
        await events.import_event(data)
    await events.delete(event_id)
    created = await events.import_event(data)
    copy = await store.snapshot(created.event.id)
    assert copy.event.code == "PANEL" and copy.event.title == "Panel"
    assert [(q.text, q.state, q.votes, q.name, q.answered_via) for q in copy.questions] == [
        (q.text, q.state, q.votes, q.name, q.answered_via) for q in snapshot.questions
    ]
    # The copy lives on: it takes votes and moderation like any event.
    (leftover,) = [q for q in copy.questions if q.state is S.QUEUED]
    assert (await events.vote(created.event.id, leftover.id, participant="new", key="n")).votes == 3
    assert (await store.event_by_code("PANEL")).id == created.event.id


async def test_purge_leaves_nothing_of_the_event(
    backend: str, events: Events, store: Store
) -> None:
    keep = (await events.create("Other", code="OTHER")).event.id
    event_id = await busy_event(events, retention_days=7)
    await events.set_state(event_id, EventState.CLOSED, key="close")
    assert await events.purge_expired() == []
    events.clock = lambda: 10**10  # long after the retention period
    assert [e.id for e in await events.purge_expired()] == [event_id]
    with pytest.raises(NotFound):
        await store.event(event_id)
    with pytest.raises(NotFound):
        await store.event_by_code("PANEL")
    assert [e.id for e in await store.events()] == [keep]
    if backend.startswith("redis"):
        client = redis.Redis.from_url(backend, decode_responses=True)
        left = [
            k
            for k in client.scan_iter()
            if event_id in k
            or "PANEL" in k
            or (client.type(k) == "zset" and client.zscore(k, event_id) is not None)
        ]
        client.close()
        assert left == []
    else:
        db = sqlite3.connect(backend.removeprefix("sqlite:///"))
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
            column = "id" if table == "events" else "event_id"
            if column in columns:
                (n,) = db.execute(
                    f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (event_id,)
                ).fetchone()
                assert n == 0, table
        (votes,) = db.execute("SELECT COUNT(*) FROM votes").fetchone()
        db.close()
        assert votes == 0
    assert DAY == 86400

"""The hub's fan-out on one process: counts coalesced, staff first, nothing sent for nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from liveqa.bus import open_bus
from liveqa.events import Events
from liveqa.hub import VOTE_INTERVAL, Client, Hub
from liveqa.model import EventSettings
from liveqa.store import open_store


class Screen:
    def __init__(self, hub: Hub, role: str, participant: str = "") -> None:
        self.messages: list[dict[str, Any]] = []
        self.hub, self.role, self.participant = hub, role, participant

    async def send(self, text: str) -> None:
        self.messages.append(json.loads(text))

    async def connect(self, event_id: str) -> None:
        async def catch_up(since: int | None) -> tuple[int, list[str]]:
            return await room.catch_up(since, self.role, self.participant)

        client = self.client = Client(
            role=self.role, participant=self.participant, send=self.send, catch_up=catch_up
        )
        room = await self.hub.join(event_id, client)
        client.start()
        assert client.task is not None
        await client.task

    def changes(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "change"]


async def setup(tmp_path: Path, **settings: Any) -> tuple[Events, Hub, str]:
    store, bus = open_store(f"sqlite:///{tmp_path}/db"), open_bus("memory://")
    events = Events(store, bus)
    event_id = (await events.create("Panel", settings=EventSettings(**settings))).event.id
    return events, Hub(store, bus), event_id


async def settle(screen: Screen, predicate: Any) -> None:
    async with asyncio.timeout(5):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_a_burst_of_votes_reaches_screens_as_a_few_messages_with_exact_counts(
    tmp_path: Path,
) -> None:
    events, hub, event_id = await setup(tmp_path)
    a = await events.ask(event_id, text="A", participant="p", key="a")
    b = await events.ask(event_id, text="B", participant="p", key="b")
    audience, moderator = Screen(hub, "audience", "someone"), Screen(hub, "moderator")
    await audience.connect(event_id)
    await moderator.connect(event_id)
    await asyncio.gather(
        *(
            events.vote(event_id, q.id, participant=f"v{i}", key=f"{q.id}{i}")
            for i in range(60)
            for q in (a, b)
        )
    )

    def counted() -> bool:
        latest = {q["id"]: q["votes"] for m in audience.changes() for q in m["questions"]}
        return latest == {a.id: 60, b.id: 60}

    await settle(audience, counted)
    await asyncio.sleep(VOTE_INTERVAL * 2)
    votes = [m for m in audience.changes() if m["change"] == "vote"]
    assert 1 <= len(votes) <= 4  # 120 votes, a handful of messages
    assert len([m for m in moderator.changes() if m["change"] == "vote"]) == len(votes)
    assert votes[-1]["seq"] == 122
    await hub.close()


async def test_pending_counts_go_out_before_the_change_that_follows_them(tmp_path: Path) -> None:
    events, hub, event_id = await setup(tmp_path)
    q = await events.ask(event_id, text="A", participant="p", key="a")
    audience = Screen(hub, "audience", "someone")
    await audience.connect(event_id)
    await events.vote(event_id, q.id, participant="v", key="v")
    await events.promote(event_id, q.id, key="live")
    await settle(audience, lambda: len(audience.changes()) == 2)
    first, second = audience.changes()
    assert (first["change"], first["questions"][0]["votes"]) == ("vote", 1)
    assert (second["change"], second["questions"][0]["state"]) == ("question.promote", "live")
    await hub.close()


async def test_the_audience_hears_nothing_of_questions_waiting_for_approval(tmp_path: Path) -> None:
    events, hub, event_id = await setup(tmp_path, premoderation=True)
    audience, asker, moderator = (
        Screen(hub, "audience", "other"),
        Screen(hub, "audience", "asker"),
        Screen(hub, "moderator"),
    )
    for screen in (audience, asker, moderator):
        await screen.connect(event_id)
    q = await events.ask(event_id, text="Screen me", participant="asker", key="a")
    await events.dismiss(event_id, q.id, key="d", reason="Off topic")
    await settle(moderator, lambda: len(moderator.changes()) == 2)
    await settle(asker, lambda: len(asker.changes()) == 2)
    assert [m["questions"][0]["state"] for m in asker.changes()] == ["pending", "dismissed"]
    assert asker.changes()[1]["questions"][0]["reason"] == "Off topic"
    await asyncio.sleep(0.05)
    assert audience.changes() == []
    await hub.close()


async def test_a_passcode_set_while_the_room_heard_nothing_still_turns_the_audience_away(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path}/db", log_keep=5)
    events = Events(store, open_bus("memory://"))
    event_id = (await events.create("Panel")).event.id
    hub = Hub(store, open_bus("memory://"))  # another process: no doorbell reaches it
    audience = Screen(hub, "audience", "someone")
    await audience.connect(event_id)
    await events.set_passcode(event_id, "tulip 42")
    for i in range(10):  # and the change log moves past the passcode change
        await events.ask(event_id, text=f"Q{i}", participant="p", key=f"k{i}")
    await settle(audience, lambda: audience.client.refused)  # the room's periodic check

"""The shared store: Redis hashes per event and question, one Lua script per mutation.

Every key of an event carries the hash tag `{ev:ID}`, so one event lives on one Cluster slot.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError

from liveqa import messages
from liveqa.model import (
    VOTABLE,
    VOTING,
    AlreadyVoted,
    Change,
    CodeTaken,
    Conflict,
    DomainError,
    Event,
    EventClosed,
    IllegalTransition,
    NotFound,
    NotVoted,
    Question,
    QuestionState,
)
from liveqa.store import IDEMPOTENCY_TTL, Snapshot, Write

PREFIX = "liveqa"
TIMEOUT = 1.0

# KEYS: event, log, idem, index, question...   ARGV: type, ttl, live, event data, event state,
# event voting flag, allowed event states, log length, channel, then per question: id, rev,
# data, created_at, state. The change is announced on the channel in the same step, in the
# format of `messages.change_to_bus`: question data and event record are JSON already.
COMMIT = """
local prior = redis.call('HMGET', KEYS[3], 'seq', 'type', 'ids', 'has_event')
if prior[1] then return {'again', prior[1], prior[2], prior[3], prior[4]} end
local ev = redis.call('HMGET', KEYS[1], 'state', 'live')
if not ev[1] then return {'error', 'not_found'} end
if ARGV[7] ~= '' and not string.find(',' .. ARGV[7] .. ',', ',' .. ev[1] .. ',', 1, true) then
  return {'error', 'event_state'}
end
local live = ev[2] or ''
if ARGV[3] ~= '*' and ARGV[3] ~= live then return {'error', 'live'} end
local n = (#KEYS - 4)
for i = 1, n do
  local rev = tonumber(ARGV[9 + (i - 1) * 5 + 2])
  local stored = tonumber(redis.call('HGET', KEYS[4 + i], 'rev') or '0')
  if stored ~= rev - 1 then return {'error', 'conflict'} end
end
local ids, votes, rows = {}, {}, {}
for i = 1, n do
  local b = 9 + (i - 1) * 5
  local id, rev, state = ARGV[b + 1], ARGV[b + 2], ARGV[b + 5]
  redis.call('HSET', KEYS[4 + i], 'data', ARGV[b + 3], 'rev', rev, 'state', state)
  if rev == '1' then
    redis.call('HSET', KEYS[4 + i], 'votes', 0)
    redis.call('ZADD', KEYS[4], ARGV[b + 4], id)
  end
  if state == 'live' then live = id elseif live == id then live = '' end
  ids[#ids + 1] = id
  votes[#votes + 1] = redis.call('HGET', KEYS[4 + i], 'votes')
  rows[#rows + 1] = '[' .. ARGV[b + 3] .. ',' .. rev .. ',' .. (votes[#votes] or '0') .. ']'
end
local has_event = '0'
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'data', ARGV[4], 'state', ARGV[5], 'voting', ARGV[6])
  has_event = '1'
end
redis.call('HSET', KEYS[1], 'live', live)
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local idlist = table.concat(ids, ',')
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], seq .. '-0',
  'type', ARGV[1], 'ids', idlist, 'has_event', has_event)
redis.call('HSET', KEYS[3], 'seq', seq, 'type', ARGV[1], 'ids', idlist, 'has_event', has_event)
redis.call('EXPIRE', KEYS[3], ARGV[2])
local record = 'null'
if has_event == '1' then record = ARGV[4] end
redis.call('PUBLISH', ARGV[9], '{"seq":' .. seq .. ',"type":' .. cjson.encode(ARGV[1]) ..
  ',"rows":[' .. table.concat(rows, ',') .. '],"event":' .. record .. '}')
return {'ok', seq, unpack(votes)}
"""

# KEYS: event, log, idem, question, voters, voted   ARGV: participant, up, question id,
# votable states, voting event states, ttl, log length, channel  ->  'ok', seq, and the
# question's data, rev and votes (so that the vote needs no second read). Announced as COMMIT.
VOTE = """
local prior = redis.call('HMGET', KEYS[3], 'seq', 'type', 'ids', 'has_event')
if prior[1] then return {'again', prior[1], prior[2], prior[3], prior[4]} end
local ev = redis.call('HMGET', KEYS[1], 'state', 'voting')
if not ev[1] then return {'error', 'not_found'} end
if ev[2] ~= '1' or not string.find(',' .. ARGV[5] .. ',', ',' .. ev[1] .. ',', 1, true) then
  return {'error', 'event_state'}
end
local state = redis.call('HGET', KEYS[4], 'state')
if not state then return {'error', 'not_found'} end
if not string.find(',' .. ARGV[4] .. ',', ',' .. state .. ',', 1, true) then
  return {'error', 'question_state'}
end
local delta = 1
if ARGV[2] == '1' then
  if redis.call('SADD', KEYS[5], ARGV[1]) == 0 then return {'error', 'already'} end
  redis.call('SADD', KEYS[6], ARGV[3])
else
  if redis.call('SREM', KEYS[5], ARGV[1]) == 0 then return {'error', 'not_voted'} end
  redis.call('SREM', KEYS[6], ARGV[3])
  delta = -1
end
redis.call('HINCRBY', KEYS[4], 'votes', delta)
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], seq .. '-0',
  'type', 'vote', 'ids', ARGV[3], 'has_event', '0')
redis.call('HSET', KEYS[3], 'seq', seq, 'type', 'vote', 'ids', ARGV[3], 'has_event', '0')
redis.call('EXPIRE', KEYS[3], ARGV[6])
local q = redis.call('HMGET', KEYS[4], 'data', 'rev', 'votes')
redis.call('PUBLISH', ARGV[8], '{"seq":' .. seq .. ',"type":"vote","rows":[[' .. q[1] .. ',' ..
  q[2] .. ',' .. q[3] .. ']],"event":null}')
return {'ok', seq, q[1], q[2], q[3]}
"""

# KEYS: event, index   ->  event data, seq, then data, rev, votes of each question in order.
SNAPSHOT = """
local ev = redis.call('HMGET', KEYS[1], 'data', 'seq')
if not ev[1] then return false end
local out = {ev[1], ev[2]}
local prefix = string.sub(KEYS[1], 1, -6) .. 'q:'
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local q = redis.call('HMGET', prefix .. id, 'data', 'rev', 'votes')
  out[#out + 1] = q[1]; out[#out + 1] = q[2]; out[#out + 1] = q[3]
end
return out
"""


SENTINEL = "redis+sentinel://"
MAX_CODES = 10_000


def connect(url: str, *, pool_size: int = 0, **options: Any) -> redis.Redis:
    """A client for `url`: redis://, rediss://, unix://, or Sentinel's current primary.

    `redis+sentinel://[:password@]host:port[,host:port...]/SERVICE[/DB]` asks the Sentinels which
    server is the primary, and asks again whenever a connection to it fails (a failover).
    With `pool_size`, a burst waits (up to the socket timeout) for a free connection.
    """
    if not url.startswith(SENTINEL):
        if pool_size:
            pool = redis.BlockingConnectionPool.from_url(
                url, max_connections=pool_size, timeout=options.get("socket_timeout"), **options
            )
            return redis.Redis(connection_pool=pool)
        return redis.Redis.from_url(url, **options)
    rest = url.removeprefix(SENTINEL)
    password = None
    if "@" in rest:
        auth, rest = rest.rsplit("@", 1)
        password = auth.split(":", 1)[-1] or None
    hosts, _, path = rest.partition("/")
    service, _, db = path.partition("/")
    if not service:
        raise ValueError(f"{url!r} names no Sentinel service: use {SENTINEL}host:port/mymaster/0")
    addresses = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        addresses.append((name, int(port)))
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinel = Sentinel(addresses, sentinel_kwargs=timeouts)  # type: ignore[no-untyped-call]
    if pool_size:
        options["max_connections"] = pool_size
    client: redis.Redis = sentinel.master_for(
        service, db=int(db or 0), password=password, **options
    )
    return client


JOIN = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('SADD', KEYS[2], ARGV[1]) end
return 0
"""


def _csv(values: frozenset[Any]) -> str:
    return ",".join(sorted(str(v) for v in values))


class RedisStore:
    def __init__(self, url: str, *, log_keep: int, timeout: float = TIMEOUT) -> None:
        self.url = url
        self.log_keep = log_keep
        # Bounded: a stopped or frozen Redis must fail a request within about 2 x `timeout`
        # (a wait for a free connection, then one command), never hang it. A refused or reset
        # connection is retried once (Redis restarting); a timeout is not: the command may
        # still run when Redis wakes up, and the caller's retry with its key is what is safe.
        self.redis: redis.Redis = connect(
            url,
            pool_size=128,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(
                ExponentialBackoff(cap=0.2, base=0.05),
                retries=1,
                supported_errors=(ConnectionError,),
            ),
            health_check_interval=10,
        )
        self._commit = self.redis.register_script(COMMIT)
        self._vote = self.redis.register_script(VOTE)
        self._snapshot = self.redis.register_script(SNAPSHOT)
        self._join = self.redis.register_script(JOIN)
        # Event code -> id, as last read. Every request looks an event up by its code; the
        # event itself is always read afresh, and checked to still carry that code.
        self._ids: dict[str, str] = {}

    # Every commit and vote is announced on the event's channel by the script that makes it.
    announces = True

    @staticmethod
    def key(event_id: str, *parts: str) -> str:
        return ":".join((PREFIX, f"{{ev:{event_id}}}", *parts))

    async def close(self) -> None:
        await self.redis.aclose()

    async def append_only(self) -> bool:
        info = await self.redis.info("persistence")
        return bool(info.get("aof_enabled"))

    async def add_event(self, event: Event) -> None:
        if not await self.redis.set(f"{PREFIX}:code:{event.code}", event.id, nx=True):
            raise CodeTaken(f"The event code {event.code} is taken.")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key(event.id, "event"), mapping=_event_fields(event) | {"seq": 0})  # type: ignore[arg-type]
            pipe.zadd(f"{PREFIX}:events", {event.id: event.created_at})
            await pipe.execute()

    async def event(self, event_id: str) -> Event:
        data = await self.redis.hget(self.key(event_id, "event"), "data")
        if data is None:
            raise NotFound("There is no event with that code.")
        return Event.from_record(json.loads(data))

    async def event_by_code(self, code: str) -> Event:
        code = code.upper()
        if (event_id := self._ids.get(code)) is not None:
            with contextlib.suppress(NotFound):
                if (event := await self.event(event_id)).code == code:
                    return event
            self._ids.pop(code, None)  # deleted, or the code went to another event since
        found = await self.redis.get(f"{PREFIX}:code:{code}")
        if found is None:
            raise NotFound("There is no event with that code.")
        event = await self.event(str(found))
        if len(self._ids) >= MAX_CODES:
            self._ids.clear()
        self._ids[code] = event.id
        return event

    async def events(self) -> list[Event]:
        ids: list[str] = await self.redis.zrevrange(f"{PREFIX}:events", 0, -1)  # type: ignore[assignment]
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id in ids:
                pipe.hget(self.key(event_id, "event"), "data")
            rows = await pipe.execute()
        return [Event.from_record(json.loads(data)) for data in rows if data]

    async def question(self, event_id: str, question_id: str) -> Question:
        data, rev, votes = await self.redis.hmget(
            self.key(event_id, "q", question_id), ["data", "rev", "votes"]
        )  # decode_responses: every value is a str or None
        if data is None:
            raise NotFound("There is no such question in this event.")
        return _question(data, rev, votes)  # type: ignore[arg-type]

    async def _questions(self, event_id: str, ids: list[str]) -> tuple[Question, ...]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for question_id in ids:
                pipe.hmget(self.key(event_id, "q", question_id), ["data", "rev", "votes"])
            rows = await pipe.execute()
        return tuple(_question(*row) for row in rows if row[0] is not None)

    async def snapshot(self, event_id: str) -> Snapshot:
        out = await self._snapshot(keys=[self.key(event_id, "event"), self.key(event_id, "qs")])
        if not out:
            raise NotFound("There is no event with that code.")
        rows = out[2:]
        return Snapshot(
            event=Event.from_record(json.loads(out[0])),
            seq=int(out[1]),
            questions=tuple(
                _question(rows[i], rows[i + 1], rows[i + 2]) for i in range(0, len(rows), 3)
            ),
        )

    async def commit(self, event_id: str, write: Write) -> Change:
        args: list[Any] = [
            write.type,
            IDEMPOTENCY_TTL,
            "*" if write.live is None else write.live,
            json.dumps(write.event.to_record()) if write.event else "",
            write.event.state.value if write.event else "",
            int(write.event.settings.voting) if write.event else "",
            _csv(write.event_states) if write.event_states is not None else "",
            self.log_keep,
            messages.channel(event_id),
        ]
        for q in write.questions:
            args += [q.id, q.rev, json.dumps(q.to_dict()), q.created_at, q.state.value]
        keys = [
            self.key(event_id, "event"),
            self.key(event_id, "log"),
            self.key(event_id, "idem", write.key),
            self.key(event_id, "qs"),
            *(self.key(event_id, "q", q.id) for q in write.questions),
        ]
        result = await self._commit(keys=keys, args=args)
        outcome = await self._outcome(event_id, result)
        if outcome is not None:
            return outcome
        votes = result[2:]
        return Change(
            seq=int(result[1]),
            type=write.type,
            questions=tuple(
                Question.from_dict(q.to_dict() | {"votes": int(v)})
                for q, v in zip(write.questions, votes, strict=True)
            ),
            event=write.event,
        )

    async def vote(
        self, event_id: str, question_id: str, participant: str, up: bool, key: str
    ) -> Change:
        result = await self._vote(
            keys=[
                self.key(event_id, "event"),
                self.key(event_id, "log"),
                self.key(event_id, "idem", key),
                self.key(event_id, "q", question_id),
                self.key(event_id, "voters", question_id),
                self.key(event_id, "voted", participant),
            ],
            args=[
                participant,
                int(up),
                question_id,
                _csv(VOTABLE),
                _csv(VOTING),
                IDEMPOTENCY_TTL,
                self.log_keep,
                messages.channel(event_id),
            ],
        )
        if result[1] == "event_state":
            (await self.event(event_id)).check_can_vote()
        outcome = await self._outcome(event_id, result)
        if outcome is not None:
            return outcome
        return Change(
            seq=int(result[1]),
            type="vote",
            questions=(_question(*result[2:5]),),
        )

    async def _outcome(self, event_id: str, result: list[Any]) -> Change | None:
        status = result[0]
        if status == "ok":
            return None
        if status == "again":
            return await self._change(event_id, *result[1:])
        error, message = _ERRORS[result[1]]
        raise error(message)

    async def _change(self, event_id: str, seq: str, type: str, ids: str, has_event: str) -> Change:
        return Change(
            seq=int(seq),
            type=type,
            questions=await self._questions(event_id, [i for i in ids.split(",") if i]),
            event=await self.event(event_id) if has_event == "1" else None,
        )

    async def voted(self, event_id: str, participant: str) -> set[str]:
        members: set[str] = await self.redis.smembers(self.key(event_id, "voted", participant))  # type: ignore[assignment]
        return members

    async def changes_since(self, event_id: str, seq: int) -> list[Change] | None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(self.key(event_id, "event"), "seq")
            pipe.xrange(self.key(event_id, "log"), min=f"{seq + 1}-0")
            current, entries = await pipe.execute()
        if current is None:
            raise NotFound("No such event.")
        if seq == int(current):
            return []
        if seq > int(current):
            return None
        if not entries or entries[0][0] != f"{seq + 1}-0":
            return None
        # One round trip for every question the entries name, however many entries there are.
        ids = list(dict.fromkeys(i for _, f in entries for i in f["ids"].split(",") if i))
        questions = {q.id: q for q in await self._questions(event_id, ids)}
        event = None
        if any(f["has_event"] == "1" for _, f in entries):
            event = await self.event(event_id)
        return [
            Change(
                seq=int(entry_id.split("-")[0]),
                type=f["type"],
                questions=tuple(questions[i] for i in f["ids"].split(",") if i in questions),
                event=event if f["has_event"] == "1" else None,
            )
            for entry_id, f in entries
        ]

    async def recall(self, event_id: str, key: str) -> Change | None:
        prior: list[str] = await self.redis.hmget(  # type: ignore[assignment]
            self.key(event_id, "idem", key), ["seq", "type", "ids", "has_event"]
        )
        if prior[0] is None:
            return None
        return await self._change(event_id, *prior)

    async def join(self, event_id: str, participant: str) -> None:
        # A page served while its event was being purged must not leave a key behind.
        await self._join(
            keys=[self.key(event_id, "event"), self.key(event_id, "people")], args=[participant]
        )

    async def people(self, event_id: str) -> tuple[int, int]:
        joined: int = await self.redis.scard(self.key(event_id, "people"))
        voters = 0
        async for _ in self.redis.scan_iter(match=self.key(event_id, "voted", "*"), count=1000):
            voters += 1
        return joined, voters

    async def restore(self, event: Event, questions: Sequence[Question]) -> None:
        await self.add_event(event)
        live = next((q.id for q in questions if q.state is QuestionState.LIVE), "")
        async with self.redis.pipeline(transaction=True) as pipe:
            for q in questions:
                pipe.hset(
                    self.key(event.id, "q", q.id),
                    mapping={
                        "data": json.dumps(q.to_dict()),
                        "rev": q.rev,
                        "votes": q.votes,
                        "state": q.state.value,
                    },
                )
                pipe.zadd(self.key(event.id, "qs"), {q.id: q.created_at})
            pipe.hset(self.key(event.id, "event"), "live", live)
            await pipe.execute()

    async def delete_event(self, event_id: str) -> None:
        event = await self.event(event_id)
        # Every key of the event shares its hash tag, so one pattern finds them all.
        pattern = self.key(event_id, "*")  # braces are not special in Redis patterns
        batch: list[str] = []
        async for key in self.redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await self.redis.unlink(*batch)
                batch = []
        if batch:
            await self.redis.unlink(*batch)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"{PREFIX}:code:{event.code}")
            pipe.zrem(f"{PREFIX}:events", event_id)
            await pipe.execute()


def _event_fields(event: Event) -> dict[str, Any]:
    return {
        "data": json.dumps(event.to_record()),
        "state": event.state.value,
        "voting": int(event.settings.voting),
        "live": "",
    }


def _question(data: str, rev: str, votes: str | None) -> Question:
    return Question.from_dict(json.loads(data) | {"rev": int(rev), "votes": int(votes or 0)})


_ERRORS: dict[str, tuple[type[DomainError], str]] = {
    "not_found": (NotFound, "There is no such question in this event."),
    "event_state": (EventClosed, "The event changed state just now; reload to see it."),
    "live": (Conflict, "Another question went on screen just now; look again."),
    "conflict": (Conflict, "Someone else changed this question just now; look again."),
    "already": (AlreadyVoted, "You have already voted for this question."),
    "not_voted": (NotVoted, "You have not voted for this question."),
    "question_state": (IllegalTransition, "Voting on this question has ended."),
}

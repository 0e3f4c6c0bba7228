"""liveqa's fan-out benchmark against its peers, in one run on loopback.

    python bench/run.py --n 1000            # every scenario, 3 repetitions, all baselines
    python bench/run.py --n 200 --quick     # CI: one short repetition

Starts a private Redis (AOF on) and, for each configuration, a fresh server; connects N websocket
clients from separate load processes (bench/wsclient.py); drives the scenarios of issue 6; prints
markdown tables (medians over repetitions; ratios against the bare `websockets.broadcast()`
server measured in the same run). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as redis
from httpc import HTTP, cookie_header, cookies, csrf_meta
from payload import message

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MAIN_PY = sys.executable  # liveqa's own virtualenv: runs liveqa, the raw baseline, the load
BENCH_PY = HERE / ".venv" / "bin" / "python"  # socket.io, Channels, py-spy
# Where liveqa is imported from: a `git archive` of --liveqa-rev (see export_liveqa), so that
# edits in the working tree during a long run do not change what is measured.
LIVEQA_ENV: dict[str, str] = {}
HOST = "127.0.0.1"
SECRET = "bench-secret-key-not-for-production-0123456789"
CODE = "BENCH"
CLK = os.sysconf("SC_CLK_TCK")
LOGS = Path(tempfile.gettempdir()) / "liveqa-bench-logs"
LOGS.mkdir(exist_ok=True)
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def cpu(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK, int(fields[12]) / CLK


def rss(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_log(name: str) -> Any:
    """Servers write to a log file (in the temp dir), not over the tables."""
    return open(LOGS / f"{name}.log", "a")


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            *("redis-server", "--port", str(port), "--bind", HOST, "--dir", str(tmp)),
            *("--appendonly", "yes", "--save", "", "--maxclients", "30000"),
            *("--loglevel", "warning"),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield f"redis://{HOST}:{port}/0"
    finally:
        stop(proc)


# -- load processes ----------------------------------------------------------------------


class LoadProc:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [MAIN_PY, str(HERE / "wsclient.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    async def call(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin
        assert self.proc.stdout
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        line = await asyncio.to_thread(self.proc.stdout.readline)
        if not line:
            raise RuntimeError("load process died")
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin
            self.proc.stdin.write('{"cmd": "quit"}\n')
            self.proc.stdin.flush()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Loads:
    def __init__(self, count: int) -> None:
        self.procs = [LoadProc() for _ in range(count)]

    async def all(self, **cmd: Any) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(p.call(**cmd) for p in self.procs)))

    async def connect(self, n: int, targets: list[Target], stall: int = 0) -> tuple[int, float]:
        """Split n sockets over the load processes (and over `targets` round robin)."""
        shares = [n // len(self.procs) + (i < n % len(self.procs)) for i in range(len(self.procs))]
        stalls = [
            stall // len(self.procs) + (i < stall % len(self.procs)) for i in range(len(self.procs))
        ]
        t = time.monotonic()
        replies = await asyncio.gather(
            *(
                p.call(cmd="connect", n=k, stall=s, inflight=100, **targets[i % len(targets)].ws())
                for i, (p, k, s) in enumerate(zip(self.procs, shares, stalls, strict=True))
            )
        )
        connected = sum(r["connected"] for r in replies)
        if connected < n:
            print(f"  ! only {connected} of {n} sockets connected", file=sys.stderr)
        return connected, connected / (time.monotonic() - t)

    async def wait(self, seq: int, timeout: float) -> bool:
        replies = await self.all(cmd="wait", seq=seq, timeout=timeout)
        return all(r["count"] >= r["healthy"] for r in replies)

    def close(self) -> None:
        for p in self.procs:
            p.close()


# -- servers under test --------------------------------------------------------------------


@dataclass
class Target:
    name: str
    redis_url: str
    port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen[Any]] = field(default_factory=list)
    seq: int = 0
    pad: int = 0

    def ws(self) -> dict[str, Any]:
        return {
            "host": HOST,
            "port": self.port,
            "path": self.path(),
            "headers": {"Origin": f"http://{HOST}:{self.port}"},
            "socketio": False,
        }

    def path(self) -> str:
        return "/"

    @property
    def pid(self) -> int:
        return self.procs[0].pid

    async def start(self) -> None:
        raise NotImplementedError

    async def publish(self, count: int) -> list[tuple[int, int]]:
        """Publish `count` events back to back: [(seq, t0 ns)]."""
        raise NotImplementedError

    async def stop(self) -> None:
        for p in self.procs:
            stop(p)


class Raw(Target):
    async def start(self) -> None:
        self.procs = [
            subprocess.Popen(
                [MAIN_PY, str(HERE / "servers/raw_ws.py"), str(self.port), self.redis_url],
                stdout=server_log(self.name),
                stderr=subprocess.STDOUT,
            )
        ]
        wait_port(self.port)
        self.redis = redis.Redis.from_url(self.redis_url)

    async def publish(self, count: int) -> list[tuple[int, int]]:
        out = []
        for _ in range(count):
            self.seq += 1
            text = message(self.seq, self.pad)
            out.append((self.seq, time.time_ns()))
            await self.redis.publish("bench", text)
        return out

    async def stop(self) -> None:
        await self.redis.aclose()
        await super().stop()


class EagerSketch(Raw):
    """servers/eager_app.py: the fan-out path proposed for liveqa, on liveqa's stack."""

    async def start(self) -> None:
        self.procs = [
            subprocess.Popen(
                [
                    *(MAIN_PY, "-m", "uvicorn", "--app-dir", str(HERE / "servers")),
                    *("--host", HOST, "--port", str(self.port), "--loop", "uvloop"),
                    *("--http", "httptools", "--ws", "websockets-sansio"),
                    *("--ws-per-message-deflate", "false", "--ws-max-size", "65536"),
                    *("--log-level", "warning", "--backlog", "4096", "eager_app:app"),
                ],
                env=dict(os.environ, REDIS_URL=self.redis_url),
                stdout=server_log(self.name),
                stderr=subprocess.STDOUT,
            )
        ]
        wait_port(self.port)
        self.redis = redis.Redis.from_url(self.redis_url)


class Peer(Target):
    """socket.io or Channels under uvicorn (websockets-sansio, deflate off), in bench/.venv."""

    kind = ""
    app = ""

    async def start(self) -> None:
        env = dict(os.environ, REDIS_URL=self.redis_url)
        self.procs = [
            subprocess.Popen(
                [
                    *(str(BENCH_PY), "-m", "uvicorn", "--app-dir", str(HERE / "servers")),
                    *("--host", HOST, "--port", str(self.port), "--loop", "uvloop"),
                    *("--http", "httptools", "--ws", "websockets-sansio"),
                    *("--ws-per-message-deflate", "false", "--log-level", "warning"),
                    *("--no-access-log", "--backlog", "4096", self.app),
                ],
                env=env,
                cwd=HERE / "servers",
                stdout=server_log(self.name),
                stderr=subprocess.STDOUT,
            )
        ]
        wait_port(self.port)
        self.pub = subprocess.Popen(
            [str(BENCH_PY), str(HERE / "publish.py"), self.kind, self.redis_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            cwd=HERE / "servers",
        )

    async def publish(self, count: int) -> list[tuple[int, int]]:
        assert self.pub.stdin
        assert self.pub.stdout
        seqs = list(range(self.seq + 1, self.seq + count + 1))
        self.seq += count
        self.pub.stdin.write(json.dumps({"seqs": seqs}) + "\n")
        t0 = json.loads(await asyncio.to_thread(self.pub.stdout.readline))["t0"]
        return list(zip(seqs, t0, strict=True))

    async def stop(self) -> None:
        assert self.pub.stdin
        self.pub.stdin.close()  # the publisher ends at EOF
        try:
            self.pub.wait(10)
        except subprocess.TimeoutExpired:
            self.pub.kill()
        await super().stop()


class SocketIO(Peer):
    kind, app = "sio", "sio_app:app"

    def path(self) -> str:
        return "/socket.io/?EIO=4&transport=websocket"

    def ws(self) -> dict[str, Any]:
        return dict(super().ws(), socketio=True)


class Channels(Peer):
    kind, app = "channels", "chanbench.asgi:application"

    def path(self) -> str:
        return "/ws"


class LiveQA(Target):
    """liveqa as the README runs it in production: `liveqa serve` on Redis (AOF on)."""

    extra_ports: list[int]

    def path(self) -> str:
        return f"/e/{CODE}/live"

    def env(self, port: int) -> dict[str, str]:
        return dict(
            os.environ,
            **LIVEQA_ENV,
            PORT=str(port),
            LIVEQA_BACKEND=self.redis_url,
            LIVEQA_SECRET_KEY=SECRET,
            # Every bench client comes from 127.0.0.1; a real hall has many addresses.
            LIVEQA_LIMIT_ASK="0",
            LIVEQA_LIMIT_VOTE="0",
            LIVEQA_LIMIT_NEW_VOTERS="0",
            LIVEQA_LIMIT_LOOKUPS="0",
        )

    async def start(self, processes: int = 1) -> None:
        env = self.env(self.port)
        out = subprocess.run(
            [
                *(MAIN_PY, "-m", "liveqa", "create-event", "Bench", "--code", CODE),
                *("--premoderation", "--max-length", "2000"),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        self.ports = [self.port] + [free_port() for _ in range(processes - 1)]
        self.log = server_log(self.name)
        self.procs = [
            subprocess.Popen(
                [MAIN_PY, "-m", "liveqa", "serve"],
                env=self.env(p),
                stdout=self.log,
                stderr=subprocess.STDOUT,
            )
            for p in self.ports
        ]
        for p in self.ports:
            wait_port(p)
        self.http = HTTP(HOST, self.port)
        link = re.search(r"https?://\S+/moderate\?key=\S+", out)
        assert link, out
        path = link.group(0).split(str(self.port), 1)[1]
        # As a browser does: the link's key buys a session; the page gives the CSRF token.
        _, headers, _ = await self.http.request("GET", path)
        self.mod_jar = cookies(headers, {})
        _, headers, html = await self.http.request(
            "GET", f"/e/{CODE}/moderate", cookie=cookie_header(self.mod_jar)
        )
        self.mod_csrf = csrf_meta(html)
        self.cookie = cookie_header(cookies(headers, self.mod_jar))
        _, headers, html = await self.http.request("GET", f"/e/{CODE}")
        self.audience_jar = cookies(headers, {})
        self.audience_csrf = csrf_meta(html)
        asker = cookie_header(self.audience_jar)
        self.questions = []
        for i in range(10):
            text = f"Benchmark question {i}: how is the rollout funded? " + "x" * self.pad
            status, _, body = await self.http.request(
                "POST",
                f"/e/{CODE}/questions",
                {"text": text},
                cookie=asker,
                headers={"X-CSRF-Token": self.audience_csrf},
            )
            assert status == 201, body
            qid = json.loads(body)["question"]["id"]
            await self.moderate(qid, "approve", {})
            self.questions.append(qid)
        self.starred = False
        self.store_redis = redis.Redis.from_url(self.redis_url, decode_responses=True)
        event_id = await self.store_redis.get(f"liveqa:code:{CODE}")
        self.seq_key = f"liveqa:{{ev:{event_id}}}:event"
        self.seq = int(await self.store_redis.hget(self.seq_key, "seq"))

    def ws(self) -> dict[str, Any]:
        return dict(super().ws(), headers={"Origin": f"http://{HOST}:{self.port}"})

    def ws_for(self, port: int) -> dict[str, Any]:
        return dict(self.ws(), port=port, headers={"Origin": f"http://{HOST}:{port}"})

    async def moderate(self, qid: str, action: str, body: dict[str, Any]) -> None:
        status, _, text = await self.http.request(
            "POST",
            f"/e/{CODE}/questions/{qid}/{action}",
            body,
            cookie=self.cookie,
            headers={"X-CSRF-Token": self.mod_csrf},
        )
        assert status == 200, text

    async def publish(self, count: int) -> list[tuple[int, int]]:
        out = []
        for _ in range(count):
            self.starred = not self.starred
            self.seq += 1
            out.append((self.seq, time.time_ns()))
            await self.moderate(self.questions[0], "star", {"starred": self.starred})
        return out

    def audience_csrf_cookie(self) -> str:
        """The CSRF cookie and token of one audience page: a token binds the cookie, not the
        participant, so the vote and ask load pair them with many participants."""
        return cookie_header({k: v for k, v in self.audience_jar.items() if "csrf" in k})

    async def stop(self) -> None:
        await self.http.close()
        await self.store_redis.aclose()
        await super().stop()
        self.log.close()


class LiveQAFrozen(LiveQA):
    """liveqa unchanged, plus `gc.freeze()` every 2 s (servers/gcfreeze/sitecustomize.py)."""

    def env(self, port: int) -> dict[str, str]:
        env = super().env(port)
        paths = [str(HERE / "servers" / "gcfreeze"), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        return env


TARGETS: dict[str, type[Target]] = {
    "liveqa": LiveQA,
    "liveqa-gcfreeze": LiveQAFrozen,
    "raw-broadcast": Raw,
    "socketio-redis": SocketIO,
    "channels-pubsub": Channels,
    "sketch-eager": EagerSketch,
}


# -- measuring -----------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def latencies(reports: list[dict[str, Any]], sent: list[tuple[int, int]]) -> dict[str, Any]:
    """Fan-out figures from the load processes' receive timestamps."""
    seqs = {str(s) for s, _ in sent}
    all_ms: list[float] = []
    last: list[float] = []
    first: list[float] = []
    delivered = 0
    for seq, start in sent:
        rx: list[int] = []
        for r in reports:
            entry = r["seqs"].get(str(seq))
            if entry:
                rx += entry[3]
        delivered += len(rx)
        if rx:
            ms = [(x - start) / 1e6 for x in rx]
            all_ms += ms
            last.append(max(ms))
            first.append(min(ms))
    return {
        "delivered": delivered,
        "p50": pct(all_ms, 0.5),
        "p99": pct(all_ms, 0.99),
        "max": max(all_ms, default=float("nan")),
        "last": statistics.median(last) if last else float("nan"),
        "first": statistics.median(first) if first else float("nan"),
        "end_ns": max(
            (e[2] for r in reports for s, e in r["seqs"].items() if s in seqs),
            default=0,
        ),
    }


async def fanout(
    target: Target, loads: Loads, n: int, singles: int, burst: int, profile: Any = None
) -> dict[str, Any]:
    """One repetition: connect n, single events one at a time, then a burst."""
    pid = target.pid
    rss0 = rss(pid)
    connected, conn_rate = await loads.connect(n, [target])
    await asyncio.sleep(2)
    rss1 = rss(pid)
    # warm-up event (not measured)
    ((seq, _),) = await target.publish(1)
    await loads.wait(seq, 30)
    await loads.all(cmd="reset")
    u0, s0 = cpu(pid)
    spy = profile(pid) if profile else None
    sent = []
    for _ in range(singles):
        pub = await target.publish(1)
        sent += pub
        await loads.wait(pub[0][0], 10)
        await asyncio.sleep(0.1)
    u1, s1 = cpu(pid)
    single = latencies(await loads.all(cmd="report", detail=True), sent)
    await loads.all(cmd="reset")
    b_u0, b_s0 = cpu(pid)
    bsent = await target.publish(burst)
    await loads.wait(bsent[-1][0], 60 + burst * n / 2000)
    b_u1, b_s1 = cpu(pid)
    b = latencies(await loads.all(cmd="report", detail=True), bsent)
    stop_profile(spy)
    secs = (b["end_ns"] - bsent[0][1]) / 1e9
    delivered = max(single["delivered"], 1)
    return {
        "n": connected,
        "conn_rate": conn_rate,
        "kib_per_conn": (rss1 - rss0) / 1024 / max(connected, 1),
        "p50": single["p50"],
        "p99": single["p99"],
        "max": single["max"],
        "last": single["last"],
        "first": single["first"],
        "cpu_us": 1e6 * ((u1 - u0) + (s1 - s0)) / delivered,
        "user_us": 1e6 * (u1 - u0) / delivered,
        "sys_us": 1e6 * (s1 - s0) / delivered,
        "delivered_pct": 100 * single["delivered"] / max(connected * singles, 1),
        "burst_rate": b["delivered"] / secs if secs > 0 else float("nan"),
        "burst_p99": b["p99"],
        "burst_cpu_us": 1e6 * ((b_u1 - b_u0) + (b_s1 - b_s0)) / max(b["delivered"], 1),
        "burst_delivered_pct": 100 * b["delivered"] / max(connected * burst, 1),
        "rss_mb": rss(pid) / 2**20,
    }


async def run_fanout(
    name: str, redis_url: str, args: argparse.Namespace, n: int, run: int = 0
) -> dict[str, Any]:
    await flush(redis_url)
    target = TARGETS[name](name, redis_url)
    await target.start()
    loads = Loads(args.loads)
    try:
        profile = None
        if args.profile and name == "liveqa" and run == 0:
            secs = args.singles * 0.2 + args.burst * n / 20000 + 3

            def profile(pid: int) -> Any:
                return start_profile(pid, args, "fanout", secs)

        return await fanout(target, loads, n, args.singles, args.burst, profile)
    finally:
        loads.close()
        await target.stop()


async def flush(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    await client.flushall()
    await client.aclose()


# -- liveqa-only scenarios -----------------------------------------------------------------


def server_sockets(port: int) -> list[int]:
    """Send-Q of every established socket of the server on `port` (from `ss`)."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [int(line.split()[1]) for line in out.splitlines() if line.strip()]


async def slow_consumers(
    name: str, redis_url: str, args: argparse.Namespace, n: int, stall: int
) -> dict[str, Any]:
    """Events at 20/s with long questions (~2.3 KB frames); `stall` sockets stop reading."""
    await flush(redis_url)
    target = TARGETS[name](name, redis_url)
    target.pad = 1940 if name == "liveqa" else 2000
    await target.start()
    loads = Loads(args.loads)
    try:
        await loads.connect(n, [target], stall=stall)
        await asyncio.sleep(1)
        rss0 = rss(target.pid)
        await loads.all(cmd="reset")
        sent = []
        for _ in range(args.slow_events):
            sent += await target.publish(1)
            await asyncio.sleep(0.05)
        complete = await loads.wait(sent[-1][0], 15)
        reports = await loads.all(cmd="report", detail=True)
        lat = latencies(reports, sent)
        healthy = sum(r["healthy"] for r in reports)
        got_all = sum(1 for r in reports for c in r["counts"] if c >= len(sent))
        rss1 = rss(target.pid)
        if stall:
            await asyncio.sleep(args.slow_wait)
        # Sockets the server still holds with unsent data queued in the kernel: the stalled ones.
        stuck = [q for q in server_sockets(target.port) if q > 1024]
        return {
            "config": name,
            "n": n,
            "stalled": stall,
            "events": len(sent),
            "complete": complete,
            "healthy_got_all_pct": 100 * got_all / max(healthy, 1),
            "p50": lat["p50"],
            "p99": lat["p99"],
            "rss_growth_mb": (rss1 - rss0) / 2**20,
            "stalled_still_held": len(stuck),
            "stalled_sendq_kib": (sum(stuck) / len(stuck) / 1024) if stuck else 0.0,
            "waited_s": args.slow_wait,
        }
    finally:
        loads.close()
        await target.stop()


def staleness(
    samples: list[list[int]], timelines: list[list[list[int]]], end_ns: int
) -> dict[str, Any]:
    """For each (t, seq) sample of the store: how long until every sampled screen showed a state
    at least that new. Screens that never caught up count as stale until `end_ns`."""
    worst: list[float] = []
    for t, seq in samples:
        lag = 0.0
        for timeline in timelines:
            caught = next((rx for s, rx in timeline if s >= seq and rx >= t), None)
            lag = max(lag, ((caught if caught is not None else end_ns) - t) / 1e9)
        worst.append(lag)
    return {"p50_s": pct(worst, 0.5), "p99_s": pct(worst, 0.99), "max_s": max(worst, default=0)}


async def vote_storm(redis_url: str, args: argparse.Namespace, n: int) -> dict[str, Any]:
    await flush(redis_url)
    target = LiveQA("liveqa", redis_url)
    await target.start()
    loads = Loads(args.loads)
    try:
        await loads.connect(n, [target])
        await asyncio.sleep(1)
        await loads.all(cmd="reset", keep_rx=False)
        u0, s0 = cpu(target.pid)
        t0 = time.monotonic()
        cfg = {
            "port": target.port,
            "redis": redis_url,
            "secret": SECRET,
            "code": CODE,
            "questions": target.questions,
            "csrf_cookie": target.audience_csrf_cookie(),
            "csrf_token": target.audience_csrf,
            "rate": args.vote_rate,
            "secs": args.vote_secs,
        }
        profile = start_profile(target.pid, args, "votes", args.vote_secs)
        result = await http_load("votes", cfg)
        u1, s1 = cpu(target.pid)
        wall = time.monotonic() - t0
        final = int(await target.store_redis.hget(target.seq_key, "seq"))
        # drain: until every healthy screen shows the final state (or 60 s)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            reports = await loads.all(cmd="report")
            if all(m >= final for r in reports for m in r["max_seqs"]):
                break
            await asyncio.sleep(0.2)
        drain = time.monotonic() - t0 - wall
        reports = await loads.all(cmd="report")
        stop_profile(profile)
        counts = [c for r in reports for c in r["counts"]]
        timelines = [tl for r in reports for tl in r["timelines"]]
        stale = staleness(result["seq_samples"], timelines, time.time_ns())
        return {
            "n": n,
            "offered_rate": args.vote_rate,
            "achieved_rate": result["achieved_rate"],
            "votes_ok": result["votes_ok"],
            "unsent": result["unsent"],
            "statuses": result["statuses"],
            "http_p99_ms": result["http_p99_ms"],
            "counts_exact": result["counts_exact"],
            "server_cores": ((u1 - u0) + (s1 - s0)) / wall,
            "msgs_per_socket": statistics.median(counts) if counts else 0,
            "msgs_per_vote": (statistics.median(counts) if counts else 0)
            / max(result["votes_ok"], 1),
            "stale_p50_s": stale["p50_s"],
            "stale_p99_s": stale["p99_s"],
            "stale_max_s": stale["max_s"],
            "drain_s": drain,
            "all_caught_up": all(m >= final for r in reports for m in r["max_seqs"]),
        }
    finally:
        loads.close()
        await target.stop()


async def ask_path(redis_url: str, args: argparse.Namespace, n: int) -> dict[str, Any]:
    await flush(redis_url)
    target = LiveQA("liveqa", redis_url)
    await target.start()
    loads = Loads(args.loads)
    try:
        await loads.connect(n, [target])
        await asyncio.sleep(1)
        await loads.all(cmd="reset", keep_rx=False)
        u0, s0 = cpu(target.pid)
        t0 = time.monotonic()
        cfg = {
            "port": target.port,
            "redis": redis_url,
            "secret": SECRET,
            "code": CODE,
            "moderator_cookie": target.cookie,
            "csrf_cookie": target.audience_csrf_cookie(),
            "csrf_token": target.audience_csrf,
            "rate": args.ask_rate,
            "secs": args.ask_secs,
        }
        result = await http_load("asks", cfg)
        u1, s1 = cpu(target.pid)
        counts = [c for r in await loads.all(cmd="report") for c in r["counts"]]
        return {
            "n": n,
            "rate": args.ask_rate,
            "achieved_rate": result["achieved_rate"],
            "asks_seen": f"{result['asks_seen']}/{result['asks_sent']}",
            "mod_p50_ms": result["mod_p50_ms"],
            "mod_p99_ms": result["mod_p99_ms"],
            "mod_max_ms": result["mod_max_ms"],
            "server_cores": ((u1 - u0) + (s1 - s0)) / (time.monotonic() - t0),
            "audience_msgs_per_socket": statistics.median(counts) if counts else 0,
        }
    finally:
        loads.close()
        await target.stop()


async def scale_out(redis_url: str, args: argparse.Namespace, n: int) -> dict[str, Any]:
    """The burst, with the audience split over one or two liveqa processes on one Redis."""
    out: dict[str, Any] = {"n": n}
    for processes in (1, 2):
        await flush(redis_url)
        target = LiveQA("liveqa", redis_url)
        await target.start(processes)
        loads = Loads(max(args.loads, 2))
        try:
            targets = [_PortView(target, p) for p in target.ports]
            await loads.connect(n, targets)  # type: ignore[arg-type]
            await asyncio.sleep(1)
            ((seq, _),) = await target.publish(1)
            await loads.wait(seq, 30)
            await loads.all(cmd="reset")
            cpu0 = sum(sum(cpu(p.pid)) for p in target.procs)
            sent = await target.publish(args.burst)
            await loads.wait(sent[-1][0], 60 + args.burst * n / 2000)
            cpu1 = sum(sum(cpu(p.pid)) for p in target.procs)
            b = latencies(await loads.all(cmd="report", detail=True), sent)
            secs = (b["end_ns"] - sent[0][1]) / 1e9
            out[f"rate_{processes}"] = b["delivered"] / secs
            out[f"p99_{processes}"] = b["p99"]
            out[f"cpu_us_{processes}"] = 1e6 * (cpu1 - cpu0) / max(b["delivered"], 1)
            out[f"delivered_pct_{processes}"] = 100 * b["delivered"] / (n * args.burst)
        finally:
            loads.close()
            await target.stop()
    out["ratio"] = out["rate_2"] / out["rate_1"]
    return out


class _PortView:
    """The same liveqa deployment as seen through one of its processes' ports."""

    def __init__(self, target: LiveQA, port: int) -> None:
        self.target, self.port = target, port

    def ws(self) -> dict[str, Any]:
        return self.target.ws_for(self.port)


async def http_load(mode: str, cfg: dict[str, Any]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        MAIN_PY,
        str(HERE / "httpload.py"),
        mode,
        json.dumps(cfg),
        stdout=subprocess.PIPE,
        env=dict(os.environ, **LIVEQA_ENV),
    )
    out, _ = await proc.communicate()
    result: dict[str, Any] = json.loads(out)
    return result


# -- profiling -----------------------------------------------------------------------------


def start_profile(pid: int, args: argparse.Namespace, label: str, secs: float) -> Any:
    if not args.profile:
        return None
    spy = HERE / ".venv" / "bin" / "py-spy"
    out = Path(args.out) / f"profile-{label}-{args.n_current}.txt"
    return subprocess.Popen(
        [
            *(str(spy), "record", "-p", str(pid), "-d", str(int(secs)), "-r", "200"),
            *("-f", "raw", "-o", str(out)),
            # --native needs to pause the process to walk C stacks
            *(("--native",) if args.profile_native else ("--nonblocking",)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profile(proc: Any) -> None:
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)


# -- tables --------------------------------------------------------------------------------


def med(rows: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in rows if isinstance(r.get(key), int | float)]
    return statistics.median(values) if values else float("nan")


def fmt(v: Any, digits: int = 1) -> str:
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def fanout_table(results: dict[str, list[dict[str, Any]]], n: int) -> str:
    ref = results.get("raw-broadcast", [])
    cols = [
        ("conn/s", "conn_rate", 0),
        ("RSS KiB/conn", "kib_per_conn", 1),
        ("p50 ms", "p50", 1),
        ("p99 ms", "p99", 1),
        ("last-client ms", "last", 1),
        ("first-client ms", "first", 1),
        ("CPU µs/msg", "cpu_us", 1),
        ("user µs", "user_us", 1),
        ("sys µs", "sys_us", 1),
        ("burst msg/s", "burst_rate", 0),
        ("burst p99 ms", "burst_p99", 0),
        ("delivered %", "delivered_pct", 2),
    ]
    ratios = [
        ("xCPU/msg", "cpu_us"),
        ("xlast-client", "last"),
        ("xp99", "p99"),
        ("xRSS/conn", "kib_per_conn"),
    ]
    head = ["config", "N", "runs"] + [c[0] for c in cols] + [r[0] for r in ratios]
    lines = [
        f"**Fan-out, N = {n}** (medians; ratios: median over runs of config / raw-broadcast"
        " in the same run)",
        "",
    ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rows in results.items():
        cells = [name, str(n), str(len(rows))] + [fmt(med(rows, k), d) for _, k, d in cols]
        for _, key in ratios:
            pairs = [r[key] / f[key] for r, f in zip(rows, ref, strict=False) if f[key]]
            cells.append(f"{statistics.median(pairs):.2f}" if pairs else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dict_table(title: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    lines = [f"**{title}**", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(k), 2) for k in keys) + " |")
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------


def export_liveqa(rev: str, tmp: Path) -> str:
    """Export liveqa at `rev` to `tmp` and import it from there; '' keeps the installed one."""
    if not rev:
        return "liveqa as installed in the virtualenv (working tree)"
    dest = tmp / "liveqa-src"
    dest.mkdir()
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", rev],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError):
        return f"liveqa as installed (could not export {rev!r} with git)"
    LIVEQA_ENV["PYTHONPATH"] = str(dest)
    return f"liveqa at commit {commit} (git archive, imported via PYTHONPATH)"


def versions() -> str:
    def pkgs(py: Path | str, names: list[str]) -> str:
        code = (
            "import importlib.metadata as m\n"
            f"for n in {names!r}:\n"
            "    try: print(n, m.version(n))\n"
            "    except Exception: pass"
        )
        out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=False)
        return ", ".join(out.stdout.split("\n")).strip(", ")

    redis_v = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    )
    lines = [
        f"python {sys.version.split()[0]}; redis-server {redis_v.stdout.split()[2][2:]}",
        "liveqa venv: "
        + pkgs(
            MAIN_PY,
            [
                "liveqa",
                "starlette",
                "uvicorn",
                "websockets",
                "redis",
                "hiredis",
                "uvloop",
                "orjson",
            ],
        ),
    ]
    if BENCH_PY.exists():
        lines.append(
            "bench/.venv: "
            + pkgs(
                BENCH_PY,
                [
                    "python-socketio",
                    "python-engineio",
                    "Django",
                    "channels",
                    "channels-redis",
                    "uvicorn",
                    "redis",
                    "py-spy",
                ],
            )
        )
    lines.append(f"kernel {os.uname().release}, {os.cpu_count()} CPUs")
    return "\n".join(f"- {line}" for line in lines)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[1000], help="audience sockets")
    parser.add_argument("--quick", action="store_true", help="CI: one short run, fewer events")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of the fan-out scenario")
    parser.add_argument(
        "--configs", default="liveqa,raw-broadcast,sketch-eager,socketio-redis,channels-pubsub"
    )
    parser.add_argument("--scenarios", default="fanout,asks,votes,slow,scale")
    parser.add_argument("--singles", type=int, default=30)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--loads", type=int, default=2, help="load-generator processes")
    parser.add_argument("--vote-rate", type=float, default=1000)
    parser.add_argument("--vote-secs", type=float, default=30)
    parser.add_argument("--ask-rate", type=float, default=50)
    parser.add_argument("--ask-secs", type=float, default=20)
    parser.add_argument("--slow-events", type=int, default=600, help="at 20/s")
    parser.add_argument("--slow-n", type=int, default=1000, help="slow consumers at this N only")
    parser.add_argument("--slow-wait", type=float, default=45, help="then check stalled sockets")
    parser.add_argument("--profile", action="store_true", help="py-spy the liveqa server")
    parser.add_argument("--profile-native", action="store_true", help="with C frames (gc, uvloop)")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--liveqa-rev", default="HEAD", help="git revision to measure ('' = tree)")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.singles, args.burst = 1, 10, 5
        args.vote_secs, args.ask_secs, args.slow_events, args.slow_wait = 3, 3, 40, 1
    configs = [c for c in args.configs.split(",") if c]
    if not BENCH_PY.exists():
        print("bench/.venv is missing: running liveqa and raw-broadcast only", file=sys.stderr)
        configs = [c for c in configs if c in ("liveqa", "raw-broadcast", "sketch-eager")]
    scenarios = set(args.scenarios.split(","))
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# liveqa fan-out benchmark\n\n`{' '.join(sys.argv)}`  ({when})\n")
    tmp = Path(tempfile.mkdtemp(prefix="liveqa-bench-"))
    print(versions() + f"\n- {export_liveqa(args.liveqa_rev, tmp)}\n", flush=True)
    raw: dict[str, Any] = {}
    try:
        with redis_server(tmp) as redis_url:
            for n in args.n:
                args.n_current = n
                if "fanout" in scenarios:
                    results: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
                    for run in range(args.runs):
                        for name in configs:
                            print(
                                f"  fan-out N={n} run {run + 1}: {name}",
                                file=sys.stderr,
                                flush=True,
                            )
                            try:
                                results[name].append(
                                    await run_fanout(name, redis_url, args, n, run)
                                )
                            except Exception as exc:  # a baseline failing must not sink the run
                                print(f"  ! {name}: {exc!r}", file=sys.stderr)
                    raw[f"fanout-{n}"] = results
                    print(fanout_table(results, n) + "\n", flush=True)
                if "asks" in scenarios:
                    print(f"  ask path N={n}", file=sys.stderr, flush=True)
                    r = await ask_path(redis_url, args, n)
                    raw[f"asks-{n}"] = r
                    print(
                        dict_table(f"Ask path → moderator socket, N = {n}", [r]) + "\n", flush=True
                    )
                if "votes" in scenarios:
                    print(f"  vote storm N={n}", file=sys.stderr, flush=True)
                    r = await vote_storm(redis_url, args, n)
                    raw[f"votes-{n}"] = r
                    print(dict_table(f"Vote storm, N = {n}", [r]) + "\n", flush=True)
                if "slow" in scenarios and (n == args.slow_n or args.quick):
                    rows = []
                    stall = max(1, n // 100)
                    slow = ("raw-broadcast", "liveqa", "sketch-eager")
                    for name in [c for c in slow if c in configs]:
                        for k in (0, stall):
                            print(
                                f"  slow consumers N={n} {name} stalled={k}",
                                file=sys.stderr,
                                flush=True,
                            )
                            rows.append(await slow_consumers(name, redis_url, args, n, k))
                    raw[f"slow-{n}"] = rows
                    print(
                        dict_table(
                            f"Slow consumers (1% stalled: SO_RCVBUF 4096, MSS 1400), N = {n}", rows
                        )
                        + "\n",
                        flush=True,
                    )
                if "scale" in scenarios:
                    print(f"  scale-out N={n}", file=sys.stderr, flush=True)
                    r = await scale_out(redis_url, args, n)
                    raw[f"scale-{n}"] = r
                    print(
                        dict_table(
                            f"Scale-out: burst rate with one and two liveqa processes, N = {n}", [r]
                        )
                        + "\n",
                        flush=True,
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        (Path(args.out) / f"run-{stamp}.json").write_text(json.dumps(raw, indent=1, default=str))


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwind: every server, load process and Redis gets stopped


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    asyncio.run(main())

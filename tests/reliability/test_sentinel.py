"""Redis Sentinel: the primary is killed mid-burst, Sentinel promotes the replica, liveqa follows."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.reliability.crowd import Crowd, during
from tests.reliability.harness import create_event
from tests.servers import LiveqaServer, free_port, redis_binary

pytestmark = pytest.mark.slow

SERVICE = "liveqa"


class SentinelSetup:
    """A primary and a replica (both with AOF) watched by one Sentinel, all on loopback."""

    def __init__(self) -> None:
        binary = redis_binary()
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="liveqa-sentinel-"))
        self.primary_port, self.replica_port, self.sentinel_port = (free_port() for _ in range(3))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}/0"

    def _redis(self, name: str, port: int, *extra: str) -> None:
        folder = self.dir / name
        folder.mkdir()
        self.processes[name] = subprocess.Popen(
            [
                self.binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                "--logfile", str(folder / "redis.log"),
                *extra,
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self._wait(port)

    def _wait(self, port: int) -> None:
        client = redis.Redis(port=port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis on {port} did not start; see {self.dir}") from None
                time.sleep(0.05)
            finally:
                client.close()

    def start(self) -> SentinelSetup:
        self._redis("primary", self.primary_port, "--repl-diskless-sync-delay", "0")
        self._redis(
            "replica", self.replica_port, "--replicaof", "127.0.0.1", str(self.primary_port)
        )
        replica = redis.Redis(port=self.replica_port, decode_responses=True)
        deadline = time.monotonic() + 15
        while replica.info("replication")["master_link_status"] != "up":
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replica never synced; see {self.dir}")
            time.sleep(0.05)
        replica.close()
        config = self.dir / "sentinel.conf"
        config.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
        )
        self.processes["sentinel"] = subprocess.Popen(
            [self.binary, str(config), "--sentinel", "--logfile", str(self.dir / "sentinel.log")],
            stdout=subprocess.DEVNULL,
        )
        self._wait(self.sentinel_port)
        # Wait until Sentinel knows the replica, or it would have nothing to promote.
        sentinel = redis.Redis(port=self.sentinel_port, decode_responses=True)
        deadline = time.monotonic() + 15
        while not sentinel.sentinel_slaves(SERVICE):
            if time.monotonic() > deadline:
                raise RuntimeError("Sentinel never saw the replica")
            time.sleep(0.1)
        sentinel.close()
        return self

    def primary(self) -> int:
        sentinel = redis.Redis(port=self.sentinel_port, decode_responses=True)
        try:
            _, port = sentinel.sentinel_get_master_addr_by_name(SERVICE)
            return int(port)
        finally:
            sentinel.close()

    def kill_primary(self) -> None:
        self.processes["primary"].send_signal(signal.SIGKILL)
        self.processes["primary"].wait()

    def close(self) -> None:
        for process in self.processes.values():
            process.kill()
            process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def sentinel() -> Iterator[SentinelSetup]:
    setup = SentinelSetup().start()
    yield setup
    setup.close()


async def test_primary_killed_sentinel_fails_over_and_liveqa_follows(
    sentinel: SentinelSetup,
    secret_key: str,
    tmp_path: Path,
    start_liveqa: Callable[..., LiveqaServer],
) -> None:
    env = {"LIVEQA_BACKEND": sentinel.url, "LIVEQA_SECRET_KEY": secret_key}
    links = create_event(tmp_path, env, "SENTINEL")
    one, two = start_liveqa(**env), start_liveqa(**env)
    crowd = Crowd(sentinel.url, "SENTINEL", [one.url, two.url], links["moderator"], people=40)
    await crowd.gather()
    failover = 0.0

    async def kill_primary() -> None:
        nonlocal failover
        sentinel.kill_primary()
        killed = time.monotonic()
        while sentinel.primary() != sentinel.replica_port:
            if time.monotonic() - killed > 30:
                raise AssertionError("Sentinel did not promote the replica within 30 s")
            await asyncio.sleep(0.1)
        failover = time.monotonic() - killed

    try:
        back = await during(
            crowd.ask(10, spread=6, deadline=time.monotonic() + 90), kill_primary, after=1.5
        )
        await crowd.check("sentinel: primary SIGKILL, replica promoted", back, converge_within=15)
    finally:
        await crowd.close()
    print(f"sentinel promoted the replica {failover:.1f} s after the primary was killed")

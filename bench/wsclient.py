"""Load generator: many websocket clients in one process, driven over stdin/stdout (JSON lines).

A hand-rolled RFC 6455 client on raw non-blocking sockets: no per-frame objects beyond what the
measurement needs, and kernel receive timestamps (SO_TIMESTAMPNS), so a busy load process does not
inflate the latencies it reports. Every text frame is scanned for `"seq":N`; that number is how
frames are matched with the action that caused them. Only loopback addresses are accepted.

Commands (one JSON object per line on stdin, one reply per line on stdout):
  connect  {host, port, path, headers, n, inflight, stall, socketio}
  reset    forget everything received so far
  wait     {seq, timeout}: until every healthy socket has a frame with this seq
  report   {detail}: per-seq receive counts and timestamps, per-socket counts, sampled timelines
  resume   start reading the stalled sockets again; reply how many the server had closed
  quit
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import resource
import socket
import struct
import sys
import time
from typing import Any

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SEQ = b'"seq":'
SAMPLE_EVERY = 50  # every 50th socket keeps its whole (seq, rx) timeline


class Conn:
    __slots__ = ("buf", "closed", "count", "max_seq", "sample", "sock", "stalled", "timeline")

    def __init__(self, sock: socket.socket, stalled: bool, sample: bool) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.closed = False
        self.count = 0
        self.max_seq = -1
        self.stalled = stalled
        self.sample = sample
        self.timeline: list[tuple[int, int]] = []


class Load:
    def __init__(self) -> None:
        self.loop = asyncio.get_event_loop()
        self.conns: list[Conn] = []
        # seq -> [count, first rx ns, last rx ns, [rx ns ...] (only while `keep_rx`)]
        self.seqs: dict[int, list[Any]] = {}
        self.keep_rx = True
        self.frames = 0
        self.waiters: dict[int, asyncio.Future[None]] = {}
        self.healthy = 0

    # -- connecting ------------------------------------------------------------------------
    async def connect(self, cmd: dict[str, Any]) -> dict[str, Any]:
        host = cmd["host"]
        if not host.startswith("127."):
            raise ValueError("only loopback targets")
        n, stall = int(cmd["n"]), int(cmd.get("stall", 0))
        every = n // stall if stall else 0
        sem = asyncio.Semaphore(int(cmd.get("inflight", 100)))
        failed = 0
        t0 = time.monotonic()

        async def one(i: int) -> None:
            nonlocal failed
            stalled = bool(every) and i % every == every - 1
            async with sem:
                try:
                    conn = await self._handshake(cmd, stalled, sample=i % SAMPLE_EVERY == 0)
                except (OSError, ValueError, TimeoutError):
                    failed += 1
                    return
            self.conns.append(conn)
            if not stalled:
                self.healthy += 1
                self.loop.add_reader(conn.sock.fileno(), self._readable, conn)

        await asyncio.gather(*(one(i) for i in range(n)))
        return {"connected": n - failed, "failed": failed, "secs": time.monotonic() - t0}

    async def _handshake(self, cmd: dict[str, Any], stalled: bool, sample: bool) -> Conn:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if stalled:
            # As on the internet: a small window and a 1400-byte MSS, else loopback hides it.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1400)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            await asyncio.wait_for(self.loop.sock_connect(sock, (cmd["host"], cmd["port"])), 30)
            key = base64.b64encode(os.urandom(16)).decode()
            lines = [
                f"GET {cmd['path']} HTTP/1.1",
                f"Host: {cmd['host']}:{cmd['port']}",
                "Upgrade: websocket",
                "Connection: Upgrade",
                f"Sec-WebSocket-Key: {key}",
                "Sec-WebSocket-Version: 13",
                # What every browser offers; the servers under test are set to decline it.
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
            ]
            lines += [f"{k}: {v}" for k, v in cmd.get("headers", {}).items()]
            await self.loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await asyncio.wait_for(self.loop.sock_recv(sock, 4096), 30)
                if not chunk:
                    raise ValueError("closed during handshake")
                head += chunk
            status = head.split(b"\r\n", 1)[0]
            if b" 101 " not in status:
                raise ValueError(status.decode(errors="replace"))
            if b"permessage-deflate" in head.split(b"\r\n\r\n", 1)[0].lower():
                raise ValueError("server negotiated permessage-deflate; the client cannot inflate")
        except BaseException:
            sock.close()
            raise
        conn = Conn(sock, stalled, sample)
        conn.buf += head.split(b"\r\n\r\n", 1)[1]
        if cmd.get("socketio"):
            self._send(conn, 1, b"40")  # socket.io: join the default namespace
        return conn

    # -- reading ---------------------------------------------------------------------------
    def _readable(self, conn: Conn) -> None:
        try:
            data, anc, _flags, _addr = conn.sock.recvmsg(262144, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, anc = b"", []
        if not data:
            self._lost(conn)
            return
        rx = time.time_ns()
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                sec, nsec = struct.unpack("qq", value[:16])
                rx = sec * 1_000_000_000 + nsec
        conn.buf += data
        self._frames(conn, rx)

    def _lost(self, conn: Conn) -> None:
        if not conn.closed:
            conn.closed = True
            with contextlib.suppress(Exception):
                self.loop.remove_reader(conn.sock.fileno())
            conn.sock.close()

    def _frames(self, conn: Conn, rx: int) -> None:
        buf = conn.buf
        pos = 0
        end = len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if end - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if end - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if end - pos < head + length:
                break
            opcode = b0 & 0x0F
            start = pos + head
            pos = start + length
            if opcode in (1, 2):
                self._message(conn, bytes(buf[start:pos]), rx)
            elif opcode == 9:
                self._send(conn, 10, bytes(buf[start:pos]))
            elif opcode == 8:
                del buf[:pos]
                self._lost(conn)
                return
        del buf[:pos]

    def _message(self, conn: Conn, payload: bytes, rx: int) -> None:
        if payload == b"2":  # engine.io ping
            self._send(conn, 1, b"3")
            return
        i = payload.find(SEQ)
        if i < 0:
            return
        i += len(SEQ)
        j = i
        while j < len(payload) and 48 <= payload[j] <= 57:
            j += 1
        if j == i:
            return
        seq = int(payload[i:j])
        self.frames += 1
        conn.count += 1
        if seq > conn.max_seq:
            conn.max_seq = seq
        if conn.sample:
            conn.timeline.append((seq, rx))
        entry = self.seqs.get(seq)
        if entry is None:
            entry = self.seqs[seq] = [0, rx, rx, []]
        entry[0] += 1
        if rx < entry[1]:
            entry[1] = rx
        if rx > entry[2]:
            entry[2] = rx
        if self.keep_rx:
            entry[3].append(rx)
        waiter = self.waiters.get(seq)
        if waiter is not None and entry[0] >= self.healthy and not waiter.done():
            waiter.set_result(None)

    def _send(self, conn: Conn, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode, 0x80 | n]) if n < 126 else bytes([0x80 | opcode, 0xFE])
        if n >= 126:
            head += n.to_bytes(2, "big")
        body = bytes(b ^ mask[k % 4] for k, b in enumerate(payload))
        with contextlib.suppress(OSError):
            conn.sock.send(head + mask + body)

    # -- commands ---------------------------------------------------------------------------
    async def wait(self, cmd: dict[str, Any]) -> dict[str, Any]:
        seq = int(cmd["seq"])
        entry = self.seqs.get(seq)
        if entry is None or entry[0] < self.healthy:
            fut = self.waiters[seq] = self.loop.create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, float(cmd.get("timeout", 10)))
            self.waiters.pop(seq, None)
        entry = self.seqs.get(seq)
        return {"count": entry[0] if entry else 0, "healthy": self.healthy}

    def report(self, cmd: dict[str, Any]) -> dict[str, Any]:
        healthy = [c for c in self.conns if not c.stalled]
        return {
            "frames": self.frames,
            "healthy": len(healthy),
            "closed_healthy": sum(c.closed for c in healthy),
            "seqs": {
                str(s): [e[0], e[1], e[2], e[3] if cmd.get("detail") else []]
                for s, e in self.seqs.items()
            },
            "counts": [c.count for c in healthy],
            "max_seqs": [c.max_seq for c in healthy],
            "timelines": [c.timeline for c in healthy if c.sample],
        }

    def reset(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.seqs.clear()
        self.frames = 0
        self.keep_rx = bool(cmd.get("keep_rx", True))
        for c in self.conns:
            c.count = 0
            c.timeline.clear()
        return {}

    async def resume(self) -> dict[str, Any]:
        """Read the stalled sockets: how many did the server cut off (EOF or close frame)?"""
        stalled = [c for c in self.conns if c.stalled]
        for c in stalled:
            self.loop.add_reader(c.sock.fileno(), self._readable, c)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(c.closed for c in stalled):
            await asyncio.sleep(0.2)
        return {"stalled": len(stalled), "cut_off": sum(c.closed for c in stalled)}


async def main() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    load = Load()
    reader = asyncio.StreamReader(limit=1 << 24)
    await load.loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        name = cmd["cmd"]
        if name == "quit":
            break
        if name == "connect":
            reply = await load.connect(cmd)
        elif name == "wait":
            reply = await load.wait(cmd)
        elif name == "report":
            reply = load.report(cmd)
        elif name == "reset":
            reply = load.reset(cmd)
        elif name == "resume":
            reply = await load.resume()
        else:
            reply = {"error": f"unknown command {name}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    for c in load.conns:
        c.sock.close()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())

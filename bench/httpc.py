"""A minimal keep-alive HTTP/1.1 client on asyncio streams (loopback only), cheap enough to
drive a thousand requests a second from one process."""

from __future__ import annotations

import asyncio
import json
from typing import Any


class HTTP:
    def __init__(self, host: str, port: int) -> None:
        if not host.startswith("127."):
            raise ValueError("only loopback targets")
        self.host, self.port = host, port
        self._rw: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        cookie: str = "",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        fresh = self._rw is None
        if self._rw is None:
            self._rw = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._rw
        data = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        if cookie:
            lines.append(f"Cookie: {cookie}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
            head = await reader.readuntil(b"\r\n\r\n")
        except (OSError, asyncio.IncompleteReadError):
            await self.close()
            if fresh:
                raise
            # The server closed an idle keep-alive connection (uvicorn: after 5 s): retry once.
            return await self.request(method, path, body, cookie, headers)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        fields: dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                k, v = line.split(":", 1)
                k = k.strip().lower()
                sep = "\n" if k == "set-cookie" else ", "  # cookies' dates hold commas
                fields[k] = f"{fields[k]}{sep}{v.strip()}" if k in fields else v.strip()
        length = int(fields.get("content-length", "0"))
        payload = await reader.readexactly(length) if length else b""
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return int(status_line.split()[1]), fields, payload

    async def close(self) -> None:
        if self._rw is not None:
            self._rw[1].close()
            self._rw = None


def cookies(headers: dict[str, str], jar: dict[str, str]) -> dict[str, str]:
    """Add a response's Set-Cookie values to `jar` (name -> value)."""
    for line in headers.get("set-cookie", "").split("\n"):
        if "=" in line:
            name, value = line.split(";", 1)[0].split("=", 1)
            jar[name.strip()] = value.strip()
    return jar


def cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def csrf_meta(html: bytes) -> str:
    """The CSRF token a liveqa page gives its scripts (`<meta name="csrf-token">`)."""
    marker = b'name="csrf-token" content="'
    i = html.find(marker)
    if i < 0:
        return ""
    i += len(marker)
    return html[i : html.index(b'"', i)].decode()

"""Who is asking: the participant cookie, and access to an event's moderator and panel screens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.responses import Response

from liveqa.model import Event

PARTICIPANT_COOKIE = "liveqa_participant"
ACCESS_COOKIE = "liveqa_{role}_{event_id}"
YEAR = 365 * 24 * 3600
ROLES = ("moderator", "panel")


@dataclass(frozen=True)
class Signer:
    secret: str

    def sign(self, value: str) -> str:
        return f"{value}.{self._mac(value)}"

    def unsign(self, signed: str | None) -> str | None:
        if not signed or "." not in signed:
            return None
        value, mac = signed.rsplit(".", 1)
        return value if hmac.compare_digest(mac, self._mac(value)) else None

    def _mac(self, value: str) -> str:
        return hmac.new(self.secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


def participant(conn: HTTPConnection, signer: Signer) -> str | None:
    return signer.unsign(conn.cookies.get(PARTICIPANT_COOKIE))


def new_participant() -> str:
    return secrets.token_hex(12)


def set_participant(response: Response, conn: HTTPConnection, signer: Signer, value: str) -> None:
    response.set_cookie(
        PARTICIPANT_COOKIE,
        signer.sign(value),
        max_age=YEAR,
        httponly=True,
        samesite="lax",
        secure=conn.url.scheme == "https",
    )


def key_matches(event: Event, role: str, key: str) -> bool:
    stored = event.moderator_key_hash if role == "moderator" else event.panel_key_hash
    given = hashlib.sha256(key.encode()).hexdigest()
    return bool(stored) and hmac.compare_digest(stored, given)


def grant(
    response: Response, conn: HTTPConnection, signer: Signer, event: Event, role: str
) -> None:
    """Exchange a link's key for a cookie; it stops working when the key is regenerated."""
    stored = event.moderator_key_hash if role == "moderator" else event.panel_key_hash
    response.set_cookie(
        ACCESS_COOKIE.format(role=role, event_id=event.id),
        signer.sign(f"{role}:{event.id}:{stored[:16]}"),
        max_age=7 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=conn.url.scheme == "https",
    )


def has_access(conn: HTTPConnection, signer: Signer, event: Event, role: str) -> bool:
    if role == "panel" and has_access(conn, signer, event, "moderator"):
        return True
    stored = event.moderator_key_hash if role == "moderator" else event.panel_key_hash
    value = signer.unsign(conn.cookies.get(ACCESS_COOKIE.format(role=role, event_id=event.id)))
    return bool(stored) and value == f"{role}:{event.id}:{stored[:16]}"


def origin_allowed(conn: HTTPConnection, allowed: tuple[str, ...]) -> bool:
    """Whether the page that opened this connection is ours: exact match, never a suffix."""
    origin = conn.headers.get("origin")
    if origin is None:
        return False
    if allowed:
        return origin in allowed
    scheme = "https" if conn.url.scheme in ("https", "wss") else "http"
    return origin == f"{scheme}://{conn.headers.get('host', '')}"


def same_site_write(conn: HTTPConnection, allowed: tuple[str, ...]) -> bool:
    """Refuse writes a browser made for another site; tools that send no Origin may write."""
    if conn.headers.get("sec-fetch-site") == "cross-site":
        return False
    return "origin" not in conn.headers or origin_allowed(conn, allowed)

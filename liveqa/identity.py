"""Who is asking: the participant cookie, sessions for staff, CSRF tokens and origin checks."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection
from starlette.responses import Response

from liveqa.model import Event
from liveqa.sessions import Session, new_session

if TYPE_CHECKING:
    from liveqa.security import Security

PARTICIPANT_COOKIE = "liveqa_participant"
SESSION_COOKIE = "liveqa_session"
CSRF_COOKIE = "liveqa_csrf"
PASSCODE_COOKIE = "liveqa_passcode_{event_id}"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
YEAR = 365 * 24 * 3600
ROLES = ("moderator", "panel")
# Keys in the connection's scope state, filled by liveqa.middleware before any view runs.
SESSION = "liveqa.session"
CSRF_SEED = "liveqa.csrf_seed"
ACCESS = "liveqa.access"
# In a websocket scope: the server's own `send`, for frames that need no wrapper (see Guard).
FRAME_SEND = "liveqa.frame_send"


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
        secure=secure(conn),
    )


def secure(conn: HTTPConnection) -> bool:
    # The scope's scheme, not `conn.url`: a URL object cached for a socket's whole life costs
    # half a kilobyte per audience socket.
    return conn.scope.get("scheme") in ("https", "wss")


def cookie_name(conn: HTTPConnection, name: str) -> str:
    # __Host-: the browser refuses it unless Secure, Path=/ and no Domain, so a sibling
    # subdomain cannot plant one (cookie tossing).
    return f"__Host-{name}" if secure(conn) else name


def passcode_ok(conn: HTTPConnection, signer: Signer, event: Event) -> bool:
    """Whether this browser may see the event: no passcode, staff, or the passcode entered."""
    if not event.passcode_hash or allows(current_session(conn), event, "panel"):
        return True
    value = signer.unsign(conn.cookies.get(PASSCODE_COOKIE.format(event_id=event.id)))
    return value is not None and hmac.compare_digest(value, _admission(event))


def admit(response: Response, conn: HTTPConnection, signer: Signer, event: Event) -> None:
    """Remember that this browser entered the passcode; a new passcode forgets it."""
    response.set_cookie(
        PASSCODE_COOKIE.format(event_id=event.id),
        signer.sign(_admission(event)),
        max_age=7 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=secure(conn),
    )


def _admission(event: Event) -> str:
    return f"{event.id}:{event.passcode_hash[-16:]}"


def key_matches(event: Event, role: str, key: str) -> bool:
    stored = event.moderator_key_hash if role == "moderator" else event.panel_key_hash
    given = hashlib.sha256(key.encode()).hexdigest()
    return bool(stored) and hmac.compare_digest(stored, given)


def current_session(conn: HTTPConnection) -> Session | None:
    session: Session | None = conn.scope.get("state", {}).get(SESSION)
    return session


def organiser(conn: HTTPConnection) -> str:
    """The signed-in organiser's name, or "" for everyone else."""
    session = current_session(conn)
    return session.organiser if session else ""


def allows(session: Session | None, event: Event, role: str) -> bool:
    """Whether `session` may use `event`'s `role` screen: organisers every event, links one."""
    if session is None:
        return False
    if session.organiser:
        return True
    for granted in ("moderator", "panel") if role == "panel" else ("moderator",):
        stored = event.moderator_key_hash if granted == "moderator" else event.panel_key_hash
        given = session.grants.get(f"{event.id}:{granted}")
        if stored and given and hmac.compare_digest(given, stored[:16]):
            return True
    return False


def has_access(conn: HTTPConnection, signer: Signer, event: Event, role: str) -> bool:
    if not allows(current_session(conn), event, role):
        return False
    # Remembered so that an open websocket is closed once this access is taken away.
    conn.scope.setdefault("state", {})[ACCESS] = (event.id, role)
    return True


async def grant(response: Response, conn: HTTPConnection, event: Event, role: str) -> None:
    """Exchange a link's key for a new session (rotated: the old id stops working)."""
    stored = event.moderator_key_hash if role == "moderator" else event.panel_key_hash
    old = current_session(conn)
    grants = dict(old.grants) if old else {}
    grants[f"{event.id}:{role}"] = stored[:16]
    organiser, credential = (old.organiser, old.credential) if old else ("", "")
    session = new_session(organiser=organiser, credential=credential, grants=grants)
    await start_session(response, conn, session)


async def start_session(response: Response, conn: HTTPConnection, session: Session) -> None:
    store = security(conn).sessions
    await store.save(session)
    if (old := current_session(conn)) is not None:
        await store.delete(old.id)
    response.set_cookie(
        cookie_name(conn, SESSION_COOKIE),
        session.id,
        max_age=max(0, int(session.expires_at - time.time())),
        httponly=True,
        samesite="lax",
        secure=secure(conn),
    )


async def end_session(response: Response, conn: HTTPConnection) -> None:
    if (session := current_session(conn)) is not None:
        await security(conn).sessions.delete(session.id)
    response.delete_cookie(
        cookie_name(conn, SESSION_COOKIE), httponly=True, samesite="lax", secure=secure(conn)
    )


def csrf_token(conn: HTTPConnection) -> str:
    """The token this browser's pages send with every write (a hidden field or a header).

    Bound to a random cookie and to the session, signed with the app's secret: another site can
    neither read it nor make one.
    """
    state = conn.scope.get("state", {})
    session = state.get(SESSION)
    return make_csrf_token(
        security(conn).secret, state.get(CSRF_SEED, ""), session.id if session else ""
    )


def make_csrf_token(secret: str, seed: str, session_id: str) -> str:
    message = f"csrf:{seed}:{session_id}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def csrf_valid(conn: HTTPConnection, token: str) -> bool:
    seed = conn.scope.get("state", {}).get(CSRF_SEED)
    return bool(seed and token) and hmac.compare_digest(token, csrf_token(conn))


def origin_allowed(conn: HTTPConnection, allowed: tuple[str, ...]) -> bool:
    """Whether the page that opened this connection is ours: exact match, never a suffix."""
    origin = conn.headers.get("origin")
    if origin is None:
        return False
    if allowed:
        return origin in allowed
    scheme = "https" if secure(conn) else "http"
    return origin == f"{scheme}://{conn.headers.get('host', '')}"


def same_site_write(conn: HTTPConnection, allowed: tuple[str, ...]) -> bool:
    """Refuse writes a browser made for another site; tools that send no Origin may write."""
    if conn.headers.get("sec-fetch-site") == "cross-site":
        return False
    return "origin" not in conn.headers or origin_allowed(conn, allowed)


def security(conn: HTTPConnection) -> Security:
    value: Security = conn.app.state.security
    return value

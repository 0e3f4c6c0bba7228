"""The security middleware: every request and websocket passes through it before any route.

HTTP: loads the session, refuses cross-site and token-less writes (CSRF) and oversized bodies,
and adds the security headers with a fresh CSP nonce. Websocket: refuses a foreign `Origin`
before the handshake completes, closes on binary or oversized frames, and closes a staff socket
within a second of its session ending or its link being regenerated.
Because it wraps the whole app, a route added later cannot escape these checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from liveqa import identity
from liveqa.identity import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, CSRF_SEED, FRAME_SEND, SESSION
from liveqa.model import DomainError
from liveqa.settings import Settings
from liveqa.store import UNAVAILABLE, unavailable

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY = 64 * 1024
MAX_ORGANISER_BODY = 16 * 1024 * 1024  # event imports
MAX_FRAME = 64 * 1024
WATCH_INTERVAL = 0.4
MAX_MESSAGES, MESSAGE_WINDOW = 20, 10.0  # per socket; our own scripts send none
UNSUPPORTED_DATA = 1003
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
TRY_AGAIN_LATER = 1013
PANEL_PATH = re.compile(r"^/e/[^/]+/panel$")
HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]+)?$|^\[[0-9A-Fa-f:.]+\](:[0-9]+)?$")
NONCE = "csp_nonce"


class Guard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Returns the coroutine rather than awaiting it: one frame less held by every socket.
        if scope["type"] == "http":
            return self.http(scope, receive, send)
        if scope["type"] == "websocket":
            return self.websocket(scope, receive, send)
        return self.app(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        conn = HTTPConnection(scope)
        state = scope.setdefault("state", {})
        try:
            await _load_session(conn)
        except UNAVAILABLE:
            # Who is asking is unknown while the store is away: refuse, and say to retry.
            await JSONResponse(unavailable(), 503, {"retry-after": "1"})(scope, receive, send)
            return
        seed = conn.cookies.get(identity.cookie_name(conn, CSRF_COOKIE), "")
        new_seed = not 16 <= len(seed) <= 64
        if new_seed:
            seed = secrets.token_urlsafe(24)
        state[CSRF_SEED] = seed
        state[NONCE] = secrets.token_urlsafe(18)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.add_headers(conn, MutableHeaders(scope=message), seed if new_seed else "")
            await send(message)

        if scope["method"] not in SAFE_METHODS:
            refusal, receive = await self.check_write(conn, receive)
            if refusal is not None:
                await refusal(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send_with_headers)

    async def check_write(
        self, conn: HTTPConnection, receive: Receive
    ) -> tuple[Response | None, Receive]:
        """A refusal for a write another site may have made, or the body to replay."""
        if not identity.same_site_write(conn, self.settings.allowed_origins):
            return _refuse(conn, 403, "cross_site", "This request came from another site."), receive
        session = conn.scope["state"].get(SESSION)
        organiser = session is not None and session.organiser
        limit = MAX_ORGANISER_BODY if organiser and conn.url.path.startswith("/admin") else MAX_BODY
        length = conn.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return _refuse(conn, 413, "too_large", "The request is too large."), receive
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _refuse(conn, 400, "disconnected", "The request was cut off."), receive
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                return _refuse(conn, 413, "too_large", "The request is too large."), receive
        replay = _replay(bytes(body), receive)
        token = conn.headers.get(CSRF_HEADER, "")
        if not token:
            token = await _form_token(conn, bytes(body), replay)
            replay = _replay(bytes(body), receive)
        if not identity.csrf_valid(conn, token):
            return _refuse(
                conn,
                403,
                "csrf",
                "This page is out of date or the request did not come from liveqa. "
                "Reload the page and try again.",
            ), replay
        return None, replay

    def add_headers(self, conn: HTTPConnection, headers: MutableHeaders, seed: str) -> None:
        panel = bool(PANEL_PATH.match(conn.url.path))
        ancestors = self.settings.panel_embed_origins if panel else ()
        nonce = conn.scope["state"][NONCE]
        headers.setdefault("content-security-policy", self.csp(conn, nonce, ancestors))
        headers.setdefault("x-content-type-options", "nosniff")
        headers.setdefault("referrer-policy", "no-referrer")
        headers.setdefault("cross-origin-opener-policy", "same-origin")
        headers.setdefault("permissions-policy", "camera=(), microphone=(), geolocation=()")
        if not ancestors:
            headers.setdefault("x-frame-options", "DENY")
        if identity.secure(conn):
            headers.setdefault("strict-transport-security", "max-age=31536000")
        staff = conn.scope["state"].get(SESSION) is not None
        if staff and not conn.url.path.startswith("/static/"):
            # Staff pages carry what the audience must not see: keep them out of caches.
            headers["cache-control"] = "no-store"
        if seed:
            cookie = Response()
            cookie.set_cookie(
                identity.cookie_name(conn, CSRF_COOKIE),
                seed,
                httponly=True,
                samesite="lax",
                secure=identity.secure(conn),
            )
            headers.append("set-cookie", cookie.headers["set-cookie"])

    def csp(self, conn: HTTPConnection, nonce: str, ancestors: tuple[str, ...]) -> str:
        sockets = [re.sub(r"^http", "ws", origin) for origin in self.settings.allowed_origins]
        host = conn.headers.get("host", "")
        if not sockets and HOST.match(host):
            sockets = [f"{'wss' if identity.secure(conn) else 'ws'}://{host}"]
        connect = " ".join(("'self'", *sockets))
        frames = " ".join(ancestors) if ancestors else "'none'"
        return "; ".join(
            (
                "default-src 'self'",
                f"script-src 'self' 'nonce-{nonce}'",
                f"style-src 'self' 'nonce-{nonce}'",
                "img-src 'self' data:",
                f"connect-src {connect}",
                "object-src 'none'",
                "base-uri 'none'",
                "form-action 'self'",
                f"frame-ancestors {frames}",
            )
        )

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        conn = HTTPConnection(scope)
        if not identity.origin_allowed(conn, self.settings.allowed_origins):
            # Cross-site websocket hijacking: closing before accept makes the handshake a 403.
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})
            return
        state = scope.setdefault("state", {})
        try:
            await _load_session(conn)
        except UNAVAILABLE:
            await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})
            return
        if state.get(SESSION) is None:
            # Without a session no watcher will ever close this socket from another task, so
            # the fan-out may write its frames straight to the server, past every wrapper:
            # thousands of audience sockets per change make each layer count.
            scope[FRAME_SEND] = send
        lock = asyncio.Lock()
        closed = False
        watcher: asyncio.Task[None] | None = None

        async def close(code: int, reason: str) -> None:
            nonlocal closed
            if closed:
                return
            closed = True
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1), lock:
                    await send({"type": "websocket.close", "code": code, "reason": reason})

        async def guarded_send(message: Message) -> None:
            nonlocal closed, watcher
            if closed:
                return  # we closed it under the app: its late sends go nowhere
            if message["type"] == "websocket.close":
                closed = True
            if watcher is None and message["type"] == "websocket.send":
                # Only a watcher closes a socket from another task while frames are going out;
                # without one (every audience socket) the fan-out needs no lock per frame.
                await send(message)
                return
            async with lock:
                await send(message)
            session, access = state.get(SESSION), state.get(identity.ACCESS)
            if message["type"] == "websocket.accept" and session and access:
                watcher = asyncio.create_task(_watch(conn, session.id, access, close))

        window = [time.monotonic(), 0]

        async def guarded_receive() -> Message:
            message = await receive()
            if message["type"] != "websocket.receive":
                return message
            now = time.monotonic()
            if now - window[0] > MESSAGE_WINDOW:
                window[:] = [now, 0]
            window[1] += 1
            if window[1] > MAX_MESSAGES:
                # Our pages send nothing: a stream of messages is someone else's tool.
                await close(POLICY_VIOLATION, "too many messages")
                return {"type": "websocket.disconnect", "code": POLICY_VIOLATION}
            if message.get("bytes") is not None:
                await close(UNSUPPORTED_DATA, "text frames only")
                return {"type": "websocket.disconnect", "code": UNSUPPORTED_DATA}
            if len((message.get("text") or "").encode()) > MAX_FRAME:
                await close(MESSAGE_TOO_BIG, "frame too large")
                return {"type": "websocket.disconnect", "code": MESSAGE_TOO_BIG}
            return message

        try:
            await self.app(scope, guarded_receive, guarded_send)
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher


async def _watch(
    conn: HTTPConnection,
    session_id: str,
    access: tuple[str, str],
    close: Callable[[int, str], Awaitable[None]],
) -> None:
    """Close the socket once its session or link no longer grants what it was opened with."""
    event_id, role = access
    security = identity.security(conn)
    store = conn.app.state.runtime.store
    while True:
        await asyncio.sleep(WATCH_INTERVAL)
        try:
            session = await security.session(session_id)
            event = await store.event(event_id)
        except DomainError:
            session = None  # the event is gone
        except Exception:  # noqa: S112 - a backend blip is not a revocation; look again soon
            continue
        if session is None or not identity.allows(session, event, role):
            await close(POLICY_VIOLATION, "access revoked")
            return


async def _load_session(conn: HTTPConnection) -> None:
    session_id = conn.cookies.get(identity.cookie_name(conn, identity.SESSION_COOKIE), "")
    session = None
    if 20 <= len(session_id) <= 100:
        session = await identity.security(conn).session(session_id)
    conn.scope["state"][SESSION] = session


async def _form_token(conn: HTTPConnection, body: bytes, receive: Receive) -> str:
    content_type = conn.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return next((v for k, v in fields if k == CSRF_FIELD), "")
    if content_type.startswith("multipart/form-data"):
        request = Request(conn.scope, receive)
        try:
            async with request.form() as form:
                value = form.get(CSRF_FIELD)
                return value if isinstance(value, str) else ""
        except Exception:
            return ""
    return ""


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _refuse(conn: HTTPConnection, status: int, code: str, message: str) -> Response:
    if "text/html" in conn.headers.get("accept", ""):
        return PlainTextResponse(message, status)
    return JSONResponse({"error": code, "message": message}, status)


def template_globals() -> dict[str, Any]:
    """`csp_nonce()`, `csrf_token()` and `csrf_field()` for every template."""
    import jinja2
    from markupsafe import Markup, escape

    @jinja2.pass_context
    def csp_nonce(context: Any) -> str:
        return str(context["request"].scope["state"].get(NONCE, ""))

    @jinja2.pass_context
    def csrf_token(context: Any) -> str:
        return identity.csrf_token(context["request"])

    @jinja2.pass_context
    def csrf_field(context: Any) -> Markup:
        token = escape(identity.csrf_token(context["request"]))
        field = f'<input type="hidden" name="{CSRF_FIELD}" value="{token}">'
        return Markup(field)  # noqa: S704 - the only variable part is escaped above

    return {"csp_nonce": csp_nonce, "csrf_token": csrf_token, "csrf_field": csrf_field}

"""The app factory: the one place that wires settings, store, bus and routes together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from liveqa import admin, collector, live, logs, markup, pages, watchdog
from liveqa.bus import open_bus
from liveqa.events import Events
from liveqa.hub import Hub
from liveqa.identity import Signer
from liveqa.limits import SlowDown
from liveqa.middleware import Guard, template_globals
from liveqa.model import DomainError
from liveqa.runtime import Runtime
from liveqa.security import Security
from liveqa.settings import Settings, SettingsError
from liveqa.store import UNAVAILABLE, Store, open_store, unavailable

logger = logging.getLogger("liveqa.app")
PURGE_EVERY = 3600.0


def resource(name: str) -> Path:
    """templates/ or static/: inside the installed package, or beside it in a checkout."""
    here = Path(__file__).parent
    for candidate in (here / name, here.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"liveqa's {name}/ folder is missing from {here}")


routes = [
    Route("/", pages.home, name="home"),
    Route("/healthz", pages.health, name="health"),
    Route("/e/{code}", pages.audience, name="audience"),
    Route("/e/{code}/moderate", pages.screen, name="moderate"),
    Route("/e/{code}/panel", pages.screen, name="panel"),
    Route("/e/{code}/answers", pages.answers, name="answers"),
    Route("/e/{code}/qr.svg", pages.qr_code, name="qr"),
    Route("/e/{code}/passcode", pages.passcode, methods=["POST"], name="passcode"),
    Route("/e/{code}/questions", pages.ask, methods=["POST"], name="ask"),
    Route("/e/{code}/questions/{question}/vote", pages.vote, methods=["POST"], name="vote"),
    Route(
        "/e/{code}/questions/{question}/{action}",
        pages.moderate,
        methods=["POST"],
        name="moderate_question",
    ),
    Route("/e/{code}/state", pages.event_state, methods=["POST"], name="event_state"),
    Route("/admin", admin.admin, name="admin"),
    Route("/admin/sign-in", admin.sign_in, methods=["POST"], name="admin_sign_in"),
    Route("/admin/sign-out", admin.sign_out, methods=["POST"], name="admin_sign_out"),
    Route("/admin/events", admin.create, methods=["POST"], name="admin_create"),
    Route("/admin/events/{code}/links", admin.new_links, methods=["POST"], name="admin_links"),
    Route("/admin/events/{code}", admin.event, name="admin_event"),
    Route("/admin/events/{code}/state", admin.set_state, methods=["POST"], name="admin_state"),
    Route(
        "/admin/events/{code}/retention",
        admin.retention,
        methods=["POST"],
        name="admin_retention",
    ),
    Route("/admin/events/{code}/passcode", admin.passcode, methods=["POST"], name="admin_passcode"),
    Route("/admin/events/{code}/export.csv", admin.export_csv, name="admin_export_csv"),
    Route("/admin/events/{code}/export.json", admin.export_json, name="admin_export_json"),
    Route("/admin/events/{code}/report", admin.report_page, name="admin_report"),
    Route("/admin/events/{code}/delete", admin.delete, methods=["POST"], name="admin_delete"),
    Route("/admin/import", admin.import_event, methods=["POST"], name="admin_import"),
    WebSocketRoute("/e/{code}/live", live.Live(), name="live"),
    Mount("/static", StaticFiles(directory=resource("static")), name="static"),
]


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """A refusal as a page for people browsing, as JSON for scripts."""
    if "text/html" in request.headers.get("accept", ""):
        rt: Runtime = request.app.state.runtime
        return rt.templates.TemplateResponse(
            request, "error.html", {"message": message}, status_code=status, headers=headers
        )
    return JSONResponse({"error": code, "message": message}, status, headers=headers)


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, SlowDown) else None
    return error_response(request, exc.status, exc.code, exc.message, headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(request, exc.status_code, "http", exc.detail)


async def store_unavailable(request: Request, exc: Exception) -> Response:
    """Redis (or SQLite) did not answer in time: the outcome is unknown, so ask for a retry."""
    body = unavailable()
    return error_response(request, 503, body["error"], body["message"], {"Retry-After": "1"})


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app for `settings` (read from the environment when None)."""
    if settings is None:
        import os

        settings = Settings.from_env(os.environ)
    settings = settings.with_secret()
    logs.install()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = open_store(settings.backend, log_keep=settings.log_keep)
        bus = open_bus(settings.bus)
        security: Security | None = None
        try:
            await check_store(settings, store)
            templates = Jinja2Templates(
                env=jinja2.Environment(
                    loader=jinja2.FileSystemLoader(resource("templates")),
                    autoescape=True,
                    undefined=jinja2.StrictUndefined,
                )
            )
            templates.env.globals.update(template_globals())
            templates.env.filters["linkify"] = markup.linkify
            security = app.state.security = await Security.open(settings)
            hub = Hub(store, bus)
            app.state.runtime = Runtime(
                settings=settings,
                store=store,
                bus=bus,
                events=Events(store, bus),
                hub=hub,
                signer=Signer(settings.secret_key),
                templates=templates,
            )
            lag = asyncio.create_task(watchdog.watch(), name="liveqa-watchdog")
            purge = asyncio.create_task(purging(app.state.runtime.events), name="liveqa-purge")
            gc = asyncio.create_task(collector.tend(), name="liveqa-gc")
            yield
            lag.cancel()
            purge.cancel()
            gc.cancel()
            await hub.close()
        finally:
            if security is not None:
                await security.close()
            await bus.close()
            await store.close()

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(Guard, settings=settings)],
        exception_handlers={
            DomainError: domain_error,
            HTTPException: http_error,
            **dict.fromkeys(UNAVAILABLE, store_unavailable),
        },
    )


async def purging(events: Events, every: float = PURGE_EVERY) -> None:
    """Purge events past their retention now and then; a failed round waits for the next."""
    while True:
        try:
            await events.purge_expired()
        except Exception:
            logger.exception("purging expired events failed; trying again in %d s", every)
        await asyncio.sleep(every)


async def check_store(settings: Settings, store: Store) -> None:
    """Refuse a Redis that would lose questions on restart, unless told to accept it."""
    if settings.allow_no_aof or not settings.redis:
        return
    from liveqa.store.redis import RedisStore

    if isinstance(store, RedisStore) and not await store.append_only():
        raise SettingsError(
            "Redis has its append-only file off (appendonly no), so a Redis restart would lose "
            "questions. Turn it on with `redis-cli CONFIG SET appendonly yes` and put "
            "`appendonly yes` in redis.conf, or set LIVEQA_ALLOW_NO_AOF=true for a throwaway setup."
        )

"""The `liveqa` command: serve, create-event, create-admin, settings."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from liveqa.bus import open_bus
from liveqa.events import Created, Events
from liveqa.model import DomainError, EventSettings, NameMode
from liveqa.passwords import WeakPassword, check_strength, hash_password
from liveqa.settings import Settings, SettingsError, describe
from liveqa.store import open_store

GRACEFUL_TIMEOUT = 10


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liveqa", description="Live Q&A for panels and events.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web server")
    serve.add_argument("--host", help="address to listen on (LIVEQA_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (PORT)")
    serve.add_argument("--workers", type=int, default=1, help="processes (Redis backend only)")
    serve.add_argument(
        "--graceful-timeout",
        type=int,
        default=GRACEFUL_TIMEOUT,
        metavar="SECONDS",
        help="on SIGTERM, how long open requests may finish after websockets are closed "
        f"with 1012 (default {GRACEFUL_TIMEOUT})",
    )

    create = commands.add_parser("create-event", help="create an event and print its links")
    create.add_argument("title")
    create.add_argument("--code", default="", help="join code, e.g. NHS-LEAD (default: random)")
    create.add_argument("--description", default="")
    create.add_argument("--panelist", action="append", default=[], help="repeat for each")
    create.add_argument("--premoderation", action="store_true", help="screen before showing")
    create.add_argument("--names", choices=[m.value for m in NameMode], default="choice")
    create.add_argument("--no-voting", action="store_true")
    create.add_argument("--max-length", type=int, default=500)
    create.add_argument("--passcode", default="", help="the audience must enter this first")

    organiser = commands.add_parser(
        "create-admin", help="create an organiser who signs in at /admin (or set a new password)"
    )
    organiser.add_argument("name", nargs="?", default="admin")
    organiser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )

    commands.add_parser("settings", help="list every setting and its environment variable")

    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
        if args.command == "serve":
            return _serve(settings, args)
        if args.command == "create-event":
            created = asyncio.run(_create(settings, args))
            _print_links(settings, created)
            return 0
        if args.command == "create-admin":
            password = _read_password(args.password_stdin)
            asyncio.run(_create_admin(settings, args.name, password))
            print(f"Organiser {args.name!r} can now sign in at {settings.base_url}/admin")
            return 0
        for env, default, help in describe():
            print(f"{env}  (default: {default or 'unset'})\n    {help}\n")
        return 0
    except (SettingsError, DomainError, WeakPassword) as error:
        print(f"liveqa: {error}", file=sys.stderr)
        return 2


# How uvicorn serves liveqa. `websockets-sansio` is what `liveqa.wire` writes through; no
# compression, because a frame per socket would defeat one encoding for all (and cost memory).
SERVER_OPTIONS: dict[str, Any] = {
    "ws": "websockets-sansio",
    "ws_max_size": 64 * 1024,
    "ws_per_message_deflate": False,
    "proxy_headers": True,
}


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    if args.workers > 1 and not settings.redis:
        raise SettingsError("--workers needs the Redis backend; SQLite serves from one process.")
    settings.with_secret()  # fail (or create the key file) before any worker starts
    asyncio.run(_preflight(settings))
    uvicorn.run(
        "liveqa.app:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        # uvicorn's default waits forever; sockets get 1012 at once and reconnect elsewhere.
        timeout_graceful_shutdown=args.graceful_timeout,
        **SERVER_OPTIONS,
    )
    return 0


async def _preflight(settings: Settings) -> None:
    from liveqa.app import check_store

    store = open_store(settings.backend, log_keep=settings.log_keep)
    try:
        await check_store(settings, store)
    except SettingsError:
        raise
    except Exception as error:
        raise SettingsError(f"Cannot use the backend {settings.backend}: {error}") from None
    finally:
        await store.close()


async def _create(settings: Settings, args: argparse.Namespace) -> Created:
    store = open_store(settings.backend, log_keep=settings.log_keep)
    bus = open_bus("memory://")
    try:
        events = Events(store, bus)
        created = await events.create(
            args.title,
            code=args.code,
            description=args.description,
            panelists=tuple(args.panelist),
            settings=EventSettings(
                premoderation=args.premoderation,
                names=NameMode(args.names),
                voting=not args.no_voting,
                max_length=args.max_length,
            ),
        )
        if args.passcode:
            await events.set_passcode(created.event.id, args.passcode)
        return created
    finally:
        await store.close()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        import getpass

        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise WeakPassword("The two passwords differ.")
    check_strength(password)
    return password


async def _create_admin(settings: Settings, name: str, password: str) -> None:
    from liveqa.model import MAX_NAME_LENGTH, clean_line
    from liveqa.sessions import open_sessions

    name = clean_line(name, limit=MAX_NAME_LENGTH, what="name", required=True)
    sessions = open_sessions(settings.backend)
    try:
        await sessions.add_organiser(name, hash_password(password))
    finally:
        await sessions.close()


def _print_links(settings: Settings, created: Created) -> None:
    base = f"{settings.base_url}/e/{created.event.code}"
    print(f"Event {created.event.title!r} created with code {created.event.code}\n")
    print(f"Audience:  {base}")
    print(f"Moderator: {base}/moderate?key={created.moderator_key}")
    print(f"Panel:     {base}/panel?key={created.panel_key}")
    print("\nKeep the moderator and panel links secret: anyone with one can use that screen.")

"""Every setting, declared once with its environment variable and help text."""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liveqa.store.sqlite import sqlite_path

DEFAULT_BACKEND = "sqlite:///liveqa.db"
ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def _setting(default: Any, env: str, help: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={"env": env, "help": help}, **kwargs)


class SettingsError(Exception):
    """A setting is missing or wrong; the message says how to fix it."""


@dataclass(frozen=True)
class Settings:
    backend: str = _setting(
        DEFAULT_BACKEND,
        "LIVEQA_BACKEND",
        "Where data lives: sqlite:///path.db (one process) or redis://host:port/0 (any number of "
        "processes). REDIS_URL is used when this is unset.",
    )
    secret_key: str = _setting(
        "",
        "LIVEQA_SECRET_KEY",
        "Signs participant cookies. Unset with SQLite: generated once and kept in a file beside "
        "the database. Required with Redis, and the same in every process.",
    )
    allowed_origins: tuple[str, ...] = _setting(
        (),
        "LIVEQA_ALLOWED_ORIGINS",
        "Comma-separated origins allowed to open websockets, e.g. https://qa.example.org. "
        "Unset: only the origin the request came to.",
    )
    panel_embed_origins: tuple[str, ...] = _setting(
        (),
        "LIVEQA_PANEL_EMBED_ORIGINS",
        "Space- or comma-separated origins whose pages may show the panel in a frame, e.g. "
        "https://studio.example.org. Unset: no site may frame any liveqa page.",
    )
    limit_ask: int = _setting(
        5,
        "LIVEQA_LIMIT_ASK",
        "Questions one participant may ask per minute; one address may ask 20 times as many. "
        "0 turns the limit off.",
    )
    limit_vote: int = _setting(
        60,
        "LIVEQA_LIMIT_VOTE",
        "Votes one participant may cast or withdraw per minute; one address 20 times as many. "
        "0 turns the limit off.",
    )
    limit_new_voters: int = _setting(
        500,
        "LIVEQA_LIMIT_NEW_VOTERS",
        "Participants from one address who may start voting in one event per 10 minutes (stops "
        "vote stuffing by clearing cookies). Raise it when a large venue shares one address.",
    )
    limit_lookups: int = _setting(
        30,
        "LIVEQA_LIMIT_LOOKUPS",
        "Unknown event codes one address may try per minute before it has to wait. "
        "0 turns the limit off.",
    )
    host: str = _setting("127.0.0.1", "LIVEQA_HOST", "Address `liveqa serve` listens on.")
    port: int = _setting(8000, "PORT", "Port `liveqa serve` listens on (LIVEQA_PORT also works).")
    public_url: str = _setting(
        "",
        "LIVEQA_PUBLIC_URL",
        "The address people use, for the links `liveqa create-event` prints. "
        "Unset: http://HOST:PORT.",
    )
    allow_no_aof: bool = _setting(
        False,
        "LIVEQA_ALLOW_NO_AOF",
        "Start on a Redis whose append-only file is off. Questions can then be lost when Redis "
        "restarts; only for throwaway setups.",
    )
    admin_password: str = _setting(
        "",
        "LIVEQA_ADMIN_PASSWORD",
        "On first start with no organiser yet, creates the organiser `admin` with this password "
        "for /admin. `liveqa create-admin` adds organisers. With neither, /admin stays closed.",
    )
    log_keep: int = _setting(
        10_000,
        "LIVEQA_LOG_KEEP",
        "Changes kept per event for clients that reconnect; older ones get a full snapshot.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is None and f.name == "backend":
                raw = environ.get("REDIS_URL")
            if raw is None and f.name == "port":
                raw = environ.get("LIVEQA_PORT")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f, raw)
        return cls(**values)

    @property
    def redis(self) -> bool:
        return self.backend.startswith(("redis:", "rediss:", "unix:", "redis+sentinel:"))

    @property
    def bus(self) -> str:
        return self.backend if self.redis else "memory://"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def with_secret(self) -> Settings:
        """These settings with a secret key, generating and keeping one beside an SQLite file."""
        if self.secret_key:
            return self
        if self.redis:
            raise SettingsError(
                "LIVEQA_SECRET_KEY is required with Redis, the same in every process. "
                'Make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
            )
        database = sqlite_path(self.backend)
        if database == ":memory:":
            return dataclasses.replace(self, secret_key=secrets.token_urlsafe(32))
        path = Path(database + ".secret")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32))
        return dataclasses.replace(self, secret_key=path.read_text().strip())


def _parse(f: dataclasses.Field[Any], raw: str) -> Any:
    if f.type in ("bool", bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{f.metadata['env']} must be true or false, not {raw!r}.")
    if f.type in ("int", int):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{f.metadata['env']} must be a number, not {raw!r}.") from None
    if f.name in ("allowed_origins", "panel_embed_origins"):
        origins = tuple(o.rstrip("/") for o in raw.replace(",", " ").split())
        for origin in origins:
            if not ORIGIN.match(origin):
                raise SettingsError(
                    f"{f.metadata['env']}: {origin!r} is not an origin like https://qa.example.org"
                )
        return origins
    return raw


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, help) for every setting, for `liveqa settings` and the README."""
    rows = []
    for f in dataclasses.fields(Settings):
        default = f.default
        shown = ", ".join(default) if isinstance(default, tuple) else str(default)
        rows.append((f.metadata["env"], shown, f.metadata["help"]))
    return rows

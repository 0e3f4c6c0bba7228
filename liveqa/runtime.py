"""What the views need at run time, built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.templating import Jinja2Templates

from liveqa.bus import Bus
from liveqa.events import Events
from liveqa.hub import Hub
from liveqa.identity import Signer
from liveqa.settings import Settings
from liveqa.store import Store


@dataclass
class Runtime:
    settings: Settings
    store: Store
    bus: Bus
    events: Events
    hub: Hub
    signer: Signer
    templates: Jinja2Templates


def runtime(conn: HTTPConnection) -> Runtime:
    value: Runtime = conn.app.state.runtime
    return value

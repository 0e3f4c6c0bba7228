"""The organiser's screen: create events, list them, hand out their links.

Organisers sign in with a name and password (`liveqa create-admin`, or `admin` with
LIVEQA_ADMIN_PASSWORD on first start) and get a server-side session that signing out ends.
With no organiser at all the admin stays closed.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from liveqa import identity, pages, passwords
from liveqa.events import Created
from liveqa.model import DomainError, EventSettings, InvalidInput, NameMode
from liveqa.runtime import Runtime, runtime
from liveqa.sessions import new_session

WRONG = "That name or password is wrong."


def signed_in(request: Request, rt: Runtime) -> bool:
    return bool(identity.organiser(request))


async def admin(request: Request) -> Response:
    rt = runtime(request)
    if not await identity.security(request).sessions.has_organisers():
        return _render(request, "admin_closed.html", {}, 403)
    if not signed_in(request, rt):
        return _render(request, "admin_sign_in.html", {"error": ""})
    return await _dashboard(request)


async def sign_in(request: Request) -> Response:
    security = identity.security(request)
    data, _ = await pages._payload(request)
    name = str(data.get("name", "")).strip() or "admin"
    password = str(data.get("password", ""))
    try:
        await security.limits.signing_in(request.client.host if request.client else "")
    except DomainError as error:
        return _render(request, "admin_sign_in.html", {"error": error.message}, error.status)
    stored = await security.sessions.password_hash(name)
    if stored is None:
        passwords.burn_time(password)  # an unknown name answers as slowly as a wrong password
    if stored is None or not passwords.verify_password(password, stored):
        return _render(request, "admin_sign_in.html", {"error": WRONG, "name": name}, 403)
    response = RedirectResponse(request.url_for("admin"), 303)
    # A new session id at sign-in: an id planted before it (session fixation) is worth nothing.
    await identity.start_session(response, request, new_session(organiser=name))
    return response


async def sign_out(request: Request) -> Response:
    await pages._payload(request)
    response = RedirectResponse(request.url_for("admin"), 303)
    await identity.end_session(response, request)
    return response


async def create(request: Request) -> Response:
    rt = _require(request)
    data, _ = await pages._payload(request)
    try:
        created = await rt.events.create(
            str(data.get("title", "")),
            code=str(data.get("code", "")),
            description=str(data.get("description", "")),
            panelists=tuple(str(data.get("panelists", "")).splitlines()),
            settings=_settings(data),
        )
    except DomainError as error:
        return await _dashboard(request, error=error.message, form=data, status=error.status)
    return await _dashboard(request, created=created, status=201)


async def new_links(request: Request) -> Response:
    rt = _require(request)
    await pages._payload(request)
    event = await rt.store.event_by_code(request.path_params["code"])
    return await _dashboard(request, created=await rt.events.new_links(event.id))


def _settings(data: dict[str, Any]) -> EventSettings:
    try:
        names = NameMode(str(data.get("names", NameMode.CHOICE.value)))
        max_length = int(str(data.get("max_length", "500")) or 500)
    except ValueError:
        raise InvalidInput(
            "Choose how names work, and give the length limit as a number."
        ) from None
    return EventSettings(
        premoderation=bool(data.get("premoderation")),
        names=names,
        voting=bool(data.get("voting")),
        max_length=max_length,
    )


async def _dashboard(
    request: Request,
    *,
    created: Created | None = None,
    error: str = "",
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    rt = runtime(request)
    events = sorted(await rt.store.events(), key=lambda e: -e.created_at)
    links = {}
    if created is not None:
        audience = str(request.url_for("audience", code=created.event.code))
        links = {
            "audience": audience,
            "moderator": f"{audience}/moderate?key={created.moderator_key}",
            "panel": f"{audience}/panel?key={created.panel_key}",
        }
    context = {
        "events": events,
        "created": created.event if created else None,
        "links": links,
        "error": error,
        "form": form or {"voting": "on", "max_length": "500", "names": "choice"},
    }
    response = _render(request, "admin.html", context, status)
    # The page may carry bearer links: keep it out of caches.
    response.headers["cache-control"] = "no-store"
    return response


def _require(request: Request) -> Runtime:
    rt = runtime(request)
    if not signed_in(request, rt):
        raise HTTPException(403, "Sign in to the admin first.")
    return rt


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    return runtime(request).templates.TemplateResponse(request, name, context, status_code=status)

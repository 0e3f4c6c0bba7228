"""The organiser's screen: create events, list them, hand out their links.

Organisers sign in with a name and password (`liveqa create-admin`, or `admin` with
LIVEQA_ADMIN_PASSWORD on first start) and get a server-side session that signing out ends.
With no organiser at all the admin stays closed.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from markupsafe import Markup
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from liveqa import export, identity, pages, passwords, report
from liveqa.events import Created
from liveqa.model import (
    EVENT_TRANSITIONS,
    CodeTaken,
    DomainError,
    Event,
    EventSettings,
    EventState,
    InvalidInput,
    NameMode,
    NotFound,
)
from liveqa.runtime import Runtime, runtime
from liveqa.sessions import new_session

WRONG = "That name or password is wrong."
MAX_IMPORT = 16 * 1024 * 1024
STATE_LABELS = {
    "draft": "Not open yet",
    "open": "Open",
    "vote_only": "Voting only",
    "closed": "Closed",
    "archived": "Archived",
}


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
    session = new_session(organiser=name, credential=stored[-16:])
    await identity.start_session(response, request, session)
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
            draft=data.get("start") == "draft",
        )
    except DomainError as error:
        return await _dashboard(request, error=error.message, form=data, status=error.status)
    return await _dashboard(request, created=created, status=201)


async def new_links(request: Request) -> Response:
    rt = _require(request)
    await pages._payload(request)
    event = await rt.store.event_by_code(request.path_params["code"])
    return await _dashboard(request, created=await rt.events.new_links(event.id))


async def event(request: Request) -> Response:
    """One event's page: its lifecycle, how long it is kept, exports and deleting it."""
    _require(request)
    return await _event_page(request, await _event(request))


async def set_state(request: Request) -> Response:
    rt = _require(request)
    data, _ = await pages._payload(request)
    found = await _event(request)
    try:
        state = EventState(str(data.get("state", "")))
    except ValueError:
        raise InvalidInput("Choose what the event becomes.") from None
    try:
        await rt.events.set_state(found.id, state, key=uuid.uuid4().hex)
    except DomainError as error:
        return await _event_page(request, found, error=error.message, status=error.status)
    return _back_to(request, found)


async def retention(request: Request) -> Response:
    rt = _require(request)
    data, _ = await pages._payload(request)
    found = await _event(request)
    try:
        days = _retention(data)
        await rt.events.configure(found.id, key=uuid.uuid4().hex, retention_days=days)
    except DomainError as error:
        return await _event_page(request, found, error=error.message, status=error.status)
    return _back_to(request, found)


async def passcode(request: Request) -> Response:
    rt = _require(request)
    data, _ = await pages._payload(request)
    found = await _event(request)
    try:
        await rt.events.set_passcode(found.id, str(data.get("passcode", "")))
    except DomainError as error:
        return await _event_page(request, found, error=error.message, status=error.status)
    return _back_to(request, found)


async def export_csv(request: Request) -> Response:
    rt = _require(request)
    snapshot = await rt.store.snapshot((await _event(request)).id)
    body = export.to_csv(_by_time(snapshot.questions))
    return _download(body, "text/csv; charset=utf-8", f"{snapshot.event.code}-questions.csv")


async def export_json(request: Request) -> Response:
    rt = _require(request)
    snapshot = await rt.store.snapshot((await _event(request)).id)
    data = export.to_json(snapshot.event, _by_time(snapshot.questions))
    body = json.dumps(data, ensure_ascii=False, indent=1)
    return _download(body, "application/json", f"{snapshot.event.code}.liveqa.json")


async def report_page(request: Request) -> Response:
    rt = _require(request)
    found = await _event(request)
    snapshot = await rt.store.snapshot(found.id)
    joined, voters = await rt.store.people(found.id)
    story = report.build(found, snapshot.questions, joined=joined, voters=voters)
    # The chart is built from numbers and escaped labels only, so it is safe to inline.
    chart = Markup(report.chart(story))  # noqa: S704
    context = {
        "event": found,
        "report": story,
        "chart": chart,
        "labels": STATE_LABELS,
        "when": report.when,
        "wait": report.wait(story.median_moderation_seconds),
        "per": report.duration(story.bucket_seconds),
    }
    return _render(request, "admin_report.html", context)


async def delete(request: Request) -> Response:
    rt = _require(request)
    data, _ = await pages._payload(request)
    found = await _event(request)
    if str(data.get("confirm", "")).strip().upper() != found.code:
        message = f"Type the event's code, {found.code}, to delete it."
        return await _event_page(request, found, error=message, status=422)
    await rt.events.delete(found.id)
    return await _dashboard(request, notice=f"Deleted {found.title} ({found.code}).")


async def import_event(request: Request) -> Response:
    rt = _require(request)
    if not identity.same_site_write(request, rt.settings.allowed_origins):
        raise HTTPException(403, "This request came from another site.")
    try:
        async with request.form(max_files=1, max_fields=10, max_part_size=MAX_IMPORT) as form:
            upload, code = form.get("file"), form.get("code", "")
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise InvalidInput("Choose a liveqa export (a .json file) to import.")
            raw = await upload.read()
        data = _parse_export(raw)
        created = await rt.events.import_event(data, code=str(code).strip())
    except CodeTaken as error:
        message = f"{error.message} Give the imported event another code."
        return await _dashboard(request, import_error=message, status=error.status)
    except DomainError as error:
        return await _dashboard(request, import_error=error.message, status=error.status)
    return await _dashboard(request, created=created, status=201)


def _parse_export(raw: bytes) -> object:
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(
            "This file is not a liveqa export: it is not readable JSON. "
            "Export the event again and upload the .json file as it was downloaded."
        ) from None


def _retention(data: dict[str, Any]) -> int:
    value = str(data.get("retention_days", "0")).strip() or "0"
    if not value.isdigit():
        raise InvalidInput("Give the number of days as a whole number (0 keeps for ever).")
    return int(value)


def _by_time(questions: Any) -> list[Any]:
    return sorted(questions, key=lambda q: q.created_at)


def _download(body: str, media_type: str, filename: str) -> Response:
    # A code is letters, digits and dashes only, so the file name needs no quoting rules.
    headers = {"content-disposition": f'attachment; filename="{filename}"'}
    return Response(body, media_type=media_type, headers=headers)


def _back_to(request: Request, found: Event) -> Response:
    return RedirectResponse(request.url_for("admin_event", code=found.code), 303)


async def _event(request: Request) -> Event:
    try:
        return await runtime(request).store.event_by_code(request.path_params["code"])
    except NotFound as error:
        raise HTTPException(404, error.message) from None


async def _event_page(
    request: Request, found: Event, *, error: str = "", status: int = 200
) -> Response:
    moves = sorted(EVENT_TRANSITIONS[found.state], key=list(EventState).index)
    context = {"event": found, "moves": moves, "labels": STATE_LABELS, "error": error}
    return _render(request, "admin_event.html", context, status)


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
        retention_days=_retention(data),
    )


async def _dashboard(
    request: Request,
    *,
    created: Created | None = None,
    error: str = "",
    form: dict[str, Any] | None = None,
    import_error: str = "",
    notice: str = "",
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
        "import_error": import_error,
        "notice": notice,
        "labels": STATE_LABELS,
        "form": form
        or {"voting": "on", "max_length": "500", "names": "choice", "retention_days": "0"},
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

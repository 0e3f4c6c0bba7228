"""HTTP views: parse, check who may do what, call a use case, render. No rules live here."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import segno
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from liveqa import identity, messages, passwords
from liveqa.limits import SlowDown
from liveqa.model import (
    Action,
    DomainError,
    Event,
    EventState,
    InvalidInput,
    NotFound,
    clean_code,
)
from liveqa.runtime import Runtime, runtime

MAX_BODY = 64 * 1024
MODERATOR_ACTIONS = {a.value for a in Action}


async def home(request: Request) -> Response:
    rt = runtime(request)
    code = request.query_params.get("code", "")
    if code:
        try:
            event = await _lookup(request, lambda: rt.store.event_by_code(clean_code(code)))
        except DomainError as error:
            status = error.status if isinstance(error, SlowDown) else 404
            return _render(request, "home.html", {"error": error.message, "code": code}, status)
        return RedirectResponse(request.url_for("audience", code=event.code), 303)
    return _render(request, "home.html", {"error": "", "code": ""})


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def audience(request: Request) -> Response:
    event = await _event(request)
    if not identity.passcode_ok(request, runtime(request).signer, event):
        return _render(request, "passcode.html", {"event": event, "error": ""})
    return await _audience(request, event)


async def passcode(request: Request) -> Response:
    """The audience's way in to an event with a passcode."""
    rt = runtime(request)
    event = await _event(request)
    data, _ = await _payload(request)
    try:
        await identity.security(request).limits.entering_passcode(_address(request))
    except SlowDown as error:
        context = {"event": event, "error": error.message}
        return _render(request, "passcode.html", context, error.status)
    given = str(data.get("passcode", "")).strip()
    stored = event.passcode_hash
    if stored and not await asyncio.to_thread(passwords.verify_password, given, stored):
        context = {"event": event, "error": "That is not the passcode. Check it and try again."}
        return _render(request, "passcode.html", context, 403)
    response = RedirectResponse(request.url_for("audience", code=event.code), 303)
    identity.admit(response, request, rt.signer, event)
    return response


def _admitted(request: Request, event: Event) -> None:
    if not identity.passcode_ok(request, runtime(request).signer, event):
        raise HTTPException(403, "Enter this event's passcode first.")


async def _audience(
    request: Request, event: Event, error: str = "", status: int = 200, form: Any = None
) -> Response:
    rt = runtime(request)
    known = identity.participant(request, rt.signer)
    participant = known or identity.new_participant()
    # Counted for the event's report: a set, so each participant once however often they look.
    await rt.store.join(event.id, participant)
    snapshot = await rt.store.snapshot(event.id)
    shown = [
        messages.for_audience(q, mine=q.participant == participant)
        for q in snapshot.questions
        if messages.visible(q, participant)
    ]
    voted = await rt.store.voted(event.id, participant) if known else set()
    sort = "new" if request.query_params.get("sort") == "new" else "top"
    response = _render(
        request,
        "audience.html",
        {
            "event": event,
            "seq": snapshot.seq,
            "live": [q for q in shown if q["state"] == "live"],
            "queue": _sorted([q for q in shown if q["state"] == "queued"], sort),
            "answered": _sorted([q for q in shown if q["state"] == "answered"], "new"),
            "mine": _sorted([q for q in shown if q.get("mine")], "new"),
            "sort": sort,
            "voted": voted,
            "error": error,
            "form": form or {},
            "form_key": uuid.uuid4().hex,
        },
        status,
    )
    if known is None:
        identity.set_participant(response, request, rt.signer, participant)
    return response


def _sorted(questions: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    if sort == "new":
        return sorted(questions, key=lambda q: -q["created_at"])
    return sorted(questions, key=lambda q: (-q["votes"], q["created_at"]))


async def screen(request: Request) -> Response:
    """The moderator and panel screens; their link's key is exchanged for a cookie."""
    rt = runtime(request)
    event = await _event(request)
    role = "moderator" if request.url.path.endswith("/moderate") else "panel"
    key = request.query_params.get("key")
    if key is not None:
        if not identity.key_matches(event, role, key):
            raise HTTPException(403, "This link is not valid (any more). Ask the organiser.")
        # Redirect to a clean URL so the key never reaches logs, history or Referer.
        response: Response = RedirectResponse(request.url.remove_query_params("key"), 303)
        await identity.grant(response, request, event, role)
        return response
    if not identity.has_access(request, rt.signer, event, role):
        raise HTTPException(403, f"Open the {role} link the organiser gave you.")
    snapshot = await rt.store.snapshot(event.id)
    if role == "moderator":
        shown = [messages.for_moderator(q) for q in snapshot.questions]
    else:
        shown = [messages.for_audience(q) for q in snapshot.questions if q.public]
    return _render(
        request,
        "moderate.html" if role == "moderator" else "panel.html",
        {
            "event": event,
            "seq": snapshot.seq,
            "questions": _sorted(shown, "top"),
            "join_url": str(request.url_for("audience", code=event.code)),
        },
    )


async def qr_code(request: Request) -> Response:
    """The join URL as a QR code, drawn here so the panel needs no third party."""
    event = await _event(request)
    qr = segno.make(str(request.url_for("audience", code=event.code)), error="m")
    buffer = io.BytesIO()
    qr.save(buffer, kind="svg", border=2, dark="#000", light="#fff", xmldecl=False, omitsize=True)
    return Response(
        buffer.getvalue(),
        media_type="image/svg+xml",
        headers={"cache-control": "public, max-age=3600"},
    )


async def answers(request: Request) -> Response:
    """The answered questions, most voted first; `?q=ID` is one answer's permalink."""
    rt = runtime(request)
    event = await _event(request)
    if not identity.passcode_ok(request, rt.signer, event):
        return _render(request, "passcode.html", {"event": event, "error": ""})
    snapshot = await rt.store.snapshot(event.id)
    answered = _sorted(
        [messages.for_audience(q) for q in snapshot.questions if q.state.value == "answered"],
        "top",
    )
    one = request.query_params.get("q")
    if one is not None:
        answered = [q for q in answered if q["id"] == one]
        if not answered:
            raise HTTPException(404, "There is no answer with that link.")
    context = {"event": event, "questions": answered, "single": one is not None}
    return _render(request, "answers.html", context)


async def ask(request: Request) -> Response:
    rt = runtime(request)
    event = await _event(request)
    _admitted(request, event)
    data, form = await _payload(request)
    participant = identity.participant(request, rt.signer) or identity.new_participant()
    try:
        await identity.security(request).limits.asking(participant, _address(request))
        question = await rt.events.ask(
            event.id,
            text=str(data.get("text", "")),
            name="" if data.get("anonymous") else str(data.get("name", "")),
            panelist=str(data.get("panelist", "")),
            participant=participant,
            key=_key(request, data),
        )
    except DomainError as error:
        if form:
            return await _audience(request, event, error.message, error.status, data)
        raise
    response = (
        _back(request, event)
        if form
        else JSONResponse({"question": messages.for_audience(question, mine=True)}, 201)
    )
    identity.set_participant(response, request, rt.signer, participant)
    return response


async def vote(request: Request) -> Response:
    rt = runtime(request)
    event = await _event(request)
    _admitted(request, event)
    data, form = await _payload(request)
    participant = identity.participant(request, rt.signer)
    if participant is None:
        raise InvalidInput("Open the event page first, then vote.")
    up = data.get("up", True) not in (False, "false", "0", "")
    try:
        limits = identity.security(request).limits
        await limits.voting(participant, _address(request))
        if limits.new_voters > 0 and not await rt.store.voted(event.id, participant):
            await limits.new_voter(event.id, _address(request))
        question = await rt.events.vote(
            event.id,
            request.path_params["question"],
            participant=participant,
            key=_key(request, data),
            up=up,
        )
    except DomainError as error:
        if form:
            return await _audience(request, event, error.message, error.status)
        raise
    if form:
        return _back(request, event)
    return JSONResponse({"question": messages.for_audience(question), "voted": up})


async def moderate(request: Request) -> Response:
    rt = runtime(request)
    event = await _event(request)
    _require(request, rt, event, "moderator")
    data, _ = await _payload(request)
    action = request.path_params["action"]
    if action not in MODERATOR_ACTIONS:
        raise HTTPException(404, f"No action {action!r}.")
    question_id = request.path_params["question"]
    key = _key(request, data)
    ev = rt.events
    match Action(action):
        case Action.APPROVE:
            question = await ev.approve(event.id, question_id, key=key)
        case Action.DISMISS:
            question = await ev.dismiss(
                event.id, question_id, key=key, reason=str(data.get("reason", ""))
            )
        case Action.RESTORE:
            question = await ev.restore(event.id, question_id, key=key)
        case Action.EDIT:
            question = await ev.edit(event.id, question_id, key=key, text=str(data.get("text", "")))
        case Action.STAR:
            starred = data.get("starred", True) not in (False, "false", "0", "")
            question = await ev.star(event.id, question_id, key=key, starred=starred)
        case Action.PROMOTE:
            previous = Action.BACK if data.get("previous") == "back" else Action.DONE
            question = await ev.promote(event.id, question_id, key=key, previous=previous)
        case Action.BACK:
            question = await ev.back(event.id, question_id, key=key)
        case Action.DONE:
            question = await ev.done(event.id, question_id, key=key)
        case Action.ANSWER:
            question = await ev.answer(
                event.id, question_id, key=key, text=str(data.get("text", ""))
            )
        case Action.ASSIGN:
            panelist = str(data.get("panelist", ""))
            question = await ev.assign(event.id, question_id, key=key, panelist=panelist)
        case Action.DRAFT:
            text = str(data.get("text", ""))
            question = await ev.draft(event.id, question_id, key=key, text=text)
    return JSONResponse({"question": messages.for_moderator(question)})


async def event_state(request: Request) -> Response:
    rt = runtime(request)
    event = await _event(request)
    _require(request, rt, event, "moderator")
    data, _ = await _payload(request)
    if not identity.organiser(request) and EventState.ARCHIVED in (event.state, data.get("state")):
        # Archived means read-only for moderators too: only an organiser archives or reopens.
        raise HTTPException(403, "Only an organiser can archive an event or reopen it.")
    # Without a key, ":settings" alone would make every later keyless change a replay.
    key = _key(request, data) or uuid.uuid4().hex
    if "state" in data:
        try:
            state = EventState(data["state"])
        except ValueError:
            raise InvalidInput("The state must be open, vote_only or closed.") from None
        event = await rt.events.set_state(event.id, state, key=key)
    settings = {k: bool(data[k]) for k in ("premoderation", "voting") if k in data}
    if settings:
        event = await rt.events.configure(event.id, key=key + ":settings", **settings)
    return JSONResponse({"event": event.to_dict()})


async def _event(request: Request) -> Event:
    code = request.path_params["code"]
    return await _lookup(request, lambda: runtime(request).store.event_by_code(code))


async def _lookup(request: Request, find: Callable[[], Awaitable[Event]]) -> Event:
    """Find an event by code; an address that guesses codes is made to wait."""
    limits = identity.security(request).limits
    await limits.check_lookups(_address(request))
    try:
        return await find()
    except NotFound:
        await limits.missed_lookup(_address(request))
        raise


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


def _require(request: Request, rt: Runtime, event: Event, role: str) -> None:
    if not identity.has_access(request, rt.signer, event, role):
        raise HTTPException(403, f"Only this event's {role}s may do that.")


async def _payload(request: Request) -> tuple[dict[str, Any], bool]:
    """The request's fields, from JSON or a form, and whether it was a form post."""
    if not identity.same_site_write(request, runtime(request).settings.allowed_origins):
        raise HTTPException(403, "This request came from another site.")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise HTTPException(413, "The request is too large.")
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.body()
        if len(body) > MAX_BODY:
            raise HTTPException(413, "The request is too large.")
        try:
            data = await request.json() if body else {}
        except ValueError:
            raise InvalidInput("The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise InvalidInput("The request body must be a JSON object.")
        return data, False
    form = await request.form(max_files=0, max_fields=20, max_part_size=MAX_BODY)
    return {k: v for k, v in form.items() if isinstance(v, str)}, True


def _key(request: Request, data: dict[str, Any]) -> str:
    key = request.headers.get("idempotency-key") or str(data.get("key", ""))
    if len(key) > 100:
        raise InvalidInput("The idempotency key is longer than 100 characters.")
    return key


def _back(request: Request, event: Event) -> Response:
    return RedirectResponse(f"{request.url_for('audience', code=event.code)}#mine", 303)


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    return runtime(request).templates.TemplateResponse(request, name, context, status_code=status)

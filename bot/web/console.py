"""The operators' console under /console: sign-in, the hand-over inbox, transcripts, replies.

Pages are rendered on the server with Jinja2 (autoescape on: customer text is hostile and is
never marked safe); the only script (static/console-live.js) follows /console/events
(Server-Sent Events, console_live.py) and refreshes the page's main part when it changed. A
session is a random token in an HttpOnly, SameSite=Lax cookie (Secure unless [web]
cookie_secure is off for plain-http tests); every POST carries the session's CSRF token, and
the sign-in form a double-submit token of its own. URLs carry conversation ids only, never a
customer's id or text, and nothing here logs request details.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from bot.web import console_live
from bot.web.access import Services, services
from bot.web.errors import ApiError
from bot.web.limits import RateLimiter
from bot.web.period import period_of
from bot.web.users import ROLES, Role, Session, UserStore
from engine import analytics, analytics_html
from engine.log import Conversation, ConversationStore, Delivery, Handover
from engine.log.summary import channels_of
from engine.rating import QUESTION, rating_key

SESSION_COOKIE = "sb_console"
LOGIN_CSRF_COOKIE = "sb_login_csrf"
VIEWS = ("waiting", "mine", "open", "resolved")
INBOX_ROWS = 200
RATING_QUESTION = QUESTION  # what "resolve" asks; engine.rating reads the customer's answer
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "console_templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

router = APIRouter(prefix="/console", include_in_schema=False)


@dataclass
class Console:
    """The console's state beside the app's services: accounts and the sign-in limiter."""

    users: UserStore
    logins: RateLimiter


def console(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


def install(app: Any, found: Services) -> None:
    """Attach the console's state and router to the app."""
    config = found.config
    app.state.console = Console(
        UserStore(config.users_path, session_hours=config.session_hours),
        RateLimiter(config.login_per_minute, 5),
    )
    app.include_router(router)
    app.include_router(_knowledge().router)


def _signed_in(admin: bool) -> Callable[..., Awaitable[Session]]:
    async def check(request: Request) -> Session:
        token = request.cookies.get(SESSION_COOKIE)
        session = console(request).users.session(token) if token else None
        if session is None:
            raise ApiError(
                303,
                "sign in at /console/login",
                code="login_required",
                headers={"Location": "/console/login"},
            )
        if admin and session.user.role != "admin":
            raise ApiError(403, "this page is for admins", code="admin_required")
        if request.method == "POST":
            form = await request.form()
            sent = form.get("csrf")
            if not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf):
                raise ApiError(403, "missing or stale form token; reload the page", code="csrf")
        return session

    return check


Operator = Annotated[Session, Depends(_signed_in(admin=False))]
Admin = Annotated[Session, Depends(_signed_in(admin=True))]
Found = Annotated[Services, Depends(services)]


def _page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _TEMPLATES.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers=_HEADERS)


# Sign-in.


@router.get("/login")
async def login_page(request: Request) -> Response:
    return _login_form(request, error=None)


def _login_form(request: Request, error: str | None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = _page("login.html", status, csrf=token, error=error)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path="/console/login",
        secure=request.app.state.services.config.cookie_secure,
        max_age=3600,
    )
    return response


@router.post("/login")
async def login(
    request: Request,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=128)],
) -> Response:
    state = console(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf):
        return _login_form(request, "The form expired; try again.", 403)
    address = request.client.host if request.client else "unknown"
    wait = max(state.logins.take(f"ip:{address}"), state.logins.take(f"user:{name}"))
    if wait > 0:
        response = _login_form(request, f"Too many tries; wait {wait:.0f} s.", 429)
        response.headers["Retry-After"] = RateLimiter.retry_after(wait)
        return response
    user = state.users.check(name, password)
    if user is None:
        return _login_form(request, "Wrong name or password.", 401)
    token = state.users.start_session(user)
    response = _back("/console")
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        path="/console",
        secure=request.app.state.services.config.cookie_secure,
        max_age=int(request.app.state.services.config.session_hours * 3600),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    return response


@router.post("/logout")
async def logout(request: Request, session: Operator) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    console(request).users.end_session(token)
    response = _back("/console/login")
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


# The inbox.


@dataclass(frozen=True)
class Row:
    """One hand-over in the inbox."""

    handover: Handover
    channel: str
    assignee: str | None
    waiting_s: float
    last_customer: str


@router.get("")
async def inbox(
    request: Request, session: Operator, found: Found, view: str = "waiting"
) -> Response:
    if view not in VIEWS:
        raise ApiError(404, f"no view {view!r}; one of {VIEWS}", code="not_found")
    rows = await _rows(found.engine.conversation_log, view, session)
    return _page(
        "inbox.html",
        session=session,
        rows=rows,
        view=view,
        views=VIEWS,
        live=True,
        duration=_duration,
    )


async def _rows(log: ConversationStore, view: str, session: Session) -> list[Row]:
    now = time.time()
    handovers: list[tuple[str, Handover]] = []
    if view == "resolved":
        for summary in await log.list_conversations(limit=200):
            conversation = await log.get_conversation(summary.id)
            if conversation is None:
                continue
            handovers += [(conversation.channel, h) for h in conversation.handovers if h.closed_at]
        handovers.sort(key=lambda pair: pair[1].closed_at or 0, reverse=True)
    else:
        for channel in await _channels(log):
            handovers += [(channel, h) for _, h in await log.open_handovers(channel)]
        handovers.sort(key=lambda pair: pair[1].opened_at)
    rows: list[Row] = []
    for channel, handover in handovers:
        assignee = handover.assignee  # from the log: taken here or in a Telegram topic
        if view == "waiting" and assignee is not None:
            continue
        if view == "mine" and assignee != session.user.name:
            continue
        if len(rows) == INBOX_ROWS:  # the oldest first; the rest once these are handled
            break
        turns = await log.recent_turns(handover.conversation_id, 10)
        last = next((t.text for t in reversed(turns) if t.role == "customer"), "")
        rows.append(Row(handover, channel, assignee, now - handover.opened_at, last[:140]))
    return rows


async def _channels(log: ConversationStore, asked: str | None = None) -> tuple[str, ...]:
    # The same list the analytics period accepts (engine/log/summary.py).
    return await channels_of(log, asked)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


@router.get("/conversations/{conversation_id}")
async def transcript(
    request: Request, conversation_id: int, session: Operator, found: Found
) -> Response:
    conversation = await _conversation(found, conversation_id)
    state = console(request)
    open_handover = next((h for h in conversation.handovers if h.closed_at is None), None)
    assignee = open_handover.assignee if open_handover else None
    return _page(
        "conversation.html",
        session=session,
        conversation=conversation,
        handover=open_handover,
        assignee=assignee,
        notes=state.users.notes(conversation_id),
        when=_when,
        live=True,
        **await _knowledge().transcript_extras(request, found, conversation, bool(open_handover)),
    )


def _knowledge() -> Any:
    from bot.web import console_knowledge  # it builds on this module's sign-in and pages

    return console_knowledge


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp))


async def _conversation(found: Services, conversation_id: int) -> Conversation:
    conversation = await found.engine.conversation_log.get_conversation(conversation_id)
    if conversation is None:
        raise ApiError(404, f"no conversation {conversation_id}", code="conversation_not_found")
    return conversation


def _here(conversation_id: int) -> str:
    return f"/console/conversations/{conversation_id}"


async def _open_handover(found: Services, conversation_id: int, to: str) -> Handover:
    """The conversation's open hand-over; 409 when there is none `to` act on."""
    handover = await found.engine.conversation_log.open_handover_for(conversation_id)
    if handover is None:
        raise ApiError(409, f"no open hand-over to {to}", code="no_handover")
    return handover


@router.post("/conversations/{conversation_id}/assign")
async def assign(
    request: Request, conversation_id: int, session: Operator, found: Found
) -> Response:
    handover = await _open_handover(found, conversation_id, "take")
    # Taking it from another holder is allowed (a lead may); the bot says so in the topic.
    await found.engine.conversation_log.assign_handover(handover.id, session.user.name)
    return _back(_here(conversation_id))


@router.post("/conversations/{conversation_id}/reply")
async def reply(
    request: Request,
    conversation_id: int,
    session: Operator,
    found: Found,
    text: Annotated[str, Form(min_length=1, max_length=4000)],
    after: Annotated[int | None, Form()] = None,
) -> Response:
    conversation = await _conversation(found, conversation_id)
    log = found.engine.conversation_log
    # Without one the bot is serving the customer (a stale page, a crafted form): refuse.
    handover = await _open_handover(found, conversation_id, "reply in")
    # The first reply takes an unheld hand-over.
    await log.assign_handover(handover.id, session.user.name, take_over=False)
    # The web chat's stream sends operator turns as they are logged; other channels deliver
    # the turns still "pending".
    delivery: Delivery | None = None if conversation.channel == "web" else "pending"
    await log.add_turn(
        conversation_id,
        "operator",
        text.strip(),
        delivery=delivery,
        external_id=_reply_key(session, after, text),
    )
    _wake_others(found, delivery)
    return _back(_here(conversation_id))


def _wake_others(found: Services, delivery: Delivery | None) -> None:
    """Another process's outbox sends a pending turn now rather than at its next poll; the
    reply does not wait for Redis."""
    if found.wakeups is not None:
        found.wakeups.publish_soon("delivery" if delivery == "pending" else "turn")


def _reply_key(session: Session, after: int | None, text: str) -> str | None:
    """Names a reply by who sent what after which turn: a form sent twice (a double click, a
    resent POST) logs, and so sends, one turn."""
    if after is None:
        return None
    digest = hashlib.sha256(text.strip().encode()).hexdigest()[:16]
    return f"console:{session.user.name}:{after}:{digest}"


@router.post("/conversations/{conversation_id}/note")
async def note(
    request: Request,
    conversation_id: int,
    session: Operator,
    found: Found,
    text: Annotated[str, Form(min_length=1, max_length=4000)],
) -> Response:
    await _conversation(found, conversation_id)
    console(request).users.add_note(conversation_id, session.user.name, text.strip())
    return _back(_here(conversation_id))


@router.post("/conversations/{conversation_id}/resolve")
async def resolve(
    request: Request, conversation_id: int, session: Operator, found: Found
) -> Response:
    conversation = await _conversation(found, conversation_id)
    log = found.engine.conversation_log
    handover = await _open_handover(found, conversation_id, "resolve")
    # Of racing resolves (here or `/close` in a topic) only the one that closed it asks.
    if not await log.close_handover(handover.id, operator_id=session.user.name):
        raise ApiError(409, "the hand-over was resolved meanwhile", code="no_handover")
    # The customer's next message, if a rating, is stored on the hand-over (engine.rating).
    await log.ask_rating(handover.id)
    delivery: Delivery | None = None if conversation.channel == "web" else "pending"
    await log.add_turn(
        conversation_id,
        "operator",
        RATING_QUESTION,
        delivery=delivery,
        external_id=rating_key(handover.id),
    )
    _wake_others(found, delivery)
    return _back(_here(conversation_id))


# Analytics.


async def _figures(
    request: Request,
    found: Services,
    since: str | None,
    until: str | None = None,
    channel: str | None = None,
) -> analytics.Figures:
    # CSAT comes with the other figures: ratings of the period's conversations, on the channel.
    period = await period_of(found.engine.conversation_log, since, until, channel)
    return await _cache(request).compute(
        found.engine.conversation_log,
        since=period.since,
        until=period.until,
        channel=period.channel,
    )


@router.get("/analytics")
async def analytics_page(
    request: Request,
    session: Operator,
    found: Found,
    since: str | None = None,
    until: str | None = None,
    channel: str = "all",
) -> Response:
    figures = await _figures(request, found, since, until, channel)
    groups = await _groups(request, found, figures)
    asked = {"since": since or "", "until": until or "", "channel": channel}
    return _page(
        "analytics.html",
        session=session,
        figures=figures,
        groups=groups,
        # Drawn from counts, dates and names (escaped), no customer text.
        charts=[Markup(chart) for chart in analytics_html.charts(figures)],
        asked=asked,
        channels=("all", *await _channels(found.engine.conversation_log, channel)),
        tables=analytics.TABLES,
        query=urlencode({k: v for k, v in asked.items() if v and v != "all"}),
        headline=analytics_html.headline(figures),
        rate=analytics_html.rate,
        seconds=analytics_html.seconds,
    )


def _cache(request: Request) -> analytics.FiguresCache:
    """The app's analytics cache, made on first use."""
    state = request.app.state
    if not hasattr(state, "analytics_cache"):
        state.analytics_cache = analytics.FiguresCache()
    cache: analytics.FiguresCache = state.analytics_cache
    return cache


async def _groups(
    request: Request, found: Services, figures: analytics.Figures
) -> list[analytics.Group]:
    encode = found.engine.knowledge_base.embedder.encode
    return await asyncio.to_thread(_cache(request).groups, figures, encode)


@router.get("/analytics.csv")
async def analytics_csv(
    request: Request,
    session: Operator,
    found: Found,
    table: str = "daily",
    since: str | None = None,
    until: str | None = None,
    channel: str = "all",
) -> Response:
    if table not in analytics.TABLES:
        raise ApiError(404, f"no table {table!r}; one of {analytics.TABLES}", code="not_found")
    figures = await _figures(request, found, since, until, channel)
    groups = await _groups(request, found, figures) if table == "clusters" else []
    return Response(
        analytics.table_csv(table, figures, groups),
        media_type="text/csv",
        headers={**_HEADERS, "Content-Disposition": f'attachment; filename="{table}.csv"'},
    )


# Accounts (admins only).


@router.get("/users")
async def users_page(request: Request, session: Admin) -> Response:
    return _page(
        "users.html",
        session=session,
        users=console(request).users.users(),
        roles=ROLES,
        error=None,
    )


@router.post("/users")
async def create_user(
    request: Request,
    session: Admin,
    name: Annotated[str, Form(max_length=64)],
    role: Annotated[str, Form(max_length=16)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    store = console(request).users
    try:
        store.create(name, _role(role), password)
    except ValueError as error:
        return _page(
            "users.html",
            400,
            session=session,
            users=store.users(),
            roles=ROLES,
            error=str(error),
        )
    return _back("/console/users")


@router.post("/users/{name}/remove")
async def remove_user(request: Request, name: str, session: Admin) -> Response:
    if name == session.user.name:
        raise ApiError(409, "you cannot remove your own account", code="own_account")
    console(request).users.remove(name)
    return _back("/console/users")


def _role(value: str) -> Role:
    for role in ROLES:
        if role == value:
            return role
    raise ValueError(f"role {value!r} is not one of {ROLES}")


@router.get("/live.js")
async def live_js() -> Response:
    script = await asyncio.to_thread(console_live.SCRIPT.read_text, encoding="utf-8")
    return Response(script, media_type="text/javascript", headers={"Cache-Control": "max-age=300"})


@router.get("/events")
async def live_events(request: Request, session: Operator, found: Found) -> Response:
    """New hand-overs and messages as Server-Sent Events, for the inbox and transcripts."""
    stream = console_live.events(
        found.engine.conversation_log,
        interval_s=found.config.poll_interval_s,
        gone=request.is_disconnected,
        wakeups=found.wakeups,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={**_HEADERS, "X-Accel-Buffering": "no"},
    )

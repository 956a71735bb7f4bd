"""The review console's routes on the admin listener: sign-in, live wall (server-sent events), a stream's recent
frames, the review queue with decisions, the quality chart and the dead letters.

Every page is rendered on the server (Jinja2, autoescaped); a little plain JavaScript adds the keyboard, live
updates and decisions without a reload. An account sees only its own domains, everywhere.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import orjson
import structlog
from aiohttp import web

from framewatch.admin import accounts
from framewatch.admin.api import STORE_FAILURES, FailedAuthentications
from framewatch.blobs.base import BlobStore
from framewatch.broker.dlq import DeadLetters
from framewatch.broker.publisher import Publisher, PublishError
from framewatch.broker.topology import STAGES, Topology
from framewatch.config.live import LiveConfig
from framewatch.console import decisions
from framewatch.console.sessions import COOKIE, Session, Sessions
from framewatch.providers.refusals import Refused
from framewatch.runtime import metrics
from framewatch.runtime.times import plausible
from framewatch.streams.covers import Covers
from framewatch.streams.store import DECISIONS, StreamStore, cover_tag

log = structlog.get_logger("framewatch.console")

HERE = Path(__file__).parent
PREFIX = "/console"
# Server-sent events: how often a wall looks for changed streams, how far back it looks again (transactions that
# commit late), and how many walls one process feeds at once.
EVENTS_EVERY = 1.0
EVENTS_OVERLAP = 5.0
MAX_EVENT_STREAMS = 200
MAX_EVENT_STREAMS_PER_ACCOUNT = 20  # one account's open walls never take the others' share
KEEPALIVE = 15.0
# Dead letters examined per stage on the page (the CLI reads them all).
DLQ_PAGE = 500
MAX_DECISIONS = 500  # frames in one bulk decision
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make Chromium send `Origin: null` with our own forms
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]


class Console:
    def __init__(
        self,
        config: LiveConfig,
        streams: StreamStore,
        covers: Covers,
        blobs: BlobStore,
        publisher: Publisher,
        *,
        amqp_urls: str,
        topology: Topology,
        session_ttl: int,
        secure_cookie: bool | None,
        public_origin: str | None = None,
    ) -> None:
        self.config = config
        self.streams = streams
        self.covers = covers
        self.blobs = blobs
        self.publisher = publisher
        self.amqp_urls = amqp_urls
        self.topology = topology
        self.sessions = Sessions(config.store, session_ttl)
        # Where browsers reach the console (behind a TLS proxy, https://review.example.com): what a form's Origin
        # must be. Unset: the scheme and host of the request as this process received it.
        self.public_origin = public_origin.rstrip("/") if public_origin else None
        self.secure_cookie = secure_cookie
        if secure_cookie is None and self.public_origin and self.public_origin.startswith("https://"):
            self.secure_cookie = True
        self.failures = FailedAuthentications()
        self.event_streams = 0
        self.account_streams: Counter[int] = Counter()
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, enable_async=False
        )
        self.templates.filters["utc"] = lambda seconds: (
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(plausible(seconds))) if seconds else "-"
        )

    # Plumbing ---------------------------------------------------------------------------------------------------

    def page(self, name: str, session: Session | None, status: int = 200, **context: Any) -> web.Response:
        active = name.removesuffix(".html").replace("stream", "wall")
        html = self.templates.get_template(name).render(session=session, prefix=PREFIX, active=active, **context)
        return web.Response(text=html, content_type="text/html", status=status, headers=SECURITY_HEADERS)

    def signed_in(self, handler: Handler, *, page: bool = True) -> Callable[[web.Request], Awaitable[Any]]:
        """The handler with the request's session; without one, pages go to sign-in and the rest get 401."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                session = await self.sessions.find(request.cookies.get(COOKIE))
                if session is None:
                    if page and request.method == "GET":
                        raise web.HTTPSeeOther(f"{PREFIX}/login")
                    return web.json_response({"error": "NotSignedIn"}, status=401, headers=SECURITY_HEADERS)
                if request.method == "POST":
                    await self._check_post(request, session)
                return await handler(request, session)
            except STORE_FAILURES as exc:
                log.warning("console_store_unavailable", error=type(exc).__name__)
                return self.page("error.html", None, 503, message="The database did not answer; retry shortly.")

        return wrapped

    async def _check_post(self, request: web.Request, session: Session) -> None:
        """Every form: same origin (when the browser says), and the session's CSRF token."""
        self._refuse_cross_origin(request)
        form = await request.post()
        token = form.get("csrf") or request.headers.get("X-CSRF-Token", "")
        if not isinstance(token, str) or not session.csrf_matches(token):
            raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page")

    def _refuse_cross_origin(self, request: web.Request) -> None:
        """A form posted from another origin (when the browser says where it comes from) is refused."""
        origin = request.headers.get("Origin")
        if origin is not None and origin != (self.public_origin or f"{request.scheme}://{request.host}"):
            raise web.HTTPForbidden(text="cross-origin form refused")

    def _cookie_secure(self, request: web.Request) -> bool:
        return self.secure_cookie if self.secure_cookie is not None else request.secure

    # Sign-in ----------------------------------------------------------------------------------------------------

    async def login_form(self, request: web.Request) -> web.Response:
        return self.page("login.html", None)

    async def login(self, request: web.Request) -> web.StreamResponse:
        peer = request.remote or "unknown"
        if self.failures.blocked(peer):
            error = "Too many failed sign-ins from this address; wait a little."
            return self.page("login.html", None, 429, error=error)
        self._refuse_cross_origin(request)
        form = await request.post()
        token, reviewer = form.get("token"), form.get("reviewer")
        account_id = await accounts.authenticate(self.config.store, token.strip()) if isinstance(token, str) else None
        if account_id is None:
            self.failures.record(peer)
            return self.page("login.html", None, 401, error="That token is not valid.")
        name = await accounts.name_of(self.config.store, account_id)
        reviewer = reviewer.strip()[:64] if isinstance(reviewer, str) and reviewer.strip() else name
        value = await self.sessions.create(account_id, reviewer)
        response = web.HTTPSeeOther(f"{PREFIX}/")
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.sessions.ttl,
            path=PREFIX,
            httponly=True,
            samesite="Strict",
            secure=self._cookie_secure(request),
        )
        log.info("console_signed_in", account=name, reviewer=reviewer)
        raise response

    async def logout(self, request: web.Request, session: Session) -> web.StreamResponse:
        await self.sessions.end(request.cookies.get(COOKIE, ""))
        response = web.HTTPSeeOther(f"{PREFIX}/login")
        response.del_cookie(COOKIE, path=PREFIX)
        raise response

    # Live wall --------------------------------------------------------------------------------------------------

    async def wall(self, request: web.Request, session: Session) -> web.Response:
        domain, app = request.query.get("domain", ""), request.query.get("app", "")
        total, rows = await self.streams.streams(session.account_id, domain=domain, app=app, limit=500)
        return self.page(
            "wall.html",
            session,
            streams=[_tile(row, self.streams.is_live(row)) for row in rows],
            total=total,
            domains=await self.streams.domains(session.account_id),
            domain=domain,
            app=app,
            events=f"{PREFIX}/events?" + urlencode({"domain": domain, "app": app}),
        )

    async def events(self, request: web.Request, session: Session) -> web.StreamResponse:
        """Server-sent events: each changed stream of the account (filtered) as it changes."""
        if self.event_streams >= MAX_EVENT_STREAMS:
            return web.json_response({"error": "TooManyWalls"}, status=503, headers={"Retry-After": "5"})
        if self.account_streams[session.account_id] >= MAX_EVENT_STREAMS_PER_ACCOUNT:
            body = {"error": "TooManyWallsForAccount", "limit": MAX_EVENT_STREAMS_PER_ACCOUNT}
            return web.json_response(body, status=429, headers={"Retry-After": "5"})
        domain, app = request.query.get("domain", ""), request.query.get("app", "")
        response = web.StreamResponse(
            headers={**SECURITY_HEADERS, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        self.event_streams += 1
        self.account_streams[session.account_id] += 1
        sent: dict[tuple[str, str], tuple[Any, ...]] = {}
        since = time.time() - EVENTS_OVERLAP
        quiet = 0.0
        try:
            # A wall whose browser went away is noticed within a turn, not at the next write: it gives its slot back.
            while request.transport is not None and not request.transport.is_closing():
                _, rows = await self.streams.streams(
                    session.account_id, domain=domain, app=app, live_only=False, changed_since=since, limit=1000
                )
                for row in rows:
                    tile = _tile(row, self.streams.is_live(row))
                    state = (tile["live"], tile["etag"], tile["verdict"], tile["last_frame"])
                    if sent.get((row.domain, row.name)) != state:
                        sent[(row.domain, row.name)] = state
                        await response.write(b"event: stream\ndata: " + orjson.dumps(tile) + b"\n\n")
                        quiet = 0.0
                if rows:
                    since = max(row.updated_at for row in rows) - EVENTS_OVERLAP
                quiet += EVENTS_EVERY
                if quiet >= KEEPALIVE:  # a comment line keeps proxies from closing an idle stream
                    await response.write(b": keepalive\n\n")
                    quiet = 0.0
                await asyncio.sleep(EVENTS_EVERY)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.event_streams -= 1
            self.account_streams[session.account_id] -= 1
            if not self.account_streams[session.account_id]:
                del self.account_streams[session.account_id]
        return response

    async def stream(self, request: web.Request, session: Session) -> web.Response:
        domain, name = request.match_info["domain"], request.match_info["stream"]
        frames = await self.streams.recent_frames(session.account_id, domain, name, limit=24)
        if not frames:
            raise web.HTTPNotFound(text="no such stream")
        return self.page("stream.html", session, domain=domain, name=name, frames=frames)

    async def cover(self, request: web.Request, session: Session) -> web.StreamResponse:
        domain, name = request.match_info["domain"], request.match_info["stream"]
        if domain not in await self.streams.domains(session.account_id):
            raise web.HTTPNotFound()
        try:
            return await self.covers.respond(request, domain, name, "private, max-age=1")
        except Refused as refused:
            return web.json_response({"error": refused.reason.name}, status=refused.reason.status)

    async def frame_image(self, request: web.Request, session: Session) -> web.StreamResponse:
        frame = await self.streams.frame(session.account_id, request.match_info["id"])
        if frame is None:
            raise web.HTTPNotFound()
        if frame.image_key is None:  # a provider's verdict on a frame never stored here: its URL, as plain text
            # Never a redirect: a URL a callback named must not be followed from the console's origin.
            text = f"This frame was not stored here. The provider's copy: {frame.source_url}\n"
            return web.Response(status=404, text=text, content_type="text/plain", headers=SECURITY_HEADERS)
        try:
            data = await self.blobs.get(frame.image_key)
        except KeyError:
            raise web.HTTPNotFound() from None
        return web.Response(
            body=data, content_type=frame.image_content_type, headers={"Cache-Control": "private, max-age=3600"}
        )

    # Review queue -----------------------------------------------------------------------------------------------

    async def review(self, request: web.Request, session: Session) -> web.Response:
        q = request.query
        min_score = q.get("min_score", "")
        filters = {
            "domain": q.get("domain", ""),
            "stream": q.get("stream", ""),
            "label": q.get("label", ""),
            "source": q.get("source", ""),
            "min_score": min_score if min_score.isdigit() else "",
            "status": q.get("status", "pending") if q.get("status") in ("pending", "all") else "pending",
        }
        frames = await self.streams.flagged(
            session.account_id,
            domain=filters["domain"] or None,
            stream=filters["stream"] or None,
            label=filters["label"] or None,
            source=filters["source"] or None,
            min_score=int(filters["min_score"]) if filters["min_score"] else None,
            pending_only=filters["status"] == "pending",
            limit=200,
        )
        return self.page(
            "review.html",
            session,
            frames=frames,
            filters=filters,
            domains=await self.streams.domains(session.account_id),
            choices=await self.streams.filter_values(session.account_id),
            notice=q.get("notice", ""),
        )

    async def decide(self, request: web.Request, session: Session) -> web.StreamResponse:
        """Decides frames: publishes each decision's webhook first (confirmed by the broker), then records the
        decisions. A failure records nothing, and the reviewer's retry sends them again: none is lost."""
        form = await request.post()
        decision = form.get("decision")
        ids = [value for value in form.getall("id", []) if isinstance(value, str)][:MAX_DECISIONS]
        if decision not in DECISIONS or not ids:
            return _answer(request, 400, {"error": "InvalidDecision", "message": "choose frames and a decision"})
        frames = await self.streams.flagged_frames(session.account_id, ids)
        at = int(time.time())
        unsent = 0
        try:
            for frame in frames:
                webhook = decisions.decision_webhook(frame, decision, session.reviewer, at, self.config.snapshot)
                if webhook is None:
                    unsent += 1
                    continue
                await decisions.publish(self.publisher, webhook)
        except PublishError as exc:
            log.warning("decision_not_published", reason=exc.reason)
            return _answer(request, 503, {"error": "BrokerUnavailable", "message": "not sent, nothing recorded: retry"})
        decided = await self.streams.decide(session.account_id, [f.id for f in frames], decision, session.reviewer, at)
        metrics.REVIEW_DECISIONS.labels(decision).inc(len(decided))
        log.info("review_decided", decision=decision, frames=len(decided), reviewer=session.reviewer)
        notice = f"{len(decided)} decided"
        if unsent:
            notice += f"; {unsent} not sent: no detect notify URL for their domain"
        return _answer(request, 200, {"decided": [f.id for f in decided], "unsent": unsent, "notice": notice})

    # Quality and dead letters -----------------------------------------------------------------------------------

    async def quality(self, request: web.Request, session: Session) -> web.Response:
        rows: dict[tuple[str, str], dict[str, int]] = {}
        for row in await self.streams.quality(session.account_id):
            counts = rows.setdefault((row.label, row.source), {"violation": 0, "not_violation": 0, "pending": 0})
            counts[row.decision or "pending"] += row.count
        table = [
            {
                "label": label,
                "source": source,
                **counts,
                "total": sum(counts.values()),
                "precision": _share(counts["violation"], counts["violation"] + counts["not_violation"]),
            }
            for (label, source), counts in sorted(rows.items())
        ]
        widest = max((row["total"] for row in table), default=1)
        return self.page("quality.html", session, table=table, widest=widest)

    async def dead_letters(self, request: web.Request, session: Session) -> web.Response:
        mine = set(await self.streams.domains(session.account_id))
        stages = []
        for stage in STAGES:
            letters = await DeadLetters(self.amqp_urls, self.topology, stage).list(limit=DLQ_PAGE)
            stages.append({"name": stage, "letters": [letter for letter in letters if letter.domain in mine]})
        return self.page("dlq.html", session, stages=stages, notice=request.query.get("notice", ""))

    async def replay(self, request: web.Request, session: Session) -> web.StreamResponse:
        form = await request.post()
        stage = form.get("stage")
        if stage not in STAGES:
            raise web.HTTPBadRequest(text="unknown stage")
        mine = set(await self.streams.domains(session.account_id))
        chosen = {value for value in form.getall("id", []) if isinstance(value, str)}
        dead = DeadLetters(self.amqp_urls, self.topology, str(stage))
        replayed = await dead.replay(chosen or None, limit=DLQ_PAGE, domains=mine)
        log.info("console_replayed", stage=stage, messages=replayed, account=session.account)
        raise web.HTTPSeeOther(f"{PREFIX}/dlq?" + urlencode({"notice": f"{replayed} replayed into {stage}"}))


def _share(part: int, whole: int) -> int | None:
    return round(100 * part / whole) if whole else None


def _tile(row: Any, live: bool) -> dict[str, Any]:
    etag = cover_tag(row.cover_frame_id) if row.cover_frame_id else None
    return {
        "domain": row.domain,
        "name": row.name,
        "app": row.app,
        "live": live,
        "etag": etag,
        "verdict": row.last_suggestion,
        "last_frame": row.last_frame_at,
        "cover": f"{PREFIX}/covers/{row.domain}/{row.name}.jpg?v={etag}" if etag else None,
        "href": f"{PREFIX}/streams/{row.domain}/{row.name}",
    }


def _answer(request: web.Request, status: int, body: dict[str, Any]) -> web.StreamResponse:
    """JSON for the page's script; a redirect back to the queue for a plain form."""
    if request.headers.get("Accept", "").startswith("application/json"):
        return web.json_response(body, status=status, headers=SECURITY_HEADERS)
    notice = body.get("notice") or body.get("message", "")
    raise web.HTTPSeeOther(f"{PREFIX}/review?" + urlencode({"notice": notice}))


def add_routes(app: web.Application, console: Console) -> None:
    signed_in = console.signed_in

    async def home(_: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther(f"{PREFIX}/")

    app.router.add_get(PREFIX, home)
    app.router.add_get(f"{PREFIX}/login", console.login_form)
    app.router.add_post(f"{PREFIX}/login", console.login)
    app.router.add_post(f"{PREFIX}/logout", signed_in(console.logout))
    app.router.add_get(f"{PREFIX}/", signed_in(console.wall))
    app.router.add_get(f"{PREFIX}/events", signed_in(console.events, page=False))
    app.router.add_get(f"{PREFIX}/streams/{{domain}}/{{stream}}", signed_in(console.stream))
    app.router.add_get(f"{PREFIX}/covers/{{domain}}/{{stream}}.jpg", signed_in(console.cover, page=False))
    app.router.add_get(f"{PREFIX}/frames/{{id}}", signed_in(console.frame_image, page=False))
    app.router.add_get(f"{PREFIX}/review", signed_in(console.review))
    app.router.add_post(f"{PREFIX}/review/decide", signed_in(console.decide, page=False))
    app.router.add_get(f"{PREFIX}/quality", signed_in(console.quality))
    app.router.add_get(f"{PREFIX}/dlq", signed_in(console.dead_letters))
    app.router.add_post(f"{PREFIX}/dlq/replay", signed_in(console.replay))
    app.router.add_static(f"{PREFIX}/static", HERE / "static", append_version=True)

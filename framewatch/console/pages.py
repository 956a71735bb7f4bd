"""What every console page shares: the templates, the security headers, the session check and the CSRF and origin
checks of every form."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import structlog
from aiohttp import web

from framewatch.admin.api import STORE_FAILURES
from framewatch.console.sessions import COOKIE, Session, Sessions
from framewatch.runtime.times import plausible

log = structlog.get_logger("framewatch.console")

HERE = Path(__file__).parent
PREFIX = "/console"
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


class Pages:
    def __init__(self, sessions: Sessions, *, secure_cookie: bool | None, public_origin: str | None) -> None:
        self.sessions = sessions
        # Where browsers reach the console (behind a TLS proxy, https://review.example.com): what a form's Origin
        # must be. Unset: the scheme and host of the request as this process received it.
        self.public_origin = public_origin.rstrip("/") if public_origin else None
        self.secure_cookie = secure_cookie
        if secure_cookie is None and self.public_origin and self.public_origin.startswith("https://"):
            self.secure_cookie = True
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, enable_async=False
        )
        self.templates.filters["utc"] = lambda seconds: (
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(plausible(seconds))) if seconds else "-"
        )

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
        self.refuse_cross_origin(request)
        form = await request.post()
        token = form.get("csrf") or request.headers.get("X-CSRF-Token", "")
        if not isinstance(token, str) or not session.csrf_matches(token):
            raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page")

    def refuse_cross_origin(self, request: web.Request) -> None:
        """A form posted from another origin (when the browser says where it comes from) is refused."""
        origin = request.headers.get("Origin")
        if origin is not None and origin != (self.public_origin or f"{request.scheme}://{request.host}"):
            raise web.HTTPForbidden(text="cross-origin form refused")

    def cookie_secure(self, request: web.Request) -> bool:
        return self.secure_cookie if self.secure_cookie is not None else request.secure


def back_to(page: str, notice: str) -> web.HTTPSeeOther:
    """A redirect to one of the console's pages, with a line to show at its top."""
    return web.HTTPSeeOther(f"{PREFIX}/{page}?" + urlencode({"notice": notice}))

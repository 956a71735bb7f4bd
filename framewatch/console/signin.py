"""Sign-in and sign-out: an account's admin token for a session cookie (HttpOnly, SameSite=Strict, path /console),
with a per-address throttle of failed attempts."""

from __future__ import annotations

import structlog
from aiohttp import web

from framewatch.admin import accounts
from framewatch.admin.api import FailedAuthentications
from framewatch.config.store import ConfigStore
from framewatch.console.pages import PREFIX, Pages
from framewatch.console.sessions import COOKIE, Session, Sessions

log = structlog.get_logger("framewatch.console")


class SignIn:
    def __init__(self, pages: Pages, store: ConfigStore, sessions: Sessions) -> None:
        self.pages = pages
        self.store = store
        self.sessions = sessions
        self.failures = FailedAuthentications()

    async def login_form(self, request: web.Request) -> web.Response:
        return self.pages.page("login.html", None)

    async def login(self, request: web.Request) -> web.StreamResponse:
        peer = request.remote or "unknown"
        if self.failures.blocked(peer):
            error = "Too many failed sign-ins from this address; wait a little."
            return self.pages.page("login.html", None, 429, error=error)
        self.pages.refuse_cross_origin(request)
        form = await request.post()
        token, reviewer = form.get("token"), form.get("reviewer")
        account_id = await accounts.authenticate(self.store, token.strip()) if isinstance(token, str) else None
        if account_id is None:
            self.failures.record(peer)
            return self.pages.page("login.html", None, 401, error="That token is not valid.")
        name = await accounts.name_of(self.store, account_id)
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
            secure=self.pages.cookie_secure(request),
        )
        log.info("console_signed_in", account=name, reviewer=reviewer)
        raise response

    async def logout(self, request: web.Request, session: Session) -> web.StreamResponse:
        await self.sessions.end(request.cookies.get(COOKIE, ""))
        response = web.HTTPSeeOther(f"{PREFIX}/login")
        response.del_cookie(COOKIE, path=PREFIX)
        raise response

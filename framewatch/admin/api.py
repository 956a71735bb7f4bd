"""GET or POST /api?Action=...: authenticate the account, throttle, run the action, answer as the clouds do."""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import asyncpg
import structlog
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from framewatch.admin import accounts, keys, responses, throttle
from framewatch.admin.actions import ACTIONS
from framewatch.admin.context import Context
from framewatch.admin.params import Params
from framewatch.config.errors import ConfigError
from framewatch.config.live import LiveConfig
from framewatch.runtime import metrics
from framewatch.streams.store import StreamStore

log = structlog.get_logger("framewatch.admin")
# What a config store that is down, frozen or overloaded raises (the driver's own errors are OSError or wrapped).
STORE_FAILURES = (SQLAlchemyError, OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
# Peers whose failed authentications are remembered at once (least recent forgotten first).
MAX_PEERS = 100_000
Verified = TypeVar("Verified")


def same(expected: str, given: str) -> bool:
    """A constant-time comparison that any string can be given to: a signature in characters that are not ASCII
    is a wrong signature, not an error (hmac.compare_digest refuses such strings)."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))


class AdminApi:
    def __init__(
        self,
        config: LiveConfig,
        limiter: throttle.Limiter,
        *,
        allow_private_urls: bool,
        key_overlap: int,
        body_read_timeout: float = 10.0,
        streams: StreamStore,
        vault: keys.Vault | None = None,
        public_url: str = "",
    ) -> None:
        self.config = config
        self.limiter = limiter
        self.allow_private_urls = allow_private_urls  # notify URLs on private addresses (local demos and tests)
        self.key_overlap = key_overlap  # how long a replaced callback key stays valid
        self.body_read_timeout = body_read_timeout
        self.streams = streams
        self.vault = vault  # opens the key pairs' secrets (the cloud dialects' signatures)
        self.public_url = public_url.rstrip("/")  # the callback listener, as the platform reaches it (CoverUrl)
        self.failures = FailedAuthentications()

    async def handle(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4()).upper()
        values = dict(request.query)
        xml = values.get("Format", "").upper() == "XML"
        name = values.get("Action", "")
        account_id: int | None = None
        try:
            # From the headers first: an anonymous client never gets its body read.
            account_id = await self._authenticate(request)
            if request.method == "POST":
                values.update(await self._read_form(request))
                xml = values.get("Format", "").upper() == "XML"
                name = values.get("Action", "")
            fields = await self.run(account_id, name, values)
        except ConfigError as refused:
            return self._refusal(refused, name, account_id, request_id, request, xml)
        except STORE_FAILURES as exc:  # the config store is down or frozen: a clear answer within seconds
            log.warning("admin_store_unavailable", action=name, error=type(exc).__name__, request_id=request_id)
            refused = ConfigError("ServiceUnavailable", "The config store did not answer; retry later.", 503)
            return self._refusal(refused, name, account_id, request_id, request, xml)
        metrics.ADMIN_CALLS.labels(name, "Success").inc()
        log.info("admin_call", action=name, account=account_id, request_id=request_id)
        return responses.success(name, request_id, fields, xml)

    async def run(
        self, account_id: int, name: str, values: Mapping[str, str], actions: Iterable[str] = ACTIONS
    ) -> dict[str, Any]:
        """One action for an authenticated account, whichever dialect asked: throttled, run, announced when it
        changed something. Raises ConfigError with framewatch's code; the dialect names it its cloud's way."""
        action = ACTIONS.get(name) if name in actions else None
        if action is None:
            if not name:
                raise ConfigError("MissingParameter", "The input parameter Action that is mandatory is not supplied.")
            raise ConfigError("InvalidAction", f"The action {name} is not supported.")
        if not await self.limiter.allow(f"{account_id}:{name}", action.rate):
            raise ConfigError(action.throttle_code, f"At most {action.rate} {name} calls per second.", 429)
        ctx = Context(
            store=self.config.store,
            account_id=account_id,
            action=name,
            params=Params(values, action.params),
            allow_private_urls=self.allow_private_urls,
            key_overlap=self.key_overlap,
            streams=self.streams,
            public_url=self.public_url,
        )
        fields = await action.handler(ctx)
        if ctx.changed:
            await self.config.changed()
        return fields

    def _refusal(
        self, refused: ConfigError, name: str, account_id: int | None, request_id: str, request: web.Request, xml: bool
    ) -> web.Response:
        metrics.ADMIN_CALLS.labels(name if name in ACTIONS else "unknown", refused.code).inc()
        log.info("admin_refused", action=name, account=account_id, code=refused.code, request_id=request_id)
        headers = {"Retry-After": "1"} if refused.status in (429, 503) else None
        if refused.status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return responses.error(refused.code, refused.message, refused.status, request_id, request.host, xml, headers)

    async def guarded(
        self, request: web.Request, verify: Callable[[], Awaitable[Verified]], blocked: ConfigError
    ) -> Verified:
        """What `verify` authenticates, for every dialect: a peer past its failed authentications gets `blocked`
        without a lookup, and each refusal of `verify` (a malformed, wrong, expired or replayed signature, an
        unknown key) is one more failure of the peer's."""
        peer = request.remote or "unknown"
        if self.failures.blocked(peer):
            raise blocked
        try:
            return await verify()
        except ConfigError:
            self.failures.record(peer)
            raise

    async def _authenticate(self, request: web.Request) -> int:
        blocked = ConfigError("RequestLimitExceeded", "Too many failed authentications from this address.", 429)
        return await self.guarded(request, lambda: self._bearer(request), blocked)

    async def _bearer(self, request: web.Request) -> int:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ConfigError("AuthFailure.InvalidAuthorization", "Send Authorization: Bearer <account token>.", 401)
        account_id = await accounts.authenticate(self.config.store, token.strip())
        if account_id is None:
            raise ConfigError("AuthFailure.TokenFailure", "The token is not valid.", 401)
        return account_id

    async def read_body(self, request: web.Request) -> bytes:
        """The raw body, within the body cap and the read deadline."""
        try:
            async with asyncio.timeout(self.body_read_timeout):
                return await request.read()
        except TimeoutError:
            raise ConfigError("RequestTimeout", f"Body not received within {self.body_read_timeout}s.", 408) from None
        except web.HTTPRequestEntityTooLarge:
            raise ConfigError("InvalidParameter", "The request body is too large.", 413) from None

    async def _read_form(self, request: web.Request) -> dict[str, str]:
        """The form body, within the body cap and the read deadline (a trickling client does not hold a handler)."""
        await self.read_body(request)  # aiohttp keeps it: the form is parsed from what was read
        form = await request.post()
        return {k: v for k, v in form.items() if isinstance(v, str)}


class FailedAuthentications:
    """Failed authentications per peer address in a sliding window: past the limit, the peer is refused (429)
    without a token lookup until its failures age out. Per process: a guesser gains nothing by spreading."""

    def __init__(self, limit: int = 20, window: float = 10.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, peer: str, now: float) -> deque[float]:
        failures = self._failures.get(peer)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked(self, peer: str) -> bool:
        return len(self._recent(peer, time.monotonic())) >= self.limit

    def record(self, peer: str) -> None:
        now = time.monotonic()
        failures = self._recent(peer, now)
        failures.append(now)
        self._failures[peer] = failures
        self._failures.move_to_end(peer)
        while len(self._failures) > MAX_PEERS:  # bounded memory whatever the number of addresses
            self._failures.popitem(last=False)


def add_routes(app: web.Application, api: AdminApi) -> None:
    app.router.add_route("GET", "/api", api.handle)
    app.router.add_route("POST", "/api", api.handle)

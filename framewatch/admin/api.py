"""GET or POST /api?Action=...: authenticate the account, throttle, run the action, answer as the seeds do."""

from __future__ import annotations

import uuid

import structlog
from aiohttp import web

from framewatch.admin import accounts, responses, throttle
from framewatch.admin.actions import ACTIONS
from framewatch.admin.context import Context
from framewatch.admin.params import Params
from framewatch.config.errors import ConfigError
from framewatch.config.live import LiveConfig
from framewatch.runtime import metrics

log = structlog.get_logger("framewatch.admin")


class AdminApi:
    def __init__(
        self,
        config: LiveConfig,
        limiter: throttle.Limiter,
        *,
        allow_private_urls: bool,
        key_overlap: int,
    ) -> None:
        self.config = config
        self.limiter = limiter
        self.allow_private_urls = allow_private_urls  # notify URLs on private addresses (local demos and tests)
        self.key_overlap = key_overlap  # how long a replaced callback key stays valid

    async def close(self) -> None:
        await self.limiter.close()

    async def handle(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4()).upper()
        values = dict(request.query)
        if request.method == "POST":
            form = await request.post()
            values.update({k: v for k, v in form.items() if isinstance(v, str)})
        xml = values.get("Format", "").upper() == "XML"
        name = values.get("Action", "")
        account_id: int | None = None
        try:
            account_id = await self._authenticate(request)
            action = ACTIONS.get(name)
            if action is None:
                if not name:
                    raise ConfigError(
                        "MissingParameter", "The input parameter Action that is mandatory is not supplied."
                    )
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
            )
            fields = await action.handler(ctx)
            if ctx.changed:
                await self.config.changed()
        except ConfigError as refused:
            metrics.ADMIN_CALLS.labels(name if name in ACTIONS else "unknown", refused.code).inc()
            log.info("admin_refused", action=name, account=account_id, code=refused.code, request_id=request_id)
            headers = {"Retry-After": "1"} if refused.status == 429 else None
            if refused.status == 401:
                headers = {"WWW-Authenticate": "Bearer"}
            return responses.error(
                refused.code, refused.message, refused.status, request_id, request.host, xml, headers
            )
        metrics.ADMIN_CALLS.labels(name, "Success").inc()
        log.info("admin_call", action=name, account=account_id, request_id=request_id)
        return responses.success(name, request_id, fields, xml)

    async def _authenticate(self, request: web.Request) -> int:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ConfigError("AuthFailure.InvalidAuthorization", "Send Authorization: Bearer <account token>.", 401)
        account_id = await accounts.authenticate(self.config.store, token.strip())
        if account_id is None:
            raise ConfigError("AuthFailure.TokenFailure", "The token is not valid.", 401)
        return account_id


def add_routes(app: web.Application, api: AdminApi) -> None:
    app.router.add_route("GET", "/api", api.handle)
    app.router.add_route("POST", "/api", api.handle)

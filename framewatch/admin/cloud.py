"""`/` on the admin listener: the clouds' own APIs, so that their official SDKs work unmodified. Each cloud's
dialect lives in its package (`providers/<cloud>/cloud_api.py`) and claims the requests its SDKs send."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from framewatch.admin.api import AdminApi
from framewatch.providers import registry


class CloudApi:
    def __init__(self, api: AdminApi, redis: Redis | None, namespace: str) -> None:
        self.dialects = [dialect(api, redis, namespace) for dialect in registry.cloud_apis()]

    async def handle(self, request: web.Request) -> web.Response:
        for dialect in self.dialects:
            if await dialect.claims(request):
                return await dialect.handle(request)
        raise web.HTTPNotFound()  # no cloud claims it (the last one in the registry claims everything)

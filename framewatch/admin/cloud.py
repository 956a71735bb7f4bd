"""`/` on the admin listener: the clouds' own APIs, each SDK recognised by what it always sends."""

from __future__ import annotations

from urllib.parse import parse_qs

from aiohttp import web

from framewatch.admin.alibaba import WINDOW, AlibabaApi
from framewatch.admin.api import AdminApi
from framewatch.admin.replay import FirstUses, shared_redis
from framewatch.admin.tencent import SIGNATURE_MEMORY, TencentApi
from framewatch.config.errors import ConfigError


class CloudApi:
    def __init__(self, api: AdminApi, redis_url: str | None, namespace: str) -> None:
        self.redis = shared_redis(redis_url)
        self.tencent = TencentApi(api, FirstUses(self.redis, f"{namespace}:tc3:", SIGNATURE_MEMORY))
        self.alibaba = AlibabaApi(api, FirstUses(self.redis, f"{namespace}:nonce:", WINDOW))
        self.api = api

    async def handle(self, request: web.Request) -> web.Response:
        # Tencent's SDKs name the action in X-TC-Action (TC3) or send a SecretId parameter (its legacy HmacSHA1 and
        # HmacSHA256 signatures); everything else is read as Alibaba's OpenAPI.
        if "X-TC-Action" in request.headers:
            return await self.tencent.handle(request)
        if await self._tencent_legacy(request):
            return self.tencent.legacy()
        return await self.alibaba.handle(request)

    async def _tencent_legacy(self, request: web.Request) -> bool:
        if "SecretId" in request.query:
            return True
        if request.method != "POST" or request.content_type != "application/x-www-form-urlencoded":
            return False
        try:
            body = await self.api.read_body(request)  # kept by aiohttp: the dialect reads the same bytes
        except ConfigError:
            return False  # the dialect answers the same refusal in its own shape
        return "SecretId" in parse_qs(body.decode(errors="replace"))

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()

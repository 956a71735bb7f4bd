"""`/` on the admin listener: the clouds' own APIs, each SDK recognised by what it always sends."""

from __future__ import annotations

from aiohttp import web

from framewatch.admin.alibaba import AlibabaApi, Nonces
from framewatch.admin.api import AdminApi
from framewatch.admin.tencent import TencentApi


class CloudApi:
    def __init__(self, api: AdminApi, nonces: Nonces) -> None:
        self.tencent = TencentApi(api)
        self.alibaba = AlibabaApi(api, nonces)
        self.nonces = nonces

    async def handle(self, request: web.Request) -> web.Response:
        # Tencent's SDKs always name the action in X-TC-Action; everything else is read as Alibaba's OpenAPI.
        dialect = self.tencent if "X-TC-Action" in request.headers else self.alibaba
        return await dialect.handle(request)

    async def close(self) -> None:
        await self.nonces.close()

"""An HTTP relay on loopback that keeps every request a client sends as it was signed, forwards it to the admin
listener (with headers changed on the way, when asked), and can send a kept request again: an attacker who
captured a request off the wire."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from tests.helpers import free_port

# Hop-by-hop and framing headers the relay's own client sets.
_OWN = {"content-length", "transfer-encoding", "connection", "accept-encoding"}


@dataclass
class Captured:
    method: str
    path_qs: str
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class CapturingRelay:
    target: str  # the admin listener's base URL
    add_headers: dict[str, str] = field(default_factory=dict)  # set on requests on their way through
    captured: list[Captured] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def endpoint(self) -> str:
        """What an SDK is pointed at: host:port of the relay (and so what it signs as the host)."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> CapturingRelay:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._relay)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._session = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        await self._session.close()
        await self._runner.cleanup()

    async def _relay(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _OWN)
        self.captured.append(Captured(request.method, request.path_qs, headers.copy(), body))
        headers.update(self.add_headers)
        status, answer, content_type = await self.send(request.method, request.path_qs, headers, body)
        return web.Response(status=status, body=answer, headers={"Content-Type": content_type})

    async def send(self, method: str, path_qs: str, headers: CIMultiDict[str], body: bytes) -> tuple[int, bytes, str]:
        """One request to the admin listener with exactly these headers (Host included) and body."""
        async with self._session.request(
            method, self.target + path_qs, headers=headers, data=body, skip_auto_headers=("Content-Type",)
        ) as response:
            return response.status, await response.read(), response.headers.get("Content-Type", "")

    async def replay(self, captured: Captured, **changed: str) -> tuple[int, bytes, str]:
        """A kept request sent again, with these headers changed (names with `_` for `-`)."""
        headers = captured.headers.copy()
        for name, value in changed.items():
            headers[name.replace("_", "-")] = value
        return await self.send(captured.method, captured.path_qs, headers, captured.body)

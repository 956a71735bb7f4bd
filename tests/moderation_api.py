"""Generic moderation APIs on loopback for the pipeline's http backend. RedFlagApi flags the frames a test chooses:
the mostly-red ones (ImageServer's /bad/ frames) are Block with score 97, the rest Pass."""

from __future__ import annotations

import io

from aiohttp import web
from PIL import Image, ImageStat

from tests.helpers import free_port

# The settings that point framewatch's http backend at it (with `url=`).
SETTINGS = {
    "moderation_backend": "http",
    "moderation_http_score_field": "result.score",
    "moderation_http_label_field": "result.label",
}


class LoopbackModerationApi:
    """A generic moderation API served on loopback; `answer` judges each image it is sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1/moderate"
        self.calls = 0
        self._runner: web.AppRunner | None = None

    def settings(self) -> dict[str, str]:
        """What points framewatch's http backend at it, its answer's fields included."""
        return {**SETTINGS, "moderation_http_url": self.url}

    async def answer(self, image: bytes) -> web.Response:
        raise NotImplementedError

    async def _handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        return await self.answer(await request.read())

    async def start(self) -> LoopbackModerationApi:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/v1/moderate", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


class RedFlagApi(LoopbackModerationApi):
    async def answer(self, image: bytes) -> web.Response:
        red, green, blue = ImageStat.Stat(Image.open(io.BytesIO(image)).convert("RGB")).mean
        flagged = red > 180 and green < 80 and blue < 80
        return web.json_response({"result": {"score": 97 if flagged else 4, "label": "Porn" if flagged else "Normal"}})

"""A real HTTP server on loopback that serves screenshots the way a good, slow, broken or hostile source would."""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from collections import Counter
from functools import cache

from aiohttp import web
from PIL import Image, ImageDraw

from tests.helpers import free_port


@cache
def jpeg(name: str, size: tuple[int, int] = (1280, 720)) -> bytes:
    """A distinct, deterministic frame per name."""
    seed = zlib.crc32(name.encode())
    image = Image.new("RGB", size, ((seed >> 16) & 255, (seed >> 8) & 255, seed & 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((100, 100, 600, 400), fill=(255 - (seed & 255), 40, 200))
    draw.text((120, 120), name, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


@cache
def red_jpeg(name: str, size: tuple[int, int] = (1280, 720)) -> bytes:
    """A frame the fake moderation API flags (it is mostly pure red), distinct per name."""
    image = Image.new("RGB", size, (250, 10, 10))
    ImageDraw.Draw(image).text((20, 20), name, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that announces width x height pixels: a decompression bomb is refused on its header alone."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


class ImageServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.hits: Counter[str] = Counter()
        self.fail_first: dict[str, int] = {}  # name -> how many requests answer 500 before it works
        self.missing: set[str] = set()  # names that answer 404 until removed
        self.files: dict[str, bytes] = {}  # served as they are at /file/<name>
        self._runner: web.AppRunner | None = None

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        kind, name = request.match_info["kind"], request.match_info["name"]
        self.hits[f"{kind}/{name}"] += 1
        if kind == "good":
            if name in self.missing:
                raise web.HTTPNotFound()
            return web.Response(body=jpeg(name), content_type="image/jpeg")
        if kind == "bad":
            return web.Response(body=red_jpeg(name), content_type="image/jpeg")
        if kind == "flaky":
            if self.hits[f"{kind}/{name}"] <= self.fail_first.get(name, 2):
                raise web.HTTPInternalServerError()
            return web.Response(body=jpeg(name), content_type="image/jpeg")
        if kind == "png":
            image = Image.new("RGBA", (640, 480), (10, 200, 30, 255))
            out = io.BytesIO()
            image.save(out, "PNG")
            return web.Response(body=out.getvalue(), content_type="image/png")
        if kind == "paced":  # a good source a little slow: work stays in hand long enough to be interrupted
            await asyncio.sleep(0.2)
            return web.Response(body=jpeg(name), content_type="image/jpeg")
        if kind == "slow":
            await asyncio.sleep(30)
            return web.Response(body=jpeg(name), content_type="image/jpeg")
        if kind == "huge":  # announces its size honestly
            return web.Response(body=b"\xff\xd8\xff" + b"0" * 3_000_000, content_type="image/jpeg")
        if kind == "endless":  # streams without a length, more than any cap
            response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
            await response.prepare(request)
            for _ in range(100):
                await response.write(b"\xff\xd8\xff" + b"0" * 65536)
            return response
        if kind == "truncated":
            data = jpeg(name)
            return web.Response(body=data[: len(data) // 3], content_type="image/jpeg")
        if kind == "text":
            return web.Response(text="<html>not a picture</html>", content_type="image/jpeg")
        if kind == "bomb":
            return web.Response(body=png_header_only(100_000, 100_000), content_type="image/png")
        if kind == "redirect":
            raise web.HTTPFound(f"/good/{name}")
        if kind == "redirect-metadata":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        if kind == "redirect-loop":
            raise web.HTTPFound(f"/redirect-loop/{name}")
        if kind == "missing":
            raise web.HTTPNotFound()
        if kind == "file" and name in self.files:
            return web.Response(body=self.files[name], content_type="application/octet-stream")
        if kind == "error":
            raise web.HTTPInternalServerError()
        raise web.HTTPNotFound()

    async def start(self) -> ImageServer:
        app = web.Application()
        app.router.add_get("/{kind}/{name}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

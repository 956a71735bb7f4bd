#!/usr/bin/env python3
"""Serves the reference frames (bench/references/frames.py) at /frame/<n>.jpg: the source of bench/fetch.py."""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).parent))
from _harness import REFERENCES

sys.path.insert(0, str(REFERENCES))
from frames import frames

FRAMES = frames(20)


async def frame(request: web.Request) -> web.Response:
    n = int(request.match_info["n"])
    return web.Response(body=FRAMES[n % len(FRAMES)], content_type="image/jpeg")


if __name__ == "__main__":
    app = web.Application()
    app.router.add_get("/frame/{n:\\d+}.jpg", frame)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)

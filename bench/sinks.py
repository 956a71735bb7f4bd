#!/usr/bin/env python3
"""Webhook receivers for bench/deliver.py: one port each, answering 200 at once, or after DELAY seconds."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web


async def main(ports: list[int], slow_port: int, delay: float) -> None:
    for port in ports:

        async def handle(request: web.Request, slow: bool = port == slow_port) -> web.Response:
            await request.read()
            if slow:
                await asyncio.sleep(delay)
            return web.Response(text="{}")

        app = web.Application()
        app.router.add_post("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    # sinks.py SLOW_PORT DELAY PORT...
    asyncio.run(main([int(p) for p in sys.argv[3:]], int(sys.argv[1]), float(sys.argv[2])))

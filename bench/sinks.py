#!/usr/bin/env python3
"""Webhook receivers for bench/deliver.py: one port each, answering 200 at once, or (the slow ones) after DELAY
seconds."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web


async def main(ports: list[int], slow_ports: set[int], delay: float) -> None:
    for port in ports:

        async def handle(request: web.Request, slow: bool = port in slow_ports) -> web.Response:
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
    # sinks.py SLOW_PORT[,SLOW_PORT...] DELAY PORT...
    slow = {int(p) for p in sys.argv[1].split(",") if p}
    asyncio.run(main([int(p) for p in sys.argv[3:]], slow, float(sys.argv[2])))

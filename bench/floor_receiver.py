#!/usr/bin/env python3
"""The floor of a receiver that answers only once the broker holds the callback: read the body, check MD5(key+t),
publish it with a confirm to a quorum queue over framewatch's own confirming connection (broker/confirms.py), answer.
Nothing else: no binding, no dedupe window, no bounds, no message, no metrics.

bench/ingress.py runs it beside bare aiohttp and framewatch: the gap between this and bare is what waiting for the
broker's confirm costs on the day's machine, whoever writes the receiver; the gap between framewatch and this is
what framewatch's own checks cost.

    python bench/floor_receiver.py PORT
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import AsyncIterator

import aio_pika
import orjson
from aiohttp import web

from framewatch.broker import confirms

AMQP = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
KEY = os.environ.get("CALLBACK_KEY", "testkey")
QUEUE = "limits.floor"
OK = b'{"code":0}'
HEADERS = {"provider": "tencent"}


async def connected(app: web.Application) -> AsyncIterator[None]:
    declaring = await aio_pika.connect(AMQP)
    async with declaring, declaring.channel() as channel:
        await channel.declare_queue(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    app["broker"] = await confirms.connect(AMQP, "floor", timeout=10)
    yield
    await app["broker"].close()


async def callback(request: web.Request) -> web.Response:
    raw = await request.read()
    event = orjson.loads(raw)
    if hashlib.md5(f"{KEY}{event['t']}".encode()).hexdigest() != event["sign"]:
        return web.Response(status=403)
    event_id = event["pic_url"]
    props = confirms.properties(content_type="application/json", message_id=event_id, headers=HEADERS)
    await request.app["broker"].publish("", QUEUE, props, raw, event_id)
    return web.Response(body=OK, content_type="application/json")


def main() -> None:
    import uvloop  # as framewatch runs

    app = web.Application()
    app.cleanup_ctx.append(connected)
    app.router.add_post("/callback", callback)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()

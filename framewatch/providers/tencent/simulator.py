"""Tencent CSS's side of `framewatch simulate`: screenshots, stream begin/end and its own moderation verdicts,
POSTed as JSON signed in the body, retried as CSS retries (docs/protocols/tencent.md §1)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from framewatch.signing import css
from framewatch.simulate.provider import Event, Request, SimulatedCloud

# CSS's retry policy: screenshots 5 retries 2 minutes apart; every other event 12 retries 1 minute apart.
SCREENSHOT_RETRIES, SCREENSHOT_RETRY_INTERVAL = 5, 120.0
OTHER_RETRIES, OTHER_RETRY_INTERVAL = 12, 60.0


@dataclass
class TencentSimulator(SimulatedCloud):
    timeout = 20.0  # no answer within 20 s is a failure

    def _common(self) -> dict[str, Any]:
        return {
            "app": self.options.domain,
            "appid": 1250000000,
            "appname": "live",
            "stream_param": f"txSecret=sim&txTime={int(time.time()) + 86400:X}",
        }

    async def screenshot(self, stream: str) -> Event:
        _, now, path, image = self.frame(stream)
        body = {
            **self._common(),
            "event_type": 200,
            "stream_id": stream,
            "channel_id": stream,
            "create_time": int(now),
            "file_size": len(image),
            "width": self.options.width,
            "height": self.options.height,
            "pic_url": path,
            "pic_full_url": self.options.image_base_url + path,
        }
        return self._event(f"200:{path}", body, screenshot=True)

    def stream_event(self, stream: str, begin: bool) -> Event:
        sequence = str(next(self._sequence))
        body = {
            **self._common(),
            "event_type": 1 if begin else 0,
            "stream_id": stream,
            "channel_id": stream,
            "sequence": sequence,
            "event_time": int(time.time()),
            "errcode": 0,
            "errmsg": "ok",
            "node": "100.121.160.92",
            "user_ip": "119.29.94.245",
            "set_id": 2,
            "width": self.options.width,
            "height": self.options.height,
        }
        if not begin:
            body["push_duration"] = "0"
        return self._event(f"{body['event_type']}:{sequence}", body, screenshot=False)

    async def periodic(self, stream: str) -> Event:
        """What a live stream sends every interval."""
        return await self.screenshot(stream)

    def moderation(self, stream: str, frame: Event) -> Event | None:
        """The provider's own moderation model flagging a frame (event_type 317)."""
        now = int(time.time())
        body = {
            **self._common(),
            "event_type": 317,
            "streamId": stream,
            "channelId": stream,
            "img": frame.body["pic_full_url"],
            "type": [1],
            "socre": [91],
            "suggestion": "Block",
            "label": "Porn",
            "subLabel": "PornHigh",
            "level": 0,
            "screenshotTime": frame.body["create_time"],
            "sendTime": now,
        }
        return self._event(f"317:{body['img']}:{now}", body, screenshot=False)

    def retry_policy(self, event: Event) -> tuple[int, float]:
        """How many times the cloud retries this event, and how long apart (before --retry-scale)."""
        return (
            (SCREENSHOT_RETRIES, SCREENSHOT_RETRY_INTERVAL)
            if event.screenshot
            else (OTHER_RETRIES, OTHER_RETRY_INTERVAL)
        )

    def request(self, event: Event) -> Request:
        """One attempt at an event, signed anew as the cloud does on every retry."""
        body = css.signed(event.body, self.options.key, int(time.time()))
        headers = {"Content-Type": "application/json"}
        return Request("POST", "/callbacks/tencent", body=orjson.dumps(body), headers=headers)


SIMULATOR = TencentSimulator

"""Alibaba ApsaraVideo Live's side of `framewatch simulate`: its callbacks and retries
(docs/protocols/alibaba.md §1)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
from yarl import URL

from framewatch.providers.alibaba.provider import sign
from framewatch.simulate.provider import Event, Request, SimulatedCloud

# Every callback: 5 retries 1 second apart.
ALIBABA_RETRIES, ALIBABA_RETRY_INTERVAL = 5, 1.0


@dataclass
class AlibabaSimulator(SimulatedCloud):
    """ApsaraVideo Live: publish and publish_done as GET with query parameters, recordings and the automated
    review's results as POST JSON, each signed in ALI-LIVE-TIMESTAMP and ALI-LIVE-SIGNATURE. Its snapshot
    callback's fields are not documented where framewatch could read them, so a stream's periodic event here is a
    recording file, not a screenshot."""

    timeout = 5.0  # no answer within 5 s is a failure

    def stream_event(self, stream: str, begin: bool) -> Event:
        now = next(self._sequence)  # unique per event: the cloud's `time` is the natural key
        params = {
            "action": "publish" if begin else "publish_done",
            "ip": "192.0.2.10",
            "id": stream,
            "app": self.options.domain,
            "appname": "live",
            "time": str(now // 1_000_000),
            "usrargs": f"seq={now}",
            "node": "sim-node",
        }
        return self._event(f"{params['action']}:{params['usrargs']}", params, screenshot=False)

    async def periodic(self, stream: str) -> Event:
        sequence = next(self._sequence)
        started = int(time.time())
        body = {
            "domain": self.options.domain,
            "app": "live",
            "stream": stream,
            "uri": f"live/{stream}/{sequence}.flv",
            "duration": 10.0,
            "start_time": started - 10,
            "stop_time": started,
            "push_args": {},
        }
        return self._event(f"record:{body['uri']}", body, screenshot=False)

    def moderation(self, stream: str, frame: Event) -> Event | None:
        """The cloud's automated review flagging a frame it saved to OSS (§3: format V2)."""
        saved = int(time.time() * 1000)
        body = {
            "DomainName": self.options.domain,
            "AppName": "live",
            "StreamName": stream,
            "OssEndpoint": "oss-cn-hangzhou.aliyuncs.com",
            "OssBucket": "sim-review",
            "OssObject": f"live/{stream}/{saved}-{next(self._sequence)}.jpg",
            "Result": [
                {
                    "BizType": self.options.domain,
                    "Result": [
                        {"Label": "porn", "Rate": 96.5, "Suggestion": "block", "Scene": "porn", "Extent": {}},
                        {"Label": "normal", "Rate": 99.1, "Suggestion": "pass", "Scene": "ad", "Extent": {}},
                    ],
                }
            ],
        }
        return self._event(f"moderation:{body['OssObject']}", body, screenshot=False)

    def retry_policy(self, event: Event) -> tuple[int, float]:
        return ALIBABA_RETRIES, ALIBABA_RETRY_INTERVAL

    def request(self, event: Event) -> Request:
        timestamp = str(int(time.time()))
        if "action" in event.body:  # publish callbacks: signed with the ingest domain, sent as GET
            signature = sign(self.options.domain, timestamp, self.options.key)
            headers = {"ALI-LIVE-TIMESTAMP": timestamp, "ALI-LIVE-SIGNATURE": signature}
            return Request("GET", "/callbacks/alibaba", params=event.body, headers=headers)
        # Everything else: POST JSON, signed with the host of the callback URL.
        host = URL(self.options.ingress).host or ""
        signature = sign(host, timestamp, self.options.key)
        headers = {
            "Content-Type": "application/json",
            "ALI-LIVE-TIMESTAMP": timestamp,
            "ALI-LIVE-SIGNATURE": signature,
        }
        return Request("POST", "/callbacks/alibaba", body=orjson.dumps(event.body), headers=headers)


SIMULATOR = AlibabaSimulator

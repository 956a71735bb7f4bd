"""Every reason the ingress refuses a callback: HTTP status, numeric code, error name. CONTRACT.md lists them."""

from __future__ import annotations

from enum import Enum

import orjson
from aiohttp import web


class Reason(Enum):
    # (HTTP status, code)
    InvalidJson = (400, 40001)
    InvalidEvent = (400, 40002)
    MissingDomain = (400, 40003)
    DomainMismatch = (400, 40004)
    MissingSignature = (401, 40101)
    InvalidSignature = (401, 40102)
    SignatureExpired = (403, 40301)
    TimestampTooFarAhead = (403, 40302)
    DomainNotBound = (403, 40303)
    BodyTimeout = (408, 40800)
    BodyTooLarge = (413, 41300)
    UnsupportedMediaType = (415, 41500)
    BrokerUnavailable = (503, 50300)

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def code(self) -> int:
        return self.value[1]


class Refused(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def response(self) -> web.Response:
        body = {"code": self.reason.code, "error": self.reason.name, "message": self.message}
        headers = {"Retry-After": "5"} if self.reason is Reason.BrokerUnavailable else None
        return web.Response(
            status=self.reason.status, body=orjson.dumps(body), content_type="application/json", headers=headers
        )

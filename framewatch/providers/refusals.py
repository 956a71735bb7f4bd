"""Every reason a callback is refused: HTTP status, numeric code, error name. the README lists them.

Shared by every provider (they raise them while parsing and verifying) and the ingress (which answers them).
"""

from __future__ import annotations

from enum import Enum


class Reason(Enum):
    # (HTTP status, code)
    InvalidJson = (400, 40001)
    InvalidEvent = (400, 40002)
    MissingDomain = (400, 40003)
    DomainMismatch = (400, 40004)
    ControlCharacter = (400, 40005)  # NUL or a control character in a name, id or URL
    NameTooLong = (400, 40006)  # a name or id longer than the stores hold
    CaptureTimeAhead = (400, 40007)  # a frame dated further ahead than the clock skew allows
    MissingSignature = (401, 40101)
    InvalidSignature = (401, 40102)
    SignatureExpired = (403, 40301)
    TimestampTooFarAhead = (403, 40302)
    DomainNotBound = (403, 40303)
    NoCallbackKey = (403, 40304)
    StreamNotFound = (404, 40401)
    NoSafeCover = (404, 40402)
    MethodNotAllowed = (405, 40500)
    BodyTimeout = (408, 40800)
    BodyTooLarge = (413, 41300)
    UnsupportedMediaType = (415, 41500)
    BrokerUnavailable = (503, 50300)
    StoreUnavailable = (503, 50301)

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

"""A refused callback's answer: the contract's JSON error body, with the reason's status and code."""

from __future__ import annotations

import orjson
from aiohttp import web

from framewatch.providers.refusals import Reason, Refused


def refusal_response(refused: Refused) -> web.Response:
    body = {"code": refused.reason.code, "error": refused.reason.name, "message": refused.message}
    headers = {"Retry-After": "5"} if refused.reason is Reason.BrokerUnavailable else None
    return web.Response(
        status=refused.reason.status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )

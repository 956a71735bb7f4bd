"""Tencent Cloud API 3.0 at `/` on the admin listener (SPEC §9), so that the official SDKs work unmodified.

TC3-HMAC-SHA256 is checked over the request as received (POST JSON or GET query), with a key pair from
`framewatch accounts keys create`. The actions are the same ones `/api` runs; this dialect decides only the
authentication, the parameters' decoding (Tencent's types), the envelope and the error codes' names. Errors are
answered with HTTP 200 and `Content-Type: application/json` exactly, as the SDK expects (it reads errors only then).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog
from aiohttp import web

from framewatch.admin import keys
from framewatch.admin.api import STORE_FAILURES, AdminApi
from framewatch.config.errors import ConfigError
from framewatch.runtime import metrics

log = structlog.get_logger("framewatch.admin")

VERSION = "2018-08-01"
SERVICE = "live"
# A signature older or newer than this is refused (AuthFailure.SignatureExpire), as Tencent does.
CLOCK_WINDOW = 300
ACTIONS = frozenset(
    {
        "CreateLiveCallbackTemplate",
        "DescribeLiveCallbackTemplates",
        "DescribeLiveCallbackTemplate",
        "ModifyLiveCallbackTemplate",
        "DeleteLiveCallbackTemplate",
        "CreateLiveCallbackRule",
        "DescribeLiveCallbackRules",
        "DeleteLiveCallbackRule",
        "DescribeLiveStreamOnlineList",
    }
)
# framewatch's code -> Tencent's, for these actions (the SDK's errorcodes.py); others keep their name.
CODES = {
    "ResourceNotFound.TemplateNotFound": "InvalidParameter.ConfNotFound",
    "ResourceNotFound.RuleNotFound": "InternalError.RuleNotFound",
    "InvalidParameter.DomainAlreadyBound": "FailedOperation.RuleAlreadyExist",
    "InvalidParameter.TemplateNameExists": "InvalidParameter.ArgsNotMatch",
    "LimitExceeded": "InternalError.ConfOutLimit",
    "InvalidNotifyUrl.Unsafe": "InvalidParameter.UrlNotSafe",
    "InvalidNotifyUrl.Malformed": "InvalidParameter.InvalidCallbackUrl",
    "InvalidParameter": "InvalidParameterValue",
    "ServiceUnavailable": "InternalError",
    "RequestTimeout": "InternalError",
}
_AUTHORIZATION = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<key_id>[^/\s]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)/tc3_request,\s*"
    r"SignedHeaders=(?P<headers>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
_BEIJING = timedelta(hours=8)  # Tencent writes times in UTC+8


class TencentApi:
    def __init__(self, api: AdminApi) -> None:
        self.api = api

    async def handle(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        name = request.headers.get("X-TC-Action", "")
        account_id: int | None = None
        try:
            body = await self.api.read_body(request) if request.method == "POST" else b""
            account_id = await self._authenticate(request, body)
            if request.headers.get("X-TC-Version", VERSION) != VERSION:
                raise ConfigError("NoSuchVersion", f"The API version must be {VERSION}.")
            values = _parameters(request, body)
            fields = await self.api.run(account_id, name, values, ACTIONS)
        except ConfigError as refused:
            code = CODES.get(refused.code, refused.code)
            metrics.ADMIN_CALLS.labels(name if name in ACTIONS else "unknown", code).inc()
            log.info("admin_refused", dialect="tencent", action=name, account=account_id, code=code)
            error = {"Error": {"Code": code, "Message": refused.message}, "RequestId": request_id}
            return _answer(error)
        except STORE_FAILURES as exc:
            log.warning("admin_store_unavailable", action=name, error=type(exc).__name__, request_id=request_id)
            message = "The config store did not answer; retry later."
            return _answer({"Error": {"Code": "InternalError", "Message": message}, "RequestId": request_id})
        metrics.ADMIN_CALLS.labels(name, "Success").inc()
        log.info("admin_call", dialect="tencent", action=name, account=account_id, request_id=request_id)
        return _answer({**_tencent_shapes(name, fields), "RequestId": request_id})

    async def _authenticate(self, request: web.Request, body: bytes) -> int:
        blocked = ConfigError("RequestLimitExceeded", "Too many failed authentications from this address.")
        return await self.api.guarded(
            request,
            lambda: self._verify(request, body),
            blocked,
            lambda refused: refused.code.startswith("AuthFailure"),
        )

    async def _verify(self, request: web.Request, body: bytes) -> int:
        found = _AUTHORIZATION.match(request.headers.get("Authorization", "").strip())
        if found is None:
            raise ConfigError("AuthFailure.InvalidAuthorization", "The Authorization header is not TC3-HMAC-SHA256.")
        timestamp = request.headers.get("X-TC-Timestamp", "")
        if not timestamp.isdecimal() or len(timestamp) > 12:
            raise ConfigError("AuthFailure.InvalidAuthorization", "X-TC-Timestamp must be Unix seconds.")
        if abs(time.time() - int(timestamp)) > CLOCK_WINDOW:
            raise ConfigError("AuthFailure.SignatureExpire", "The signature has expired: check the clock.")
        date = datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d")
        if found["date"] != date or found["service"] != SERVICE:
            raise ConfigError("AuthFailure.SignatureFailure", "The credential scope does not match the request.")
        key = await keys.lookup(self.api.config.store, self.api.vault, found["key_id"])
        if key is None:
            raise ConfigError("AuthFailure.SecretIdNotFound", "The SecretId does not exist or was revoked.")
        expected = signature(request, body, found["headers"], timestamp, date, key.secret)
        if not hmac.compare_digest(expected, found["signature"]):
            raise ConfigError("AuthFailure.SignatureFailure", "The signature does not match.")
        return key.account_id


def signature(request: web.Request, body: bytes, signed_headers: str, timestamp: str, date: str, secret: str) -> str:
    """TC3-HMAC-SHA256 over the request as received (SPEC §9)."""
    names = signed_headers.split(";")
    headers = "".join(f"{name}:{request.headers.get(name, '').strip()}\n" for name in names)
    query = request.rel_url.raw_query_string if request.method == "GET" else ""
    payload = b"" if request.method == "GET" else body
    canonical = "\n".join((request.method, "/", query, headers, signed_headers, hashlib.sha256(payload).hexdigest()))
    scope = f"{date}/{SERVICE}/tc3_request"
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = f"TC3{secret}".encode()
    for part in (date, SERVICE, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _parameters(request: web.Request, body: bytes) -> dict[str, str]:
    """Tencent's typed parameters (JSON numbers, booleans, string lists) as the actions' text values."""
    if request.method == "GET":
        return dict(request.query)
    try:
        decoded = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        raise ConfigError("InvalidParameter", "The request body is not JSON.") from None
    if not isinstance(decoded, dict):
        raise ConfigError("InvalidParameter", "The request body must be a JSON object.")
    values = {}
    for name, value in decoded.items():
        if value is None:
            continue
        if isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif isinstance(value, int | str):
            values[name] = str(value)
        elif isinstance(value, list) and all(isinstance(item, str | int) for item in value):
            values[name] = ",".join(str(item) for item in value)
        else:
            raise ConfigError("InvalidParameter", f"{name} has a type this action does not take.")
    return values


def _beijing_time(iso: str) -> str:
    moment = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) + _BEIJING
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _tencent_shapes(name: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Times as Tencent writes them (UTC+8, `YYYY-MM-DD hh:mm:ss`)."""
    if name == "DescribeLiveCallbackRules":
        return {
            "Rules": [
                {
                    **rule,
                    "CreateTime": _beijing_time(rule["CreateTime"]),
                    "UpdateTime": _beijing_time(rule["UpdateTime"]),
                }
                for rule in fields["Rules"]
            ]
        }
    return fields


def _answer(response: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps({"Response": response}), content_type="application/json")

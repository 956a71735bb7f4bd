"""Tencent Cloud API 3.0 at `/` on the admin listener, so that the official SDKs work unmodified
(docs/protocols/tencent.md §7).

TC3-HMAC-SHA256 is checked over the request as received (POST JSON or GET query), with a key pair from
`framewatch accounts keys create`. The actions are the same ones `/api` runs; this dialect decides only the
authentication, the parameters' decoding (Tencent's types), the envelope and the error codes' names. Errors are
answered with HTTP 200 and `Content-Type: application/json` exactly, as the SDK expects (it reads errors only then).
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import orjson
import structlog
from aiohttp import web
from redis.asyncio import Redis

from framewatch.admin import keys
from framewatch.admin.api import STORE_FAILURES, AdminApi, same
from framewatch.admin.replay import FirstUses
from framewatch.config.errors import ConfigError
from framewatch.runtime import metrics
from framewatch.signing import tc3

log = structlog.get_logger("framewatch.admin")

VERSION = "2018-08-01"
# A signature older or newer than this is refused (AuthFailure.SignatureExpire), as Tencent does; each signature is
# remembered for the whole span it is valid in.
CLOCK_WINDOW = 300
SIGNATURE_MEMORY = 2 * CLOCK_WINDOW + 60
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
# What a reused signature may run: reads only. The SDKs sign `content-type;host` and the body, not X-TC-Action, so
# two genuine reads with the same parameters in one second share a signature (both run), while a captured request
# must not replay as a change (a different action, or the same change again).
READS = frozenset(name for name in ACTIONS if name.startswith("Describe"))
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
    r"TC3-HMAC-SHA256 Credential=(?P<key_id>[^/\s]+)/(?P<date>\d{4}-\d{2}-\d{2})/"
    r"(?P<service>[!-.0-~]{1,64})/tc3_request,\s*"
    r"SignedHeaders=(?P<headers>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
_BEIJING = timedelta(hours=8)  # Tencent writes times in UTC+8


class TencentApi:
    def __init__(self, api: AdminApi, redis: Redis | None, namespace: str) -> None:
        self.api = api
        self.signatures = FirstUses(redis, f"{namespace}:tc3:", SIGNATURE_MEMORY)  # each signature's first action

    async def claims(self, request: web.Request) -> bool:
        """Tencent's SDKs name the action in X-TC-Action (TC3) or send a SecretId parameter (the legacy HmacSHA1
        and HmacSHA256 signatures)."""
        return "X-TC-Action" in request.headers or await self._legacy(request)

    async def handle(self, request: web.Request) -> web.Response:
        if "X-TC-Action" not in request.headers:
            return self.legacy()
        request_id = str(uuid.uuid4())
        name = request.headers.get("X-TC-Action", "")
        account_id: int | None = None
        try:
            body = await self.api.read_body(request) if request.method == "POST" else b""
            account_id = await self._authenticate(request, body, name)
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

    def legacy(self) -> web.Response:
        """Tencent's older HmacSHA1 and HmacSHA256 signatures: refused in Tencent's envelope, with a code the SDK
        raises, rather than read as another cloud's request."""
        message = "Sign requests with TC3-HMAC-SHA256 (the SDKs' default): HmacSHA1 and HmacSHA256 are not served."
        metrics.ADMIN_CALLS.labels("unknown", "AuthFailure.InvalidAuthorization").inc()
        error = {"Code": "AuthFailure.InvalidAuthorization", "Message": message}
        return _answer({"Error": error, "RequestId": str(uuid.uuid4())})

    async def _legacy(self, request: web.Request) -> bool:
        if "SecretId" in request.query:
            return True
        if request.method != "POST" or request.content_type != "application/x-www-form-urlencoded":
            return False
        try:
            body = await self.api.read_body(request)  # kept by aiohttp: the dialect that answers reads the same bytes
        except ConfigError:
            return False  # the dialect that answers refuses it the same way, in its own shape
        return "SecretId" in parse_qs(body.decode(errors="replace"))

    async def _authenticate(self, request: web.Request, body: bytes, action: str) -> int:
        blocked = ConfigError("RequestLimitExceeded", "Too many failed authentications from this address.")
        key = await self.api.guarded(request, lambda: self._verify(request, body, action), blocked)
        await keys.touch(self.api.config.store, key)
        return key.account_id

    async def _verify(self, request: web.Request, body: bytes, action: str) -> keys.ActiveKey:
        found = _AUTHORIZATION.match(request.headers.get("Authorization", "").strip())
        if found is None:
            raise ConfigError("AuthFailure.InvalidAuthorization", "The Authorization header is not TC3-HMAC-SHA256.")
        timestamp = request.headers.get("X-TC-Timestamp", "")
        if not timestamp.isdecimal() or len(timestamp) > 12:
            raise ConfigError("AuthFailure.InvalidAuthorization", "X-TC-Timestamp must be Unix seconds.")
        if abs(time.time() - int(timestamp)) > CLOCK_WINDOW:
            raise ConfigError("AuthFailure.SignatureExpire", "The signature has expired: check the clock.")
        date = datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d")
        if found["date"] != date:
            raise ConfigError("AuthFailure.SignatureFailure", "The credential scope does not match the request.")
        key = await keys.lookup(self.api.config.store, self.api.vault, found["key_id"])
        if key is None:
            raise ConfigError("AuthFailure.SecretIdNotFound", "The SecretId does not exist or was revoked.")
        # The service is the scope's, as the client signed it: the Python SDK writes "live", the Node SDK the
        # endpoint's first label ("127" for 127.0.0.1:8090). The Node SDK signs the host without its port.
        host = request.headers.get("Host", "").strip()
        hosts = dict.fromkeys((host, host.rpartition(":")[0] if host.rpartition(":")[2].isdecimal() else host))
        signed = found["headers"], timestamp, found["service"], key.secret
        if not any(same(signature(request, body, *signed, host), found["signature"]) for host in hosts):
            raise ConfigError("AuthFailure.SignatureFailure", "The signature does not match.")
        first = await self.signatures.first(found["signature"], action)
        if first is not None and action not in READS:
            raise ConfigError(
                "AuthFailure.SignatureFailure",
                f"This signature was used already ({first}): a signature runs one change once. Sign the request again.",
            )
        return key


def signature(
    request: web.Request, body: bytes, signed_headers: str, timestamp: str, service: str, secret: str, host: str
) -> str:
    """TC3-HMAC-SHA256 over the request as received (docs/protocols/tencent.md §7), the Host header read as `host`."""
    headers = [
        (name, host if name == "host" else request.headers.get(name, "").strip()) for name in signed_headers.split(";")
    ]
    get = request.method == "GET"
    return tc3.signature(
        method=request.method,
        query=request.rel_url.raw_query_string if get else "",
        headers=headers,
        payload=b"" if get else body,
        timestamp=timestamp,
        service=service,
        secret=secret,
    )


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


DIALECT = TencentApi

"""Alibaba Cloud OpenAPI at `/` on the admin listener (docs/protocols/alibaba.md §5), so that the official SDKs
work unmodified: the RPC style (`Signature` = HMAC-SHA1 over the canonical query, aliyun-python-sdk-core) and V3
(`ACS3-HMAC-SHA256` in `Authorization`, alibabacloud_live20161101), each with a timestamp window
and a nonce that cannot be used twice.

The actions are the four detect notify ones `/api` runs, answered in `/api`'s (Alibaba's) envelope: the dialect
decides only the authentication and which parameters are the cloud's own rather than the action's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

import structlog
from aiohttp import web
from redis.asyncio import Redis

from framewatch.admin import keys, responses
from framewatch.admin.api import STORE_FAILURES, AdminApi, same
from framewatch.admin.replay import FirstUses
from framewatch.config.errors import ConfigError
from framewatch.runtime import metrics

log = structlog.get_logger("framewatch.admin")

VERSION = "2016-11-01"
ACTIONS = frozenset(
    {
        "AddLiveDetectNotifyConfig",
        "DescribeLiveDetectNotifyConfig",
        "UpdateLiveDetectNotifyConfig",
        "DeleteLiveDetectNotifyConfig",
    }
)
# The clouds' own parameters every call may carry: accepted, never passed to the action as its own.
COMMON = frozenset(
    {
        "Action",
        "Version",
        "Format",
        "RegionId",
        "Timestamp",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "SignatureType",
        "AccessKeyId",
        "Signature",
        "OwnerId",
        "OwnerAccount",
        "ResourceOwnerId",
        "ResourceOwnerAccount",
        "SecurityToken",
    }
)
# A signed request older or newer than this is refused; its nonce is remembered as long.
WINDOW = 15 * 60


def pct(value: str) -> str:
    """RFC 3986 percent-encoding, as Alibaba signs: only letters, digits and -_.~ stay as they are."""
    return quote(value, safe="~")


class AlibabaApi:
    def __init__(self, api: AdminApi, redis: Redis | None, namespace: str) -> None:
        self.api = api
        self.nonces = FirstUses(redis, f"{namespace}:nonce:", WINDOW)

    async def claims(self, request: web.Request) -> bool:
        """Everything no other cloud claims is read as Alibaba's OpenAPI (RPC or V3): an unknown request gets
        Alibaba's refusals. The registry lists Alibaba last for that."""
        return True

    async def handle(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4()).upper()
        values: dict[str, str] = dict(request.query)
        v3 = request.headers.get("Authorization", "").startswith("ACS3-")
        # Only what the signature covers names the action: RPC signs its Action parameter, V3 its x-acs-action
        # header (an unsigned header must not turn a signed read into another action).
        name = request.headers.get("x-acs-action", "") if v3 else values.get("Action", "")
        xml = values.get("Format", "").upper() == "XML"
        account_id: int | None = None
        try:
            body = await self.api.read_body(request) if request.method == "POST" else b""
            if body and request.content_type == "application/x-www-form-urlencoded":
                values.update(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
            if not v3:
                name = values.get("Action", "")
            account_id = await self._authenticate(request, values, v3)
            version = (request.headers.get("x-acs-version") if v3 else values.get("Version")) or VERSION
            if version != VERSION:
                raise ConfigError("InvalidVersion", f"Specified parameter Version is not valid: use {VERSION}.")
            own = {k: v for k, v in values.items() if k not in COMMON}
            fields = await self.api.run(account_id, name, own, ACTIONS)
        except ConfigError as refused:
            metrics.ADMIN_CALLS.labels(name if name in ACTIONS else "unknown", refused.code).inc()
            log.info("admin_refused", dialect="alibaba", action=name, account=account_id, code=refused.code)
            status = refused.status if refused.status != 401 else 400
            return responses.error(refused.code, refused.message, status, request_id, request.host, xml)
        except STORE_FAILURES as exc:
            log.warning("admin_store_unavailable", action=name, error=type(exc).__name__, request_id=request_id)
            message = "The request has failed due to a temporary failure of the server."
            return responses.error("ServiceUnavailable", message, 503, request_id, request.host, xml)
        metrics.ADMIN_CALLS.labels(name, "Success").inc()
        log.info("admin_call", dialect="alibaba", action=name, account=account_id, request_id=request_id)
        return responses.success(name, request_id, fields, xml)

    async def _authenticate(self, request: web.Request, values: dict[str, str], v3: bool) -> int:
        blocked = ConfigError("Throttling.User", "Too many failed authentications from this address.", 400)
        key = await self.api.guarded(
            request, lambda: self._v3(request, values) if v3 else self._rpc(request, values), blocked
        )
        await keys.touch(self.api.config.store, key)
        return key.account_id

    async def _key(self, key_id: str) -> keys.ActiveKey:
        key = await keys.lookup(self.api.config.store, self.api.vault, key_id)
        if key is None:
            raise ConfigError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        return key

    async def _fresh(self, stamp: str, nonce: str) -> None:
        try:
            when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise ConfigError("InvalidTimeStamp.Format", "Specified time stamp is not valid.", 400) from None
        if abs(time.time() - when) > WINDOW:
            raise ConfigError("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", 400)
        if not nonce or len(nonce) > 128:
            raise ConfigError("MissingSignatureNonce", "The input parameter SignatureNonce is not supplied.", 400)
        if await self.nonces.first(nonce, "1") is not None:
            raise ConfigError("SignatureNonceUsed", "Specified signature nonce was used already.", 400)

    async def _rpc(self, request: web.Request, values: dict[str, str]) -> keys.ActiveKey:
        given, key_id = values.get("Signature", ""), values.get("AccessKeyId", "")
        if not given or not key_id:
            raise ConfigError("MissingParameter", "Signature and AccessKeyId are required.", 400)
        if values.get("SignatureMethod") != "HMAC-SHA1":
            raise ConfigError("InvalidSignatureMethod", "Specified signature method is not supported.", 400)
        key = await self._key(key_id)
        signed = {k: v for k, v in values.items() if k != "Signature"}
        canonical = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(signed.items()))
        to_sign = f"{request.method}&{pct('/')}&{pct(canonical)}"
        expected = base64.b64encode(hmac.new(f"{key.secret}&".encode(), to_sign.encode(), hashlib.sha1).digest())
        if not same(expected.decode(), given):
            # As Alibaba answers: the string the server signed, so that the SDK can tell a wrong secret
            # (InvalidAccessKeySecret) from a request signed over other parameters.
            message = f"Specified signature is not matched with our calculation. server string to sign is:{to_sign}"
            raise ConfigError("SignatureDoesNotMatch", message, 400)
        await self._fresh(values.get("Timestamp", ""), values.get("SignatureNonce", ""))
        return key

    async def _v3(self, request: web.Request, values: dict[str, str]) -> keys.ActiveKey:
        scheme, _, rest = request.headers["Authorization"].partition(" ")
        fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
        if scheme != "ACS3-HMAC-SHA256" or not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
            raise ConfigError("IncompleteSignature", "The Authorization header is not ACS3-HMAC-SHA256.", 400)
        key = await self._key(fields["Credential"])
        names = fields["SignedHeaders"].split(";")
        if "x-acs-action" not in names:
            raise ConfigError("IncompleteSignature", "The signature must cover the x-acs-action header.", 400)
        headers = "".join(
            f"{name}:{','.join(sorted(v.strip() for v in request.headers.getall(name, [])))}\n" for name in names
        )
        query = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(request.query.items()))
        payload = request.headers.get("x-acs-content-sha256", "")
        canonical = f"{request.method}\n{request.path}\n{query}\n{headers}\n{fields['SignedHeaders']}\n{payload}"
        to_sign = f"ACS3-HMAC-SHA256\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        expected = hmac.new(key.secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not same(expected, fields["Signature"]):
            raise ConfigError("SignatureDoesNotMatch", "Specified signature is not matched with our calculation.", 400)
        body_hash = hashlib.sha256(await request.read()).hexdigest()
        if not same(body_hash, payload):  # the signature covers the body through its hash
            raise ConfigError("SignatureDoesNotMatch", "The body does not match x-acs-content-sha256.", 400)
        await self._fresh(request.headers.get("x-acs-date", ""), request.headers.get("x-acs-signature-nonce", ""))
        return key


DIALECT = AlibabaApi

"""Tencent Cloud ImageModeration (API 2020-12-29), signed with TC3-HMAC-SHA256, by FileContent or FileUrl."""

from __future__ import annotations

import base64
import time
from typing import Any

import aiohttp
import orjson
from yarl import URL

from framewatch.blobs.base import BlobStore
from framewatch.signing import tc3
from schemas.messages import FrameStored, Verdict
from workers.failures import Permanent
from workers.moderate.backends.api import ApiBackend, check_status, image_for_api, json_answer
from workers.moderate.backends.base import BackendUnavailable, read_image

SERVICE = "ims"
ACTION = "ImageModeration"
VERSION = "2020-12-29"
# Error codes that mean "not now" rather than "never for this image".
UNAVAILABLE_CODES = ("RequestLimitExceeded", "InternalError", "ResourceUnavailable", "AuthFailure", "FailedOperation")


def tc3_authorization(secret_id: str, secret_key: str, host: str, payload: bytes, timestamp: int) -> str:
    """The Authorization header of Tencent Cloud API 3.0 (TC3-HMAC-SHA256) for a JSON POST to `/`."""
    headers = [
        ("content-type", "application/json; charset=utf-8"),
        ("host", host),
        ("x-tc-action", ACTION.lower()),
    ]
    signed = tc3.signature(
        method="POST",
        query="",
        headers=headers,
        payload=payload,
        timestamp=timestamp,
        service=SERVICE,
        secret=secret_key,
    )
    return tc3.authorization(secret_id, signed, headers, timestamp, SERVICE)


class TencentImsBackend(ApiBackend):
    name = "tencent-ims"
    default_rate_limit = 100.0  # IMS's documented default quota, calls per second

    def __init__(
        self,
        blobs: BlobStore,
        *,
        secret_id: str,
        secret_key: str,
        region: str,
        endpoint: str,
        biz_type: str | None,
        timeout: float,
        concurrency: int,
        send_url: bool,
    ) -> None:
        super().__init__(blobs, timeout=timeout, concurrency=concurrency, send_url=send_url)
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.region = region
        self.biz_type = biz_type
        self.endpoint = endpoint.rstrip("/") + "/"
        self.host = URL(self.endpoint).host or ""

    async def moderate_one(self, frame: FrameStored) -> Verdict:
        image = image_for_api(frame)
        request: dict[str, Any] = {"DataId": frame.id}
        if self.send_url:
            request["FileUrl"] = image.url
        else:
            request["FileContent"] = base64.b64encode(await read_image(self.blobs, image)).decode()
        if self.biz_type:
            request["BizType"] = self.biz_type
        payload = orjson.dumps(request)
        timestamp = int(time.time())
        headers = {
            "Authorization": tc3_authorization(
                self.secret_id,
                self.secret_key,
                self.host,
                payload,
                timestamp,
            ),
            "Content-Type": "application/json; charset=utf-8",
            "Host": self.host,
            "X-TC-Action": ACTION,
            "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.region,
        }
        started = time.perf_counter()
        try:
            async with self.client.request("POST", self.endpoint, data=payload, headers=headers) as response:
                check_status(response, "ims")
                answer = await json_answer(response, "ims")
                answer = answer.get("Response", {}) if isinstance(answer, dict) else {}
        except TimeoutError:
            raise BackendUnavailable("ims_timeout") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise BackendUnavailable("ims_error", f"{type(exc).__name__}: {exc}") from None
        error = answer.get("Error")
        if error:
            code = str(error.get("Code", ""))
            if code.startswith(UNAVAILABLE_CODES):
                raise BackendUnavailable("ims_unavailable", code)
            raise Permanent("ims_refused", code)
        if answer.get("Suggestion") not in ("Pass", "Review", "Block"):
            raise Permanent("ims_bad_answer", "no Suggestion")
        return Verdict(
            suggestion=answer["Suggestion"],
            label=answer.get("Label") or "Normal",
            sub_label=answer.get("SubLabel") or "",
            score=int(answer.get("Score") or 0),
            scores={r["Label"]: float(r.get("Score", 0)) for r in answer.get("LabelResults") or [] if "Label" in r},
            source=f"tencent-ims/{VERSION}",
            latency_ms=(time.perf_counter() - started) * 1000,
        )

"""A generic moderation API: POST the image (or its URL), read the verdict from configured fields of the answer."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from framewatch.blobs.base import BlobStore
from schemas.messages import FrameStored, Verdict
from workers.failures import Permanent
from workers.moderate.backends.api import ApiBackend, check_status, image_for_api, json_answer
from workers.moderate.backends.base import BackendUnavailable, read_image
from workers.moderate.thresholds import Thresholds


def field(document: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(document, dict) or part not in document:
            return None
        document = document[part]
    return document


@dataclass(frozen=True, slots=True)
class AnswerFields:
    """Dotted paths into the API's JSON answer."""

    suggestion: str = "suggestion"
    score: str = "score"
    label: str = "label"


class HttpBackend(ApiBackend):
    name = "http"

    def __init__(
        self,
        blobs: BlobStore,
        thresholds: Thresholds,
        *,
        url: str,
        token: str | None,
        fields: AnswerFields,
        timeout: float,
        concurrency: int,
        send_url: bool,
    ) -> None:
        super().__init__(blobs, timeout=timeout, concurrency=concurrency, send_url=send_url)
        self.url = url
        self.token = token
        self.fields = fields
        self.thresholds = thresholds

    async def moderate_one(self, frame: FrameStored) -> Verdict:
        image = image_for_api(frame)
        headers = {"X-Framewatch-Event-Id": frame.id}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.send_url:
            kwargs: dict[str, Any] = {"json": {"url": image.url, "event_id": frame.id, "domain": frame.domain}}
        else:
            kwargs = {"data": await read_image(self.blobs, image)}
            headers["Content-Type"] = image.content_type
        started = time.perf_counter()
        try:
            async with self.client.request("POST", self.url, headers=headers, **kwargs) as response:
                check_status(response, "http")
                answer = await json_answer(response, "http")
        except TimeoutError:
            raise BackendUnavailable("http_timeout") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise BackendUnavailable("http_error", f"{type(exc).__name__}: {exc}") from None
        return self._verdict(answer, (time.perf_counter() - started) * 1000)

    def _verdict(self, answer: Any, latency_ms: float) -> Verdict:
        score = field(answer, self.fields.score)
        suggestion = field(answer, self.fields.suggestion)
        if not isinstance(score, int | float) and suggestion not in ("Pass", "Review", "Block"):
            raise Permanent("http_bad_answer", "neither a score nor a suggestion in the answer")
        score = float(score) if isinstance(score, int | float) else 0.0
        if suggestion not in ("Pass", "Review", "Block"):
            suggestion = self.thresholds.suggestion(score)
        label = field(answer, self.fields.label)
        return Verdict(
            suggestion=suggestion,
            label=str(label) if label else ("Normal" if suggestion == "Pass" else "Unknown"),
            score=round(score),
            source=f"http/{self.client_host}",
            latency_ms=latency_ms,
        )

    @property
    def client_host(self) -> str:
        from yarl import URL

        return URL(self.url).host or "api"

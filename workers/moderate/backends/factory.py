"""Pick the moderation backend from MODERATION_BACKEND (the local model by default, when installed)."""

from __future__ import annotations

import importlib.util

from framewatch.blobs.base import BlobStore
from framewatch.runtime.settings import Settings
from workers.moderate.backends.base import ModerationBackend
from workers.moderate.thresholds import Thresholds


def create(settings: Settings, blobs: BlobStore) -> ModerationBackend:
    thresholds = Thresholds(settings.moderation_review_threshold, settings.moderation_block_threshold)
    name = settings.moderation_backend
    if name is None:
        name = "nudenet" if importlib.util.find_spec("nudenet") else "none"
    if name == "nudenet":
        from workers.moderate.backends.nudenet import NudeNetBackend

        return NudeNetBackend(blobs, thresholds, settings.moderation_threads)
    api = {
        "timeout": settings.moderation_timeout,
        "concurrency": settings.moderation_concurrency,
        "send_url": settings.moderation_send == "url",
    }
    if name == "http":
        from workers.moderate.backends.http import AnswerFields, HttpBackend

        if not settings.moderation_http_url:
            raise ValueError("MODERATION_BACKEND=http needs FRAMEWATCH_MODERATION_HTTP_URL")
        token = settings.moderation_http_token
        fields = AnswerFields(
            settings.moderation_http_suggestion_field,
            settings.moderation_http_score_field,
            settings.moderation_http_label_field,
        )
        return HttpBackend(
            blobs,
            thresholds,
            url=settings.moderation_http_url,
            token=token.get_secret_value() if token else None,
            fields=fields,
            **api,
        )
    if name == "tencent-ims":
        from workers.moderate.backends.tencent_ims import TencentImsBackend

        if settings.tencent_secret_id is None or settings.tencent_secret_key is None:
            raise ValueError("MODERATION_BACKEND=tencent-ims needs TENCENT_SECRET_ID and TENCENT_SECRET_KEY")
        return TencentImsBackend(
            blobs,
            secret_id=settings.tencent_secret_id.get_secret_value(),
            secret_key=settings.tencent_secret_key.get_secret_value(),
            region=settings.tencent_region,
            endpoint=settings.tencent_ims_endpoint,
            biz_type=settings.tencent_ims_biz_type,
            **api,
        )
    from workers.moderate.backends.none import NoModeration

    return NoModeration()

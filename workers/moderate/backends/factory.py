"""Pick the moderation backend from MODERATION_BACKEND (the local model by default, when installed)."""

from __future__ import annotations

import importlib.util

from framewatch.blobs.base import BlobStore
from framewatch.settings import Settings
from workers.moderate.backends.base import ModerationBackend
from workers.moderate.thresholds import Thresholds


def create(settings: Settings, blobs: BlobStore) -> ModerationBackend:
    thresholds = Thresholds(settings.moderation.review_threshold, settings.moderation.block_threshold)
    name = settings.moderation.backend
    if name is None:
        name = "nudenet" if importlib.util.find_spec("nudenet") else "none"
    if name == "nudenet":
        from workers.moderate.backends.nudenet import NudeNetBackend

        return NudeNetBackend(blobs, thresholds, settings.moderation.threads)
    api = {
        "timeout": settings.moderation.timeout,
        "concurrency": settings.moderation.concurrency,
        "send_url": settings.moderation.send == "url",
    }
    if name == "http":
        from workers.moderate.backends.http import AnswerFields, HttpBackend

        if not settings.moderation.http.url:
            raise ValueError("MODERATION_BACKEND=http needs FRAMEWATCH_MODERATION_HTTP_URL")
        token = settings.moderation.http.token
        fields = AnswerFields(
            settings.moderation.http.suggestion_field,
            settings.moderation.http.score_field,
            settings.moderation.http.label_field,
        )
        return HttpBackend(
            blobs,
            thresholds,
            url=settings.moderation.http.url,
            token=token.get_secret_value() if token else None,
            fields=fields,
            **api,
        )
    if name == "tencent-ims":
        from workers.moderate.backends.tencent_ims import TencentImsBackend

        if settings.tencent.secret_id is None or settings.tencent.secret_key is None:
            raise ValueError("MODERATION_BACKEND=tencent-ims needs TENCENT_SECRET_ID and TENCENT_SECRET_KEY")
        return TencentImsBackend(
            blobs,
            secret_id=settings.tencent.secret_id.get_secret_value(),
            secret_key=settings.tencent.secret_key.get_secret_value(),
            region=settings.tencent.region,
            endpoint=settings.tencent.ims_endpoint,
            biz_type=settings.tencent.ims_biz_type,
            **api,
        )
    from workers.moderate.backends.none import NoModeration

    return NoModeration()

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
    if name == "http":
        from workers.moderate.backends.http import HttpBackend

        return HttpBackend(settings, blobs, thresholds)
    if name == "tencent-ims":
        from workers.moderate.backends.tencent_ims import TencentImsBackend

        return TencentImsBackend(settings, blobs)
    from workers.moderate.backends.none import NoModeration

    return NoModeration()

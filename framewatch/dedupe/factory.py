"""Pick the dedupe store from settings: Redis when REDIS_URL is set, else in-process."""

from framewatch.dedupe.base import DedupeStore
from framewatch.runtime.settings import Settings


def create(settings: Settings) -> DedupeStore:
    pending_ttl = settings.publish_timeout + 2.0
    if settings.redis_url is not None:
        from framewatch.dedupe.backends.redis import RedisDedupe

        return RedisDedupe(
            settings.redis_url.get_secret_value(), settings.dedupe_window, pending_ttl, settings.namespace
        )
    from framewatch.dedupe.backends.memory import MemoryDedupe

    return MemoryDedupe(settings.dedupe_window, pending_ttl)

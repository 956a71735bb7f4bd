"""Pick the dedupe store from settings: Redis when REDIS_URL is set, else in-process."""

from framewatch.dedupe.base import DedupeStore
from framewatch.settings import Settings


def create(settings: Settings) -> DedupeStore:
    pending_ttl = settings.broker.publish_timeout + 2.0
    from framewatch.dedupe.backends.memory import MemoryDedupe

    local = MemoryDedupe(settings.ingress.dedupe_window, pending_ttl)
    if settings.redis_url is None:
        return local
    from framewatch.dedupe.backends.redis import RedisDedupe
    from framewatch.dedupe.breaker import Breaker

    shared = RedisDedupe(
        settings.redis_url.get_secret_value(), settings.ingress.dedupe_window, pending_ttl, settings.broker.namespace
    )
    return Breaker(shared, local, settings.ingress.redis_timeout)

"""Both dedupe backends: claim, confirm, release; a pending claim never refuses a retry."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from framewatch.dedupe.backends.memory import MemoryDedupe
from framewatch.dedupe.backends.redis import RedisDedupe
from framewatch.dedupe.base import Claim
from tests.helpers import REDIS_URL


@pytest.fixture(params=["memory", "redis"])
async def make(request):
    stores = []

    def build(window: float = 60, pending_ttl: float = 5):
        if request.param == "memory":
            store = MemoryDedupe(window, pending_ttl)
        else:
            store = RedisDedupe(REDIS_URL, window, pending_ttl, prefix=f"fwtest-{uuid.uuid4().hex[:8]}")
        stores.append(store)
        return store

    yield build
    for store in stores:
        await store.close()


async def test_claim_confirm_release(make) -> None:
    store = make()
    assert await store.claim("a") is Claim.NEW
    assert await store.claim("a") is Claim.PENDING  # publishing elsewhere: publish too
    await store.confirm("a")
    assert await store.claim("a") is Claim.DONE
    assert await store.claim("b") is Claim.NEW
    await store.release("b")  # its publish failed: the retry must go through
    assert await store.claim("b") is Claim.NEW
    await store.release("a")  # a release never undoes a confirmed event
    assert await store.claim("a") is Claim.DONE


async def test_window_and_pending_claims_expire(make) -> None:
    store = make(window=0.3, pending_ttl=0.2)
    assert await store.claim("a") is Claim.NEW
    await store.confirm("a")
    assert await store.claim("p") is Claim.NEW
    await asyncio.sleep(0.45)
    assert await store.claim("a") is Claim.NEW
    assert await store.claim("p") is Claim.NEW  # a claim left by a crashed replica does not block for long


async def test_memory_window_is_bounded() -> None:
    store = MemoryDedupe(window=60, pending_ttl=5, max_entries=100)
    for n in range(1000):
        await store.claim(str(n))
        await store.confirm(str(n))
    assert len(store) <= 101
    assert await store.claim("999") is Claim.DONE


async def test_concurrent_claims_of_the_same_ids_give_one_new_each(make) -> None:
    """Claims made together (one pipeline to Redis) keep their meaning: one NEW per id, the copies PENDING."""
    store = make()
    ids = [f"e{n}" for n in range(200)]
    claims = await asyncio.gather(*(store.claim(i) for i in ids + ids))
    assert claims.count(Claim.NEW) == 200
    assert claims.count(Claim.PENDING) == 200
    await asyncio.gather(*(store.confirm(i) for i in ids))
    assert set(await asyncio.gather(*(store.claim(i) for i in ids))) == {Claim.DONE}

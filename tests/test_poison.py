"""One poison message never takes its batch down: the streams stage, on the real broker, with SQLite and PostgreSQL,
writes 30 streams that came in one burst with a message its store cannot hold, and only that one goes to its retry
ladder and then to the dead letters. (Such a message cannot pass today's edge; one from an older version, or a
replayed dead letter, still can.)"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import insert

from framewatch.broker.publisher import Publisher
from framewatch.config import tables as t
from framewatch.config.store import ConfigStore
from framewatch.streams.store import StreamStore
from schemas.messages import CallbackReceived, FrameModerated, FrameStored, Screenshot, StoredImage, Stream, Verdict
from tests.conftest import serve_workers, settings_from
from tests.helpers import AMQP_URL, Broker, queue_callbacks, sample, wait_until
from workers import stages
from workers.contract import Output

NOW = int(time.time())


def poison(namespace: str) -> Output:
    """A moderated frame dated 10^19: past what any integer column holds, on either database."""
    image = StoredImage(
        key="k/1.jpg",
        url="http://frames.example.com/k/1.jpg",
        width=320,
        height=180,
        bytes=9,
        content_type="image/jpeg",
    )
    callback = CallbackReceived(
        id="poison",
        provider="tencent",
        domain="test.app",
        kind="screenshot",
        event_type=200,
        received_at=time.time(),
        stream=Stream(app="live", name="poisoned"),
        screenshot=Screenshot(image_url="http://img.myqcloud.com/p.jpg", capture_time=10**19),
        event={},
    )
    frame = FrameStored(
        id="poison",
        provider="tencent",
        domain="test.app",
        stream_id="poisoned",
        capture_time=10**19,
        source_url="http://img.myqcloud.com/p.jpg",
        sha256="0" * 64,
        original=image,
        thumbnails=[image],
        callback=callback,
    )
    verdict = Verdict(suggestion="Pass", source="test")
    return Output.of(FrameModerated(id="poison", domain="test.app", frame=frame, verdict=verdict), "screenshot")


async def test_thirty_streams_and_one_poison_in_one_burst_thirty_stored(
    database_url: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, amqp: None, namespace: str
) -> None:
    settings = settings_from(
        monkeypatch,
        {**env, "FRAMEWATCH_DATABASE_URL": database_url},
        streams_retry_delays="0.2,0.4",
    )
    config = ConfigStore(database_url)
    await config.migrate()
    async with config.engine.begin() as conn:
        await conn.execute(insert(t.accounts).values(id=1, name="acme", created_at=NOW))
        await conn.execute(insert(t.templates).values(id=1, account_id=1, name="m", created_at=NOW, updated_at=NOW))
        await conn.execute(insert(t.rules).values(account_id=1, domain="test.app", template_id=1, created_at=NOW))
    store = StreamStore(config.engine)
    begins = [
        {**sample("stream_begin"), "app": "test.app", "stream_id": f"s{n}", "sequence": str(n)} for n in range(30)
    ]
    try:
        async with serve_workers(settings, ["streams"]):
            # One burst: the poison among the begins, so that the stage's writer batches them together.
            publisher = Publisher(AMQP_URL, stages.topology(namespace), timeout=5)
            publisher.start()
            await publisher.wait_declared()
            try:
                bad = poison(namespace)
                await queue_callbacks(namespace, begins[:15])
                await publisher.publish(
                    bad.body,
                    bad.routing_key,
                    message_id=bad.message_id,
                    headers=bad.headers,
                    message_type=bad.message_type,
                )
                await queue_callbacks(namespace, begins[15:])
            finally:
                await publisher.close()

            async def stored() -> bool:
                return (await store.streams(1))[0] == 30

            await wait_until(stored, timeout=15)
            broker = Broker(namespace)

            async def dead_lettered() -> bool:
                return await broker.count("streams.dead") == 1

            await wait_until(dead_lettered, timeout=15)
        [dead] = await broker.take("streams.dead")
        assert dead.message_id == "poison"
        names = sorted(row.name for row in (await store.streams(1))[1])
        assert names == sorted(f"s{n}" for n in range(30))
    finally:
        await config.close()

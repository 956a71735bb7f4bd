"""Failure paths with real processes: broker down and back, replicas sharing Redis, SIGTERM drain, Redis down."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis
import structlog
import structlog.testing

from tests.conftest import apply_config, serve_ingress, standard_config
from tests.helpers import (
    REDIS_URL,
    IngressProcess,
    free_port,
    metric,
    post,
    screenshot,
    signed,
    wait_until,
)
from tests.rabbit import RabbitNode


@pytest.mark.slow
async def test_broker_down_answers_503_and_recovers_without_restart(own_broker: RabbitNode, configured, broker) -> None:
    async with serve_ingress(configured) as ingress, aiohttp.ClientSession() as session:
        assert (await post(session, ingress.callbacks, signed(screenshot(1))))[0] == 200
        own_broker.ctl("stop_app")
        try:
            status, answer = await post(session, ingress.callbacks, signed(screenshot(2)))
            assert (status, answer["error"]) == (503, "BrokerUnavailable")
            async with session.get(f"{ingress.url}/readyz") as response:
                assert response.status == 503
                assert "broker" in (await response.json())["failing"]
        finally:
            own_broker.ctl("start_app")
            own_broker.ctl("await_startup")

        # The same event again (the provider's retry) is accepted once the broker is back: its claim was released.
        async def accepted() -> bool:
            return (await post(session, ingress.callbacks, signed(screenshot(2))))[0] == 200

        await wait_until(accepted, timeout=60, interval=0.5)
    messages = await broker.take("fetch")
    assert sorted(orjson.loads(m.body)["event"]["pic_url"] for m in messages) == ["/s/1.jpg", "/s/2.jpg"]


@pytest.mark.slow
async def test_a_broker_that_does_not_confirm_gets_503_within_the_bound(
    own_broker: RabbitNode, ingress, broker
) -> None:
    async with aiohttp.ClientSession() as session:
        with own_broker.frozen():
            started = time.monotonic()
            status, answer = await post(session, ingress.callbacks, signed(screenshot(1)))
            waited = time.monotonic() - started
        assert (status, answer["error"]) == (503, "BrokerUnavailable")
        assert waited < 3  # FRAMEWATCH_PUBLISH_TIMEOUT is 2 s in the tests
        # The provider's retry of the same event goes through once the broker answers again.
        assert (await post(session, ingress.callbacks, signed(screenshot(1))))[0] == 200
        assert await metric(session, ingress.admin_url, 'framewatch_publish_failures_total{cause="timeout"}') >= 1
    assert await broker.count("fetch") >= 1


async def test_duplicates_collapse_across_two_replicas_sharing_redis(configured, env, broker) -> None:
    shared = {**env, "FRAMEWATCH_REDIS_URL": REDIS_URL}
    replicas = [IngressProcess(shared), IngressProcess(shared)]
    try:
        await asyncio.gather(*(replica.wait_ready() for replica in replicas))
        async with aiohttp.ClientSession() as session:
            for n in range(20):
                event = screenshot(n)
                first = await post(session, f"{replicas[0].url}/callbacks/tencent", signed(event))
                retry = await post(session, f"{replicas[1].url}/callbacks/tencent", signed(event))
                assert first[0] == retry[0] == 200
            async with session.get(f"{replicas[1].admin_url}/metrics") as response:
                assert 'outcome="duplicate"' in await response.text()
    finally:
        for replica in replicas:
            replica.terminate()
    assert await broker.count("fetch") == 20


async def test_sigterm_drains_in_flight_callbacks_and_loses_none(configured, env, broker) -> None:
    replica = IngressProcess(env)
    await replica.wait_ready()
    accepted = 0

    async def send(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal accepted
        try:
            status, _ = await post(session, f"{replica.url}/callbacks/tencent", signed(screenshot(n)))
        except aiohttp.ClientError:
            return  # refused at the door after the listener closed: the provider retries it
        accepted += status == 200

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        tasks = [asyncio.create_task(send(session, n)) for n in range(2000)]
        await wait_until(lambda: accepted >= 100, timeout=20, interval=0.005)
        assert replica.terminate() == 0
        await asyncio.gather(*tasks)
    assert 100 <= accepted
    # Every callback answered 200 is in the queue: none was answered before its confirm.
    assert await broker.count("fetch") == accepted


async def test_redis_down_still_accepts_and_publishes(settings, amqp, broker) -> None:
    await apply_config(settings, standard_config())
    settings.redis_url = type(settings.broker.amqp_url)("redis://127.0.0.1:1/0")  # nothing listens there
    async with serve_ingress(settings) as ingress, aiohttp.ClientSession() as session:
        errors_before = await metric(session, ingress.admin_url, "framewatch_dedupe_errors_total")
        event = screenshot(1)
        with structlog.testing.capture_logs() as logs:
            assert (await post(session, ingress.callbacks, signed(event)))[0] == 200
            assert (await post(session, ingress.callbacks, signed(event)))[0] == 200
            more = [signed(screenshot(n)) for n in range(2, 52)]
            statuses = await asyncio.gather(*(post(session, ingress.callbacks, body) for body in more))
        assert {status for status, _ in statuses} == {200}
        assert await metric(session, ingress.admin_url, "framewatch_dedupe_errors_total") >= errors_before + 1
        assert await metric(session, ingress.admin_url, "framewatch_dedupe_fallback") == 1
    # The in-process window serves meanwhile: the repeat collapses on this replica, nothing is lost.
    assert await broker.count("fetch") == 51
    # Said once when the breaker opened, not once per callback.
    assert [line["event"] for line in logs].count("dedupe_fallback") == 1


async def test_a_frozen_redis_costs_callbacks_no_wait(settings, amqp, broker, tmp_path) -> None:
    """Redis that accepts connections and answers nothing (SIGSTOP): callbacks are answered at the ingress's pace
    from the in-process window, then the shared window serves again once Redis answers."""
    await apply_config(settings, standard_config())
    port = free_port()
    redis = await asyncio.create_subprocess_exec(
        *("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        client = aioredis.Redis(port=port)
        await wait_until(lambda: _pings(client), timeout=10)
        settings.redis_url = type(settings.broker.amqp_url)(f"redis://127.0.0.1:{port}/0")
        async with serve_ingress(settings) as ingress, aiohttp.ClientSession() as session:
            assert (await post(session, ingress.callbacks, signed(screenshot(0))))[0] == 200
            redis.send_signal(signal.SIGSTOP)
            started = time.monotonic()
            statuses = await asyncio.gather(
                *(post(session, ingress.callbacks, signed(screenshot(n))) for n in range(1, 51))
            )
            repeat = await post(session, ingress.callbacks, signed(screenshot(1)))
            took = time.monotonic() - started
            assert {status for status, _ in statuses} == {200} and repeat[0] == 200
            assert await metric(session, ingress.admin_url, "framewatch_dedupe_fallback") == 1
            redis.send_signal(signal.SIGCONT)
            await asyncio.sleep(1.2)  # past the breaker's cooldown
            assert (await post(session, ingress.callbacks, signed(screenshot(99))))[0] == 200
            assert await metric(session, ingress.admin_url, "framewatch_dedupe_fallback") == 0
        assert took < 2.0  # one short deadline, then no wait at all (a frozen Redis cost ~2 s per callback)
        assert await client.exists(*[k async for k in client.scan_iter("*dedupe*")]) >= 2  # shared again
        await client.aclose()
    finally:
        redis.send_signal(signal.SIGCONT)
        redis.terminate()
        await asyncio.wait_for(redis.wait(), 10)
    assert await broker.count("fetch") == 52  # 0..50 and 99; the repeat of 1 collapsed in-process


async def _pings(client: aioredis.Redis) -> bool:
    try:
        return bool(await client.ping())
    except Exception:
        return False


async def test_health_endpoints(ingress) -> None:
    accepted = 'framewatch_callbacks_total{outcome="accepted",provider="tencent",reason=""}'
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{ingress.url}/healthz") as response:
            assert response.status == 200
        async with session.get(f"{ingress.url}/readyz") as response:
            assert (response.status, await response.json()) == (200, {"status": "ready", "failing": []})
        before = await metric(session, ingress.admin_url, accepted)
        confirms_before = await metric(session, ingress.admin_url, "framewatch_publish_seconds_count")
        await post(session, ingress.callbacks, signed(screenshot(1)))
        assert await metric(session, ingress.admin_url, accepted) == before + 1
        assert await metric(session, ingress.admin_url, "framewatch_publish_seconds_count") == confirms_before + 1
        assert await metric(session, ingress.admin_url, "framewatch_publish_in_flight") == 0
        assert await metric(session, ingress.admin_url, "framewatch_broker_connected") == 1

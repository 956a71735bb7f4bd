"""The review console in a real headless Chromium (Debian's `chromium`, driven by Playwright through
`executable_path`; never a downloaded browser), over the real pipeline: sign in, the live wall updating itself, the
flagged frames' images loading, decisions by keyboard arriving signed at the platform, the quality chart, dead letters
replayed from the page, and another account's session seeing none of it."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from framewatch.config.store import ConfigStore
from framewatch.streams.store import StreamStore
from tests.conftest import apply_config, serve_ingress, serve_workers, settings_from
from tests.helpers import Broker, post, wait_until
from tests.imageserver import ImageServer
from tests.moderation_api import RedFlagApi
from tests.sink import Sink
from tests.test_covers import STAGES, shot, token_for
from tests.test_pipeline import pipeline_config

CHROMIUM = os.environ.get("FRAMEWATCH_TEST_CHROMIUM", "/usr/bin/chromium")
# Where the pages' screenshots go when set (to look at them); unset, nowhere.
SCREENSHOTS = os.environ.get("FRAMEWATCH_CONSOLE_SCREENSHOTS")
OTHER_CONFIG = """
account = "other"
[[templates]]
name = "main"
callback_key = "otherKey123"
[[rules]]
domain = "other.app"
template = "main"
"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install Debian's chromium package", pytrace=False)
    async with async_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def snap(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=f"{SCREENSHOTS}/{name}.png", full_page=True)


async def sign_in(browser: Browser, admin_url: str, token: str, reviewer: str, **context: Any) -> Page:
    page = await (await browser.new_context(**context)).new_page()
    await page.goto(f"{admin_url}/console/")
    assert page.url.endswith("/console/login")  # not signed in: sent to sign in
    await page.fill("input[name=token]", token)
    await page.fill("input[name=reviewer]", reviewer)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{admin_url}/console/")
    return page


async def image_loaded(page: Page, selector: str, timeout: float = 10.0) -> bool:
    """The image arrived and decoded (the element exists before its picture does): False if not within the time."""
    try:
        await page.wait_for_function(
            "selector => { const img = document.querySelector(selector);"
            " return img !== null && img.complete && img.naturalWidth > 0; }",
            arg=selector,
            timeout=timeout * 1000,
        )
    except PlaywrightTimeout:
        return False
    return True


async def test_reviewers_decide_with_the_keyboard_and_the_platform_gets_signed_decisions(
    worker_env: dict[str, str],
    monkeypatch,
    broker: Broker,
    image_server: ImageServer,
    moderation_api: RedFlagApi,
    browser: Browser,
    sink: Sink,
) -> None:
    env = {
        **worker_env,
        "FRAMEWATCH_FETCH_RETRY_DELAYS": "0.2",
        "FRAMEWATCH_FETCH_TIMEOUT": "10",  # only the unfetchable frame dead-letters, however loaded the machine
        "FRAMEWATCH_DELIVER_INTERVAL": "0.2",
    }
    settings = settings_from(monkeypatch, env, **moderation_api.settings())
    await apply_config(settings, pipeline_config(sink))
    await apply_config(settings, OTHER_CONFIG)
    token, other_token = await token_for(settings), await token_for(settings, "other")
    store = ConfigStore(settings.database_url.get_secret_value())
    streams = StreamStore(store.engine)
    try:
        async with serve_ingress(settings) as ingress, serve_workers(settings, STAGES), aiohttp.ClientSession() as s:
            frames = [shot(image_server, 1), shot(image_server, 2, "bad"), shot(image_server, 3, "bad", "s2")]
            for body in frames:
                assert (await post(s, ingress.callbacks, body))[0] == 200
            await wait_until(lambda: _count(streams.flagged(1), 2), timeout=20)
            await wait_until(lambda: _has_cover(streams, "test.app", "s1"), timeout=20)  # frame 1 may come last

            page = await sign_in(browser, ingress.admin_url, token, "alice")
            [cookie] = await page.context.cookies()
            assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == ("fw_console", True, "Strict")
            assert cookie["path"] == "/console"

            # The live wall: s1's cover loads; s2 has only a flagged frame, so no cover at all.
            await page.wait_for_selector('.tile[data-key="test.app/s1"] img')
            assert await image_loaded(page, '.tile[data-key="test.app/s1"] img')
            s2 = await page.inner_text('.tile[data-key="test.app/s2"]')
            assert s2 == "no safe frame yet\ns2 live · test.app Block"
            # A new stream appears by itself (server-sent events), no reload.
            assert (await post(s, ingress.callbacks, shot(image_server, 4, "good", "s3")))[0] == 200
            await page.wait_for_selector('.tile[data-key="test.app/s3"] img', timeout=15_000)
            await page.wait_for_function("document.querySelector('.tile[data-key=\"test.app/s3\"] img').naturalWidth")
            await snap(page, "wall")

            # Review queue: newest first, images load, the keyboard decides.
            await page.click("nav >> text=Review")
            await page.wait_for_selector(".item.current")
            ids = await page.eval_on_selector_all(".item", "items => items.map(i => i.dataset.id)")
            assert len(ids) == 2
            for index in (1, 2):
                assert await image_loaded(page, f".item:nth-child({index}) img")
            await snap(page, "review")
            await page.keyboard.press("v")  # the first (current) frame: a violation
            await page.wait_for_selector(f'.item[data-id="{ids[0]}"][data-decision="violation"]')
            await page.wait_for_selector(f'.item[data-id="{ids[1]}"].current')  # moved on to the next
            await page.keyboard.press("n")
            await page.wait_for_selector(f'.item[data-id="{ids[1]}"][data-decision="not_violation"]')
            await snap(page, "review-decided")

            def decisions() -> list[Any]:
                return [d for d in sink.deliveries["/violations"] if d.body.get("event_type") == "review_decision"]

            await wait_until(lambda: len(decisions()) == 2, timeout=10)
            by_frame = {d.body["frame"]["eventId"]: d for d in decisions()}
            assert by_frame[ids[0]].body["decision"] == "violation"
            assert by_frame[ids[1]].body["decision"] == "not_violation"
            assert {d.body["reviewer"] for d in decisions()} == {"alice"}
            violation_ids = {d.headers["webhook-id"] for d in sink.deliveries["/violations"]} - {
                d.headers["webhook-id"] for d in decisions()
            }
            assert len(violation_ids) == 2  # each decision has its own webhook-id, not its violation's
            assert sink.bad_signatures == 0  # every one verified by the official standardwebhooks library
            decided = await streams.flagged(1, pending_only=False)
            assert {(f.decision, f.decided_by) for f in decided} == {("violation", "alice"), ("not_violation", "alice")}

            # Quality: per label and source, one confirmed and one dismissed.
            await page.click("nav >> text=Quality")
            row = await page.inner_text("table.quality tbody tr")
            assert row.split("\t")[:6] == ["Porn", "http/127.0.0.1", "1", "1", "0", "50%"]
            await snap(page, "quality")

            # A form without the session's CSRF token is refused, even with the session's cookie.
            cookies = {cookie["name"]: cookie["value"]}
            form = {"id": ids[0], "decision": "violation"}
            async with s.post(f"{ingress.admin_url}/console/review/decide", data=form, cookies=cookies) as refused:
                assert refused.status == 403

            # Dead letters: a frame that can never be fetched, listed and replayed from the page.
            assert (await post(s, ingress.callbacks, shot(image_server, 5, "missing", "s4")))[0] == 200
            await wait_until(lambda: broker.at_least("fetch.dead", 1), timeout=20)
            await page.click("nav >> text=Dead letters")
            await page.wait_for_selector("text=http_404")
            await snap(page, "dlq")
            await page.click("section:has(h2:has-text('fetch')) >> text=Replay all")
            notice = await (await page.wait_for_selector("text=/replayed into fetch/")).inner_text()
            assert int(notice.split()[0]) >= 1  # the unfetchable frame (and any a loaded machine timed out)

            # Another account: nothing of the first one's, anywhere.
            other = await sign_in(browser, ingress.admin_url, other_token, "bob")
            assert await other.locator(".tile").count() == 0
            await other.goto(f"{ingress.admin_url}/console/review?status=all")
            assert await other.locator(".item").count() == 0
            answer = await other.goto(f"{ingress.admin_url}/console/frames/{ids[0]}")
            assert answer is not None and answer.status == 404
            answer = await other.goto(f"{ingress.admin_url}/console/streams/test.app/s1")
            assert answer is not None and answer.status == 404
            await other.goto(f"{ingress.admin_url}/console/dlq")
            assert await other.locator("td code").count() == 0
            await other.goto(f"{ingress.admin_url}/console/quality")
            assert await other.inner_text("table.quality tbody") == "No flagged frame yet."

            # Phone-sized: the queue still fits the screen's width.
            phone = await sign_in(browser, ingress.admin_url, token, "alice", viewport={"width": 390, "height": 844})
            await phone.goto(f"{ingress.admin_url}/console/review?status=all")
            width = await phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390
            await snap(phone, "review-phone")

            # Signing out ends the session on the server, not only in this browser.
            await page.click("text=Sign out")
            await page.wait_for_url(f"{ingress.admin_url}/console/login")
            async with s.get(f"{ingress.admin_url}/console/review", cookies=cookies, allow_redirects=False) as gone:
                assert gone.status == 303
    finally:
        await store.close()


async def _count(rows: Any, n: int) -> bool:
    return len(await rows) == n


async def _has_cover(streams: StreamStore, domain: str, stream: str) -> bool:
    return (await streams.cover(domain, stream))[1] is not None


async def test_a_wrong_token_is_refused_and_guessing_is_throttled(configured, amqp, browser: Browser) -> None:
    async with serve_ingress(configured) as ingress:
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{ingress.admin_url}/console/login")
        await page.fill("input[name=token]", "fw_not-a-token")
        await page.click("button[type=submit]")
        assert await page.inner_text("[role=alert]") == "That token is not valid."
        async with aiohttp.ClientSession() as s:
            statuses = []
            for _ in range(22):
                async with s.post(f"{ingress.admin_url}/console/login", data={"token": "fw_guess"}) as answer:
                    statuses.append(answer.status)
            assert statuses[:19] == [401] * 19 and statuses[-1] == 429
            async with s.get(f"{ingress.admin_url}/console/events") as anonymous:
                assert anonymous.status == 401

"""The official Tencent Cloud SDK (tencentcloud-sdk-python), unmodified, pointed at the admin listener: every
callback template and rule action, the errors its exception carries, and its TC3 signing refused when it should be.
The signing in these tests is the SDK's own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from tencentcloud.common import abstract_client, credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.live.v20180801 import live_client, models

from tests.conftest import RunningIngress, serve_ingress, settings_from
from tests.helpers import KEY, post, run_cli, screenshot, signed, wait_until

PUBLIC = "https://93.184.215.14/hooks"  # an IP literal: public, and checked without DNS


def key_pair(env: dict[str, str], account: str) -> tuple[str, str]:
    assert run_cli("accounts", "create", account, env=env).returncode == 0
    result = run_cli("accounts", "keys", "create", account, env=env)
    assert result.returncode == 0, result.stderr
    key_id, secret = result.stdout.strip().splitlines()[-1].split(" ")
    return key_id, secret


def client(ingress: RunningIngress, key_id: str, secret: str, method: str = "POST") -> live_client.LiveClient:
    http = HttpProfile(protocol="http", endpoint=ingress.admin_url.removeprefix("http://"), reqMethod=method)
    return live_client.LiveClient(
        credential.Credential(key_id, secret), "ap-guangzhou", ClientProfile(httpProfile=http)
    )


async def next_second() -> None:
    """Until X-TC-Timestamp changes: a new signature for the same parameters."""
    await asyncio.sleep(1 - time.time() % 1 + 0.01)


def request(model: type, **fields: Any) -> Any:
    built = model()
    for name, value in fields.items():
        setattr(built, name, value)
    return built


@dataclass
class Sdk:
    ingress: RunningIngress
    env: dict[str, str]
    acme: live_client.LiveClient
    other: live_client.LiveClient
    key: tuple[str, str]

    async def __call__(self, action: str, sdk: live_client.LiveClient | None = None, **fields: Any) -> Any:
        """One SDK call, off the event loop (the SDK is synchronous); its response model."""
        call: Callable[[Any], Any] = getattr(sdk or self.acme, action)
        return await asyncio.to_thread(call, request(getattr(models, f"{action}Request"), **fields))

    async def refused(self, action: str, sdk: live_client.LiveClient | None = None, **fields: Any) -> str:
        with pytest.raises(TencentCloudSDKException) as raised:
            await self(action, sdk, **fields)
        assert raised.value.get_request_id()
        return str(raised.value.get_code())


@pytest.fixture
async def sdk(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, amqp: None) -> AsyncIterator[Sdk]:
    settings = settings_from(monkeypatch, env, deliver_allow_private="false")  # notify URLs checked as in production
    acme, other = key_pair(env, "acme"), key_pair(env, "other")
    async with serve_ingress(settings) as ingress:
        yield Sdk(ingress, env, client(ingress, *acme), client(ingress, *other), acme)


async def test_every_template_and_rule_action_through_the_sdk(sdk: Sdk) -> None:
    created = await sdk(
        "CreateLiveCallbackTemplate",
        TemplateName="main",
        CallbackKey=KEY,
        Description="made by the SDK",
        SnapshotNotifyUrl=f"{PUBLIC}/snap",
        StreamMixNotifyUrl=f"{PUBLIC}/mix",
        AudioAuditNotifyUrl=f"{PUBLIC}/audio",
        RecordExceptionNotifyUrl=f"{PUBLIC}/exception",
        RecordExceptionLevels=["error"],
    )
    template_id = created.TemplateId
    assert isinstance(template_id, int) and created.RequestId
    listed = await sdk("DescribeLiveCallbackTemplates")
    [info] = listed.Templates
    assert (info.TemplateId, info.TemplateName, info.Description) == (template_id, "main", "made by the SDK")
    assert (info.SnapshotNotifyUrl, info.StreamMixNotifyUrl, info.AudioAuditNotifyUrl) == (
        f"{PUBLIC}/snap",
        f"{PUBLIC}/mix",
        f"{PUBLIC}/audio",
    )
    assert info.RecordExceptionLevels == ["error"] and info.CallbackKey == KEY
    await sdk("ModifyLiveCallbackTemplate", TemplateId=template_id, Description="changed")
    one = await sdk("DescribeLiveCallbackTemplate", TemplateId=template_id)
    assert one.Template.Description == "changed"

    await sdk("CreateLiveCallbackRule", DomainName="sdk.acme.com", AppName="", TemplateId=template_id)
    [rule] = (await sdk("DescribeLiveCallbackRules")).Rules
    assert (rule.DomainName, rule.TemplateId, rule.AppName) == ("sdk.acme.com", template_id, "")
    assert time.strptime(rule.CreateTime, "%Y-%m-%d %H:%M:%S") and rule.UpdateTime  # as Tencent writes them
    # A domain bound through the SDK serves callbacks within a second.
    async with aiohttp.ClientSession() as session:
        numbers = iter(range(1_000_000))

        async def accepted() -> bool:
            body = signed(screenshot(next(numbers), domain="sdk.acme.com"))
            return (await post(session, sdk.ingress.callbacks, body))[0] == 200

        await wait_until(accepted, timeout=1.0)
    online = await sdk("DescribeLiveStreamOnlineList", DomainName="sdk.acme.com", PageNum=1, PageSize=10)
    assert (online.TotalNum, online.OnlineInfo, online.PageSize) == (0, [], 10)

    # The SDK signs the body, not the action: a change right after a read with the same parameters, in the same
    # second, would carry the read's signature (refused as a replay). A real client signs again a second later.
    await next_second()
    assert await sdk.refused("DeleteLiveCallbackTemplate", TemplateId=template_id) == "FailedOperation.ConfInUsed"
    await sdk("DeleteLiveCallbackRule", DomainName="sdk.acme.com")
    await next_second()
    await sdk("DeleteLiveCallbackTemplate", TemplateId=template_id)
    assert (await sdk("DescribeLiveCallbackTemplates")).Templates == []


async def test_get_requests_are_signed_over_the_query(sdk: Sdk) -> None:
    by_get = client(sdk.ingress, *sdk.key, method="GET")
    created = await sdk("CreateLiveCallbackTemplate", by_get, TemplateName="by get", CallbackKey=KEY)
    one = await sdk("DescribeLiveCallbackTemplate", by_get, TemplateId=created.TemplateId)
    assert one.Template.TemplateName == "by get"


async def test_tencent_error_codes_reach_the_sdk(sdk: Sdk) -> None:
    assert await sdk.refused("DescribeLiveCallbackTemplate", TemplateId=999999) == "InvalidParameter.ConfNotFound"
    unsafe = {"TemplateName": "x", "SnapshotNotifyUrl": "http://169.254.169.254/x"}
    assert await sdk.refused("CreateLiveCallbackTemplate", **unsafe) == "InvalidParameter.UrlNotSafe"
    assert await sdk.refused("DeleteLiveCallbackRule", DomainName="none.acme.com") == "InternalError.RuleNotFound"
    mine = (await sdk("CreateLiveCallbackTemplate", TemplateName="mine", CallbackKey=KEY)).TemplateId
    await sdk("CreateLiveCallbackRule", DomainName="taken.acme.com", TemplateId=mine)
    theirs = (await sdk("CreateLiveCallbackTemplate", sdk.other, TemplateName="theirs", CallbackKey=KEY)).TemplateId
    bind = {"DomainName": "taken.acme.com", "TemplateId": theirs}
    assert await sdk.refused("CreateLiveCallbackRule", sdk.other, **bind) == "FailedOperation.RuleAlreadyExist"
    # Two accounts never see each other's configuration.
    assert [t.TemplateName for t in (await sdk("DescribeLiveCallbackTemplates", sdk.other)).Templates] == ["theirs"]
    assert await sdk.refused("DescribeLiveCallbackTemplate", sdk.other, TemplateId=mine) == (
        "InvalidParameter.ConfNotFound"
    )


async def test_at_most_fifty_templates_as_tencent_says(sdk: Sdk) -> None:
    for n in range(50):
        await sdk("CreateLiveCallbackTemplate", TemplateName=f"t{n}", CallbackKey=KEY)
    assert await sdk.refused("CreateLiveCallbackTemplate", TemplateName="t50") == "InternalError.ConfOutLimit"
    assert len((await sdk("DescribeLiveCallbackTemplates")).Templates) == 50


async def test_signatures_refused_as_tencent_refuses_them(sdk: Sdk, monkeypatch: pytest.MonkeyPatch) -> None:
    key_id, secret = sdk.key
    wrong_secret = client(sdk.ingress, key_id, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert await sdk.refused("DescribeLiveCallbackTemplates", wrong_secret) == "AuthFailure.SignatureFailure"
    unknown = client(sdk.ingress, "FWK" + "0" * 21, secret)
    assert await sdk.refused("DescribeLiveCallbackTemplates", unknown) == "AuthFailure.SecretIdNotFound"

    class TenMinutesAgo:  # the SDK's clock only: it signs with a timestamp outside the window
        @staticmethod
        def time() -> float:
            return time.time() - 600

    with monkeypatch.context() as patched:
        patched.setattr(abstract_client, "time", TenMinutesAgo)
        assert await sdk.refused("DescribeLiveCallbackTemplates") == "AuthFailure.SignatureExpire"

    assert run_cli("accounts", "keys", "revoke", "acme", key_id, env=sdk.env).returncode == 0
    assert await sdk.refused("DescribeLiveCallbackTemplates") == "AuthFailure.SecretIdNotFound"
    listing = run_cli("accounts", "keys", "list", "acme", env=sdk.env).stdout
    assert key_id in listing and "revoked" in listing and secret not in listing

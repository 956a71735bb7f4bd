"""The official Alibaba Cloud SDKs, unmodified, pointed at the admin listener: aliyun-python-sdk-live (RPC style,
HMAC-SHA1) and alibabacloud_live20161101 (V3, ACS3-HMAC-SHA256) run the four detect notify actions; their
exceptions carry Alibaba's codes; wrong secrets, unknown or revoked keys, stale timestamps and replayed nonces are
refused. The signing in these tests is the SDKs' own."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from alibabacloud_live20161101 import models as v3_models
from alibabacloud_live20161101.client import Client as V3Client
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from alibabacloud_tea_openapi.utils_models import Config
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.utils import parameter_helper
from aliyunsdklive.request.v20161101 import (
    AddLiveDetectNotifyConfigRequest,
    DeleteLiveDetectNotifyConfigRequest,
    DescribeLiveDetectNotifyConfigRequest,
    UpdateLiveDetectNotifyConfigRequest,
)

from tests.conftest import RunningIngress, serve_ingress, settings_from
from tests.helpers import run_cli
from tests.test_cloud_api_tencent import key_pair

PUBLIC = "https://93.184.215.14/hooks"
RPC = {
    "Add": AddLiveDetectNotifyConfigRequest.AddLiveDetectNotifyConfigRequest,
    "Describe": DescribeLiveDetectNotifyConfigRequest.DescribeLiveDetectNotifyConfigRequest,
    "Update": UpdateLiveDetectNotifyConfigRequest.UpdateLiveDetectNotifyConfigRequest,
    "Delete": DeleteLiveDetectNotifyConfigRequest.DeleteLiveDetectNotifyConfigRequest,
}


@dataclass
class Rpc:
    """aliyun-python-sdk-core's AcsClient: everything in the signed query."""

    ingress: RunningIngress
    key_id: str
    secret: str

    async def __call__(self, verb: str, **params: str) -> dict[str, Any]:
        request = RPC[verb]()
        request.set_endpoint(self.ingress.admin_url.removeprefix("http://"))
        request.set_protocol_type("http")
        for name, value in params.items():
            getattr(request, f"set_{name}")(value)
        client = AcsClient(self.key_id, self.secret, "cn-shanghai")
        raw = await asyncio.to_thread(client.do_action_with_exception, request)
        return json.loads(raw)

    async def refused(self, verb: str, **params: str) -> tuple[int, str]:
        with pytest.raises(ServerException) as raised:
            await self(verb, **params)
        assert raised.value.get_request_id()
        return raised.value.get_http_status(), raised.value.get_error_code()


@dataclass
class V3:
    """alibabacloud_live20161101: ACS3-HMAC-SHA256 in Authorization, the x-acs-* headers."""

    ingress: RunningIngress
    key_id: str
    secret: str

    def client(self) -> V3Client:
        endpoint = self.ingress.admin_url.removeprefix("http://")
        config = Config(access_key_id=self.key_id, access_key_secret=self.secret, endpoint=endpoint, protocol="http")
        return V3Client(config)

    async def __call__(self, verb: str, **params: str) -> Any:
        action = f"{verb}LiveDetectNotifyConfig"
        model = getattr(v3_models, f"{action}Request")
        method = getattr(self.client(), "_".join(part.lower() for part in _split(action)))
        return await asyncio.to_thread(method, model(**params))

    async def refused(self, verb: str, **params: str) -> str:
        with pytest.raises(AlibabaCloudException) as raised:
            await self(verb, **params)
        return str(raised.value.code)


def _split(name: str) -> list[str]:
    parts, current = [], ""
    for char in name:
        if char.isupper() and current:
            parts.append(current)
            current = ""
        current += char
    return [*parts, current]


@dataclass
class Clouds:
    ingress: RunningIngress
    env: dict[str, str]
    rpc: Rpc
    v3: V3
    other: Rpc


@pytest.fixture
async def clouds(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, amqp: None) -> AsyncIterator[Clouds]:
    settings = settings_from(monkeypatch, env, deliver_allow_private="false")
    acme, other = key_pair(env, "acme"), key_pair(env, "other")
    async with serve_ingress(settings) as ingress:
        yield Clouds(ingress, env, Rpc(ingress, *acme), V3(ingress, *acme), Rpc(ingress, *other))


async def test_the_detect_notify_actions_through_the_rpc_sdk(clouds: Clouds) -> None:
    rpc = clouds.rpc
    added = await rpc("Add", DomainName="rpc.acme.com", NotifyUrl=f"{PUBLIC}/v1")
    assert added["RequestId"]
    found = await rpc("Describe", DomainName="rpc.acme.com")
    assert found["LiveDetectNotifyConfig"] == {"DomainName": "rpc.acme.com", "NotifyUrl": f"{PUBLIC}/v1"}
    await rpc("Update", DomainName="rpc.acme.com", NotifyUrl=f"{PUBLIC}/v2")
    assert (await rpc("Describe", DomainName="rpc.acme.com"))["LiveDetectNotifyConfig"]["NotifyUrl"] == f"{PUBLIC}/v2"
    assert await rpc.refused("Add", DomainName="rpc.acme.com", NotifyUrl=f"{PUBLIC}/v3") == (400, "ConfigAlreadyExists")
    assert await rpc.refused("Add", DomainName="b.acme.com", NotifyUrl="not a url") == (
        400,
        "InvalidNotifyUrl.Malformed",
    )
    unsafe = {"DomainName": "b.acme.com", "NotifyUrl": "http://169.254.169.254/x"}
    assert await rpc.refused("Add", **unsafe) == (400, "InvalidNotifyUrl.Unsafe")
    # Another account sees none of it.
    assert await clouds.other.refused("Describe", DomainName="rpc.acme.com") == (404, "InvalidConfig.NotFound")
    await rpc("Delete", DomainName="rpc.acme.com")
    assert await rpc.refused("Describe", DomainName="rpc.acme.com") == (404, "InvalidConfig.NotFound")


async def test_the_detect_notify_actions_through_the_v3_sdk(clouds: Clouds) -> None:
    v3 = clouds.v3
    await v3("Add", domain_name="v3.acme.com", notify_url=f"{PUBLIC}/v1")
    found = await v3("Describe", domain_name="v3.acme.com")
    assert found.body.live_detect_notify_config.notify_url == f"{PUBLIC}/v1" and found.body.request_id
    await v3("Update", domain_name="v3.acme.com", notify_url=f"{PUBLIC}/v2")
    assert (await v3("Describe", domain_name="v3.acme.com")).body.live_detect_notify_config.notify_url.endswith("v2")
    assert await v3.refused("Add", domain_name="v3.acme.com", notify_url=f"{PUBLIC}/v3") == "ConfigAlreadyExists"
    await v3("Delete", domain_name="v3.acme.com")
    assert await v3.refused("Delete", domain_name="v3.acme.com") == "InvalidConfig.NotFound"


async def test_signatures_refused_as_alibaba_refuses_them(clouds: Clouds, monkeypatch: pytest.MonkeyPatch) -> None:
    rpc, v3 = clouds.rpc, clouds.v3
    wrong = Rpc(clouds.ingress, rpc.key_id, rpc.secret[:-1] + ("A" if rpc.secret[-1] != "A" else "B"))
    # The SDK matches the server's string to sign with its own and names the fault a wrong secret, as with Alibaba.
    assert await wrong.refused("Describe", DomainName="a.acme.com") == (400, "InvalidAccessKeySecret")
    wrong_v3 = V3(clouds.ingress, v3.key_id, ("y" if v3.secret[0] == "x" else "x") + v3.secret[1:])
    assert await wrong_v3.refused("Describe", domain_name="a.acme.com") == "SignatureDoesNotMatch"
    unknown = Rpc(clouds.ingress, "FWK" + "0" * 21, rpc.secret)
    assert await unknown.refused("Describe", DomainName="a.acme.com") == (404, "InvalidAccessKeyId.NotFound")

    with monkeypatch.context() as patched:  # the SDK's clock only
        patched.setattr(parameter_helper, "get_iso_8061_date", lambda: _iso(time.time() - 3600))
        assert await rpc.refused("Describe", DomainName="a.acme.com") == (400, "InvalidTimeStamp.Expired")
    with monkeypatch.context() as patched:  # the same nonce twice: the second is a replay
        patched.setattr(parameter_helper, "get_uuid", lambda: "framewatch-test-nonce-1")
        assert (await rpc.refused("Describe", DomainName="a.acme.com"))[1] == "InvalidConfig.NotFound"
        assert await rpc.refused("Describe", DomainName="a.acme.com") == (400, "SignatureNonceUsed")

    assert run_cli("accounts", "keys", "revoke", "acme", rpc.key_id, env=clouds.env).returncode == 0
    assert await rpc.refused("Describe", DomainName="a.acme.com") == (404, "InvalidAccessKeyId.NotFound")
    assert await v3.refused("Describe", domain_name="a.acme.com") == "InvalidAccessKeyId.NotFound"


async def test_the_common_parameters_are_accepted_and_json_or_xml_answered(clouds: Clouds) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{clouds.ingress.admin_url}/", params={"Action": "AddLiveDetectNotifyConfig"}) as r:
            assert r.status == 400 and (await r.json())["Code"] == "MissingParameter"  # unsigned: no key, no run


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))

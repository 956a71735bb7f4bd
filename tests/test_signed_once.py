"""A signed request runs once, as signed, on the cloud-compatible API: requests the official SDKs signed, captured on
the wire by a relay and sent again changed as an attacker would; the Node.js SDK's signing; Tencent's legacy
signatures; malformed signatures. Every signature here is an SDK's own."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis
from aliyunsdkcore.acs_exception.exceptions import ServerException
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.live.v20180801 import live_client, models

from tests.capture import CapturingRelay
from tests.conftest import RunningIngress, serve_ingress, settings_from
from tests.helpers import KEY, REDIS_URL, free_port, run_cli, wait_until
from tests.test_cloud_api_alibaba import PUBLIC, Rpc
from tests.test_cloud_api_tencent import key_pair, request

ROOT = Path(__file__).resolve().parent.parent
NODE_SDK = ROOT / ".cache" / "node"  # the npm registry's tencentcloud-sdk-nodejs, installed by the first test here


def tencent(endpoint: str, key: tuple[str, str], sign_method: str = "TC3-HMAC-SHA256") -> live_client.LiveClient:
    http = HttpProfile(protocol="http", endpoint=endpoint)
    profile = ClientProfile(httpProfile=http, signMethod=sign_method)
    return live_client.LiveClient(credential.Credential(*key), "ap-guangzhou", profile)


async def call(client: live_client.LiveClient, action: str, **fields: object) -> object:
    return await asyncio.to_thread(getattr(client, action), request(getattr(models, f"{action}Request"), **fields))


async def refused(client: live_client.LiveClient, action: str, **fields: object) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as raised:
        await call(client, action, **fields)
    return raised.value


@pytest.fixture
async def admin(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, amqp: None) -> AsyncIterator[RunningIngress]:
    settings = settings_from(monkeypatch, env)
    async with serve_ingress(settings) as ingress:
        yield ingress


@pytest.fixture
async def relay(admin: RunningIngress) -> AsyncIterator[CapturingRelay]:
    running = await CapturingRelay(admin.admin_url).start()
    yield running
    await running.stop()


def error_of(answer: bytes) -> str | None:
    response = orjson.loads(answer)["Response"]
    return response["Error"]["Code"] if "Error" in response else None


async def test_a_captured_tencent_read_never_replays_as_a_change(
    admin: RunningIngress, relay: CapturingRelay, env: dict[str, str]
) -> None:
    key = key_pair(env, "acme")
    sdk = tencent(relay.endpoint, key)
    created = await call(sdk, "CreateLiveCallbackTemplate", TemplateName="main", CallbackKey=KEY)
    await call(sdk, "CreateLiveCallbackRule", DomainName="acme.example.com", AppName="", TemplateId=created.TemplateId)
    await call(sdk, "DescribeLiveStreamOnlineList", DomainName="acme.example.com")
    read = relay.captured[-1]
    assert read.headers["X-TC-Action"] == "DescribeLiveStreamOnlineList"

    # The same bytes, the unsigned X-TC-Action changed: refused with the SDK's auth code, and nothing changes.
    status, answer, content_type = await relay.replay(read, X_TC_Action="DeleteLiveCallbackRule")
    assert (status, content_type) == (200, "application/json")
    assert error_of(answer) == "AuthFailure.SignatureFailure"
    assert "Sign the request again" in orjson.loads(answer)["Response"]["Error"]["Message"]
    rules = await call(sdk, "DescribeLiveCallbackRules")
    assert [rule.DomainName for rule in rules.Rules] == ["acme.example.com"]

    # A read sent twice (two genuine calls in one second share a signature) is answered both times.
    assert error_of((await relay.replay(read))[1]) is None

    # A change runs once per signature: sent again, as itself or as another change, it is refused.
    modify = next(c for c in relay.captured if c.headers["X-TC-Action"] == "CreateLiveCallbackRule")
    assert error_of((await relay.replay(modify))[1]) == "AuthFailure.SignatureFailure"


async def test_tencent_signatures_are_remembered_across_replicas_through_redis(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, amqp: None
) -> None:
    settings = settings_from(monkeypatch, env, redis_url=REDIS_URL)
    key = key_pair(env, "acme")
    async with serve_ingress(settings) as one, serve_ingress(settings) as two:
        relay = await CapturingRelay(one.admin_url).start()
        try:
            await call(tencent(relay.endpoint, key), "DescribeLiveCallbackTemplates")
            relay.target = two.admin_url  # the captured read, replayed as a change at another replica
            _, answer, _ = await relay.replay(relay.captured[-1], X_TC_Action="DeleteLiveCallbackTemplate")
            assert error_of(answer) == "AuthFailure.SignatureFailure"
        finally:
            await relay.stop()


async def test_legacy_tencent_signatures_get_a_tencent_error_the_sdk_reports(
    admin: RunningIngress, env: dict[str, str]
) -> None:
    key = key_pair(env, "acme")
    for method in ("HmacSHA1", "HmacSHA256"):
        error = await refused(
            tencent(admin.admin_url.removeprefix("http://"), key, method), "DescribeLiveCallbackRules"
        )
        assert error.get_code() == "AuthFailure.InvalidAuthorization", (method, error)
        assert "TC3-HMAC-SHA256" in error.get_message() and error.get_request_id()


@pytest.fixture(scope="session")
def node_sdk() -> Path:
    """tencentcloud-sdk-nodejs from the npm registry, installed once into .cache/node; fails without npm."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("node and npm are needed: the official Tencent Node.js SDK is tested", pytrace=False)
    if not (NODE_SDK / "node_modules" / "tencentcloud-sdk-nodejs" / "package.json").exists():
        NODE_SDK.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(NODE_SDK), "tencentcloud-sdk-nodejs@4"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-2000:]
    return NODE_SDK / "node_modules"


NODE_CALL = """
const { live } = require("tencentcloud-sdk-nodejs");
const [endpoint, secretId, secretKey] = process.argv.slice(1);
const client = new live.v20180801.Client({
  credential: { secretId, secretKey }, region: "ap-guangzhou",
  profile: { httpProfile: { endpoint, protocol: "http://" } },
});
client.DescribeLiveCallbackTemplates({}).then(
  (answer) => console.log(JSON.stringify({ templates: answer.Templates.map((t) => t.TemplateName) })),
  (error) => console.log(JSON.stringify({ code: error.code || null, message: String(error.message || error) })),
);
"""


async def test_the_official_node_sdk_signs_and_is_verified_with_a_port_and_any_host_name(
    admin: RunningIngress, env: dict[str, str], node_sdk: Path
) -> None:
    key = key_pair(env, "acme")
    await call(tencent(admin.admin_url.removeprefix("http://"), key), "CreateLiveCallbackTemplate", TemplateName="n")
    port = admin.admin_url.rsplit(":", 1)[1]

    async def node(endpoint: str, secret_id: str, secret_key: str) -> dict[str, object]:
        result = await asyncio.to_thread(
            subprocess.run,
            ["node", "-e", NODE_CALL, endpoint, secret_id, secret_key],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "NODE_PATH": str(node_sdk)},
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    for endpoint in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert await node(endpoint, *key) == {"templates": ["n"]}, endpoint
    # A wrong secret is still a wrong signature, whichever way the SDK signs.
    assert (await node(f"127.0.0.1:{port}", key[0], key[1][::-1]))["code"] == "AuthFailure.SignatureFailure"


async def test_alibaba_rpc_runs_only_its_signed_action(admin: RunningIngress, env: dict[str, str]) -> None:
    key = key_pair(env, "acme")
    direct = Rpc(admin, *key)
    await direct("Add", DomainName="acme.example.com", NotifyUrl="http://127.0.0.1:9/hooks")
    relay = await CapturingRelay(admin.admin_url, add_headers={"x-acs-action": "DeleteLiveDetectNotifyConfig"}).start()
    try:
        through = Rpc(admin, *key)
        through.ingress = RunningIngress(admin.url, f"http://{relay.endpoint}", admin.app)
        answer = await through("Describe", DomainName="acme.example.com")
    finally:
        await relay.stop()
    assert answer["LiveDetectNotifyConfig"]["NotifyUrl"] == "http://127.0.0.1:9/hooks"  # the signed Describe ran
    still = await direct("Describe", DomainName="acme.example.com")
    assert still["LiveDetectNotifyConfig"]["DomainName"] == "acme.example.com"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own, on a port of its own (the test stops and restarts it)."""
    port = free_port()
    started = [start_redis(port, tmp_path)]
    yield port, started[0]
    for process in started:
        process.send_signal(signal.SIGTERM)


async def answers(client: aioredis.Redis) -> bool:
    try:
        return bool(await client.ping())
    except aioredis.ConnectionError:
        return False


def start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_a_nonce_accepted_while_redis_was_away_stays_refused_when_it_returns(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, amqp: None, tmp_path: Path, own_redis: tuple
) -> None:
    port, server = own_redis
    url = f"redis://127.0.0.1:{port}/0"
    probe = aioredis.Redis.from_url(url)
    await wait_until(lambda: answers(probe), timeout=10)
    settings = settings_from(monkeypatch, env, redis_url=url)
    key = key_pair(env, "acme")
    async with serve_ingress(settings) as ingress:
        relay = await CapturingRelay(ingress.admin_url).start()
        try:
            through = Rpc(ingress, *key)
            through.ingress = RunningIngress(ingress.url, f"http://{relay.endpoint}", ingress.app)
            server.send_signal(signal.SIGKILL)  # Redis away
            server.wait()
            with pytest.raises(ServerException) as missing:
                await through("Describe", DomainName="acme.example.com")  # accepted: answered by the action
            assert missing.value.get_error_code() == "InvalidConfig.NotFound"
            captured = relay.captured[-1]
            restarted = start_redis(port, tmp_path)
            try:
                await wait_until(lambda: answers(probe), timeout=10)
                status, answer, _ = await relay.replay(captured)
                assert (status, orjson.loads(answer)["Code"]) == (400, "SignatureNonceUsed")
                nonce = dict(part.split("=", 1) for part in captured.path_qs.split("?", 1)[1].split("&"))
                # ... and written to Redis for the other replicas once it answered again.
                assert await probe.exists(f"{settings.broker.namespace}:nonce:{nonce['SignatureNonce']}")
            finally:
                restarted.send_signal(signal.SIGTERM)
                restarted.wait()
        finally:
            await relay.stop()
            await probe.aclose()


MALFORMED_TENCENT = [
    "TC3-HMAC-SHA256 Credential=FWK/2026-01-01/live/tc3_request, SignedHeaders=content-type;host, Signature=é" * 2,
    "TC3-HMAC-SHA256 Credential=FWKé/2026-01-01/live/tc3_request, SignedHeaders=content-type;host, Signature="
    + "0" * 64,
    "TC3-HMAC-SHA256 Credential=FWK/2026-01-01/live/tc3_request, SignedHeaders=content-type;host, Signature=00",
    "TC3-HMAC-SHA256 garbage",
]


async def test_malformed_signatures_are_auth_errors_counted_by_the_throttle(
    admin: RunningIngress, env: dict[str, str]
) -> None:
    key_id, _ = key_pair(env, "acme")
    async with aiohttp.ClientSession() as session:
        codes = []
        for authorization in MALFORMED_TENCENT:
            headers = {"X-TC-Action": "DescribeLiveCallbackRules", "Authorization": authorization}
            headers |= {"Content-Type": "application/json", "X-TC-Timestamp": "1", "X-TC-Version": "2018-08-01"}
            async with session.post(admin.admin_url + "/", data=b"{}", headers=headers) as answer:
                assert answer.status == 200
                codes.append((await answer.json())["Response"]["Error"]["Code"])
        assert all(code.startswith("AuthFailure") for code in codes), codes
        rpc = {"Action": "DescribeLiveDetectNotifyConfig", "AccessKeyId": key_id, "SignatureMethod": "HMAC-SHA1"}
        for signature in ("é", "\x00", "x" * 5000, "ZmFrZQ=="):
            async with session.get(admin.admin_url + "/", params={**rpc, "Signature": signature}) as answer:
                assert answer.status == 400 and (await answer.json())["Code"] == "SignatureDoesNotMatch"
        v3 = {"Authorization": "ACS3-HMAC-SHA256 Credential=" + key_id + ",SignedHeaders=host,Signature=ü"}
        async with session.post(admin.admin_url + "/", data=b"", headers=v3) as answer:
            assert answer.status == 400 and (await answer.json())["Code"] == "IncompleteSignature"
        # 4 + 4 + 1 failures so far: the address is throttled after 20, whichever dialect failed.
        for _ in range(11):
            async with session.get(admin.admin_url + "/", params={**rpc, "Signature": "é"}) as answer:
                assert answer.status == 400
        async with session.get(admin.admin_url + "/", params={**rpc, "Signature": "é"}) as answer:
            assert (await answer.json())["Code"] == "Throttling.User"


async def test_a_keys_last_use_is_noted_only_once_its_signature_verified(
    admin: RunningIngress, env: dict[str, str]
) -> None:
    key_id, secret = key_pair(env, "acme")
    endpoint = admin.admin_url.removeprefix("http://")
    forged = await refused(
        tencent(admin.admin_url.removeprefix("http://"), (key_id, "x" * 40)), "DescribeLiveCallbackRules"
    )
    assert forged.get_code() == "AuthFailure.SignatureFailure"
    listing = run_cli("accounts", "keys", "list", "acme", env=env).stdout
    assert "never" in listing.split(key_id, 1)[1].splitlines()[0], listing
    await call(tencent(endpoint, (key_id, secret)), "DescribeLiveCallbackRules")
    listing = run_cli("accounts", "keys", "list", "acme", env=env).stdout
    assert "never" not in listing.split(key_id, 1)[1].splitlines()[0], listing


async def test_notify_urls_at_link_local_or_metadata_addresses_are_refused_even_where_private_ones_are_allowed(
    admin: RunningIngress, env: dict[str, str]
) -> None:
    assert env["FRAMEWATCH_DELIVER_ALLOW_PRIVATE"] == "true"
    key = key_pair(env, "acme")
    sdk = tencent(admin.admin_url.removeprefix("http://"), key)
    for url in ("http://169.254.169.254/latest", "http://100.100.100.200/x", "http://[fe80::1]/x"):
        error = await refused(sdk, "CreateLiveCallbackTemplate", TemplateName="t", SnapshotNotifyUrl=url)
        assert error.get_code() == "InvalidParameter.UrlNotSafe", url
        code = (await Rpc(admin, *key).refused("Add", DomainName="a.example.com", NotifyUrl=url))[1]
        assert code == "InvalidNotifyUrl.Unsafe", url
    await call(sdk, "CreateLiveCallbackTemplate", TemplateName="t", SnapshotNotifyUrl="http://127.0.0.1:9/ok")
    await Rpc(admin, *key)("Add", DomainName="a.example.com", NotifyUrl=PUBLIC)

"""The admin API at /api, on SQLite and on PostgreSQL: every action and error code, JSON and XML, accounts kept
apart, throttling, audit, and changes live on every process within a second."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any
from xml.etree import ElementTree

import aiohttp
import orjson
import pytest
from sqlalchemy import select

from framewatch.admin import accounts
from framewatch.config import tables as t
from framewatch.config.store import ConfigStore
from framewatch.settings import Settings
from tests.conftest import RunningIngress, serve_ingress, settings_from
from tests.helpers import REDIS_URL, IngressProcess, partial_post, post, run_cli, screenshot, signed

PUBLIC = "https://93.184.215.14/hooks"  # an IP literal: public, and checked without DNS
KEY = "apiKey123"


class Api:
    def __init__(self, ingress: RunningIngress, session: aiohttp.ClientSession, tokens: dict[str, str]) -> None:
        self.ingress = ingress
        self.session = session
        self.tokens = tokens
        self.settings: Settings | None = None

    async def call(self, action: str, account: str = "acme", post_form: bool = False, **params: Any) -> Any:
        """(status, JSON body) of one call; `Format="XML"` gives the parsed XML element instead."""
        params = {"Action": action, **{k: str(v) for k, v in params.items()}}
        headers = {"Authorization": f"Bearer {self.tokens[account]}"} if account else {}
        url = f"{self.ingress.admin_url}/api"
        request = (
            self.session.post(url, data=params, headers=headers)
            if post_form
            else self.session.get(url, params=params, headers=headers)
        )
        async with request as response:
            raw = await response.read()
            if params.get("Format") == "XML":
                assert response.content_type == "application/xml"
                return response.status, ElementTree.fromstring(raw)
            assert response.content_type == "application/json"
            return response.status, orjson.loads(raw)

    async def ok(self, action: str, account: str = "acme", **params: Any) -> dict[str, Any]:
        status, body = await self.call(action, account, **params)
        assert status == 200, body
        assert body["RequestId"]
        return body

    async def refused(self, action: str, account: str = "acme", **params: Any) -> tuple[int, str]:
        status, body = await self.call(action, account, **params)
        assert set(body) == {"Code", "Message", "RequestId", "HostId"}, body
        return status, body["Code"]

    async def template(self, name: str = "main", account: str = "acme", **params: Any) -> int:
        fields = {"TemplateName": name, "CallbackKey": KEY, "SnapshotNotifyUrl": f"{PUBLIC}/snap", **params}
        return int((await self.ok("CreateLiveCallbackTemplate", account, **fields))["TemplateId"])

    async def callback(self, domain: str, n: int, key: str = KEY) -> int:
        status, _ = await post(self.session, self.ingress.callbacks, signed(screenshot(n, domain=domain), key=key))
        return status


@pytest.fixture
async def api(
    database_url: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, amqp: None
) -> AsyncIterator[Api]:
    settings = settings_from(
        monkeypatch, env, database_url=database_url, deliver_allow_private="false", redis_url=REDIS_URL
    )
    store = ConfigStore(database_url)
    await store.migrate()
    tokens = {name: await accounts.issue_token(store, name, replace=False) for name in ("acme", "other")}
    await store.close()
    async with serve_ingress(settings) as ingress, aiohttp.ClientSession() as session:
        api = Api(ingress, session, tokens)
        api.settings = settings
        yield api


async def test_template_actions(api: Api) -> None:
    template_id = await api.template(Description="main one", PornCensorshipNotifyUrl=f"{PUBLIC}/porn")
    listed = (await api.ok("DescribeLiveCallbackTemplates"))["Templates"]
    assert [(t["TemplateId"], t["TemplateName"], t["Description"]) for t in listed] == [
        (template_id, "main", "main one")
    ]
    one = (await api.ok("DescribeLiveCallbackTemplate", TemplateId=template_id))["Template"]
    assert one["SnapshotNotifyUrl"] == f"{PUBLIC}/snap" and one["PornCensorshipNotifyUrl"] == f"{PUBLIC}/porn"
    assert one["StreamBeginNotifyUrl"] == "" and one["CallbackKey"] == KEY

    await api.ok("ModifyLiveCallbackTemplate", TemplateId=template_id, SnapshotNotifyUrl="", Description="changed")
    one = (await api.ok("DescribeLiveCallbackTemplate", TemplateId=template_id))["Template"]
    assert (one["SnapshotNotifyUrl"], one["Description"], one["PornCensorshipNotifyUrl"]) == (
        "",
        "changed",
        f"{PUBLIC}/porn",
    )
    await api.ok("DeleteLiveCallbackTemplate", TemplateId=template_id)
    assert (await api.ok("DescribeLiveCallbackTemplates"))["Templates"] == []
    assert await api.refused("DescribeLiveCallbackTemplate", TemplateId=template_id) == (
        404,
        "ResourceNotFound.TemplateNotFound",
    )


async def test_rules_turn_callbacks_on_and_off(api: Api) -> None:
    template_id = await api.template()
    assert await api.callback("live.acme.com", 1) == 403  # callbacks are off until the domain is bound
    await api.ok("CreateLiveCallbackRule", DomainName="Live.Acme.com", AppName="", TemplateId=template_id)
    assert (await api.ok("DescribeLiveCallbackRules"))["Rules"][0] | {"CreateTime": None, "UpdateTime": None} == {
        "DomainName": "live.acme.com",
        "AppName": "",
        "TemplateId": template_id,
        "CreateTime": None,
        "UpdateTime": None,
    }
    assert await api.callback("live.acme.com", 2) == 200  # the change is live at once in this process
    assert await api.callback("live.acme.com", 3, key="wrongKey1") == 401
    assert await api.refused("DeleteLiveCallbackTemplate", TemplateId=template_id) == (
        400,
        "FailedOperation.ConfInUsed",
    )

    # Key rotation through the API: the previous key keeps working during the overlap.
    await api.ok("ModifyLiveCallbackTemplate", TemplateId=template_id, CallbackKey="rotatedKey9")
    assert await api.callback("live.acme.com", 4, key="rotatedKey9") == 200
    assert await api.callback("live.acme.com", 5) == 200

    await api.ok("DeleteLiveCallbackRule", DomainName="live.acme.com")
    assert await api.callback("live.acme.com", 6, key="rotatedKey9") == 403
    assert (await api.ok("DescribeLiveCallbackRules"))["Rules"] == []
    await api.ok("DeleteLiveCallbackTemplate", TemplateId=template_id)


async def test_detect_notify_actions(api: Api) -> None:
    await api.ok("AddLiveDetectNotifyConfig", DomainName="live.acme.com", NotifyUrl=f"{PUBLIC}/v1")
    assert (await api.ok("DescribeLiveDetectNotifyConfig", DomainName="live.acme.com"))["LiveDetectNotifyConfig"] == {
        "DomainName": "live.acme.com",
        "NotifyUrl": f"{PUBLIC}/v1",
    }
    assert await api.refused("AddLiveDetectNotifyConfig", DomainName="live.acme.com", NotifyUrl=f"{PUBLIC}/v2") == (
        400,
        "ConfigAlreadyExists",
    )
    await api.ok("UpdateLiveDetectNotifyConfig", DomainName="live.acme.com", NotifyUrl=f"{PUBLIC}/v2")
    found = await api.ok("DescribeLiveDetectNotifyConfig", DomainName="live.acme.com")
    assert found["LiveDetectNotifyConfig"]["NotifyUrl"] == f"{PUBLIC}/v2"
    await api.ok("DeleteLiveDetectNotifyConfig", DomainName="live.acme.com")
    for action in ("DescribeLiveDetectNotifyConfig", "DeleteLiveDetectNotifyConfig"):
        assert await api.refused(action, DomainName="live.acme.com") == (404, "InvalidConfig.NotFound")
    assert await api.refused("UpdateLiveDetectNotifyConfig", DomainName="live.acme.com", NotifyUrl=PUBLIC) == (
        404,
        "InvalidConfig.NotFound",
    )


NEW = {"TemplateName": "x", "CallbackKey": KEY}
AT = {"DomainName": "a.example.com"}


@pytest.mark.parametrize(
    ("action", "params", "expected"),
    [
        ("", {}, (400, "MissingParameter")),
        ("DeleteEverything", {}, (400, "InvalidAction")),
        ("CreateLiveCallbackTemplate", {"CallbackKey": KEY}, (400, "MissingParameter")),
        ("CreateLiveCallbackTemplate", {"TemplateName": "x", "CallbackKey": "not ok!"}, (400, "InvalidParameter")),
        ("CreateLiveCallbackTemplate", {**NEW, "AllowUnsigned": "maybe"}, (400, "InvalidParameter")),
        ("CreateLiveCallbackTemplate", {**NEW, "SnapShotNotifyUrl": PUBLIC}, (400, "UnknownParameter")),
        (
            "CreateLiveCallbackTemplate",
            {**NEW, "SnapshotNotifyUrl": "ftp://a.example.com/x"},
            (400, "InvalidNotifyUrl.Malformed"),
        ),
        (
            "CreateLiveCallbackTemplate",
            {**NEW, "SnapshotNotifyUrl": "http://10.1.2.3/x"},
            (400, "InvalidNotifyUrl.Unsafe"),
        ),
        ("DescribeLiveCallbackTemplate", {"TemplateId": "abc"}, (400, "InvalidParameter")),
        ("DescribeLiveCallbackTemplate", {}, (400, "MissingParameter")),
        ("ModifyLiveCallbackTemplate", {"TemplateId": "999999"}, (404, "ResourceNotFound.TemplateNotFound")),
        ("DeleteLiveCallbackTemplate", {"TemplateId": "999999"}, (404, "ResourceNotFound.TemplateNotFound")),
        ("CreateLiveCallbackRule", {**AT, "TemplateId": "999999"}, (404, "ResourceNotFound.TemplateNotFound")),
        ("CreateLiveCallbackRule", {"DomainName": "not a domain", "TemplateId": "1"}, (400, "InvalidParameter")),
        ("DeleteLiveCallbackRule", AT, (404, "ResourceNotFound.RuleNotFound")),
        ("AddLiveDetectNotifyConfig", AT, (400, "MissingParameter")),
        ("AddLiveDetectNotifyConfig", {**AT, "NotifyUrl": "not a url"}, (400, "InvalidNotifyUrl.Malformed")),
        ("AddLiveDetectNotifyConfig", {**AT, "NotifyUrl": "javascript:alert(1)"}, (400, "InvalidNotifyUrl.Malformed")),
        ("AddLiveDetectNotifyConfig", {**AT, "NotifyUrl": "http://127.0.0.1:8080/x"}, (400, "InvalidNotifyUrl.Unsafe")),
        (
            "AddLiveDetectNotifyConfig",
            {**AT, "NotifyUrl": "http://169.254.169.254/latest"},
            (400, "InvalidNotifyUrl.Unsafe"),
        ),
        ("AddLiveDetectNotifyConfig", {**AT, "NotifyUrl": "http://[fd00::1]/x"}, (400, "InvalidNotifyUrl.Unsafe")),
        # 6to4, NAT64 and Teredo addresses that embed loopback or the metadata address.
        (
            "AddLiveDetectNotifyConfig",
            {**AT, "NotifyUrl": "http://[2002:7f00:1::1]/x"},
            (400, "InvalidNotifyUrl.Unsafe"),
        ),
        (
            "AddLiveDetectNotifyConfig",
            {**AT, "NotifyUrl": "http://[2002:a9fe:a9fe::1]/x"},
            (400, "InvalidNotifyUrl.Unsafe"),
        ),
        (
            "AddLiveDetectNotifyConfig",
            {**AT, "NotifyUrl": "http://[64:ff9b::a9fe:a9fe]/x"},
            (400, "InvalidNotifyUrl.Unsafe"),
        ),
        (
            "AddLiveDetectNotifyConfig",
            {**AT, "NotifyUrl": "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/x"},
            (400, "InvalidNotifyUrl.Unsafe"),
        ),
        ("AddLiveDetectNotifyConfig", {**AT, "NotifyUrl": "http://localhost/x"}, (400, "InvalidNotifyUrl.Unsafe")),
        ("DescribeLiveDetectNotifyConfig", AT, (404, "InvalidConfig.NotFound")),
    ],
)
async def test_every_error_code(api: Api, action: str, params: dict[str, str], expected: tuple[int, str]) -> None:
    assert await api.refused(action, **params) == expected
    assert (await api.ok("DescribeLiveCallbackTemplates"))["Templates"] == []  # nothing was written


async def test_authentication(api: Api) -> None:
    status, body = await api.call("DescribeLiveCallbackTemplates", account="")
    assert (status, body["Code"]) == (401, "AuthFailure.InvalidAuthorization")
    api.tokens["forged"] = "fw_" + "A" * 43
    assert await api.refused("DescribeLiveCallbackTemplates", account="forged") == (401, "AuthFailure.TokenFailure")


async def test_one_domain_one_template_and_at_most_fifty(api: Api) -> None:
    first, second = await api.template("first"), await api.template("second")
    assert await api.refused("CreateLiveCallbackTemplate", TemplateName="first", CallbackKey=KEY) == (
        400,
        "InvalidParameter.TemplateNameExists",
    )
    await api.ok("CreateLiveCallbackRule", DomainName="live.acme.com", TemplateId=first)
    assert await api.refused("CreateLiveCallbackRule", DomainName="live.acme.com", TemplateId=second) == (
        400,
        "InvalidParameter.DomainAlreadyBound",
    )
    for n in range(48):
        await api.template(f"t{n}")
    assert await api.refused("CreateLiveCallbackTemplate", TemplateName="t51", CallbackKey=KEY) == (
        400,
        "LimitExceeded",
    )
    assert len((await api.ok("DescribeLiveCallbackTemplates"))["Templates"]) == 50
    await api.template("theirs", account="other")  # the limit is per account


async def test_accounts_are_isolated(api: Api) -> None:
    mine = await api.template()
    await api.ok("CreateLiveCallbackRule", DomainName="live.acme.com", TemplateId=mine)
    await api.ok("AddLiveDetectNotifyConfig", DomainName="live.acme.com", NotifyUrl=f"{PUBLIC}/v")

    assert (await api.ok("DescribeLiveCallbackTemplates", account="other"))["Templates"] == []
    assert (await api.ok("DescribeLiveCallbackRules", account="other"))["Rules"] == []
    not_found = (404, "ResourceNotFound.TemplateNotFound")
    assert await api.refused("DescribeLiveCallbackTemplate", "other", TemplateId=mine) == not_found
    assert await api.refused("ModifyLiveCallbackTemplate", "other", TemplateId=mine, CallbackKey="stolen1") == not_found
    assert await api.refused("DeleteLiveCallbackTemplate", "other", TemplateId=mine) == not_found
    assert await api.refused("CreateLiveCallbackRule", "other", DomainName="x.other.com", TemplateId=mine) == not_found
    theirs = await api.template(account="other")
    assert await api.refused("CreateLiveCallbackRule", "other", DomainName="live.acme.com", TemplateId=theirs) == (
        400,
        "InvalidParameter.DomainAlreadyBound",
    )
    assert await api.refused("DeleteLiveCallbackRule", "other", DomainName="live.acme.com") == (
        404,
        "ResourceNotFound.RuleNotFound",
    )
    for action in ("DescribeLiveDetectNotifyConfig", "DeleteLiveDetectNotifyConfig"):
        assert await api.refused(action, "other", DomainName="live.acme.com") == (404, "InvalidConfig.NotFound")
    assert await api.refused("UpdateLiveDetectNotifyConfig", "other", DomainName="live.acme.com", NotifyUrl=PUBLIC) == (
        404,
        "InvalidConfig.NotFound",
    )
    # Another account's domain cannot be given a violations URL: those violations are not theirs to receive.
    await api.ok("DeleteLiveDetectNotifyConfig", DomainName="live.acme.com")
    assert await api.refused("AddLiveDetectNotifyConfig", "other", DomainName="live.acme.com", NotifyUrl=PUBLIC) == (
        404,
        "InvalidDomain.NotFound",
    )
    # Everything of acme's is intact and still serves callbacks.
    assert (await api.ok("DescribeLiveCallbackTemplate", TemplateId=mine))["Template"]["CallbackKey"] == KEY
    assert await api.callback("live.acme.com", 1) == 200


async def test_xml_responses(api: Api) -> None:
    status, created = await api.call(
        "CreateLiveCallbackTemplate", Format="XML", TemplateName="x", CallbackKey=KEY, post_form=True
    )
    assert status == 200 and created.tag == "CreateLiveCallbackTemplateResponse"
    assert created.findtext("RequestId") and created.findtext("TemplateId").isdigit()
    status, listed = await api.call("DescribeLiveCallbackTemplates", Format="XML")
    assert [node.findtext("TemplateName") for node in listed.findall("Templates/Template")] == ["x"]
    assert listed.findtext("Templates/Template/AllowUnsigned") == "false"
    status, added = await api.call(
        "AddLiveDetectNotifyConfig", Format="XML", DomainName="live.acme.com", NotifyUrl=f"{PUBLIC}/v"
    )
    assert (status, added.tag, [child.tag for child in added]) == (
        200,
        "AddLiveDetectNotifyConfigResponse",
        ["RequestId"],
    )
    status, error = await api.call(
        "AddLiveDetectNotifyConfig", Format="XML", DomainName="live.acme.com", NotifyUrl=f"{PUBLIC}/v"
    )
    assert (status, error.tag, error.findtext("Code"), error.findtext("Message")) == (
        400,
        "Error",
        "ConfigAlreadyExists",
        "Config has already exist.",
    )
    assert error.findtext("RequestId") and error.findtext("HostId")


async def test_thirty_detect_notify_calls_per_second_per_account(api: Api) -> None:
    async def burst(account: str, n: int) -> list[int]:
        calls = [api.call("DescribeLiveDetectNotifyConfig", account, DomainName="a.example.com") for _ in range(n)]
        return [status for status, _ in await asyncio.gather(*calls)]

    started = time.monotonic()
    statuses = await burst("acme", 45)
    assert time.monotonic() - started < 1.0, "the burst must fit in one second for the count to be exact"
    assert statuses.count(404) == 30 and statuses.count(429) == 15  # 404: let through (no config exists)
    status, body = await api.call("DescribeLiveDetectNotifyConfig", DomainName="a.example.com")
    assert (status, body["Code"]) == (429, "Throttling.User")
    assert (await burst("other", 5)).count(404) == 5  # per account
    await asyncio.sleep(1.05)
    assert (await burst("acme", 5)).count(404) == 5  # the window slides on


async def test_throttling_is_shared_by_replicas(api: Api) -> None:
    # A second replica on the same store and Redis: 20 calls on each still admit 30 in all.
    async with serve_ingress(api.settings) as second:
        other = Api(second, api.session, api.tokens)

        async def twenty(on: Api) -> list[int]:
            calls = [on.call("DescribeLiveDetectNotifyConfig", DomainName="a.example.com") for _ in range(20)]
            return [status for status, _ in await asyncio.gather(*calls)]

        first, second = await asyncio.gather(twenty(api), twenty(other))
        statuses = first + second
        assert statuses.count(404) == 30 and statuses.count(429) == 10


async def test_every_change_is_audited_without_secrets(api: Api, database_url: str) -> None:
    template_id = await api.template()
    await api.ok("ModifyLiveCallbackTemplate", TemplateId=template_id, CallbackKey="secretKey77")
    await api.ok("CreateLiveCallbackRule", DomainName="live.acme.com", TemplateId=template_id)
    await api.refused("DeleteLiveCallbackTemplate", TemplateId=template_id)  # refused: not a change
    store = ConfigStore(database_url)
    try:
        async with store.engine.connect() as conn:
            rows = (await conn.execute(select(t.audit_log).order_by(t.audit_log.c.id))).all()
            acme = await conn.scalar(select(t.accounts.c.id).where(t.accounts.c.name == "acme"))
    finally:
        await store.close()
    changes = [(row.account_id, row.action, orjson.loads(row.params)) for row in rows if row.action != "IssueToken"]
    assert [action for _, action, _ in changes] == [
        "CreateLiveCallbackTemplate",
        "ModifyLiveCallbackTemplate",
        "CreateLiveCallbackRule",
    ]
    assert all(account == acme for account, _, _ in changes)
    assert changes[1][2] == {"TemplateId": str(template_id), "CallbackKey": "(set)"}
    assert KEY not in str([row.params for row in rows]) and "secretKey77" not in str([row.params for row in rows])


async def test_accounts_cli(api: Api, env: dict[str, str], database_url: str) -> None:
    cli_env = {**env, "FRAMEWATCH_DATABASE_URL": database_url}
    created = run_cli("accounts", "create", "newco", env=cli_env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    api.tokens["newco"] = token
    assert (await api.ok("DescribeLiveCallbackTemplates", account="newco"))["Templates"] == []
    again = run_cli("accounts", "create", "newco", env=cli_env)
    assert again.returncode == 2 and "AccountHasToken" in again.stderr and token not in again.stdout
    rotated = run_cli("accounts", "rotate", "newco", env=cli_env)
    assert await api.refused("DescribeLiveCallbackTemplates", account="newco") == (401, "AuthFailure.TokenFailure")
    api.tokens["newco"] = rotated.stdout.strip().splitlines()[-1]
    await api.ok("DescribeLiveCallbackTemplates", account="newco")


async def test_a_change_reaches_every_ingress_process_within_a_second(
    database_url: str, env: dict[str, str], amqp: None
) -> None:
    # The poll backstop is a minute away: only the change announcement can make this pass.
    proc_env = {**env, "FRAMEWATCH_DATABASE_URL": database_url, "FRAMEWATCH_CONFIG_RELOAD_INTERVAL": "60"}
    store = ConfigStore(database_url)
    await store.migrate()
    token = await accounts.issue_token(store, "acme", replace=False)
    await store.close()
    replicas = [IngressProcess(proc_env), IngressProcess(proc_env)]
    try:
        await asyncio.gather(*(replica.wait_ready() for replica in replicas))
        async with aiohttp.ClientSession() as session:
            running = RunningIngress(replicas[0].url, replicas[0].admin_url, None)  # type: ignore[arg-type]
            first = Api(running, session, {"acme": token})
            numbers = iter(range(1, 10_000))

            async def statuses() -> list[int]:
                body = signed(screenshot(next(numbers), domain="live.acme.com"), key=KEY)
                return [(await post(session, f"{r.url}/callbacks/tencent", body))[0] for r in replicas]

            async def within_a_second(expected: int) -> float:
                changed = time.monotonic()
                while await statuses() != [expected, expected]:
                    assert time.monotonic() - changed < 1.0, "a replica still serves the old config after 1 s"
                    await asyncio.sleep(0.02)
                return time.monotonic() - changed

            template_id = await first.template()
            assert await statuses() == [403, 403]
            await first.ok("CreateLiveCallbackRule", DomainName="live.acme.com", TemplateId=template_id)
            await within_a_second(200)
            await first.ok("DeleteLiveCallbackRule", DomainName="live.acme.com")
            await within_a_second(403)
    finally:
        for replica in replicas:
            replica.terminate()


async def test_each_template_has_its_own_webhook_secret(api: Api) -> None:
    """Made at random at creation (whsec_ + base64 of 32 bytes), returned to its account, changeable, validated."""
    first, second = await api.template("one"), await api.template("two")
    described = {t["TemplateId"]: t for t in (await api.ok("DescribeLiveCallbackTemplates"))["Templates"]}
    secrets = [described[first]["WebhookSecret"], described[second]["WebhookSecret"]]
    for secret in secrets:
        assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secrets[0] != secrets[1]
    chosen = "whsec_" + base64.b64encode(b"\x07" * 32).decode()
    await api.ok("ModifyLiveCallbackTemplate", TemplateId=first, WebhookSecret=chosen)
    one = (await api.ok("DescribeLiveCallbackTemplate", TemplateId=first))["Template"]
    assert one["WebhookSecret"] == chosen
    for bad in ("plainsecret", "whsec_not*base64", "whsec_" + base64.b64encode(b"short").decode()):
        assert await api.refused("ModifyLiveCallbackTemplate", TemplateId=first, WebhookSecret=bad) == (
            400,
            "InvalidParameter",
        )
    assert await api.refused("DescribeLiveCallbackTemplate", "other", TemplateId=first) == (
        404,
        "ResourceNotFound.TemplateNotFound",
    )


async def test_the_account_that_binds_a_domain_controls_its_detect_notify_config(api: Api) -> None:
    """Both orders. Config first, by another account: binding drops it, and the binder configures its own.
    Binding first: no other account can add, read, update or delete the domain's config."""
    await api.ok("AddLiveDetectNotifyConfig", "other", DomainName="early.acme.com", NotifyUrl=f"{PUBLIC}/theirs")
    mine = await api.template()
    await api.ok("CreateLiveCallbackRule", DomainName="early.acme.com", TemplateId=mine)
    await api.ok("AddLiveDetectNotifyConfig", DomainName="early.acme.com", NotifyUrl=f"{PUBLIC}/mine")
    found = await api.ok("DescribeLiveDetectNotifyConfig", DomainName="early.acme.com")
    assert found["LiveDetectNotifyConfig"]["NotifyUrl"] == f"{PUBLIC}/mine"
    gone = (404, "InvalidConfig.NotFound")
    assert await api.refused("DescribeLiveDetectNotifyConfig", "other", DomainName="early.acme.com") == gone
    assert await api.refused("DeleteLiveDetectNotifyConfig", "other", DomainName="early.acme.com") == gone
    assert api.settings is not None
    store = ConfigStore(api.settings.database_url.get_secret_value())
    try:  # what the deliver stage serves: the binder's URL
        assert (await store.snapshot()).detect_notify["early.acme.com"] == f"{PUBLIC}/mine"
    finally:
        await store.close()

    await api.ok("CreateLiveCallbackRule", DomainName="late.acme.com", TemplateId=mine)
    not_theirs = (404, "InvalidDomain.NotFound")
    params = {"DomainName": "late.acme.com", "NotifyUrl": f"{PUBLIC}/theirs"}
    assert await api.refused("AddLiveDetectNotifyConfig", "other", **params) == not_theirs
    await api.ok("AddLiveDetectNotifyConfig", DomainName="late.acme.com", NotifyUrl=f"{PUBLIC}/mine")
    assert await api.refused("UpdateLiveDetectNotifyConfig", "other", **params) == gone
    assert await api.refused("DescribeLiveDetectNotifyConfig", "other", DomainName="late.acme.com") == gone


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # Digits that are not ASCII digits are no id, and never a 500.
        ({"TemplateId": "²"}, (400, "InvalidParameter")),
        ({"TemplateId": "①"}, (400, "InvalidParameter")),
        ({"TemplateId": "\uff11"}, (400, "InvalidParameter")),  # a fullwidth 1
        ({"TemplateId": str(2**31)}, (400, "InvalidParameter")),  # past the column (PostgreSQL's integer)
        ({"TemplateId": "0"}, (400, "InvalidParameter")),
    ],
)
async def test_ids_are_validated_to_their_column(api: Api, params: dict[str, str], expected: tuple) -> None:
    assert await api.refused("DescribeLiveCallbackTemplate", **params) == expected


async def test_text_is_validated_to_its_column(api: Api) -> None:
    mine = await api.template()
    invalid = (400, "InvalidParameter")
    too_long_app = {"DomainName": "a.acme.com", "AppName": "x" * 256, "TemplateId": mine}
    assert await api.refused("CreateLiveCallbackRule", **too_long_app) == invalid
    assert await api.refused("ModifyLiveCallbackTemplate", TemplateId=mine, Description="nul\x00inside") == invalid
    assert await api.refused("ModifyLiveCallbackTemplate", TemplateId=mine, Description="bell\x07") == invalid
    long_url = f"{PUBLIC}/" + "x" * 60_000
    form = {"DomainName": "a.acme.com", "NotifyUrl": long_url}  # in a form: no URL carries 60 KB
    status, body = await api.call("AddLiveDetectNotifyConfig", post_form=True, **form)
    assert (status, body["Code"]) == invalid
    # Line breaks and tabs are text; the XML answer stays parseable whatever a template holds.
    await api.ok("ModifyLiveCallbackTemplate", TemplateId=mine, Description="two\nlines\tand a tab")
    status, xml = await api.call("DescribeLiveCallbackTemplate", TemplateId=mine, Format="XML")
    assert status == 200 and xml.find("Template/Description").text == "two\nlines\tand a tab"


async def test_an_anonymous_slow_client_is_answered_from_its_headers(api: Api) -> None:
    form = "application/x-www-form-urlencoded"
    headers = f"Content-Type: {form}\r\n"
    status, body, waited = await partial_post(api.ingress.admin_url, "/api", headers, 1000, b"Action=")
    assert (status, body["Code"]) == (401, "AuthFailure.InvalidAuthorization") and waited < 2


async def test_an_authenticated_body_that_trickles_in_is_refused_in_time(
    database_url: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, amqp: None
) -> None:
    settings = settings_from(monkeypatch, env, database_url=database_url, body_read_timeout="0.5")
    store = ConfigStore(database_url)
    await store.migrate()
    token = await accounts.issue_token(store, "acme", replace=False)
    await store.close()
    async with serve_ingress(settings) as ingress:
        headers = f"Authorization: Bearer {token}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        status, body, waited = await partial_post(ingress.admin_url, "/api", headers, 1000, b"Action=Describe")
    assert (status, body["Code"]) == (408, "RequestTimeout") and body["RequestId"]
    assert 0.4 < waited < 3


async def test_failed_authentications_are_throttled_per_address(api: Api) -> None:
    api.tokens["forged"] = "fw_" + "B" * 43
    codes = [(await api.refused("DescribeLiveCallbackTemplates", account="forged")) for _ in range(25)]
    assert codes[:20] == [(401, "AuthFailure.TokenFailure")] * 20
    assert codes[20:] == [(429, "RequestLimitExceeded")] * 5


async def test_tencent_template_fields_and_an_optional_callback_key(api: Api) -> None:
    """Every field of Tencent's CallBackTemplateInfo is stored and described; a template may have no CallbackKey,
    and callbacks for a domain it binds are then refused with a code that says so."""
    urls = {
        f"{name}NotifyUrl": f"{PUBLIC}/{name}"
        for name in ("StreamMix", "RecordStatus", "AudioAudit", "RecordException")
    }
    fields = {"TemplateName": "nokey", "RecordExceptionLevels.0": "error", "RecordExceptionLevels.1": "alarm", **urls}
    template_id = int((await api.ok("CreateLiveCallbackTemplate", **fields))["TemplateId"])
    info = (await api.ok("DescribeLiveCallbackTemplate", TemplateId=template_id))["Template"]
    assert {k: info[k] for k in urls} == urls
    assert info["RecordExceptionLevels"] == ["alarm", "error"] and info["CallbackKey"] == ""
    assert await api.refused("ModifyLiveCallbackTemplate", TemplateId=template_id, RecordExceptionLevels="panic") == (
        400,
        "InvalidParameter",
    )
    await api.ok("CreateLiveCallbackRule", DomainName="nokey.acme.com", TemplateId=template_id)
    status, answer = await post(
        api.session, api.ingress.callbacks, signed(screenshot(1, domain="nokey.acme.com"), key=KEY)
    )
    assert (status, answer["error"]) == (403, "NoCallbackKey")
    await api.ok("ModifyLiveCallbackTemplate", TemplateId=template_id, CallbackKey=KEY)
    assert await api.callback("nokey.acme.com", 2) == 200

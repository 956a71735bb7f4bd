"""The clouds' configuration actions: Tencent's callback templates and rules, Alibaba's detect notify configs
(docs/protocols/tencent.md §6, docs/protocols/alibaba.md §4).

Each action returns its response fields (the API adds RequestId) or raises ConfigError with the provider's code.
An account sees only its own templates, rules and configs: another account's look exactly like missing ones.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from framewatch.admin.context import Context
from framewatch.config import ownership, validate, webhook_secrets
from framewatch.config import tables as t
from framewatch.config.errors import ConfigError
from framewatch.config.store import WEBHOOK_SECRET_COLUMNS, rotated_values
from framewatch.runtime.times import plausible

Handler = Callable[[Context], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Action:
    name: str
    handler: Handler
    params: tuple[str, ...]
    rate: int  # calls per second per account, as the provider documents for this action
    throttle_code: str


ACTIONS: dict[str, Action] = {}

# The template's URL parameters and their columns.
URL_PARAMS = {
    "StreamBeginNotifyUrl": "stream_begin_notify_url",
    "StreamEndNotifyUrl": "stream_end_notify_url",
    "RecordNotifyUrl": "record_notify_url",
    "SnapshotNotifyUrl": "snapshot_notify_url",
    "PornCensorshipNotifyUrl": "porn_censorship_notify_url",
    "PushExceptionNotifyUrl": "push_exception_notify_url",
    "StreamMixNotifyUrl": "stream_mix_notify_url",
    "RecordStatusNotifyUrl": "record_status_notify_url",
    "AudioAuditNotifyUrl": "audio_audit_notify_url",
    "RecordExceptionNotifyUrl": "record_exception_notify_url",
}
TEMPLATE_PARAMS = (
    "TemplateName",
    "Description",
    "CallbackKey",
    "AllowUnsigned",
    "WebhookSecret",
    "RecordExceptionLevels",
    *URL_PARAMS,
)
# Documented limits: Tencent 200/s for changes and 500/s for reads; Alibaba's detect notify actions 30/s.
TENCENT_WRITE = (200, "RequestLimitExceeded")
TENCENT_READ = (500, "RequestLimitExceeded")
ALIBABA = (30, "Throttling.User")


def action(name: str, params: tuple[str, ...], limit: tuple[int, str]) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ACTIONS[name] = Action(name, handler, params, *limit)
        return handler

    return register


def _time(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _template_not_found(template_id: int) -> ConfigError:
    return ConfigError("ResourceNotFound.TemplateNotFound", f"Template {template_id} does not exist.", 404)


async def _own_template(ctx: Context, conn: AsyncConnection, template_id: int) -> Any:
    query = select(t.templates).where(t.templates.c.id == template_id, t.templates.c.account_id == ctx.account_id)
    row = (await conn.execute(query)).first()
    if row is None:
        raise _template_not_found(template_id)
    return row


# The template parameters and the columns they land in.
TEMPLATE_COLUMNS = {
    "TemplateName": "name",
    "Description": "description",
    "CallbackKey": "callback_key",
    "WebhookSecret": "webhook_secret",
    **URL_PARAMS,
}


async def _template_values(ctx: Context) -> dict[str, Any]:
    """Column values for the template parameters given; an empty URL clears it."""
    p = ctx.params
    given: dict[str, Any] = {}
    for param, column in TEMPLATE_COLUMNS.items():
        if (value := p.optional(param)) is not None:
            given[column] = value
    if (levels := p.optional("RecordExceptionLevels")) is not None:
        given["record_exception_levels"] = levels.split(",") if levels else []
    if (allow_unsigned := p.boolean("AllowUnsigned")) is not None:
        given["allow_unsigned"] = allow_unsigned
    return await validate.template_columns(given, ctx.allow_private_urls)


def _template_info(row: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "TemplateId": row.id,
        "TemplateName": row.name,
        "Description": row.description,
        "CallbackKey": row.callback_key or "",
        "AllowUnsigned": bool(row.allow_unsigned),
        "WebhookSecret": row.webhook_secret or "",
    }
    info.update({param: getattr(row, column) or "" for param, column in URL_PARAMS.items()})
    info["RecordExceptionLevels"] = orjson.loads(row.record_exception_levels or "[]")
    info["CreateTime"], info["UpdateTime"] = _time(row.created_at), _time(row.updated_at)
    return info


@action("CreateLiveCallbackTemplate", TEMPLATE_PARAMS, TENCENT_WRITE)
async def create_template(ctx: Context) -> dict[str, Any]:
    ctx.params.required("TemplateName")
    values = await _template_values(ctx)
    if not values.get("webhook_secret"):
        values["webhook_secret"] = webhook_secrets.new()
    now = int(time.time())
    async with ctx.change() as conn:
        await _refuse_taken_name(ctx, conn, values["name"])
        result = await conn.execute(
            insert(t.templates).values(**values, account_id=ctx.account_id, created_at=now, updated_at=now)
        )
        await ownership.check_template_limit(ctx.store, conn, ctx.account_id)
    return {"TemplateId": int(result.inserted_primary_key[0])}


async def _refuse_taken_name(ctx: Context, conn: AsyncConnection, name: str, but: int | None = None) -> None:
    query = select(t.templates.c.id).where(t.templates.c.account_id == ctx.account_id, t.templates.c.name == name)
    found = await conn.scalar(query)
    if found is not None and found != but:
        raise ConfigError("InvalidParameter.TemplateNameExists", f"A template named {name!r} already exists.")


@action("DescribeLiveCallbackTemplates", (), TENCENT_READ)
async def describe_templates(ctx: Context) -> dict[str, Any]:
    async with ctx.read() as conn:
        query = select(t.templates).where(t.templates.c.account_id == ctx.account_id).order_by(t.templates.c.id)
        return {"Templates": [_template_info(row) for row in await conn.execute(query)]}


@action("DescribeLiveCallbackTemplate", ("TemplateId",), TENCENT_READ)
async def describe_template(ctx: Context) -> dict[str, Any]:
    template_id = ctx.params.integer("TemplateId")
    async with ctx.read() as conn:
        return {"Template": _template_info(await _own_template(ctx, conn, template_id))}


@action("ModifyLiveCallbackTemplate", ("TemplateId", *TEMPLATE_PARAMS), TENCENT_WRITE)
async def modify_template(ctx: Context) -> dict[str, Any]:
    template_id = ctx.params.integer("TemplateId")
    values = await _template_values(ctx)
    async with ctx.change() as conn:
        current = await _own_template(ctx, conn, template_id)
        if "name" in values:
            await _refuse_taken_name(ctx, conn, values["name"], but=template_id)
        if values.get("callback_key"):  # the previous key stays valid for the overlap: senders switch gradually
            values.update(rotated_values(current, values.pop("callback_key"), ctx.key_overlap))
        if "webhook_secret" in values:  # both signatures are sent for the overlap: receivers switch gradually
            secret = values.pop("webhook_secret")
            values.update(rotated_values(current, secret, ctx.key_overlap, WEBHOOK_SECRET_COLUMNS))
        values["updated_at"] = int(time.time())
        await conn.execute(update(t.templates).where(t.templates.c.id == template_id).values(**values))
    return {}


@action("DeleteLiveCallbackTemplate", ("TemplateId",), TENCENT_WRITE)
async def delete_template(ctx: Context) -> dict[str, Any]:
    template_id = ctx.params.integer("TemplateId")
    async with ctx.change() as conn:
        await _own_template(ctx, conn, template_id)
        bound = await conn.scalar(select(t.rules.c.domain).where(t.rules.c.template_id == template_id).limit(1))
        if bound is not None:
            raise ConfigError("FailedOperation.ConfInUsed", f"The template is bound to {bound}; delete the rule first.")
        await conn.execute(delete(t.templates).where(t.templates.c.id == template_id))
    return {}


@action("CreateLiveCallbackRule", ("DomainName", "AppName", "TemplateId"), TENCENT_WRITE)
async def create_rule(ctx: Context) -> dict[str, Any]:
    domain = validate.domain(ctx.params.required("DomainName"))
    app_name = validate.app_name(ctx.params.optional("AppName") or "")  # empty: every stream of the domain
    template_id = ctx.params.integer("TemplateId")
    try:
        async with ctx.change() as conn:
            await _own_template(ctx, conn, template_id)
            if await ownership.own_rule(conn, domain, ctx.account_id) is not None:
                raise ownership.already_bound(domain)
            await ownership.claim_notify_config(conn, domain, ctx.account_id)
            await conn.execute(
                insert(t.rules).values(
                    account_id=ctx.account_id,
                    domain=domain,
                    app_name=app_name,
                    template_id=template_id,
                    created_at=int(time.time()),
                )
            )
    except IntegrityError:  # bound by a concurrent call of another account between the check and the insert
        raise ownership.already_bound(domain) from None
    return {}


@action("DescribeLiveCallbackRules", (), TENCENT_READ)
async def describe_rules(ctx: Context) -> dict[str, Any]:
    async with ctx.read() as conn:
        query = select(t.rules).where(t.rules.c.account_id == ctx.account_id).order_by(t.rules.c.domain)
        rules = [
            {
                "DomainName": row.domain,
                "AppName": row.app_name,
                "TemplateId": row.template_id,
                "CreateTime": _time(row.created_at),
                "UpdateTime": _time(row.created_at),  # a rule is made and deleted, never changed in place
            }
            for row in await conn.execute(query)
        ]
    return {"Rules": rules}


@action("DeleteLiveCallbackRule", ("DomainName", "AppName"), TENCENT_WRITE)
async def delete_rule(ctx: Context) -> dict[str, Any]:
    domain = validate.domain(ctx.params.required("DomainName"))
    app_name = ctx.params.optional("AppName")
    async with ctx.change() as conn:
        query = select(t.rules).where(t.rules.c.domain == domain, t.rules.c.account_id == ctx.account_id)
        row = (await conn.execute(query)).first()
        if row is None or (app_name is not None and app_name != row.app_name):
            raise ConfigError("ResourceNotFound.RuleNotFound", f"No callback rule for {domain}.", 404)
        await conn.execute(delete(t.rules).where(t.rules.c.id == row.id))
    return {}


@action("DescribeLiveStreamOnlineList", ("DomainName", "AppName", "StreamName", "PageNum", "PageSize"), TENCENT_READ)
async def describe_online_streams(ctx: Context) -> dict[str, Any]:
    """Tencent's shape, plus each stream's cover, last frame time and last verdict (the streams stage's view)."""
    page_num = ctx.params.optional_integer("PageNum", 1, 100_000)
    page_size = ctx.params.optional_integer("PageSize", 10, 100)
    total, rows = await ctx.streams.streams(
        ctx.account_id,
        domain=(ctx.params.optional("DomainName") or "").lower() or None,
        app=ctx.params.optional("AppName") or None,
        name=ctx.params.optional("StreamName") or None,
        offset=(page_num - 1) * page_size,
        limit=page_size,
    )
    online = [
        {
            "StreamName": row.name,
            "AppName": row.app,
            "DomainName": row.domain,
            "PublishTimeList": [{"PublishTime": _utc(row.began_at or row.first_frame_at or row.updated_at)}],
            "PushToDelay": 0,
            "CoverUrl": f"{ctx.public_url}/covers/{quote(row.domain)}/{quote(row.name)}.jpg"
            if row.cover_frame_id
            else None,
            "LastFrameTime": _utc(row.last_frame_at) if row.last_frame_at else None,
            "LastVerdict": row.last_suggestion,
        }
        for row in rows
    ]
    return {
        "TotalNum": total,
        "TotalPage": -(-total // page_size),
        "PageNum": page_num,
        "PageSize": page_size,
        "OnlineInfo": online,
    }


def _utc(seconds: float) -> str:
    """Tencent's stream times: UTC, `2018-06-29T19:00:00Z`."""
    return datetime.fromtimestamp(plausible(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _config_not_found(domain: str) -> ConfigError:
    return ConfigError("InvalidConfig.NotFound", f"Config does not exist for {domain}.", 404)


async def _own_notify_config(ctx: Context, conn: AsyncConnection, domain: str) -> Any:
    if await ownership.bound_elsewhere(conn, domain, ctx.account_id):  # controlled by the account that binds it
        raise _config_not_found(domain)
    query = select(t.detect_notify).where(
        t.detect_notify.c.domain == domain, t.detect_notify.c.account_id == ctx.account_id
    )
    row = (await conn.execute(query)).first()
    if row is None:
        raise _config_not_found(domain)
    return row


@action("AddLiveDetectNotifyConfig", ("DomainName", "NotifyUrl"), ALIBABA)
async def add_notify_config(ctx: Context) -> dict[str, Any]:
    domain = validate.domain(ctx.params.required("DomainName"))
    url = await validate.notify_url(ctx.params.required("NotifyUrl"), ctx.allow_private_urls)
    now = int(time.time())
    try:
        async with ctx.change() as conn:
            if await ownership.own_notify_config(conn, domain, ctx.account_id) is not None:
                raise ownership.notify_config_exists()
            await conn.execute(
                insert(t.detect_notify).values(
                    account_id=ctx.account_id, domain=domain, notify_url=url, created_at=now, updated_at=now
                )
            )
    except IntegrityError:  # added by a concurrent call of another account between the check and the insert
        raise ownership.notify_config_exists() from None
    return {}


@action("DescribeLiveDetectNotifyConfig", ("DomainName",), ALIBABA)
async def describe_notify_config(ctx: Context) -> dict[str, Any]:
    domain = validate.domain(ctx.params.required("DomainName"))
    async with ctx.read() as conn:
        row = await _own_notify_config(ctx, conn, domain)
    return {"LiveDetectNotifyConfig": {"DomainName": row.domain, "NotifyUrl": row.notify_url}}


@action("UpdateLiveDetectNotifyConfig", ("DomainName", "NotifyUrl"), ALIBABA)
async def update_notify_config(ctx: Context) -> dict[str, Any]:
    domain = validate.domain(ctx.params.required("DomainName"))
    url = await validate.notify_url(ctx.params.required("NotifyUrl"), ctx.allow_private_urls)
    async with ctx.change() as conn:
        row = await _own_notify_config(ctx, conn, domain)
        await conn.execute(
            update(t.detect_notify)
            .where(t.detect_notify.c.id == row.id)
            .values(notify_url=url, updated_at=int(time.time()))
        )
    return {}


@action("DeleteLiveDetectNotifyConfig", ("DomainName",), ALIBABA)
async def delete_notify_config(ctx: Context) -> dict[str, Any]:
    domain = validate.domain(ctx.params.required("DomainName"))
    async with ctx.change() as conn:
        row = await _own_notify_config(ctx, conn, domain)
        await conn.execute(delete(t.detect_notify).where(t.detect_notify.c.id == row.id))
    return {}

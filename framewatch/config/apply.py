"""`framewatch config apply FILE`: make the account's configuration match a TOML file, idempotently."""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from framewatch.broker.topology import Topology
from framewatch.config import ownership, validate, webhook_secrets
from framewatch.config import tables as t
from framewatch.config.changes import ChangeFeed
from framewatch.config.errors import ConfigError
from framewatch.config.store import WEBHOOK_SECRET_COLUMNS, ConfigStore, rotated_values
from framewatch.settings import Settings


class TemplateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    callback_key: str | None = None  # optional, as at Tencent: callbacks for its domains are refused without one
    stream_begin_notify_url: str | None = None
    stream_end_notify_url: str | None = None
    record_notify_url: str | None = None
    snapshot_notify_url: str | None = None
    porn_censorship_notify_url: str | None = None
    push_exception_notify_url: str | None = None
    stream_mix_notify_url: str | None = None
    record_status_notify_url: str | None = None
    audio_audit_notify_url: str | None = None
    record_exception_notify_url: str | None = None
    record_exception_levels: list[str] = []
    allow_unsigned: bool = False
    # Moderate one screenshot in this many of each stream (1: every one).
    moderation_sample_every: int = 1
    # Up to this many seconds after a frame the model judged safe, a near-identical frame of the stream carries its
    # verdict instead of a model call (0: off; never after a flagged frame).
    moderation_reuse_seconds: int = 0
    # Signs deliveries (Standard Webhooks); made at random when the template is created and not given here.
    webhook_secret: str | None = None


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    domain: str
    template: str
    app_name: str = Field("", max_length=255)


class DetectNotifySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    domain: str
    notify_url: str


class ConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: str = Field("default", min_length=1, max_length=64)
    templates: list[TemplateSpec] = []
    rules: list[RuleSpec] = []
    detect_notify: list[DetectNotifySpec] = []


@dataclass
class Report:
    changes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(self.changes) if self.changes else "no changes"


def load(path: Path) -> ConfigFile:
    try:
        return ConfigFile.model_validate(tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("InvalidParameter", f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError("InvalidParameter", f"{path}: {where}: {first['msg']}") from None


async def apply_file(
    settings: Settings, path: Path, *, prune: bool = False, allow_private_urls: bool | None = None
) -> Report:
    """Migrate, apply and announce the change so every running process reloads at once."""
    store = ConfigStore(settings.database_url.get_secret_value())
    try:
        await store.migrate()
        report = await apply(
            store,
            load(path),
            key_overlap=settings.ingress.key_rotation_overlap,
            allow_private_urls=settings.delivery.allow_private if allow_private_urls is None else allow_private_urls,
            prune=prune,
        )
        if report.changes:
            feed = ChangeFeed(settings.broker.amqp_url.get_secret_value(), Topology(settings.broker.namespace))
            await feed.announce(await store.revision())
        return report
    finally:
        await store.close()


async def check(spec: ConfigFile, allow_private_urls: bool) -> dict[str, dict[str, Any]]:
    """The same validations the admin API applies, before anything is written; the templates' column values."""
    names = [tpl.name for tpl in spec.templates]
    if len(set(names)) != len(names):
        raise ConfigError("InvalidParameter", "template names must be unique")
    columns = {
        tpl.name: await validate.template_columns(tpl.model_dump(), allow_private_urls) for tpl in spec.templates
    }
    for rule in spec.rules:
        rule.domain = validate.domain(rule.domain)
    for notify in spec.detect_notify:
        notify.domain = validate.domain(notify.domain)
        await validate.notify_url(notify.notify_url, allow_private_urls)
    for kind, domains in (
        ("rules", [r.domain for r in spec.rules]),
        ("detect_notify", [d.domain for d in spec.detect_notify]),
    ):
        if len(set(domains)) != len(domains):
            raise ConfigError("InvalidParameter", f"{kind}: a domain appears twice (one domain, one template)")
    return columns


async def apply(
    store: ConfigStore, spec: ConfigFile, *, key_overlap: int, allow_private_urls: bool, prune: bool = False
) -> Report:
    """Upsert every template, rule and detect notify config the file names; with `prune`, remove the others."""
    columns = await check(spec, allow_private_urls)
    report = Report()
    async with store.engine.begin() as conn:
        account_id = await store.ensure_account(conn, spec.account)
    async with ownership.account_change(store, account_id) as conn:
        template_ids = await _templates(conn, account_id, columns, key_overlap, report)
        await _rules(conn, account_id, spec, template_ids, report, prune)
        await _detect_notify(conn, account_id, spec, report, prune)
        if prune:
            await _prune_templates(conn, account_id, set(template_ids.values()), report)
        await ownership.check_template_limit(store, conn, account_id)
        if report.changes:
            await store.record_change(conn, account_id, "ConfigApply", {"changes": report.changes})
    return report


async def _templates(
    conn: AsyncConnection, account_id: int, columns: dict[str, dict[str, Any]], key_overlap: int, report: Report
) -> dict[str, int]:
    now = int(time.time())
    rows = {
        row.name: row for row in await conn.execute(select(t.templates).where(t.templates.c.account_id == account_id))
    }
    ids: dict[str, int] = {}
    for name, given in columns.items():
        wanted = {k: v for k, v in given.items() if k not in ("callback_key", "webhook_secret")}
        key, secret = given["callback_key"], given["webhook_secret"]
        current = rows.get(name)
        if current is None:
            result = await conn.execute(
                insert(t.templates).values(
                    **wanted,
                    account_id=account_id,
                    callback_key=key,
                    webhook_secret=secret or webhook_secrets.new(),
                    created_at=now,
                    updated_at=now,
                )
            )
            ids[name] = int(result.inserted_primary_key[0])
            report.changes.append(f"template {name}: created")
            continue
        ids[name] = current.id
        values = {k: v for k, v in wanted.items() if getattr(current, k) != v}
        if key is None:
            values.update({"callback_key": None} if current.callback_key else {})
        else:
            values.update(rotated_values(current, key, key_overlap))
        if secret is not None:
            values.update(rotated_values(current, secret, key_overlap, WEBHOOK_SECRET_COLUMNS))
        if values:
            await conn.execute(
                update(t.templates).where(t.templates.c.id == current.id).values(**values, updated_at=now)
            )
            shown = ", ".join(
                sorted(k for k in values if "key" not in k and "secret" not in k)
                + (["key rotated"] if "callback_key" in values else [])
                + (["webhook secret rotated"] if "webhook_secret" in values else [])
            )
            report.changes.append(f"template {name}: updated ({shown})")
    return ids


async def _rules(
    conn: AsyncConnection,
    account_id: int,
    spec: ConfigFile,
    template_ids: dict[str, int],
    report: Report,
    prune: bool,
) -> None:
    names = {
        row.id: row.name
        for row in await conn.execute(select(t.templates).where(t.templates.c.account_id == account_id))
    }
    by_name = {name: tid for tid, name in names.items()} | template_ids
    for rule in spec.rules:
        template_id = by_name.get(rule.template)
        if template_id is None:
            raise ConfigError("ResourceNotFound.TemplateNotFound", f"rule {rule.domain}: no template {rule.template!r}")
        current = await ownership.own_rule(conn, rule.domain, account_id)
        if current is None:
            await ownership.claim_notify_config(conn, rule.domain, account_id)
            await conn.execute(
                insert(t.rules).values(
                    account_id=account_id,
                    domain=rule.domain,
                    app_name=rule.app_name,
                    template_id=template_id,
                    created_at=int(time.time()),
                )
            )
            report.changes.append(f"rule {rule.domain}: bound to {rule.template}")
        elif (current.template_id, current.app_name) != (template_id, rule.app_name):
            await conn.execute(
                update(t.rules)
                .where(t.rules.c.id == current.id)
                .values(template_id=template_id, app_name=rule.app_name)
            )
            report.changes.append(f"rule {rule.domain}: bound to {rule.template}")
    if prune:
        await _prune_domains(conn, t.rules, "rule", account_id, {r.domain for r in spec.rules}, report)


async def _detect_notify(conn: AsyncConnection, account_id: int, spec: ConfigFile, report: Report, prune: bool) -> None:
    now = int(time.time())
    for item in spec.detect_notify:
        current = await ownership.own_notify_config(conn, item.domain, account_id)
        if current is None:
            await conn.execute(
                insert(t.detect_notify).values(
                    account_id=account_id,
                    domain=item.domain,
                    notify_url=item.notify_url,
                    created_at=now,
                    updated_at=now,
                )
            )
            report.changes.append(f"detect_notify {item.domain}: added")
        elif current.notify_url != item.notify_url:
            await conn.execute(
                update(t.detect_notify)
                .where(t.detect_notify.c.id == current.id)
                .values(notify_url=item.notify_url, updated_at=now)
            )
            report.changes.append(f"detect_notify {item.domain}: updated")
    if prune:
        keep = {item.domain for item in spec.detect_notify}
        await _prune_domains(conn, t.detect_notify, "detect_notify", account_id, keep, report)


async def _prune_templates(conn: AsyncConnection, account_id: int, keep: set[int], report: Report) -> None:
    rows = await conn.execute(select(t.templates).where(t.templates.c.account_id == account_id))
    for row in rows:
        if row.id not in keep:
            await conn.execute(delete(t.templates).where(t.templates.c.id == row.id))
            report.changes.append(f"template {row.name}: removed")


async def _prune_domains(
    conn: AsyncConnection,
    table: Table,
    label: str,
    account_id: int,
    keep: set[str],
    report: Report,
) -> None:
    """Delete the account's rows of a per-domain table whose domain the file no longer names."""
    for row in await conn.execute(select(table).where(table.c.account_id == account_id)):
        if row.domain not in keep:
            await conn.execute(delete(table).where(table.c.id == row.id))
            report.changes.append(f"{label} {row.domain}: removed")

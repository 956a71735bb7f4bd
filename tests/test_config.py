"""`framewatch config apply` on SQLite and PostgreSQL: idempotent, validated, key rotation, bindings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from framewatch.config import apply as config_apply
from framewatch.config.errors import ConfigError
from framewatch.config.store import ConfigStore

CONFIG = """
account = "acme"

[[templates]]
name = "main"
callback_key = "k3yLettersAndDigits"
snapshot_notify_url = "https://93.184.215.14/hooks/snapshot"
porn_censorship_notify_url = "https://93.184.215.14/hooks/moderation"

[[rules]]
domain = "Push.Example.com"
template = "main"

[[detect_notify]]
domain = "push.example.com"
notify_url = "https://93.184.215.14/hooks/violations"
"""


@pytest.fixture
async def store(database_url: str):
    store = ConfigStore(database_url)
    yield store
    await store.close()


async def apply_text(store: ConfigStore, tmp_path: Path, text: str, **kwargs) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    report = await config_apply.apply(
        store, config_apply.load(path), key_overlap=kwargs.pop("key_overlap", 600), allow_private_urls=False, **kwargs
    )
    return str(report)


async def test_apply_is_idempotent_and_builds_the_snapshot(store, tmp_path) -> None:
    await store.migrate()
    await store.migrate()  # a second replica starting: nothing to do
    first = await apply_text(store, tmp_path, CONFIG)
    assert "template main: created" in first and "rule push.example.com: bound to main" in first
    revision = await store.revision()
    assert await apply_text(store, tmp_path, CONFIG) == "no changes"
    assert await store.revision() == revision  # nothing changed: replicas need not reload
    snapshot = await store.snapshot()
    binding = snapshot.bindings["push.example.com"]
    assert binding.template.key == "k3yLettersAndDigits"
    assert binding.template.notify_urls["snapshot_notify_url"] == "https://93.184.215.14/hooks/snapshot"
    assert snapshot.detect_notify == {"push.example.com": "https://93.184.215.14/hooks/violations"}


async def test_key_change_keeps_the_old_key_for_the_overlap(store, tmp_path) -> None:
    await store.migrate()
    await apply_text(store, tmp_path, CONFIG)
    report = await apply_text(store, tmp_path, CONFIG.replace("k3yLettersAndDigits", "n3wKey"), key_overlap=600)
    assert "key rotated" in report and "k3y" not in report  # keys never printed
    template = (await store.snapshot()).bindings["push.example.com"].template
    import time

    assert template.valid_keys(time.time()) == ["n3wKey", "k3yLettersAndDigits"]
    assert template.valid_keys(time.time() + 601) == ["n3wKey"]


async def test_prune_removes_what_the_file_omits(store, tmp_path) -> None:
    await store.migrate()
    await apply_text(store, tmp_path, CONFIG)
    only_template = CONFIG.split("[[rules]]")[0]
    report = await apply_text(store, tmp_path, only_template, prune=True)
    assert "rule push.example.com: removed" in report and "detect_notify push.example.com: removed" in report
    snapshot = await store.snapshot()
    assert snapshot.bindings == {} and snapshot.detect_notify == {}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (("k3yLettersAndDigits", "bad key!"), "InvalidParameter"),
        (("k3yLettersAndDigits", "k" * 33), "InvalidParameter"),
        (("https://93.184.215.14/hooks/snapshot", "ftp://app.example.com/x"), "InvalidNotifyUrl.Malformed"),
        (("https://93.184.215.14/hooks/snapshot", "http://127.0.0.1:9000/x"), "InvalidNotifyUrl.Unsafe"),
        (("https://93.184.215.14/hooks/violations", "http://169.254.169.254/latest"), "InvalidNotifyUrl.Unsafe"),
        (("https://93.184.215.14/hooks/violations", "http://[::1]/x"), "InvalidNotifyUrl.Unsafe"),
        (('template = "main"', 'template = "missing"'), "ResourceNotFound.TemplateNotFound"),
        (("Push.Example.com", "bad domain!"), "InvalidParameter"),
        (('account = "acme"', 'account = "acme"\nunknown_key = 1'), "InvalidParameter"),
    ],
)
async def test_invalid_config_is_refused_before_anything_is_written(store, tmp_path, change, code) -> None:
    await store.migrate()
    with pytest.raises(ConfigError) as refused:
        await apply_text(store, tmp_path, CONFIG.replace(*change))
    assert refused.value.code == code
    assert (await store.snapshot()).bindings == {}


async def test_a_domain_belongs_to_one_account(store, tmp_path) -> None:
    await store.migrate()
    await apply_text(store, tmp_path, CONFIG)
    with pytest.raises(ConfigError) as refused:
        await apply_text(store, tmp_path, CONFIG.replace('account = "acme"', 'account = "other"'))
    assert refused.value.code == "InvalidParameter.DomainAlreadyBound"


async def test_at_most_fifty_templates(store, tmp_path) -> None:
    await store.migrate()
    many = 'account = "a"\n' + "".join(f'[[templates]]\nname = "t{n}"\ncallback_key = "k{n}"\n' for n in range(51))
    with pytest.raises(ConfigError) as refused:
        await apply_text(store, tmp_path, many)
    assert refused.value.code == "LimitExceeded"


def test_cli_apply_reports_and_refuses(tmp_path: Path) -> None:
    env = {"FRAMEWATCH_DATABASE_URL": f"sqlite:///{tmp_path}/c.db", "PATH": "/usr/bin:/bin"}
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    run = [sys.executable, "-m", "framewatch", "config", "apply", str(path)]
    first = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    assert "template main: created" in first.stdout
    again = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    assert again.stdout.strip() == "no changes"
    path.write_text(CONFIG.replace("https://93.184.215.14/hooks/violations", "http://10.0.0.1/x"))
    refused = subprocess.run(run, env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "InvalidNotifyUrl.Unsafe" in refused.stderr

"""The internal listener as operators run it: metrics there only, HTTPS when given a certificate, the console behind
a TLS proxy, sessions that end with a rotated token, no redirect to a URL a callback named, fair wall shares, and
the config database readable by its owner only, and one master key however many processes start at once."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import multiprocessing
import ssl
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from framewatch.admin.keys import master_key
from framewatch.config.store import ConfigStore
from framewatch.settings import Settings
from framewatch.streams.store import FrameRecord, StreamStore
from tests.conftest import serve_ingress, settings_from
from tests.helpers import IngressProcess, run_cli
from tests.test_covers import token_for


async def test_metrics_are_served_on_the_admin_listener_only_every_series_from_the_start(
    env: dict[str, str], configured: Settings, amqp: None
) -> None:
    process = IngressProcess(env)
    try:
        await process.wait_ready()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{process.url}/metrics") as public:
                assert public.status == 404  # never on the internet-facing listener
            async with session.get(f"{process.admin_url}/metrics") as internal:
                assert internal.status == 200
                assert internal.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
                text = await internal.text()
    finally:
        process.terminate()
    # Before any callback came: the refusal series are there at 0, so a rate or an alert sees the first one.
    for reason in ("InvalidSignature", "DomainNotBound", "BrokerUnavailable"):
        assert f'framewatch_callbacks_total{{outcome="refused",provider="tencent",reason="{reason}"}} 0.0' in text
    assert 'framewatch_publish_failures_total{cause="timeout"} 0.0' in text


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "framewatch admin")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert, private = folder / "admin.crt", folder / "admin.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, private


async def test_the_admin_listener_serves_https_when_given_a_certificate(
    env: dict[str, str], configured: Settings, amqp: None, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    process = IngressProcess({**env, "FRAMEWATCH_ADMIN_TLS_CERT": str(cert), "FRAMEWATCH_ADMIN_TLS_KEY": str(key)})
    try:
        await process.wait_ready()
        https = process.admin_url.replace("http://", "https://")
        trusted = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{https}/healthz", ssl=trusted) as answer:
                assert answer.status == 200
            async with session.get(f"{https}/api?Action=DescribeLiveCallbackTemplates", ssl=trusted) as answer:
                assert answer.status == 401  # the API itself, over TLS
            with pytest.raises(aiohttp.ClientError):  # plain HTTP is not served beside it
                async with session.get(f"{process.admin_url}/healthz") as plain:
                    await plain.read()
    finally:
        process.terminate()


async def sign_in(session: aiohttp.ClientSession, admin_url: str, token: str, origin: str | None = None) -> str:
    headers = {"Origin": origin} if origin else {}
    async with session.post(
        f"{admin_url}/console/login", data={"token": token}, headers=headers, allow_redirects=False
    ) as answer:
        assert answer.status == 303, await answer.text()
        return answer.cookies["fw_console"].value


async def signed_in(session: aiohttp.ClientSession, admin_url: str, cookie: str) -> bool:
    async with session.get(f"{admin_url}/console/", cookies={"fw_console": cookie}, allow_redirects=False) as page:
        return page.status == 200


async def test_behind_a_tls_proxy_the_console_checks_origins_against_its_public_one(
    env: dict[str, str], configured: Settings, amqp: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from(monkeypatch, env, console_public_origin="https://review.example.com")
    token = await token_for(settings)
    async with serve_ingress(settings) as ingress, aiohttp.ClientSession() as session:
        # The browser is on https://review.example.com; the proxy forwards plain HTTP to the admin listener.
        async with session.post(
            f"{ingress.admin_url}/console/login",
            data={"token": token},
            headers={"Origin": "https://review.example.com"},
            allow_redirects=False,
        ) as answer:
            assert answer.status == 303
            assert "Secure" in answer.headers["Set-Cookie"]  # the browser's side is HTTPS
        async with session.post(
            f"{ingress.admin_url}/console/login",
            data={"token": token},
            headers={"Origin": ingress.admin_url},  # the listener's own address is not where browsers are
            allow_redirects=False,
        ) as answer:
            assert answer.status == 403


async def test_rotating_a_token_ends_the_accounts_console_sessions(
    env: dict[str, str], configured: Settings, amqp: None
) -> None:
    token = await token_for(configured)
    other = await token_for(configured, "other")
    async with serve_ingress(configured) as ingress, aiohttp.ClientSession() as session:
        mine, theirs = (
            await sign_in(session, ingress.admin_url, token),
            await sign_in(session, ingress.admin_url, other),
        )
        assert await signed_in(session, ingress.admin_url, mine)
        rotated = run_cli("accounts", "rotate", "default", env=env)
        assert rotated.returncode == 0, rotated.stderr
        assert not await signed_in(session, ingress.admin_url, mine)  # the leaked token's sessions end with it
        assert await signed_in(session, ingress.admin_url, theirs)  # another account's are untouched
        assert await sign_in(session, ingress.admin_url, rotated.stdout.strip().splitlines()[-1])


async def test_a_frame_never_stored_here_is_shown_as_text_never_a_redirect(configured: Settings, amqp: None) -> None:
    token = await token_for(configured)
    store = ConfigStore(configured.database_url.get_secret_value())
    try:
        hostile = "https://evil.example.net/phish?next=/console/"
        verdict = FrameRecord(
            id="v1",
            domain="test.app",
            stream="s1",
            app="live",
            provider="tencent",
            capture_time=1_700_000_000,
            source_url=hostile,
            image_key=None,
            image_content_type=None,
            blob_keys=(),
            suggestion="Block",
            label="Porn",
            source="tencent",
            provider_verdict=True,
        )
        await StreamStore(store.engine).apply([verdict])
    finally:
        await store.close()
    async with serve_ingress(configured) as ingress, aiohttp.ClientSession() as session:
        cookie = {"fw_console": await sign_in(session, ingress.admin_url, token)}
        async with session.get(
            f"{ingress.admin_url}/console/frames/v1", cookies=cookie, allow_redirects=False
        ) as answer:
            assert answer.status == 404 and "Location" not in answer.headers
            assert answer.content_type == "text/plain" and hostile in await answer.text()
        async with session.get(f"{ingress.admin_url}/console/review", cookies=cookie) as queue:
            page = await queue.text()
            assert "/console/frames/v1" not in page and "evil.example.net" in page  # as text, not an image


async def test_one_account_cannot_take_every_live_wall(configured: Settings, amqp: None) -> None:
    mine, theirs = await token_for(configured), await token_for(configured, "other")
    async with serve_ingress(configured) as ingress, aiohttp.ClientSession() as session:
        cookie = {"fw_console": await sign_in(session, ingress.admin_url, mine)}
        walls = []
        try:
            for _ in range(20):
                wall = await session.get(f"{ingress.admin_url}/console/events", cookies=cookie)
                assert wall.status == 200
                walls.append(wall)
            async with session.get(f"{ingress.admin_url}/console/events", cookies=cookie) as refused:
                assert refused.status == 429
                assert (await refused.json())["error"] == "TooManyWallsForAccount"
            other = {"fw_console": await sign_in(session, ingress.admin_url, theirs)}
            async with session.get(f"{ingress.admin_url}/console/events", cookies=other) as wall:
                assert wall.status == 200  # another account still gets its wall
        finally:
            for wall in walls:
                wall.close()
        await asyncio.sleep(1.5)  # the server notices the closed walls within a turn
        async with session.get(f"{ingress.admin_url}/console/events", cookies=cookie) as again:
            assert again.status == 200


def test_the_config_database_and_its_folder_are_readable_by_their_owner_only(
    env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "fresh" / "data"
    fresh = {**env, "FRAMEWATCH_DATABASE_URL": f"sqlite:///{folder}/framewatch.db"}
    assert run_cli("accounts", "create", "acme", env=fresh).returncode == 0
    assert run_cli("accounts", "keys", "create", "acme", env=fresh).returncode == 0
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("framewatch.db", "master.key"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name


def _key_after(barrier: Any, key_file: Path, keys: Any) -> None:
    barrier.wait()
    keys.put(master_key(None, key_file))


def test_ingress_processes_starting_together_share_one_whole_master_key(tmp_path: Path) -> None:
    """Replicas started at once on one data folder: each must find the key the first one made, never a half-written
    file (which Fernet refuses, so the process would not start) nor a key of its own (its secrets unreadable)."""
    context = multiprocessing.get_context("fork")
    for attempt in range(20):
        key_file = tmp_path / str(attempt) / "master.key"
        barrier, keys = context.Barrier(6), context.Queue()
        starters = [context.Process(target=_key_after, args=(barrier, key_file, keys)) for _ in range(6)]
        for starter in starters:
            starter.start()
        made = {keys.get(timeout=30) for _ in starters}
        for starter in starters:
            starter.join(timeout=30)
            assert starter.exitcode == 0, attempt
        assert made == {key_file.read_bytes().strip()}, attempt
        assert [p.name for p in key_file.parent.iterdir()] == ["master.key"]  # no draft left behind
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

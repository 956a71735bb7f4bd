"""The `framewatch` command. Settings come from FRAMEWATCH_* environment variables (see the README)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from framewatch import __version__
from framewatch.providers.registry import PROVIDERS
from framewatch.runtime import logs, tracing
from framewatch.settings import Settings, get_settings
from workers.stages import NAMES as STAGE_NAMES

if TYPE_CHECKING:
    from framewatch.config.store import ConfigStore


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from framewatch.runtime.serve import serve
    from framewatch.wiring import ingest_listeners

    tracing.configure("ingest")  # before the wiring: the handlers it builds are picked with tracing on or off

    serve(ingest_listeners(settings, args.port, args.admin_port), "ingest", settings.shutdown_timeout)
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from framewatch.runtime.serve import serve
    from framewatch.wiring import run_listeners

    tracing.configure("run")

    serve(run_listeners(settings, args.port, args.admin_port), "run", settings.shutdown_timeout)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from framewatch.runtime.serve import serve
    from framewatch.wiring import worker_listeners

    tracing.configure("worker")

    names = list(STAGE_NAMES) if "all" in args.stages else list(dict.fromkeys(args.stages))
    serve(worker_listeners(settings, names, args.port), "worker:" + ",".join(names), settings.shutdown_timeout)
    return 0


def cmd_dlq(settings: Settings, args: argparse.Namespace) -> int:
    from framewatch.broker.dlq import DeadLetters
    from workers import stages

    dead = DeadLetters(settings.broker.amqp_url.get_secret_value(), stages.topology(settings.broker.namespace))

    async def run() -> None:
        if args.dlq_command == "list":
            letters = (await dead.list([args.stage]))[args.stage]
            for letter in letters:
                print(letter.line())
            print(f"{len(letters)} dead letter(s) in {args.stage}", file=sys.stderr)
        elif args.dlq_command == "replay":
            count = await dead.replay(args.stage, set(args.ids) if args.ids else None)
            print(f"replayed {count} dead letter(s) into {args.stage}")
        else:
            print(f"purged {await dead.purge(args.stage)} dead letter(s) from {args.stage}")

    asyncio.run(run())
    return 0


def cmd_config_apply(settings: Settings, args: argparse.Namespace) -> int:
    from framewatch.config import apply
    from framewatch.config.errors import ConfigError

    try:
        print(asyncio.run(apply.apply_file(settings, Path(args.file), prune=args.prune)))
    except ConfigError as exc:
        print(f"framewatch config apply: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    return 0


async def key_command(store: ConfigStore, args: argparse.Namespace) -> None:
    from framewatch.admin import keys
    from framewatch.broker.topology import Topology
    from framewatch.config.changes import ChangeFeed

    settings = args.settings
    if args.keys_command == "create":
        key_id, secret = await keys.create(store, keys.vault_for(settings), args.name)
        print(f"account {args.name}: new key pair for the clouds' SDKs (shown once; the secret is kept encrypted):")
        print(f"{key_id} {secret}")
    elif args.keys_command == "revoke":
        await keys.revoke(store, args.name, args.key_id)
        print(f"revoked {args.key_id}")
    else:
        for info in await keys.list_keys(store, args.name):
            last_used = f"last used {_when(info.last_used_at)}" if info.last_used_at else "never used"
            state = f"revoked {_when(info.revoked_at)}" if info.revoked_at else "active"
            print(f"{info.key_id}\tcreated {_when(info.created_at)}\t{last_used}\t{state}")
        return
    feed = ChangeFeed(settings.broker.amqp_url.get_secret_value(), Topology(settings.broker.namespace))
    await feed.announce(await store.revision())  # every replica hears of it at once


def _when(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def cmd_accounts(settings: Settings, args: argparse.Namespace) -> int:
    from framewatch.admin import accounts
    from framewatch.config.errors import ConfigError

    args.settings = settings

    async def run() -> None:
        from framewatch.config.store import ConfigStore

        store = ConfigStore(settings.database_url.get_secret_value())
        try:
            await store.migrate()
            if args.accounts_command == "list":
                for name, has_token in await accounts.list_accounts(store):
                    print(f"{name}\t{'token' if has_token else 'no token'}")
                return
            if args.accounts_command == "keys":
                await key_command(store, args)
                return
            token = await accounts.issue_token(store, args.name, replace=args.accounts_command == "rotate")
            print(f"account {args.name}: new admin API token (shown once; store it now, only its hash is kept):")
            print(token)
        finally:
            await store.close()

    try:
        asyncio.run(run())
    except ConfigError as exc:
        print(f"framewatch accounts: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    import orjson

    from framewatch.runtime.serve import new_event_loop, tune_gc
    from framewatch.simulate.provider import Options
    from framewatch.simulate.run import Plan, Simulation, failed

    width, _, height = args.frame_size.partition("x")
    outage = None
    if args.sink_outage:
        start, _, length = args.sink_outage.partition(":")
        outage = (float(start), float(start) + float(length))
    options = Options(
        ingress=args.ingress,
        domain=args.domain,
        key=args.key,
        image_base_url=args.image_url or "",
        width=int(width),
        height=int(height),
        retry_scale=args.retry_scale,
        provider=args.provider,
        webhook_secret=args.webhook_secret,
    )
    plan = Plan(
        streams=args.streams,
        interval=args.interval,
        duration=args.duration,
        moderation_every=args.moderation_every,
        drain_timeout=args.drain_timeout,
        image_host=args.image_host,
        image_port=args.image_port,
        sink_host=args.sink_host,
        sink_port=args.sink_port,
        sink_outage=outage,
        progress=not args.quiet,
    )
    tune_gc()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:  # uvloop: the simulator must not be the bottleneck
        report = runner.run(Simulation(options, plan).run())
    if not args.quiet:
        print(file=sys.stderr)
    if args.json:
        print(orjson.dumps(report).decode())
    else:
        for name, value in report.items():
            print(f"{name:>36}: {value}")
    return 1 if failed(report) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="framewatch", description=__doc__)
    parser.add_argument("--version", action="version", version=f"framewatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = commands.add_parser("ingest", help="serve provider callbacks, health and metrics")
    ingest.add_argument("--port", type=int, help="callback listener's port (default FRAMEWATCH_PORT)")
    ingest.add_argument("--admin-port", type=int, help="admin listener's port (default FRAMEWATCH_ADMIN_PORT)")
    ingest.set_defaults(func=cmd_ingest)

    run = commands.add_parser("run", help="the whole pipeline in one process: ingress and every worker stage")
    run.add_argument("--port", type=int, help="callback listener's port (default FRAMEWATCH_PORT)")
    run.add_argument("--admin-port", type=int, help="admin listener's port (default FRAMEWATCH_ADMIN_PORT)")
    run.set_defaults(func=cmd_run)

    worker = commands.add_parser("worker", help=f"run worker stages: {', '.join(STAGE_NAMES)} (or all)")
    worker.add_argument("stages", nargs="+", choices=[*STAGE_NAMES, "all"], metavar="STAGE")
    worker.add_argument("--port", type=int, help="health and metrics port (default FRAMEWATCH_WORKER_PORT)")
    worker.set_defaults(func=cmd_worker)

    dlq = commands.add_parser("dlq", help="inspect, replay or purge a stage's dead letters")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="SUBCOMMAND")
    for name, text in (
        ("list", "one line per dead letter: event id, source URL, reason"),
        ("replay", "send dead letters back into their stage with a fresh try count"),
        ("purge", "delete every dead letter of the stage"),
    ):
        sub = dlq_commands.add_parser(name, help=text)
        sub.add_argument("stage", choices=list(STAGE_NAMES), metavar="STAGE")
        if name == "replay":
            sub.add_argument("ids", nargs="*", help="only these event ids (default: all)")
        sub.set_defaults(func=cmd_dlq)

    accounts = commands.add_parser("accounts", help="admin API accounts and their bearer tokens")
    accounts_commands = accounts.add_subparsers(dest="accounts_command", required=True, metavar="SUBCOMMAND")
    for name, text in (
        ("create", "create an account and print its token once, alone on the last line"),
        ("rotate", "replace an account's token (the old one stops working) and print the new one"),
        ("list", "account names, and whether each has a token"),
    ):
        sub = accounts_commands.add_parser(name, help=text)
        if name != "list":
            sub.add_argument("name", help="account name")
        sub.set_defaults(func=cmd_accounts)
    keys = accounts_commands.add_parser("keys", help="key pairs for the clouds' official SDKs (Tencent, Alibaba)")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="SUBCOMMAND")
    for name, text in (
        ("create", "issue a key pair and print it once, alone on the last line, as '<key id> <key secret>'"),
        ("revoke", "revoke a key pair at once, on every replica"),
        ("list", "an account's key ids, when each was made and last used, never the secrets"),
    ):
        sub = keys_commands.add_parser(name, help=text)
        sub.add_argument("name", help="account name")
        if name == "revoke":
            sub.add_argument("key_id", help="the key id to revoke")
        sub.set_defaults(func=cmd_accounts)

    sim = commands.add_parser(
        "simulate",
        help="play the provider (screenshots, signed callbacks, retries) and the platform (a verifying sink)",
        description="N streams, a screenshot every S seconds each, served from our own image server and announced "
        "by signed callbacks with the provider's retry policy; stream begin/end and provider moderation events "
        "mixed in. With --sink-port, also the platform's URLs: counts deliveries, duplicates and latency. "
        "Exits 1 when anything accepted was not delivered, or the provider gave up on a callback.",
    )
    sim.add_argument("--ingress", default="http://127.0.0.1:8080", help="framewatch's base URL")
    sim.add_argument("--domain", default="demo.live", help="push domain the callbacks are for")
    sim.add_argument(
        "--webhook-secret",
        help="the template's WebhookSecret (whsec_...): the platform also checks every webhook-signature with it",
    )
    sim.add_argument(
        "--provider",
        choices=list(PROVIDERS),
        default="tencent",
        help="which cloud to play: tencent (screenshots, stream and moderation events) or alibaba (publish, "
        "publish_done and recording callbacks, with its retry policy: 5 retries 1 s apart, 5 s timeout)",
    )
    sim.add_argument(
        "--key", default="demoKey123", help="the domain's template key (signs callbacks, checks deliveries)"
    )
    sim.add_argument("--streams", type=int, default=10, help="concurrent streams")
    sim.add_argument("--interval", type=float, default=2.0, help="seconds between a stream's screenshots")
    sim.add_argument("--duration", type=float, default=30.0, help="seconds of streaming")
    sim.add_argument("--sink-port", type=int, help="serve the platform's receiving URLs on this port")
    sim.add_argument("--sink-host", default="127.0.0.1", help="listen address of the sink")
    sim.add_argument("--sink-outage", metavar="START:SECONDS", help="the sink answers 503 for SECONDS from START")
    sim.add_argument("--image-host", default="127.0.0.1", help="listen address of the image server")
    sim.add_argument("--image-port", type=int, default=0, help="image server port (default: any free one)")
    sim.add_argument("--image-url", help="base URL the workers download screenshots from (default: the server)")
    sim.add_argument("--frame-size", default="640x360", help="screenshot size, WIDTHxHEIGHT")
    sim.add_argument("--moderation-every", type=int, default=20, help="every Nth screenshot also gets a 317 event")
    sim.add_argument("--retry-scale", type=float, default=0.05, help="provider retry timing factor (1 = real)")
    sim.add_argument("--drain-timeout", type=float, default=60.0, help="give up waiting after this long idle")
    sim.add_argument("--json", action="store_true", help="print the final report as one JSON object")
    sim.add_argument("--quiet", action="store_true", help="no progress line")
    sim.set_defaults(func=cmd_simulate)

    config = commands.add_parser("config", help="manage configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    apply_parser = config_commands.add_parser("apply", help="apply a declarative TOML config file, idempotently")
    apply_parser.add_argument("file", help="TOML file: account, [[templates]], [[rules]], [[detect_notify]]")
    apply_parser.add_argument(
        "--prune", action="store_true", help="also remove the account's templates, rules and configs the file omits"
    )
    apply_parser.set_defaults(func=cmd_config_apply)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    logs.configure(settings.log_level)
    return int(args.func(settings, args))

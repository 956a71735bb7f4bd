"""The `framewatch` command. Settings come from FRAMEWATCH_* environment variables (see the README)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from framewatch import __version__
from framewatch.runtime import logs
from framewatch.runtime.settings import Settings, get_settings


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from framewatch.ingest.app import create_app
    from framewatch.runtime.serve import serve

    serve(create_app(settings), settings, "ingest", port=args.port)
    return 0


def cmd_config_apply(settings: Settings, args: argparse.Namespace) -> int:
    from framewatch.config import apply
    from framewatch.config.errors import ConfigError
    from framewatch.config.store import ConfigStore

    async def run() -> str:
        store = ConfigStore(settings.database_url.get_secret_value())
        try:
            await store.migrate()
            report = await apply.apply(
                store,
                apply.load(Path(args.file)),
                key_overlap=settings.key_rotation_overlap,
                allow_private_urls=settings.deliver_allow_private,
                prune=args.prune,
            )
            return str(report)
        finally:
            await store.close()

    try:
        print(asyncio.run(run()))
    except ConfigError as exc:
        print(f"framewatch config apply: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="framewatch", description=__doc__)
    parser.add_argument("--version", action="version", version=f"framewatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = commands.add_parser("ingest", help="serve provider callbacks, health and metrics")
    ingest.add_argument("--port", type=int, help="listen port (default FRAMEWATCH_PORT)")
    ingest.set_defaults(func=cmd_ingest)

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

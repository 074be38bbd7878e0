"""`keydesk`: run | demo | check | migrate | audit verify | audit export."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from bot.config import ConfigError, Settings, load_settings

EXIT_CONFIG = 2


def _fail(lines: list[str], out: TextIO = sys.stderr) -> int:
    for line in lines:
        print(f"keydesk: {line}", file=out)
    return EXIT_CONFIG


def _settings() -> Settings | None:
    try:
        return load_settings()
    except ConfigError as exc:
        _fail(exc.problems)
        return None


def _guide_problems(settings: Settings) -> list[str]:
    """The setup guides are loaded (and checked) now, so a broken file stops startup, not a user's setup."""
    from bot.domain.guides import GuideError, GuideLibrary, OrgProfile

    org = OrgProfile(sign_in_url=settings.sign_in_url, support_contact=settings.support_contact)
    try:
        GuideLibrary.load(settings.guides_dir, org=org)
    except GuideError as exc:
        return [f"KEYDESK_GUIDES_DIR has an unusable guide: {exc}"]
    return []


def _problems(settings: Settings) -> list[str]:
    return settings.problems_for_run() + _guide_problems(settings)


def cmd_run(_args: argparse.Namespace) -> int:
    settings = _settings()
    if settings is None:
        return EXIT_CONFIG
    problems = _problems(settings)
    if problems:
        return _fail(problems)
    from bot.server import serve

    return asyncio.run(serve(settings))


def cmd_check(_args: argparse.Namespace) -> int:
    settings = _settings()
    if settings is None:
        return EXIT_CONFIG
    problems = _problems(settings)
    if problems:
        return _fail(problems)
    mode = (
        "Socket Mode" if settings.socket_mode else f"HTTP mode on {settings.http_host}:{settings.http_port}"
    )
    print(f"keydesk: configuration OK ({mode}, database {settings.database_url.split('://')[0]})")
    return 0


def cmd_migrate(_args: argparse.Namespace) -> int:
    settings = _settings()
    if settings is None:
        return EXIT_CONFIG
    from bot.store.migrate import migrate

    asyncio.run(migrate(settings.database_url))
    print("keydesk: database is up to date")
    return 0


def _with_database(work: Callable[[Any], Awaitable[int]]) -> int:
    settings = _settings()
    if settings is None:
        return EXIT_CONFIG
    from bot.store.db import Database

    async def go() -> int:
        db = Database(settings.database_url)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(go())


def cmd_audit_verify(_args: argparse.Namespace) -> int:
    from bot.audit import cli_verify

    return _with_database(cli_verify)


def cmd_audit_export(args: argparse.Namespace) -> int:
    from bot.audit import cli_export

    return _with_database(lambda db: cli_export(db, args.format, sys.stdout))


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.sandbox.demo import run_demo

    return asyncio.run(run_demo(fast=args.fast, scenario=args.scenario))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keydesk",
        description="Security-key onboarding and lost-key help for Microsoft Entra ID, in Slack.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "run", help="run the bot (Socket Mode when SLACK_APP_TOKEN is set, else HTTP)"
    ).set_defaults(func=cmd_run)
    demo = sub.add_parser(
        "demo", help="play a scripted conversation against built-in Slack and Entra simulators"
    )
    demo.add_argument("--fast", action="store_true", help="no pauses between steps")
    demo.add_argument("--scenario", default="all", help="which scenario to play (default: all)")
    demo.set_defaults(func=cmd_demo)
    sub.add_parser("check", help="validate the configuration and exit").set_defaults(func=cmd_check)
    sub.add_parser("migrate", help="create or upgrade the database schema").set_defaults(func=cmd_migrate)
    audit = sub.add_parser("audit", help="the tamper-evident audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser("verify", help="check the hash chain; exit 1 at the first broken row").set_defaults(
        func=cmd_audit_verify
    )
    export = audit_sub.add_parser("export", help="write the audit log to stdout")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.set_defaults(func=cmd_audit_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows event loops have no signal handlers
            signal.signal(sig, lambda *_: stop.set())


if __name__ == "__main__":
    sys.exit(main())

"""Schema migrations with Alembic, configured in code: the scripts ship in bot/store/migrations/.

`await migrate(url)` upgrades any database (SQLite, or PostgreSQL with an optional `?search_path=`
schema) to the newest revision; it is idempotent and safe when several replicas start at once.

After changing or adding models in bot/store/models/, write the revision from the models:

    python -m bot.store.migrate revision "add tap requests"
        Upgrades a scratch SQLite database to head, autogenerates the difference against
        bot.store.models.metadata into versions/NNNN_add_tap_requests.py, and formats it with ruff.
        Review it (autogenerate misses renames and server-side objects) and commit it.

    python -m bot.store.migrate regenerate
        Before the first deployment only: replaces every revision with one fresh 0001_initial.

Either way the PostgreSQL audit guard (append-only triggers) is added automatically whenever a
revision creates the audit table. tests/integration/test_migrations.py fails if models and
migrations disagree, so a forgotten revision cannot slip through.

    python -m bot.store.migrate upgrade URL
        The same as `keydesk migrate`: upgrade URL to head.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from bot.store.db import make_engine

MIGRATIONS = Path(__file__).with_name("migrations")
VERSIONS = MIGRATIONS / "versions"
# Two replicas migrating one PostgreSQL database at once take turns. ("keydmigr" as a bigint.)
MIGRATION_LOCK_KEY = 0x6B65_7964_6D69_6772


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(rev)s")  # revision ids carry their slug: 0002_add_x
    config.attributes["connection"] = connection
    return config


async def migrate(url: str) -> None:
    """Upgrade the database at `url` to head (a no-op when it is already there)."""
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()


async def current_revision(url: str) -> str | None:
    """The revision the database is at (None: never migrated), e.g. for `keydesk check`."""
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current)
    finally:
        await engine.dispose()


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    command.upgrade(alembic_config(connection), "head")


def make_revision(message: str, *, rev_id: str | None = None) -> Path | None:
    """Autogenerate a revision from the models against a scratch SQLite database at head.

    Returns its path, or None when the models match the migrations already.
    """
    rev_id = rev_id or next_rev_id(message)
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'scratch.db'}"
        path = asyncio.run(_autogenerate(url, message, rev_id))
    if path is not None:
        _ruff(path)
    return path


async def _autogenerate(url: str, message: str, rev_id: str) -> Path | None:
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(_upgrade_then_autogenerate, message, rev_id)
    finally:
        await engine.dispose()


def _upgrade_then_autogenerate(connection: Connection, message: str, rev_id: str) -> Path | None:
    config = alembic_config(connection)
    command.upgrade(config, "head")
    written = command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
    scripts = [
        script for script in (written if isinstance(written, list) else [written]) if script is not None
    ]
    if len(scripts) > 1:
        raise RuntimeError("alembic wrote more than one revision")
    return Path(scripts[0].path) if scripts else None


def next_rev_id(message: str) -> str:
    numbers = [int(match.group(1)) for p in VERSIONS.glob("*.py") if (match := re.match(r"(\d{4})_", p.name))]
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40] or "change"
    return f"{max(numbers, default=0) + 1:04d}_{slug}"


def regenerate() -> Path | None:
    """Squash every revision into a fresh 0001_initial (only while no deployed database exists)."""
    for old in VERSIONS.glob("*.py"):
        if old.name != "__init__.py":
            old.unlink()
    return make_revision("initial", rev_id="0001_initial")


def _ruff(path: Path) -> None:
    for args in (["format", "--quiet"], ["check", "--fix", "--quiet"]):
        subprocess.run([sys.executable, "-m", "ruff", *args, str(path)], check=False)  # noqa: S603


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.store.migrate", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("upgrade", help="upgrade a database to head").add_argument("url")
    revision = sub.add_parser("revision", help="autogenerate a revision from the models")
    revision.add_argument("message")
    revision.add_argument("--rev-id")
    sub.add_parser("regenerate", help="replace all revisions with one 0001_initial")
    args = parser.parse_args(argv)
    if args.command == "upgrade":
        asyncio.run(migrate(args.url))
        print(f"database at {head_revision()}")
        return 0
    path = regenerate() if args.command == "regenerate" else make_revision(args.message, rev_id=args.rev_id)
    print(
        "models and migrations already match: nothing written" if path is None else f"wrote {path}; review it"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

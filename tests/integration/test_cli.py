"""The `keydesk` command as an operator meets it: clear configuration errors, migrate, audit verify/export."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.audit import AuditLog
from bot.clock import FrozenClock
from bot.store.db import Database


def keydesk(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AZURE_", "KEYDESK_"))}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        env=clean,
        cwd=cwd,
        timeout=60,
    )


def test_run_without_configuration_names_every_missing_variable(tmp_path: Path) -> None:
    result = keydesk("run", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    for variable in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "KEYDESK_HELPDESK_CHANNEL",
        "KEYDESK_APPROVER_GROUP_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
    ):
        assert any(line.startswith(f"keydesk: {variable} is not set: put ") for line in lines), variable
    assert "Traceback" not in result.stderr + result.stdout


def test_invalid_values_are_reported_one_line_each(tmp_path: Path) -> None:
    result = keydesk(
        "run",
        env={
            "KEYDESK_HTTP_PORT": "eighty",
            "KEYDESK_TAP_LIFETIME_MINUTES": "5",
            "KEYDESK_GRAPH_URL": "not a url",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 2
    err = result.stderr
    assert "KEYDESK_HTTP_PORT is invalid" in err
    assert "KEYDESK_TAP_LIFETIME_MINUTES is invalid" in err
    assert "KEYDESK_GRAPH_URL is invalid" in err
    assert "Traceback" not in err


def test_a_static_graph_token_is_refused_for_real_graph(tmp_path: Path) -> None:
    result = keydesk("check", env={"KEYDESK_GRAPH_TOKEN": "abc123456"}, cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "KEYDESK_GRAPH_TOKEN is accepted only when KEYDESK_GRAPH_URL is a loopback address" in result.stderr
    )
    assert "abc123456" not in result.stderr


def test_the_admin_process_needs_its_own_approver_group(tmp_path: Path) -> None:
    on = {"KEYDESK_ALLOW_PRIVILEGED_TARGETS": "true", "KEYDESK_APPROVER_GROUP_ID": "group-a"}
    missing = keydesk("run", env=on, cwd=tmp_path)
    assert missing.returncode == 2
    assert "keydesk: KEYDESK_PRIVILEGED_APPROVER_GROUP_ID is not set: put the object id of a separate" in (
        missing.stderr
    )

    same = keydesk("run", env={**on, "KEYDESK_PRIVILEGED_APPROVER_GROUP_ID": "GROUP-A"}, cwd=tmp_path)
    assert same.returncode == 2
    assert "KEYDESK_PRIVILEGED_APPROVER_GROUP_ID must be a separate group" in same.stderr
    assert "Traceback" not in missing.stderr + same.stderr

    off = keydesk("run", env={"KEYDESK_APPROVER_GROUP_ID": "group-a"}, cwd=tmp_path)
    assert "KEYDESK_PRIVILEGED_APPROVER_GROUP_ID" not in off.stderr  # only needed with the admin process


def test_socket_mode_needs_no_signing_secret_and_check_passes(tmp_path: Path) -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1-2-3",
        "SLACK_APP_TOKEN": "xapp-1-2-3",
        "KEYDESK_HELPDESK_CHANNEL": "C123",
        "KEYDESK_APPROVER_GROUP_ID": "g1",
        "AZURE_TENANT_ID": "t",
        "AZURE_CLIENT_ID": "c",
    }
    result = keydesk("check", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "configuration OK (Socket Mode" in result.stdout
    assert "xoxb-1-2-3" not in result.stdout + result.stderr


def test_a_broken_guide_stops_check_with_the_file_and_the_problem(tmp_path: Path) -> None:
    guides = tmp_path / "guides"
    guides.mkdir()
    (guides / "local.yaml").write_text("extends: fido2\nextra_steps:\n  - id: label\n    after: nowhere\n")
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1-2-3",
        "SLACK_APP_TOKEN": "xapp-1-2-3",
        "KEYDESK_HELPDESK_CHANNEL": "C123",
        "KEYDESK_APPROVER_GROUP_ID": "g1",
        "AZURE_TENANT_ID": "t",
        "AZURE_CLIENT_ID": "c",
        "KEYDESK_GUIDES_DIR": str(guides),
    }
    result = keydesk("check", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "KEYDESK_GUIDES_DIR has an unusable guide" in result.stderr
    assert "local.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("KEYDESK_HTTP_PORT=99999\n")
    result = keydesk("check", cwd=tmp_path)
    assert "KEYDESK_HTTP_PORT is invalid" in result.stderr


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"


async def test_migrate_then_audit_verify_and_export(tmp_path: Path, sqlite_url: str) -> None:
    env = {"KEYDESK_DATABASE_URL": sqlite_url}
    migrated = keydesk("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    db = Database(sqlite_url)
    log = AuditLog(db, FrozenClock())
    for n in range(5):
        await log.record("test.event", actor="system", target=f"t{n}", details={"n": n})
    await db.close()

    ok = keydesk("audit", "verify", env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    exported = keydesk("audit", "export", "--format", "jsonl", env=env, cwd=tmp_path)
    rows = [json.loads(line) for line in exported.stdout.splitlines() if line.strip()]
    assert [r["target"] for r in rows] == [f"t{n}" for n in range(5)]
    csv_out = keydesk("audit", "export", "--format", "csv", env=env, cwd=tmp_path)
    assert csv_out.stdout.count("\n") == 6  # header + five rows

    with sqlite3.connect(tmp_path / "ops.db") as conn:
        table = next(
            name
            for (name,) in conn.execute("select name from sqlite_master where type='table'")
            if "audit" in name
        )
        conn.execute(f"update {table} set target = 'edited' where target = 't2'")
    broken = keydesk("audit", "verify", env=env, cwd=tmp_path)
    assert broken.returncode == 1
    assert "3" in (broken.stdout + broken.stderr)  # the third row is the first broken one

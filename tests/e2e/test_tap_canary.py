"""The canary: a real pass goes through the whole flow with our logging at DEBUG; afterwards the value is
searched for in the logs, every table of the database, the database files, everything keydesk sent to
Slack and to Graph. It may appear in exactly one place: the `views.update` that showed it to its owner."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import structlog
from sqlalchemy import select

from bot.logs import QUIET_LOGGERS, configure_logging
from bot.sandbox.company import Company
from bot.sandbox.stack import Stack
from bot.slack.ids import Action
from bot.store.models import metadata

from .helpers import (
    ShiftableClock,
    approve,
    ask_for_pass,
    pass_value,
    reveal,
    settle,
    wait_audit,
    wait_card,
    wait_dm,
)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """Production logging (`configure_logging`) at DEBUG, rendered into a buffer and into caplog."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    configure_logging("DEBUG", "json")
    rendered = io.StringIO()
    root.handlers[0].setStream(rendered)  # type: ignore[attr-defined]
    root.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    try:
        yield rendered
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
        structlog.reset_defaults()


def spellings(value: str) -> set[str]:
    """The value as it could appear once encoded for JSON, a form body or a URL."""
    return {value, json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value)}


def holds(text: str, value: str) -> bool:
    return any(s in text for s in spellings(value))


async def database_text(stack: Stack) -> str:
    parts: list[str] = []
    async with stack.keydesk.rt.db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            parts.append(f"{table.name}: {rows!r}")
    return "\n".join(parts)


def database_files(url: str) -> bytes:
    if not url.startswith("sqlite"):
        return b""
    path = Path(url.split("///", 1)[1])
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


async def test_the_pass_is_only_ever_in_the_modal_that_showed_it(
    stack: Stack,
    company: Company,
    app_clock: ShiftableClock,
    debug_logs: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    slack, graph, ada = stack.slack, stack.graph, company.ada
    await ask_for_pass(stack, ada.slack_id)
    question = await wait_dm(slack, company.grace.slack_id, "Did you expect")
    await slack.click(company.grace.slack_id, Action.MANAGER_CONFIRM, message=question)
    card = await wait_card(slack, ":white_check_mark: confirmed")
    await approve(slack, company.sam.slack_id, card, note="verified on video")
    ready = await wait_dm(slack, ada.slack_id, "Your Temporary Access Pass is ready")
    view = await reveal(slack, ada.slack_id, ready)
    value = pass_value(view)
    [tap] = graph.tenant.taps_of(ada.entra_id)
    assert value == tap.value
    await wait_dm(slack, company.grace.slack_id, "was issued to Ada Lovelace")
    await settle(stack)
    app_clock.advance(timedelta(minutes=tap.lifetime_minutes, seconds=5))  # expiry and clean-up run too
    await wait_audit(stack, "tap.pass.expired", timeout=3.0)
    await settle(stack)

    # The logs really were captured, at DEBUG, including our own loggers'.
    logs = debug_logs.getvalue()
    assert '"logger": "bot.services.conversation"' in logs
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    records = "\n".join(f"{r.name} {r.getMessage()} {r.__dict__!r}" for r in caplog.records)
    printed = capfd.readouterr()
    for where, text in {
        "rendered logs": logs,
        "log records": records,
        "stdout": printed.out,
        "stderr": printed.err,
        "database tables": await database_text(stack),
        "Graph request bodies": "\n".join(json.dumps(r.json) for r in graph.requests),
        "audit log": json.dumps([e.as_json() for e in await stack.keydesk.rt.audit.entries()], default=str),
    }.items():
        assert not holds(text, value), f"the pass leaked into the {where}"
    assert value.encode() not in database_files(stack.settings.database_url)

    # Slack: the value reached exactly one API call, the views.update of Ada's own modal.
    carrying = [c for c in slack.calls if holds(json.dumps(c.params), value)]
    assert [(c.method, c.params.get("view_id")) for c in carrying] == [("views.update", view.id)]
    assert view.user_id == ada.slack_id
    sent = [entry for entry in slack.core.outbound if holds(entry, value)]
    assert len(sent) == 1 and view.id in sent[0]
    for message in [*slack.core.workspace.all_messages(), *slack.ephemerals()]:
        assert not holds(message.text + json.dumps(message.blocks), value)

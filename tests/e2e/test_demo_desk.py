"""`keydesk demo --scenario desk` end to end: the real bot on the simulators and the real desk agent as a
separate process (pair, then run with its soft key), played the way the demo plays it. Asserts what
the story claims: the key is registered in Entra with a verified attestation, the pickup PIN reached
only Noor's modal, and the inventory holds the key with its history. Plus: a desk agent that dies is
reported at once (the demo never waits out its timeouts on a dead agent) and is always stopped."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import socket
import tempfile
from pathlib import Path

import pytest
from rich.console import Console

from bot.sandbox.company import Company
from bot.sandbox.demo_desk import DeskAgentProcess, DeskFailed, desk_scenario, make_attestation_root
from bot.sandbox.graph_sim import Fido2Method
from bot.sandbox.narrator import Narrator
from bot.sandbox.stack import Stack
from bot.store.models.desk_provisioning import SealedPin
from bot.store.models.key_inventory import KeyEvent, KeyRecord

from .helpers import wait_audit
from .test_desk_link import rows
from .test_tap_canary import database_text, holds

TMP = Path(tempfile.mkdtemp(prefix="keydesk-demo-test-"))
pytestmark = pytest.mark.keydesk_settings(
    agent_signing_key_file=TMP / "agent-link.key",
    pin_seal_key_file=TMP / "pin-seal.key",
    agent_long_poll_seconds=2.0,
)


def agent_children() -> list[str]:
    """Command lines of this process's children that run the desk agent (none must outlive a scenario)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and "agent.cli" in command:
            found.append(command)
    return found


async def test_the_desk_scenario_plays_with_the_agent_as_a_process(stack: Stack, company: Company) -> None:
    out = io.StringIO()
    narrator = Narrator(stack, company, Console(file=out, width=110), fast=True)

    await desk_scenario(narrator)

    assert agent_children() == [], "a desk agent process outlived the scenario"
    shown = out.getvalue()
    for step in ("Paired as desk-1", "Serving jobs", "→ Job inspect", "→ Job provision", "Your key's PIN"):
        assert step in shown, step
    [noor] = [u for u in stack.graph.tenant.users.values() if u.upn.startswith("noor@")]
    # Entra (the simulator) verified the attestation against the demo's root and registered the passkey
    [passkey] = [m for m in stack.graph.tenant.methods_of(noor.id) if isinstance(m, Fido2Method)]
    assert passkey.attestation_level == "attested"
    # the inventory: the key, its user, its history
    [record] = await rows(stack, KeyRecord)
    assert (record.serial, record.state, record.user_slack_id, record.entra_method_id) == (
        "KD-SOFT-0001",
        "provisioned",
        "U0NOOR",
        passkey.id,
    )
    assert [e.kind for e in await rows(stack, KeyEvent)] == ["inspected", "provisioned"]
    assert "provisioned for @Noor Haddad at desk-1" in shown
    # the PIN: shown once, in Noor's modal, then deleted; nowhere else in Slack, the database or the desk
    revealed = await wait_audit(stack, "desk.pin.revealed")
    assert revealed.actor == "slack:U0NOOR"
    assert await rows(stack, SealedPin) == []
    [modal] = [
        v for v in stack.slack.open_views("U0NOOR") if any(b.get("block_id") == "pin" for b in v.blocks)
    ]
    [pin_block] = [b for b in modal.blocks if b.get("block_id") == "pin"]
    pin = str(pin_block["text"]["text"]).strip("`")
    assert re.fullmatch(r"\d{6,}", pin), pin
    assert shown.count(pin) == 1, "the PIN was shown somewhere other than Noor's modal (the desk's screen?)"
    carrying = [c for c in stack.slack.calls if holds(json.dumps(c.params), pin)]
    assert [(c.method, c.params.get("view_id")) for c in carrying] == [("views.update", modal.id)]
    for message in [*stack.slack.core.workspace.all_messages(), *stack.slack.ephemerals()]:
        assert not holds(message.text + json.dumps(message.blocks), pin)
    assert not holds(await database_text(stack), pin)


async def test_an_agent_that_stops_is_reported_at_once_and_cleaned_up(tmp_path: Path) -> None:
    """`run` on a desk that was never paired exits: the wait fails with its screen, not a timeout."""
    ca = tmp_path / "ca"
    ca.mkdir()
    make_attestation_root(ca)
    assert (ca / "attestation-root.key").stat().st_mode & 0o777 == 0o600
    desk = DeskAgentProcess(tmp_path / "home", ca)
    try:
        await desk.start(["run", "--soft"])
        with pytest.raises(DeskFailed, match=r"(?s)stopped \(exit 1\).*not paired"):
            await desk.wait_for("Serving jobs", "the agent to start", timeout=60.0)
    finally:
        await desk.stop()
    assert desk.exit_code == 1


async def test_a_running_agent_is_terminated_by_stop(tmp_path: Path) -> None:
    """An agent stuck talking to a server that never answers is ended by stop() (terminate, then kill)."""
    ca = tmp_path / "ca"
    ca.mkdir()
    make_attestation_root(ca)
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        server = f"http://127.0.0.1:{silent.getsockname()[1]}"
        desk = DeskAgentProcess(tmp_path / "home", ca)
        await desk.start(["pair", "--server", server, "--code", "AAAA-BBBB-CCCC-DDDD", "--name", "stuck"])
        await asyncio.sleep(0.3)
        assert desk.exit_code is None, desk.tail()
        await desk.stop()
    assert desk.exit_code is not None
    assert agent_children() == []

"""The demo's desk chapter: a technician pairs a desk agent, inspects a key and prepares it for pickup.

The desk agent is the real `keydesk-agent`, run as a separate process (`python -m agent.cli`) with its
software key (`--soft`), exactly as a technician would run it: nothing here imports the agent or fido2.
What the agent prints is shown as the desk's screen. The Graph simulator only registers a passkey whose
attestation chains to a root it trusts for that key model, so the demo makes its own attestation root,
hands it to the agent (KEYDESK_SOFTKEY_CA_DIR) and has the Entra admin trust that root for the model the
desk reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from rich.panel import Panel
from rich.text import Text

from bot.sandbox.company import DOMAIN, Person
from bot.sandbox.graph_sim import Fido2Method
from bot.sandbox.narrator import Narrator
from bot.sandbox.slack_sim import SimMessage
from bot.slack.ids import Action, ViewId

DESK = "desk-1"
SOFT_KEY_MODEL = "keydesk soft key (test authenticator)"
# The agent reads its attestation root from this directory (agent/softkey/attestation.py; same names).
CA_DIR_ENV = "KEYDESK_SOFTKEY_CA_DIR"
CA_CERT_FILE, CA_KEY_FILE = "attestation-root.pem", "attestation-root.key"
PAIR_TIMEOUT = 30.0  # starting Python and importing the agent can take a few seconds on a slow machine
JOB_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
_CODE = re.compile(r"`([A-Z2-9]{4}(?:-[A-Z2-9]{4}){3})`")
_AAGUID = re.compile(r"AAGUID `([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})`")
_SERIAL = re.compile(r"serial `([^`]+)`")


class DeskFailed(RuntimeError):
    """The desk agent did not do its part; the message says what and shows the end of its screen."""


# --- the demo's attestation root ---------------------------------------------------------------------
def make_attestation_root(directory: Path) -> bytes:
    """Write a fresh EC root CA (certificate and owner-only key) for the soft key; return its PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "keydesk demo"),
            x509.NameAttribute(NameOID.COMMON_NAME, "keydesk demo soft key attestation root"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (directory / CA_CERT_FILE).write_bytes(pem)
    key_file = directory / CA_KEY_FILE
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return pem


# --- the desk agent, a separate process ----------------------------------------------------------------
class DeskAgentProcess:
    """Runs `keydesk-agent` commands for one desk home and keeps what they print (the desk's screen)."""

    def __init__(self, home: Path, ca_dir: Path) -> None:
        self.home = home
        self.env = {
            **os.environ,
            CA_DIR_ENV: str(ca_dir),
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "100",
            "NO_COLOR": "1",
        }
        self.screen: list[str] = []
        self._shown = 0
        self._running: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def _spawn(self, args: list[str]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agent.cli",
            *args,
            "--home",
            str(self.home),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
        )

    async def once(self, args: list[str], timeout: float = PAIR_TIMEOUT) -> int:
        """Run a command to its end (killed after `timeout`); its output joins the screen."""
        proc = await self._spawn(args)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            raise DeskFailed(f"`keydesk-agent {args[0]}` did not finish within {timeout:.0f} s") from None
        finally:
            await _end(proc)
        self.screen += out.decode(errors="replace").splitlines()
        return proc.returncode if proc.returncode is not None else -1

    async def start(self, args: list[str]) -> None:
        """Start a long-running command (`run`); its output is read line by line as it comes."""
        self._running = await self._spawn(args)
        self._reader = asyncio.create_task(self._read(self._running))

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            self.screen.append(line.decode(errors="replace").rstrip())

    @property
    def exit_code(self) -> int | None:
        """The long-running command's exit status; None while it runs (or before it started)."""
        return self._running.returncode if self._running is not None else None

    def fresh(self) -> list[str]:
        """The screen's lines not shown yet."""
        lines = self.screen[self._shown :]
        self._shown = len(self.screen)
        return lines

    async def wait_for(self, text: str, what: str, timeout: float = JOB_TIMEOUT) -> None:
        """Wait until the desk's screen shows `text`; fail at once if the agent stopped."""
        await self.until(lambda: any(text in line for line in self.screen), what, timeout)

    async def until(self, condition: Callable[[], Any], what: str, timeout: float = JOB_TIMEOUT) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = condition()
            if result:
                return result
            if self._running is not None and self._running.returncode is not None:
                raise DeskFailed(
                    f"the desk agent stopped (exit {self._running.returncode}) before {what}. "
                    f"Its screen ended with:\n{self.tail()}"
                )
            if loop.time() > deadline:
                raise DeskFailed(
                    f"timed out after {timeout:.0f} s waiting for {what}. Desk screen:\n{self.tail()}"
                )
            await asyncio.sleep(0.05)

    def tail(self, lines: int = 12) -> str:
        return "\n".join(self.screen[-lines:]) or "(nothing)"

    async def stop(self) -> None:
        """Stop the running agent (terminate, then kill) and finish reading its output."""
        if self._running is not None:
            await _end(self._running)
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._reader, STOP_TIMEOUT)


async def _end(proc: asyncio.subprocess.Process) -> None:
    """Terminate a child if it still runs; kill it if it does not stop in time. Always waits for it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def desk_screen(lines: list[str], command: str | None = None) -> Panel:
    body = Text()
    if command:
        body.append(f"$ {command}\n", style="bold")
    body.append("\n".join(lines) if lines else "…")
    return Panel(
        body, title=f"[bold]the desk's screen[/] · {DESK}", title_align="left", border_style="yellow"
    )


# --- what the people see in Slack ------------------------------------------------------------------------
def _text(message: SimMessage) -> str:
    return message.text + " " + str(message.blocks)


async def _ephemeral(n: Narrator, user: str, contains: str, skip: int) -> SimMessage:
    """The newest ephemeral to `user` containing `contains`, once more than `skip` of them exist."""

    def probe() -> SimMessage | None:
        hits = [m for m in n.stack.slack.ephemerals(user_id=user) if contains in _text(m)]
        return hits[-1] if len(hits) > skip else None

    found: SimMessage = await n.until(probe, f"the reply to {n.names.get(user, user)} ({contains!r})")
    return found


async def slash(n: Narrator, person: Person, text: str, answer: str) -> SimMessage:
    """`person` types `/keydesk text` in the helpdesk channel; show and return the reply only they see."""
    slack = n.stack.slack
    n.console.print(_typed(person, f"/keydesk {text}"))
    skip = sum(answer in _text(m) for m in slack.ephemerals(user_id=person.slack_id))
    await slack.slash(person.slack_id, "/keydesk", text, n.company.helpdesk_channel)
    reply = await _ephemeral(n, person.slack_id, answer, skip)
    n.show_message(reply, f"#helpdesk-keys, only {person.name} sees this")
    return reply


def _typed(person: Person, text: str) -> Panel:
    return Panel(
        Text(text),
        title=f"[bold]{person.name}[/] · #helpdesk-keys",
        title_align="right",
        border_style="green",
    )


def _in_channel(n: Narrator, contains: str) -> SimMessage | None:
    hits = [m for m in n.stack.slack.messages(n.company.helpdesk_channel) if contains in _text(m)]
    return hits[-1] if hits else None


def _thread(n: Narrator, card: SimMessage) -> list[SimMessage]:
    return [
        m
        for m in n.stack.slack.messages(n.company.helpdesk_channel)
        if m.thread_ts == card.ts and m.ts != card.ts
    ]


def _outcome(n: Narrator, card: SimMessage) -> bool:
    """True once the card's thread says the key is done; a failure there stops the demo at once."""
    for message in _thread(n, card):
        if "was *not* prepared" in message.text:
            raise DeskFailed(f"keydesk says the key was not prepared: {message.text}")
        if "Done." in message.text:
            return True
    return False


def _new_hire(n: Narrator) -> Person:
    """Noor starts next week and will pick her key up at the front desk (nothing registered yet)."""
    handle, name = "noor", "Noor Haddad"
    email = f"{handle}@{DOMAIN}"
    user = n.stack.graph.tenant.add_user(
        name,
        email,
        department="Finance",
        job_title="Financial Analyst",
        created=dt.datetime(2026, 11, 16, 8, 30, tzinfo=dt.UTC),
        manager_id=n.company.grace.entra_id,
    )
    n.stack.slack.add_user("U0NOOR", handle, real_name=name, email=email)
    n.names["U0NOOR"] = name
    return Person(slack_id="U0NOOR", entra_id=user.id, name=name, email=email)


# --- the scenario ----------------------------------------------------------------------------------------
async def desk_scenario(n: Narrator) -> None:
    with tempfile.TemporaryDirectory(prefix="keydesk-demo-desk-") as tmp:
        ca_dir = Path(tmp) / "attestation"
        ca_dir.mkdir(mode=0o700)
        root_pem = make_attestation_root(ca_dir)
        desk = DeskAgentProcess(Path(tmp) / "agent-home", ca_dir)
        try:
            await _play(n, desk, root_pem)
        finally:
            await desk.stop()


async def _play(n: Narrator, desk: DeskAgentProcess, root_pem: bytes) -> None:
    slack, company = n.stack.slack, n.company
    sam, alex = company.sam, company.alex
    noor = _new_hire(n)

    n.chapter("Sam pairs the front desk's computer with keydesk")
    n.note(
        "Sam, on the helpdesk, sets up the computer where keys are prepared. "
        "He asks keydesk for a one-time pairing code in the helpdesk channel:"
    )
    reply = await slash(n, sam, "desk pair", "one-time pairing code")
    code = _CODE.search(_text(reply))
    if code is None:
        raise DeskFailed("the pairing code was not in Sam's reply")
    n.note("At the desk he runs the agent with the code (here with keydesk's software key):")
    command = f"keydesk-agent pair --server {n.stack.url} --code {code.group(1)} --name {DESK}"
    status = await desk.once(["pair", "--server", n.stack.url, "--code", code.group(1), "--name", DESK])
    n.console.print(desk_screen(desk.fresh(), command))
    if status != 0:
        raise DeskFailed(f"`keydesk-agent pair` failed (exit {status}):\n{desk.tail()}")
    card = await n.until(lambda: _in_channel(n, f"Desk agent `{DESK}` paired"), "the pairing card")
    n.note("The helpdesk channel sees the new desk; it gets no jobs until a second approver confirms it:")
    n.show_message(card, "#helpdesk-keys")
    await n.pause()
    n.note("Alex, another approver, checks the fingerprint with Sam and clicks *Confirm*:")
    await slack.click(alex.slack_id, Action.DESK_AGENT_CONFIRM, message=card)
    confirmed = await _ephemeral(n, alex.slack_id, f"Confirmed: desk agent `{DESK}`", 0)
    n.show_message(confirmed, "#helpdesk-keys, only Alex Kim sees this")
    n.note("Sam starts the agent; it waits for signed jobs from keydesk:")
    await desk.start(["run", "--soft"])
    await desk.wait_for("Serving jobs", "the agent to start")
    n.console.print(desk_screen(desk.fresh(), "keydesk-agent run"))
    await n.pause()

    n.chapter("Sam checks a new key at the desk")
    n.note("Sam plugs a key in from the box of new keys and asks the desk what it is:")
    await slash(n, sam, f"desk inspect {DESK}", "Sent to desk")
    report = await desk.until(
        lambda: [m for m in slack.dm_messages(sam.slack_id) if "inspected" in m.text], "the desk's report"
    )
    await desk.wait_for("Done; result sent", "the inspect job to finish")
    n.console.print(desk_screen(desk.fresh()))
    n.note("keydesk DMs Sam what the desk saw, and the key is now in the inventory:")
    n.show_message(report[-1], "DM with Sam Rivera")
    aaguid, serial = _AAGUID.search(report[-1].text), _SERIAL.search(report[-1].text)
    if aaguid is None:
        raise DeskFailed(f"the desk's report named no AAGUID: {report[-1].text}")
    n.note(
        f"Lin, the Entra admin, allows this key model (AAGUID {aaguid.group(1)}) and trusts its "
        "attestation root, so Entra accepts only genuine keys of that model."
    )
    n.stack.graph.tenant.trust_key_model(aaguid.group(1), SOFT_KEY_MODEL, root_pem)
    await n.pause()

    n.chapter("Sam prepares a key for Noor, who will pick it up")
    n.note(
        "Noor Haddad starts Monday. Sam asks keydesk to prepare the key at the desk, with a random PIN "
        "that only Noor will see:"
    )
    await slash(
        n,
        sam,
        f"desk provision {DESK} <@{noor.slack_id}|{noor.name}> pickup",
        "a second approver must approve",
    )
    card = await n.until(lambda: _in_channel(n, f"Security key request for {noor.name}"), "the request card")
    n.show_message(card, "#helpdesk-keys")
    grace = n.company.grace
    ask = await n.until(
        lambda: [m for m in slack.dm_messages(grace.slack_id) if noor.name in _text(m)], "the manager's DM"
    )
    n.note("Noor's manager, Grace, is asked whether she expects this, and confirms:")
    n.show_message(ask[-1], "DM with Grace Hopper")
    await slack.click(grace.slack_id, Action.MANAGER_CONFIRM, message=ask[-1])
    await n.until(
        lambda: "confirmed" in str(_in_channel(n, f"Security key request for {noor.name}")), "the card"
    )
    await n.pause()
    n.note("Alex approves; the person who asked can't approve their own request:")
    await slack.click(alex.slack_id, Action.TAP_APPROVE, message=card)
    modal = await n.until(
        lambda: [v for v in slack.open_views(alex.slack_id) if v.callback_id == ViewId.TAP_APPROVE],
        "the approval modal",
    )
    await slack.submit_view(alex.slack_id, modal[-1].id, {"verification": {"method": "in_person"}})
    await n.until(
        lambda: (v := slack.view(modal[-1].id)) is not None and "preparing the key" in str(v.blocks),
        "the approval result",
    )
    n.show_modal(alex.slack_id, "Alex's screen")

    n.chapter("The desk creates the passkey; Entra verifies and registers it")
    await desk.until(lambda: _outcome(n, card), "the key to be ready")
    await desk.wait_for("asks for a new PIN at first use", "the desk to finish the key")
    n.note("The desk does it all; nobody there sees the PIN (it goes to keydesk sealed for Noor):")
    n.console.print(desk_screen(desk.fresh()))
    n.note("The card's thread follows each step:")
    for message in _thread(n, card):
        n.show_message(message, "#helpdesk-keys, in the card's thread")
    passkeys = [m for m in n.stack.graph.tenant.methods_of(noor.entra_id) if isinstance(m, Fido2Method)]
    if not passkeys:
        raise DeskFailed("keydesk said the key is done, but Entra has no passkey for Noor")
    for method in passkeys:
        n.note(
            f"In Entra, Noor now has the passkey '{method.display_name}' (AAGUID {method.aaguid}): "
            f"Entra checked its attestation ({method.attestation_level}) against the model's root."
        )
    await n.pause()

    n.chapter("Noor reveals her PIN, once")
    offer = await n.until(
        lambda: [
            m for m in slack.dm_messages(noor.slack_id) if Action.DESK_PIN_REVEAL.value in str(m.blocks)
        ],
        "the PIN offer in Noor's DM",
    )
    n.note(
        "Noor is told her key is ready, and gets the PIN offer in a separate message with no secret in it:"
    )
    for message in slack.dm_messages(noor.slack_id):
        if message.user == slack.config.bot_user_id:
            n.show_message(message, "DM with Noor Haddad")
    n.note("She clicks *Reveal PIN*:")
    await slack.click(noor.slack_id, Action.DESK_PIN_REVEAL, message=offer[-1])
    await n.until(
        lambda: any(_has_pin(v.blocks) for v in slack.open_views(noor.slack_id)), "the PIN", timeout=10.0
    )
    n.show_modal(noor.slack_id, "Noor's screen (only she sees this)")
    changed = await n.until(
        lambda: [
            m
            for m in slack.dm_messages(noor.slack_id)
            if m.ts == offer[-1].ts and Action.DESK_PIN_REVEAL.value not in str(m.blocks)
        ],
        "the PIN offer to change",
    )
    n.note("keydesk deleted its sealed copy; the offer now says the PIN was shown:")
    n.show_message(changed[-1], "DM with Noor Haddad")
    await n.pause()

    n.chapter("The key's history")
    if serial is not None and serial.group(1) != "no serial exposed":
        n.note("Anyone on the helpdesk can look the key up by its serial number:")
        await slash(n, alex, f"key {serial.group(1)}", "*History*")
    else:
        n.note("This key exposes no serial number, so its inventory record is the desk's report above.")


def _has_pin(blocks: list[dict[str, Any]]) -> bool:
    return any(block.get("block_id") == "pin" for block in blocks)

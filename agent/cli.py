"""`keydesk-agent`: the desk agent's command line.

`inspect` and `reset` work offline against the key on the desk (or the soft key with `--soft`).
`pair` registers this desk with a keydesk server, `run` serves its jobs, `status` shows the pairing.
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agent.jobs import PinPrompt, PinQuestion
from agent.keys.devices import (
    HidKeySource,
    HostFacts,
    KeyDescriptor,
    KeySource,
    OpenKey,
    access_hint,
    check_host,
    host_facts,
)
from agent.keys.errors import KeyOperationError, Problem
from agent.keys.inspect import KeyPolicy, KeyReport, PolicyVerdict, inspect_key
from agent.keys.metadata import ModelCatalog
from agent.keys.reset import ResetPrompts, ResetTiming, reset_key
from agent.keys.secret import Pin
from agent.keys.timing import SystemTimer, Timer
from agent.link import AgentHome, AgentLink, LinkError, LinkStopped, default_home
from agent.link import pair as pair_with_server
from agent.softkey import SoftAuthenticator, SoftHands, SoftKeySource, Transport, soft_key_model
from agent.softkey.demo import prepare_for_pickup

NOT_PAIRED = (
    "This desk agent is not paired with a keydesk server yet. Ask an approver for a code "
    "(/keydesk desk pair in Slack), then run: keydesk-agent pair --server URL --code CODE"
)
CONFIRM_WORD = "RESET"


class UsageError(Exception):
    """The command line itself is wrong (exit 2), as opposed to the key saying no (exit 1)."""


@dataclass
class Desk:
    """The outside world the CLI touches, injectable for tests."""

    console: Console = field(default_factory=Console)
    read_secret: Callable[[str], str] = getpass.getpass
    read_line: Callable[[str], str] = input
    timer: Timer = field(default_factory=SystemTimer)
    facts: Callable[[], HostFacts] = host_facts
    hid_source: Callable[[], KeySource] = HidKeySource
    soft_pause_s: float = 0.4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keydesk-agent",
        description="keydesk desk agent: inspects, resets and (once paired) provisions USB security keys.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    inspect = sub.add_parser("inspect", help="show what the key(s) on the desk are and their state")
    _soft_flags(inspect)
    inspect.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="AAGUID",
        help="a key model the tenant allows (repeat)",
    )
    inspect.add_argument(
        "--policy", type=Path, help='JSON file: a list of allowed AAGUIDs, or {"aaGuids": [...]}'
    )
    inspect.add_argument(
        "--count", action="store_true", help="ask for the PIN to count the passkeys on the key"
    )
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")
    reset = sub.add_parser("reset", help="factory-reset the key: erases every passkey and the PIN")
    _soft_flags(reset)
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    status = sub.add_parser("status", help="show whether this agent is paired")
    _home_flag(status)
    pair = sub.add_parser("pair", help="pair with a keydesk server using an approver's one-time code")
    pair.add_argument(
        "--server",
        required=True,
        help="the keydesk server URL, e.g. https://keydesk.example.com (https; http only to this machine)",
    )
    pair.add_argument("--code", required=True, help="the pairing code an approver got in Slack")
    pair.add_argument("--name", default=None, help="this desk's name in Slack (default: the computer's name)")
    _home_flag(pair)
    run = sub.add_parser("run", help="serve jobs from the paired server until stopped (Ctrl+C)")
    _soft_flags(run)
    _home_flag(run)
    run.add_argument("--once", action="store_true", help="ask for one job, serve it, and stop")
    return parser


def _home_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="config directory (default: $KEYDESK_AGENT_HOME or ~/.config/keydesk-agent)",
    )


def _soft_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--soft", action="store_true", help="use keydesk's software key instead of USB (demos, tests)"
    )
    parser.add_argument(
        "--soft-prepared",
        action="store_true",
        help="with --soft: a key prepared for pickup (PIN, passkey, forced change)",
    )


def main(argv: Sequence[str] | None = None, desk: Desk | None = None) -> int:
    args = build_parser().parse_args(argv)
    desk = desk or Desk()
    console = desk.console
    try:
        if args.command == "inspect":
            return _inspect(args, desk)
        if args.command == "reset":
            return _reset(args, desk)
        if args.command == "pair":
            return _pair(args, desk)
        if args.command == "run":
            return _run(args, desk)
        return _status(args, desk)
    except KeyOperationError as exc:
        console.print(f"[bold red]✗[/] {exc.sentence}", highlight=False)
        return 1
    except LinkError as exc:
        console.print(f"[bold red]✗[/] {exc}", highlight=False)
        return 1
    except UsageError as exc:
        console.print(f"[bold red]✗[/] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        console.print("Stopped. Nothing more was done.")
        return 130


# -- inspect ---------------------------------------------------------------------------------


def _inspect(args: argparse.Namespace, desk: Desk) -> int:
    source, catalog, _ = _source(args, desk)
    policy = _policy(args)
    found = source.scan()
    if not found:
        raise KeyOperationError(Problem.NO_KEY, None if args.soft else access_hint(desk.facts()))
    reports = [_inspect_one(source, d, catalog, policy, args.count, desk) for d in found]
    if args.json:
        desk.console.print_json(json.dumps([report_json(r) for r in reports]))
        return 0
    for index, report in enumerate(reports, 1):
        desk.console.print(render_report(report, index, len(reports)))
    return 0


def _inspect_one(
    source: KeySource,
    descriptor: KeyDescriptor,
    catalog: ModelCatalog,
    policy: KeyPolicy | None,
    count: bool,
    desk: Desk,
) -> KeyReport:
    key = OpenKey(descriptor, source.open(descriptor))
    try:
        first = inspect_key(key, catalog=catalog, policy=policy)
        if not (count and first.pin.is_set and first.discoverable_credentials is None):
            return first
        typed = desk.read_secret("PIN of the key, to count its passkeys (not shown; Enter to skip): ")
        return inspect_key(key, catalog=catalog, policy=policy, pin=Pin(typed)) if typed else first
    finally:
        key.close()


def _policy(args: argparse.Namespace) -> KeyPolicy | None:
    aaguids = list(args.allow)
    if args.policy:
        try:
            data = json.loads(args.policy.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"Cannot read the policy file {args.policy}: {exc}") from exc
        aaguids += data if isinstance(data, list) else data.get("aaGuids", [])
    try:
        return KeyPolicy.allowing(aaguids) if aaguids else None
    except (ValueError, AttributeError) as exc:
        raise UsageError(
            "Every allowed key model must be an AAGUID such as 2fc0579f-8113-47ea-b116-bb5a8db9202a."
        ) from exc


def render_report(report: KeyReport, index: int, total: int) -> Table:
    title = f"Security key {index} of {total}: {report.product_name or 'unnamed device'}"
    table = Table(title=title, show_header=False, title_justify="left", highlight=False)
    table.add_column(style="bold")
    table.add_column()
    vendor = f" · {report.model.vendor}" if report.model else ""
    table.add_row("Model", f"{report.model_name}{vendor}")
    table.add_row("AAGUID", report.aaguid)
    table.add_row("Firmware", report.firmware or "not reported")
    table.add_row("Serial number", report.serial_number or "not exposed by this key")
    table.add_row("FIDO versions", ", ".join(report.versions))
    table.add_row("PIN", _pin_text(report))
    table.add_row("Minimum PIN length", str(report.pin.min_length))
    table.add_row("Forced PIN change", _force_text(report))
    table.add_row("Passkeys", _passkeys_text(report))
    table.add_row("Microsoft Entra", _entra_text(report))
    if report.desk_limits:
        table.add_row("At the desk", "this key " + "; ".join(report.desk_limits))
    table.add_row("Tenant policy", _policy_text(report.policy))
    return table


def _pin_text(report: KeyReport) -> str:
    pin = report.pin
    if not pin.supported:
        return "[red]no PIN support[/]"
    if not pin.is_set:
        return "not set"
    if pin.retries == 0:
        return "[red]blocked: only a reset helps (it erases the passkeys)[/]"
    text = f"set · {pin.retries} tries left"
    if pin.power_cycle_required:
        text += " · [yellow]unplug and re-plug before the next try[/]"
    return text


def _force_text(report: KeyReport) -> str:
    if report.pin.force_change_pending:
        return "[yellow]pending[/]: the PIN must be changed before the key does anything else"
    return "no"


def _passkeys_text(report: KeyReport) -> str:
    stored = (
        f"{report.discoverable_credentials} stored"
        if report.discoverable_credentials is not None
        else f"not counted ({report.credentials_note})"
    )
    if report.remaining_discoverable is not None:
        stored += f" · room for {report.remaining_discoverable} more"
    return stored


def _entra_text(report: KeyReport) -> str:
    if report.entra_ready:
        return "[green]suitable[/] (passkeys, PIN, hmac-secret)"
    return "[red]not suitable[/]: " + "; ".join(report.entra_gaps)


def _policy_text(verdict: PolicyVerdict) -> str:
    if verdict is PolicyVerdict.ALLOWED:
        return "[green]allowed[/] by the tenant's list of key models"
    if verdict is PolicyVerdict.NOT_ALLOWED:
        return "[red]not allowed[/]: Entra will refuse this model; use another key"
    return "not checked (give --allow AAGUID or --policy FILE)"


def report_json(report: KeyReport) -> dict[str, object]:
    return {
        "path": report.path,
        "product_name": report.product_name,
        "serial_number": report.serial_number,
        "aaguid": report.aaguid,
        "model": report.model.name if report.model else None,
        "vendor": report.model.vendor if report.model else None,
        "firmware": report.firmware,
        "versions": list(report.versions),
        "pin_set": report.pin.is_set,
        "pin_retries": report.pin.retries,
        "min_pin_length": report.pin.min_length,
        "force_pin_change_pending": report.pin.force_change_pending,
        "discoverable_credentials": report.discoverable_credentials,
        "remaining_discoverable": report.remaining_discoverable,
        "entra_gaps": list(report.entra_gaps),
        "policy": report.policy.value,
    }


# -- reset -----------------------------------------------------------------------------------


class ConsolePrompts:
    """The reset steps as the technician reads them."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def remove_key(self, descriptor: KeyDescriptor) -> None:
        name = descriptor.product_name or "the key"
        self.console.print(f"[bold]1/3[/] Remove {name} from the computer now.", highlight=False)

    def insert_key(self, window_s: float) -> None:
        self.console.print(
            f"[bold]2/3[/] Plug the key back in. The reset must start within {window_s:.0f} seconds, "
            "so do it now.",
            highlight=False,
        )

    def touch_key(self, long_touch: bool) -> None:
        how = "Press and hold the key's button for 5 seconds" if long_touch else "Touch the key"
        self.console.print(f"[bold]3/3[/] {how} to confirm the reset (it may blink).", highlight=False)


def _reset(args: argparse.Namespace, desk: Desk) -> int:
    console = desk.console
    source, _, soft_key = _source(args, desk)
    console.print(
        "[bold yellow]Reset erases every passkey on the key and its PIN.[/] The person who uses it "
        "will need to register it again. Nobody can undo a reset.",
        highlight=False,
    )
    if not args.yes and desk.read_line(f"Type {CONFIRM_WORD} to continue: ").strip() != CONFIRM_WORD:
        console.print("Not reset. Nothing was changed.")
        return 1
    prompts: ResetPrompts = ConsolePrompts(console)
    if soft_key is not None:
        prompts = SoftHands(soft_key, prompts, timer=desk.timer, pause_s=desk.soft_pause_s)
    facts = None if args.soft else desk.facts()
    outcome = reset_key(source, prompts, timer=desk.timer, timing=ResetTiming(), facts=facts)
    console.print(
        f"[bold green]✓[/] The key is reset: no PIN, no passkeys "
        f"(reset {outcome.seconds_after_insert:.1f} s after it was plugged back in).",
        highlight=False,
    )
    return 0


# -- the server link -------------------------------------------------------------------------


def _home(args: argparse.Namespace) -> AgentHome:
    return AgentHome(args.home or default_home())


def _status(args: argparse.Namespace, desk: Desk) -> int:
    pairing = _home(args).pairing()
    if pairing is None:
        desk.console.print(NOT_PAIRED, highlight=False)
        return 0
    desk.console.print(
        f"Paired as [bold]{pairing.name}[/] with {pairing.server} (agent {pairing.agent_id}).\n"
        f"Server key fingerprint: {pairing.server_fingerprint}",
        highlight=False,
    )
    return 0


def _pair(args: argparse.Namespace, desk: Desk) -> int:
    home = _home(args)
    name = args.name or socket.gethostname().split(".")[0]
    pairing = pair_with_server(args.server, args.code, name, home)
    key_print = protocol_fingerprint(home)
    desk.console.print(
        f"[bold green]✓[/] Paired as [bold]{pairing.name}[/] with {pairing.server}.\n"
        f"This desk's key fingerprint: {key_print} (the card in the helpdesk channel shows the same).\n"
        f"Server key pinned: {pairing.server_fingerprint}. Keys are in {home.path} (readable only by you).",
        highlight=False,
    )
    if pairing.state != "active":
        desk.console.print(
            "A second approver must now confirm this desk in the helpdesk channel; until then it gets no jobs. "
            "Start it with: keydesk-agent run",
            highlight=False,
        )
    return 0


def protocol_fingerprint(home: AgentHome) -> str:
    from agent import protocol

    return protocol.fingerprint(protocol.public_key_text(home.key()))


def build_link(args: argparse.Namespace, desk: Desk) -> AgentLink:
    from agent.jobs import registry

    source, catalog, soft_key = _source(args, desk)
    prompts: ResetPrompts = ConsolePrompts(desk.console)
    if soft_key is not None:
        prompts = SoftHands(soft_key, prompts, timer=desk.timer, pause_s=desk.soft_pause_s)
    facts = (lambda: None) if args.soft else desk.facts
    say = lambda text: desk.console.print(text, highlight=False)  # noqa: E731
    handlers = registry(
        source, catalog, report_json, prompts, desk.timer, facts, ask_pin=pin_prompt(desk), say=say
    )
    return AgentLink(_home(args), handlers, say=say)


PIN_TRIES = 3


def pin_prompt(desk: Desk) -> PinPrompt:
    """The at-desk PIN: the person types it twice on this screen (hidden); nothing is echoed or logged."""

    def ask(question: PinQuestion) -> Pin | None:
        desk.console.print(
            f"[bold]{question.person}[/], choose the PIN for your new security key: "
            f"{question.min_length} to {question.max_length} characters. You'll be asked to change it "
            "the first time you use the key. Leave it empty to cancel.",
            highlight=False,
        )
        for _ in range(PIN_TRIES):
            first = desk.read_secret("New PIN: ")
            if not first:
                return None
            if not question.min_length <= len(first) <= question.max_length:
                desk.console.print(
                    f"The PIN must be {question.min_length} to {question.max_length} characters."
                )
                continue
            if desk.read_secret("Type the same PIN again: ") != first:
                desk.console.print("The two PINs differ. Once more.")
                continue
            return Pin(first)
        return None

    return ask


def _run(args: argparse.Namespace, desk: Desk) -> int:
    link = build_link(args, desk)
    desk.console.print(
        f"Serving jobs for desk [bold]{link.pairing.name}[/] from {link.pairing.server}. Ctrl+C stops.",
        highlight=False,
    )
    try:
        if args.once:
            link.poll_once()
        else:
            link.run()
    except LinkStopped as exc:
        desk.console.print(f"[bold red]✗[/] The server refused this desk: {exc}", highlight=False)
        return 1
    return 0


# -- where keys come from ----------------------------------------------------------------------


def _source(args: argparse.Namespace, desk: Desk) -> tuple[KeySource, ModelCatalog, SoftAuthenticator | None]:
    catalog = ModelCatalog.bundled()
    if not args.soft:
        check_host(desk.facts())
        return desk.hid_source(), catalog, None
    key = SoftAuthenticator(clock=desk.timer.monotonic)
    if args.soft_prepared:
        prepare_for_pickup(key)
    return SoftKeySource(key, transport=Transport.HID), catalog.with_models(soft_key_model()), key


if __name__ == "__main__":
    sys.exit(main())

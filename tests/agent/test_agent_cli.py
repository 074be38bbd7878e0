"""`keydesk-agent` as a technician uses it: inspect, reset, status, pair/run without a server."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from agent.cli import Desk, main
from agent.keys.devices import HostFacts, KeySource
from agent.keys.makecred import create_passkey
from agent.keys.pin import set_pin
from agent.keys.secret import Pin
from agent.keys.timing import ManualTimer
from agent.softkey import SoftAuthenticator, SoftCtapDevice, SoftKeySource
from agent.softkey.demo import entra_creation_options

YUBIKEY_5_NFC = "2fc0579f-8113-47ea-b116-bb5a8db9202a"
PIN_TEXT = "606060"
LINUX = HostFacts("linux")


class Screen:
    def __init__(
        self,
        *,
        answer: str = "",
        secret: str = "",
        facts: HostFacts = LINUX,
        source: Callable[[], KeySource] | None = None,
    ) -> None:
        self.buffer = io.StringIO()
        self.asked: list[str] = []
        self.timer = ManualTimer()
        self.desk = Desk(
            console=Console(file=self.buffer, width=140, color_system=None),
            read_secret=self._secret(secret),
            read_line=lambda prompt: answer,
            timer=self.timer,
            facts=lambda: facts,
            hid_source=source or SoftKeySource,
            soft_pause_s=0.0,
        )

    def _secret(self, value: str) -> Callable[[str], str]:
        def read(prompt: str) -> str:
            self.asked.append(prompt)
            return value

        return read

    def run(self, *argv: str) -> int:
        return main(list(argv), self.desk)

    @property
    def text(self) -> str:
        return self.buffer.getvalue()


def test_status_says_not_paired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYDESK_AGENT_HOME", str(tmp_path / "home"))
    screen = Screen()
    assert screen.run("status") == 0
    assert "not paired" in screen.text


def test_run_before_pairing_says_what_to_do(tmp_path: Path) -> None:
    screen = Screen()
    assert screen.run("run", "--soft", "--home", str(tmp_path)) == 1
    assert "not paired yet: run keydesk-agent pair first" in screen.text


def test_pair_with_an_unreachable_server_says_so(tmp_path: Path) -> None:
    screen = Screen()
    argv = ["pair", "--server", "http://127.0.0.1:9", "--code", "K7Q-9XD", "--home", str(tmp_path)]
    assert screen.run(*argv) == 1
    assert "Could not reach http://127.0.0.1:9" in screen.text
    assert not (tmp_path / "agent.key").exists()


def test_inspect_the_soft_key() -> None:
    screen = Screen()
    assert screen.run("inspect", "--soft") == 0
    for expected in (
        "keydesk soft key (test authenticator)",
        "not set",
        "room for 25 more",
        "suitable",
        "KD-SOFT-0001",
    ):
        assert expected in screen.text


def test_inspect_a_prepared_key_against_a_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"aaGuids": [YUBIKEY_5_NFC]}))
    screen = Screen()
    assert screen.run("inspect", "--soft", "--soft-prepared", "--policy", str(policy)) == 0
    assert "pending" in screen.text and "not allowed" in screen.text
    assert re.search(r"Minimum PIN length\s*│\s*6\s*│", screen.text)


@pytest.mark.parametrize(
    ("content", "said"),
    [("{not json", "Cannot read the policy file"), ('["not-a-uuid"]', "must be an AAGUID")],
)
def test_a_bad_policy_file_is_a_usage_error(tmp_path: Path, content: str, said: str) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(content)
    screen = Screen()
    assert screen.run("inspect", "--soft", "--policy", str(policy)) == 2
    assert said in " ".join(screen.text.split())


def test_inspect_as_json() -> None:
    screen = Screen()
    assert screen.run("inspect", "--soft", "--json", "--allow", "6b657964-6573-4b00-8000-736f66746b79") == 0
    [report] = json.loads(screen.text)
    assert report["policy"] == "allowed" and report["pin_set"] is False
    assert report["serial_number"] == "KD-SOFT-0001" and report["entra_gaps"] == []


def test_inspect_counts_passkeys_with_the_pin_and_never_shows_it() -> None:
    key = SoftAuthenticator()
    device = SoftCtapDevice(key)
    set_pin(device, Pin(PIN_TEXT))
    create_passkey(device, entra_creation_options(), Pin(PIN_TEXT))
    screen = Screen(secret=PIN_TEXT, source=lambda: SoftKeySource(key))

    assert screen.run("inspect", "--count") == 0

    assert "1 stored" in screen.text
    assert screen.asked and "not shown" in screen.asked[0]
    assert PIN_TEXT not in screen.text


def test_no_key_on_linux_points_to_the_udev_rule() -> None:
    screen = Screen(facts=HostFacts("linux", unreadable_hid_nodes=("/dev/hidraw3",)))
    assert screen.run("inspect") == 1
    text = " ".join(screen.text.split())
    assert "No security key found" in text and "/dev/hidraw3" in text and "udev rule" in text


def test_windows_without_administrator_says_what_to_do() -> None:
    screen = Screen(facts=HostFacts("win32", is_admin=False))
    assert screen.run("inspect") == 1
    assert "Run as administrator" in " ".join(screen.text.split())


def test_reset_the_soft_key_step_by_step() -> None:
    screen = Screen(answer="RESET")
    assert screen.run("reset", "--soft", "--soft-prepared") == 0
    text = screen.text
    steps = [text.index("1/3"), text.index("2/3"), text.index("3/3"), text.index("The key is reset")]
    assert steps == sorted(steps)
    assert "erases every passkey" in text


def test_reset_needs_the_confirmation_word() -> None:
    screen = Screen(answer="yes")
    assert screen.run("reset", "--soft") == 1
    assert "Not reset. Nothing was changed." in screen.text and "1/3" not in screen.text


def test_reset_gives_up_when_the_key_is_never_removed() -> None:
    key = SoftAuthenticator()
    screen = Screen(source=lambda: SoftKeySource(key))
    assert screen.run("reset", "--yes") == 1
    assert "not removed in time" in " ".join(screen.text.split())
    assert key.resets == 0

"""The desk's side of provisioning without a server: the sealed PIN, the phases' own refusals, and the
at-desk PIN prompt of the CLI."""

from __future__ import annotations

import io

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from rich.console import Console

from agent import sealed_pin
from agent.cli import Desk, pin_prompt, report_json
from agent.jobs import PinQuestion, ProvisionHandler
from agent.keys.metadata import ModelCatalog
from agent.link import Job, JobFailed
from agent.softkey import SoftAuthenticator, SoftKeySource, soft_key_model


def test_a_sealed_pin_opens_only_with_its_key_and_for_its_job() -> None:
    server = X25519PrivateKey.generate()
    bound = sealed_pin.context("job-1", "entra-1")
    box = sealed_pin.seal("12345678", sealed_pin.public_key_text(server), bound)
    assert "12345678" not in repr(box)
    assert sealed_pin.open_sealed(box, server, bound) == "12345678"
    with pytest.raises(sealed_pin.SealError):
        sealed_pin.open_sealed(box, server, sealed_pin.context("job-2", "entra-1"))  # replayed elsewhere
    with pytest.raises(sealed_pin.SealError):
        sealed_pin.open_sealed(box, X25519PrivateKey.generate(), bound)  # not our key
    tampered = dict(box, box=box["box"][:-2] + ("AA" if not box["box"].endswith("AA") else "BB"))
    with pytest.raises(sealed_pin.SealError):
        sealed_pin.open_sealed(tampered, server, bound)
    with pytest.raises(sealed_pin.SealError):
        sealed_pin.seal("1234", "not-a-key", bound)


def handler() -> tuple[ProvisionHandler, SoftAuthenticator]:
    key = SoftAuthenticator()
    source = SoftKeySource(key)
    return ProvisionHandler(source, ModelCatalog.bundled().with_models(soft_key_model()), report_json), key


def test_finish_and_discard_without_a_created_passkey_are_refused_plainly() -> None:
    provision, key = handler()
    for phase in ("finish", "discard"):
        with pytest.raises(JobFailed, match="no longer holds the PIN"):
            provision(Job("j1", "provision", "entra-1", {"phase": phase, "provisioning_id": "r1"}))
    with pytest.raises(JobFailed, match="names no request"):
        provision(Job("j1", "provision", "entra-1", {"phase": "create"}))
    with pytest.raises(JobFailed, match="malformed"):
        provision(
            Job("j1", "provision", "entra-1", {"phase": "create", "provisioning_id": "r1", "pin_mode": "x"})
        )
    assert not key.pin.is_set


def test_an_at_desk_job_on_a_desk_without_a_screen_changes_nothing() -> None:
    provision, key = handler()
    params = {"phase": "create", "provisioning_id": "r1", "pin_mode": "at_desk", "options": {"publicKey": {}}}
    with pytest.raises(JobFailed, match="no screen"):
        provision(Job("j1", "provision", "entra-1", params))
    assert not key.pin.is_set and key.discoverable == []


def test_the_cli_asks_twice_and_insists_on_length_and_a_match() -> None:
    answers = iter(["12", "246813", "246800", "246813", "246813"])
    screen = io.StringIO()
    desk = Desk(console=Console(file=screen, width=200), read_secret=lambda _prompt: next(answers))
    pin = pin_prompt(desk)(PinQuestion(person="Ada Lovelace", min_length=6))
    assert pin is not None and pin.reveal() == "246813"
    shown = screen.getvalue()
    assert "Ada Lovelace" in shown and "must be 6 to 63" in shown and "differ" in shown
    assert "246813" not in shown


def test_the_cli_prompt_can_be_cancelled_with_an_empty_pin() -> None:
    desk = Desk(console=Console(file=io.StringIO()), read_secret=lambda _prompt: "")
    assert pin_prompt(desk)(PinQuestion(person="Ada", min_length=6)) is None

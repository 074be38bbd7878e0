"""Small pieces: the AAGUID table, credential-id decoding, error sentences, the Pin wrapper, host checks."""

from __future__ import annotations

import base64
import json
import logging
import pickle
import uuid
from importlib import resources
from pathlib import Path

import pytest
from fido2.ctap import CtapError

from agent.keys.credential_ids import graph_id_candidates
from agent.keys.devices import HostFacts, access_hint, check_host, host_facts, open_only_key
from agent.keys.errors import KeyOperationError, Operation, Problem, from_ctap
from agent.keys.metadata import ModelCatalog, normalise_aaguid
from agent.keys.secret import Pin, random_pin
from agent.softkey import SoftAuthenticator, SoftKeySource

ERR = CtapError.ERR
AGENT = Path(__file__).resolve().parents[2] / "agent"


def test_the_shipped_table_is_sound_and_says_where_each_entry_came_from() -> None:
    data = json.loads(resources.files("agent.keys").joinpath("aaguids.json").read_text())
    rows = data["models"]
    assert len({r["aaguid"] for r in rows}) == len(rows) == len(ModelCatalog.bundled())
    assert all(str(uuid.UUID(r["aaguid"])) == r["aaguid"] for r in rows)
    assert all(r["sources"] and set(r["sources"]) <= set(data["sources"]) for r in rows)
    assert {"Yubico", "Feitian", "Token2", "Google", "SoloKeys"} <= {r["vendor"] for r in rows}


def test_lookup_accepts_any_spelling() -> None:
    catalog = ModelCatalog.bundled()
    titan = "42b4fb4a-2866-43b2-9bf7-6c6669c2e5d3"
    by_bytes = catalog.lookup(uuid.UUID(titan).bytes)
    assert by_bytes and by_bytes.name == "Google Titan Security Key v2"
    assert catalog.lookup(titan.upper()) == by_bytes
    assert catalog.lookup("00000000-0000-0000-0000-000000000000") is None
    assert catalog.lookup("not a uuid") is None
    with pytest.raises(ValueError):
        normalise_aaguid(b"short")


def test_graph_credential_ids_in_three_encodings() -> None:
    raw = bytes(range(16))
    padded = base64.urlsafe_b64encode(raw).decode()  # ends with "=="
    assert graph_id_candidates(padded.rstrip("=")) == [raw]
    assert graph_id_candidates(base64.b64encode(raw).decode()) == [raw]
    digit = padded.rstrip("=") + "2"
    assert raw in graph_id_candidates(digit)
    with pytest.raises(ValueError):
        graph_id_candidates("!!!")


@pytest.mark.parametrize(
    ("code", "op", "pending", "problem"),
    [
        (ERR.PIN_POLICY_VIOLATION, Operation.PIN_TOKEN, True, Problem.FORCED_PIN_CHANGE_PENDING),
        (ERR.PIN_POLICY_VIOLATION, Operation.SET_PIN, False, Problem.PIN_REJECTED),
        (ERR.PIN_POLICY_VIOLATION, Operation.CONFIG, False, Problem.POLICY_REJECTED),
        (ERR.NOT_ALLOWED, Operation.RESET, False, Problem.RESET_TOO_LATE),
        (ERR.PIN_AUTH_BLOCKED, Operation.RESET, False, Problem.RESET_TOO_LATE),
        (ERR.PIN_AUTH_BLOCKED, Operation.PIN_TOKEN, False, Problem.PIN_AUTH_BLOCKED),
        (ERR.NOT_ALLOWED, Operation.SET_PIN, False, Problem.PIN_ALREADY_SET),
        (ERR.USER_ACTION_TIMEOUT, Operation.RESET, False, Problem.NOT_TOUCHED),
        (ERR.ACTION_TIMEOUT, Operation.MAKE_CREDENTIAL, False, Problem.NOT_TOUCHED),
        (ERR.KEY_STORE_FULL, Operation.MAKE_CREDENTIAL, False, Problem.KEY_FULL),
        (ERR.CREDENTIAL_EXCLUDED, Operation.MAKE_CREDENTIAL, False, Problem.ALREADY_REGISTERED),
        (ERR.INVALID_CBOR, Operation.INFO, False, Problem.UNEXPECTED),
    ],
)
def test_ctap_codes_become_problems(code: int, op: Operation, pending: bool, problem: Problem) -> None:
    assert from_ctap(code, op, force_change_pending=pending).problem is problem


def test_every_problem_has_a_plain_sentence() -> None:
    for problem in Problem:
        sentence = KeyOperationError(problem).sentence
        assert sentence.endswith(".") and "CTAP" not in sentence
    assert "0x12 INVALID_CBOR" in from_ctap(ERR.INVALID_CBOR, Operation.INFO).sentence


def test_a_pin_never_prints(caplog: pytest.LogCaptureFixture) -> None:
    pin = Pin("271828")
    logging.getLogger("keydesk.test").warning("pin is %s / %r / %s", pin, pin, f"{pin}")
    assert "271828" not in caplog.text and "********" in caplog.text
    with pytest.raises(TypeError):
        pickle.dumps(pin)
    with pytest.raises(AttributeError):
        pin._value = "x"  # type: ignore[misc]
    assert pin == Pin("271828") and pin != Pin("271829")


def test_random_pins_are_digits_of_the_asked_length() -> None:
    pins = {random_pin(8).reveal() for _ in range(20)}
    assert all(len(p) == 8 and p.isdigit() for p in pins) and len(pins) > 15
    with pytest.raises(ValueError):
        random_pin(3)


def test_windows_without_elevation_is_refused_with_what_to_do() -> None:
    facts = host_facts("win32", is_admin=lambda: False)
    with pytest.raises(KeyOperationError) as caught:
        check_host(facts)
    assert caught.value.problem is Problem.NOT_ELEVATED
    assert "Run as administrator" in caught.value.sentence
    check_host(host_facts("win32", is_admin=lambda: True))


def test_linux_points_to_the_udev_rule() -> None:
    facts = host_facts("linux", hidraw_nodes=lambda: ["/nonexistent/hidraw7"])
    assert facts.unreadable_hid_nodes == ("/nonexistent/hidraw7",)
    hint = access_hint(facts) or ""
    assert "/nonexistent/hidraw7" in hint and "udev rule" in hint
    assert "udev rule" in (access_hint(HostFacts("linux")) or "")
    assert access_hint(HostFacts("darwin")) is None


def test_open_only_key_wants_exactly_one() -> None:
    with pytest.raises(KeyOperationError) as none:
        open_only_key(SoftKeySource(), HostFacts("linux"))
    assert none.value.problem is Problem.NO_KEY
    with pytest.raises(KeyOperationError) as several:
        open_only_key(SoftKeySource(SoftAuthenticator(), SoftAuthenticator()))
    assert several.value.problem is Problem.SEVERAL_KEYS
    assert open_only_key(SoftKeySource(SoftAuthenticator())).descriptor.path == "soft:0"


def test_the_agent_never_imports_the_server() -> None:
    offenders = [
        str(path.relative_to(AGENT))
        for path in AGENT.rglob("*.py")
        for line in path.read_text().splitlines()
        if line.strip().startswith(("import bot", "from bot", "import handlers", "from handlers"))
    ]
    assert offenders == []

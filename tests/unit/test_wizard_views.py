"""The wizard's views as pure functions (valid Block Kit, what each person reads, nothing secret), plus the
pure helpers around them: matching a new method, spotting a secret before relaying, the detection bound."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.directory import AuthMethod, MethodKind
from bot.domain import wizard
from bot.domain.guides import GuideLibrary, GuideMethod
from bot.domain.wizard import WizardPhase
from bot.sandbox.slack_sim.validation import message_block_errors, view_errors
from bot.services import registration
from bot.services.stuck import looks_secret
from bot.slack import wizard_views as v
from bot.slack.ids import Action, ViewId
from bot.store.models.wizard import Wizard

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIB = GuideLibrary.load()
WID = "0b5e4a52-1c1f-4f0b-9a55-000000000001"


def text_of(node: Any) -> str:
    if isinstance(node, dict):
        return "\n".join(text_of(value) for key, value in node.items() if key != "value")
    if isinstance(node, list):
        return "\n".join(text_of(item) for item in node)
    return node if isinstance(node, str) else ""


def ids(blocks: list[dict[str, Any]]) -> set[str]:
    found = set()
    for block in blocks:
        for element in [*(block.get("elements") or []), block.get("accessory") or {}]:
            if isinstance(element, dict) and "action_id" in element:
                found.add(element["action_id"])
    return found


def screen(guide_id: str = "fido2", steps: int = 0, **changes: Any) -> v.Screen:
    guide = LIB.render(guide_id, {"tap_expiry": "10:00 (London)"})
    state = wizard.start(LIB.get(guide_id), T0)
    if steps:
        state = wizard.choose(state, LIB.get(guide_id), T0)
        for _ in range(steps - 1):
            state = wizard.done(state, T0)
    others = tuple(g for g in LIB.all() if g.id != guide_id) if state.phase is WizardPhase.CHOOSING else ()
    base = v.Screen(WID, state, guide, others, v.Preflight(checked=True), "10:00 (London)")
    return replace(base, **changes)


@pytest.mark.parametrize("guide_id", ["fido2", "hardware_oath", "authenticator"])
def test_every_step_of_every_guide_is_valid_block_kit(guide_id: str) -> None:
    count = len(LIB.get(guide_id).steps)
    for number in range(0, count + 2):  # choosing, each step, waiting for Entra
        text, blocks = v.wizard_message(screen(guide_id, number))
        assert message_block_errors(blocks) == [], (number, message_block_errors(blocks))
        assert text
    assert "Step 3 of" in text_of(v.wizard_message(screen(guide_id, 3))[1])


def test_navigation_follows_the_state() -> None:
    _, first = v.wizard_message(screen("fido2", 1))
    assert ids(first) == {Action.WIZARD_DONE, Action.WIZARD_STUCK}  # no Back on the first step
    _, last = v.wizard_message(screen("fido2", 11))
    assert {Action.WIZARD_BACK, Action.WIZARD_DONE} <= ids(last) and "Done, all steps" in text_of(last)
    _, waiting = v.wizard_message(screen("fido2", 12))
    assert ids(waiting) == {Action.WIZARD_BACK, Action.WIZARD_STUCK}
    _, token = v.wizard_message(screen("hardware_oath", 2))
    assert Action.WIZARD_OATH in ids(token)
    stuck = screen("fido2", 2)
    stuck = replace(stuck, state=wizard.stuck(stuck.state, T0))
    _, blocks = v.wizard_message(stuck)
    assert Action.WIZARD_STUCK not in ids(blocks) and "asked the helpdesk" in text_of(blocks)


def test_the_pass_expiry_is_said_once_per_step() -> None:
    first = text_of(v.wizard_message(screen("fido2", 1))[1])  # its tip already names the expiry
    second = text_of(v.wizard_message(screen("fido2", 2))[1])
    assert first.count("10:00 (London)") == 1 and second.count("10:00 (London)") == 1


def test_buttons_carry_the_version_so_stale_clicks_are_recognised() -> None:
    s = screen("fido2", 3)
    _, blocks = v.wizard_message(s)
    nav = next(b for b in blocks if b.get("block_id") == v.NAV_BLOCK)
    assert {e["value"] for e in nav["elements"]} == {f"{WID}:{s.state.version}"}
    assert v.parse_value(f"{WID}:7:authenticator") == (WID, 7, "authenticator")
    for bad in ("", "nope", f"{WID}:x", ":3"):
        with pytest.raises(ValueError):
            v.parse_value(bad)


def test_the_start_offers_the_other_methods_and_the_preflight() -> None:
    pre = v.Preflight(
        checked=True,
        restriction="allow",
        restricted_models=2,
        attestation=True,
        key_models=("YubiKey 5 NFC", "YubiKey 5C NFC"),
        pin_min_length=6,
    )
    _, blocks = v.wizard_message(screen(preflight=pre))
    text = text_of(blocks)
    assert "use YubiKey 5 NFC or YubiKey 5C NFC" in text and "at least *6 characters*" in text
    assert "genuine, certified model" in text
    choices = {b["block_id"] for b in blocks if str(b.get("block_id", "")).startswith(v.CHOOSE_PREFIX)}
    assert choices == {"wizard_choose_hardware_oath", "wizard_choose_authenticator"}
    assert Action.WIZARD_DONE in ids(blocks)


def test_a_blocked_fido2_policy_removes_start_and_says_why() -> None:
    pre = v.Preflight(checked=True, self_service=False)
    _, blocks = v.wizard_message(screen(preflight=pre))
    assert Action.WIZARD_DONE not in ids(blocks)
    assert "doesn't let people register security keys themselves" in text_of(blocks)
    assert v.Preflight(checked=False, fido2_enabled=False).blocker is None  # unknown is not "blocked"
    assert "couldn't read" in v.preflight_lines(v.Preflight())[0]
    assert v.Preflight.from_json(pre.to_json()) == pre


def test_success_names_the_key_and_escapes_what_the_user_typed() -> None:
    done = screen("fido2", 8)
    done = replace(
        done,
        state=wizard.complete(done.state, T0),
        found=v.FoundMethod(GuideMethod.FIDO2, "YubiKey 5 NFC", "<!channel> my key"),
    )
    text, blocks = v.wizard_message(done)
    body = text_of(blocks)
    assert text == "Your security key is set up."
    assert "*YubiKey 5 NFC* named _&lt;!channel&gt; my key_" in body and "<!channel>" not in body
    assert "Sign out everywhere" in body and message_block_errors(blocks) == []
    assert ids(blocks) == set()


def test_expired_and_cancelled() -> None:
    live = screen("fido2", 3, ended="expired")
    _, blocks = v.wizard_message(live)
    assert ids(blocks) == {Action.TAP_ASK_AGAIN} and "ran out" in text_of(blocks)
    gone = screen("fido2", 3)
    gone = replace(gone, state=wizard.cancel(gone.state, T0), ended="revoked")
    assert "cancelled for safety" in text_of(v.wizard_message(gone)[1])
    assert "started a new setup" in text_of(v.wizard_message(replace(gone, ended="replaced"))[1])


def test_stuck_post_offers_take_it_then_names_the_taker() -> None:
    facts = v.StuckFacts(WID, "U0ADA", "Set up your security key", "Step 4 of 11", "Save the passkey", 7, 150)
    text, blocks = v.stuck_post(facts)
    assert "<@U0ADA> is stuck on *Step 4 of 11* (Save the passkey)" in text
    assert "On this step for 7 min; started the setup 2 h 30 min ago." in text_of(blocks)
    assert ids(blocks) == {Action.STUCK_TAKE}
    _, taken = v.stuck_post(replace(facts, helper_id="U0SAM"))
    assert ids(taken) == {Action.STUCK_RELEASE} and "<@U0SAM> is on it" in text_of(taken)
    assert message_block_errors(blocks) == [] and message_block_errors(taken) == []


def test_relayed_text_cannot_ping_or_link() -> None:
    _, to_user = v.relayed_to_user("Sam <Rivera>", "see <https://evil.example|here> <!here>")
    _, to_thread = v.relayed_to_thread("U0ADA", "<!channel> help")
    assert "<!here>" not in text_of(to_user) and "&lt;https://evil.example" in text_of(to_user)
    assert "<@U0ADA>: &lt;!channel&gt; help" in text_of(to_thread)


def test_token_modal_reads_the_code_into_a_secret_and_never_shows_it_again() -> None:
    modal = v.oath_modal(WID, serial="TK-1", attempt=2, problem="That code wasn't accepted.")
    assert view_errors(modal, "modal") == []
    assert modal["callback_id"] == ViewId.WIZARD_OATH and modal["private_metadata"] == f"{WID}:2"
    code_block = next(b for b in modal["blocks"] if b.get("block_id") == "oath_code_2")
    assert "initial_value" not in code_block["element"]
    submitted = {
        **modal,
        "state": {
            "values": {
                "oath_serial": {"value": {"value": " TK-1 "}},
                "oath_code_2": {"value": {"value": "123 456"}},
                "oath_name": {"value": {"value": ""}},
            }
        },
    }
    form = v.read_oath_form(submitted)
    assert isinstance(form, v.OathForm)
    assert (form.serial, form.name, form.code.reveal()) == ("TK-1", v.OATH_DEFAULT_NAME, "123456")
    assert "123456" not in repr(form)
    bad = {
        **modal,
        "state": {
            "values": {
                "oath_serial": {"value": {"value": "x"}},
                "oath_code_2": {"value": {"value": "12ab56"}},
            }
        },
    }
    assert set(v.read_oath_form(bad)) == {"oath_serial", "oath_code_2"}


def test_home_blocks() -> None:
    assert v.home_blocks(v.HomeFacts()) == []
    blocks = v.home_blocks(
        v.HomeFacts(
            request_label="Pass issued",
            pass_until="10:00 (London)",
            wizard_id=WID,
            progress="Step 2 of 11",
            step_title="Add a security key",
            helper="Sam",
        )
    )
    text = text_of(blocks)
    assert (
        "Pass issued" in text
        and "works until 10:00 (London)" in text
        and "Step 2 of 11: Add a security key" in text
    )
    assert ids(blocks) == {Action.WIZARD_RESUME} and message_block_errors(blocks) == []


def test_nudge_and_local_time() -> None:
    assert v.local_time(T0, "America/New_York") == "04:00 (New York)"
    assert v.local_time(T0, "Not/AZone") == "09:00 (UTC)" and v.local_time(None, None) is None
    text, blocks = v.nudge_message(WID, "Step 5 of 11", "Plug in your key", "10:00 (London)", 10)
    assert text == "Your pass runs out in about 10 minutes." and ids(blocks) == {Action.WIZARD_RESUME}


# --- pure helpers around the views --------------------------------------------------------------------
def row(baseline: list[str] | None) -> Wizard:
    return Wizard(id=WID, revealed_at=T0, baseline_method_ids=baseline)


def method(mid: str, kind: MethodKind, minutes: int | None) -> AuthMethod:
    created = None if minutes is None else T0 + timedelta(minutes=minutes)
    return AuthMethod(id=mid, kind=kind, display_name=mid, created=created)


def test_new_method_is_of_the_guide_kind_new_since_the_reveal() -> None:
    methods = [
        method("old-key", MethodKind.FIDO2, -60),
        method("phone-app", MethodKind.AUTHENTICATOR, 5),
        method("skewed", MethodKind.FIDO2, -1),  # Entra's clock a minute behind ours
        method("newest", MethodKind.FIDO2, 6),
    ]
    assert registration.new_method(methods, row(["old-key"]), GuideMethod.FIDO2).id == "newest"  # type: ignore[union-attr]
    assert registration.new_method(methods[:1], row(None), GuideMethod.FIDO2) is None
    assert registration.new_method([method("x", MethodKind.FIDO2, 3)], row(["x"]), GuideMethod.FIDO2) is None
    undated = [method("undated", MethodKind.AUTHENTICATOR, None)]
    assert (
        registration.new_method(undated, row([]), GuideMethod.AUTHENTICATOR) is not None
    )  # not in the baseline
    assert (
        registration.new_method(undated, row(None), GuideMethod.AUTHENTICATOR) is None
    )  # nothing to compare


@pytest.mark.parametrize(
    "text", ["482913", "nhloAm3c", "Tr0ub4dor&3", "my PIN is 1234", "the code 123456 fails"]
)
def test_secret_looking_messages_are_not_relayed(text: str) -> None:
    assert looks_secret(text)


@pytest.mark.parametrize(
    "text", ["thanks!", "It says error 80070005 now", "I'm on step 3", "https://aka.ms/mysecurityinfo", "ok"]
)
def test_ordinary_messages_are_relayed(text: str) -> None:
    assert not looks_secret(text)


def test_the_interval_backs_off_with_idle_time_and_respects_the_floor() -> None:
    low, high = registration.MIN_INTERVAL, registration.MAX_INTERVAL
    jitter = 1 + registration.JITTER
    assert low <= registration.next_interval(0, 0) <= low * jitter
    assert 30 <= registration.next_interval(60, 0) <= 30 * jitter
    assert high <= registration.next_interval(3600, 0) <= high * jitter
    assert 90 <= registration.next_interval(0, 90) <= 90 * jitter


def test_detection_bound_grows_only_past_the_budget() -> None:
    small = registration.detection_bound(10, 2.0)
    assert small == pytest.approx(registration.MAX_INTERVAL * (1 + registration.JITTER) + 2.0)
    at_budget = registration.POLL_BUDGET_PER_MINUTE  # one look per minute each
    assert registration.detection_bound(at_budget, 2.0) == pytest.approx(small)
    assert registration.detection_bound(at_budget * 2, 2.0) == pytest.approx(
        120 * (1 + registration.JITTER) + 2
    )

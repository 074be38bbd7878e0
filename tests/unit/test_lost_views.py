"""The lost-key views as pure functions: what each person reads, valid Block Kit, nothing more than needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.directory import AuthMethod, MethodKind
from bot.sandbox.slack_sim.validation import message_block_errors, view_errors
from bot.slack import lost_views as v
from bot.slack.ids import Action, ViewId
from bot.store.models.lost_reports import LostReport, MethodEntry, ReportState, StepOutcome, entries_json

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
AAGUID = "cb69481e-8ff7-4039-93ec-0a2729a154a8"


def method(kind: MethodKind, mid: str, name: str | None, days: int = 0, **extra: Any) -> AuthMethod:
    return AuthMethod(id=mid, kind=kind, display_name=name, created=T0 + timedelta(days=days), **extra)


METHODS = [
    method(MethodKind.PASSWORD, "pw", None),
    method(MethodKind.AUTHENTICATOR, "auth-1", "Pixel 8", 1),
    method(MethodKind.FIDO2, "key-new", "Backup key", 5, model="YubiKey 5C", aaguid=AAGUID),
    method(MethodKind.TAP, "tap-1", None, 6),
    method(MethodKind.FIDO2, "key-old", "Daily key", 2, model="YubiKey 5 NFC", aaguid=AAGUID),
    method(MethodKind.PHONE, "phone-1", "mobile", 3, detail="+1 ********00"),
    method(MethodKind.EMAIL, "mail-1", None, 4, detail="m***@example.com"),
]


def text_of(node: Any) -> str:
    if isinstance(node, dict):
        return "\n".join(text_of(value) for key, value in node.items() if key != "value")
    if isinstance(node, list):
        return "\n".join(text_of(item) for item in node)
    return node if isinstance(node, str) else ""


def options(view: dict[str, Any], block_id: str) -> list[str]:
    [block] = [b for b in view["blocks"] if b.get("block_id") == block_id]
    return [o["value"] for o in block["element"]["options"]]


def report(**overrides: Any) -> LostReport:
    values: dict[str, Any] = {
        "id": "4f1c2b9e-0000-4000-8000-000000000001",
        "idempotency_key": "V123",
        "state": ReportState.DONE.value,
        "reason": "lost",
        "note": None,
        "target_slack_id": "U0MORGAN",
        "target_entra_id": "e-morgan",
        "target_name": "Morgan Lee",
        "target_upn": "morgan@northwind.example",
        "reporter_slack_id": "U0MORGAN",
        "manager_slack_id": "U0GRACE",
        "methods": entries_json([entry()]),
        "revoke_outcome": StepOutcome.DONE.value,
        "revoke_error": None,
        "verified": True,
        "strong_left": False,
        "desk_pickup_at": None,
        "replacement_request_id": None,
        "created_at": T0,
    }
    values.update(overrides)
    return LostReport(**values)


def entry(outcome: StepOutcome = StepOutcome.REMOVED, **overrides: Any) -> MethodEntry:
    values: dict[str, Any] = {
        "id": "key-old",
        "kind": "fido2",
        "name": "Daily key",
        "model": "YubiKey 5 NFC",
        "aaguid": AAGUID,
        "created": T0,
        "strong": True,
        "outcome": outcome,
    }
    values.update(overrides)
    return MethodEntry(**values)


# --- the form ------------------------------------------------------------------------------------------
def test_form_lists_keys_first_then_removable_others_and_never_the_password_pass_or_email() -> None:
    view = v.form_modal("r-1", METHODS, v.Reader("Morgan Lee", True))

    assert options(view, v.Field.KEYS) == ["key-old", "key-new"]  # oldest key first
    assert options(view, v.Field.OTHERS) == ["auth-1", "phone-1"]
    blocks = [b.get("block_id") for b in view["blocks"]]
    assert blocks.index(v.Field.KEYS) < blocks.index(v.Field.OTHERS) < blocks.index(v.Field.REASON)
    shown = text_of(view)
    assert "Daily key" in shown and "YubiKey 5 NFC · added 03 Mar 2026" in shown and "+1 ********00" in shown
    for hidden in ("pw", "tap-1", "mail-1"):
        assert hidden not in json.dumps(view["blocks"])


def test_form_is_valid_block_kit_and_its_metadata_holds_only_the_report_id() -> None:
    view = v.form_modal("r-1", METHODS, v.Reader("Morgan Lee", True))

    assert view_errors(view, "modal") == []
    assert view["callback_id"] == ViewId.LOST_KEY_FORM
    assert json.loads(view["private_metadata"]) == {"report": "r-1"}


def test_form_for_someone_else_names_them() -> None:
    view = v.form_modal("r-1", METHODS, v.Reader("Morgan Lee", False))
    assert "Which of Morgan Lee's sign-in methods" in text_of(view)


def test_more_than_slack_allows_in_one_group_is_capped_and_said() -> None:
    keys = [method(MethodKind.FIDO2, f"k{i}", f"Key {i}", i) for i in range(12)]

    view = v.form_modal("r-1", keys, v.Reader("Morgan Lee", True))

    assert len(options(view, v.Field.KEYS)) == v.MAX_OPTIONS
    assert view_errors(view, "modal") == []
    assert "the helpdesk can remove the others" in text_of(view)


def submitted(
    reason: str | None, keys: tuple[str, ...] = (), others: tuple[str, ...] = (), note: str = ""
) -> dict[str, Any]:
    view = v.form_modal("r-1", METHODS, v.Reader("Morgan Lee", True))

    def picked(ids: list[str]) -> dict[str, Any]:
        return {v.PICK: {"type": "checkboxes", "selected_options": [{"value": i} for i in ids]}}

    values = {
        v.Field.KEYS.value: picked(list(keys)),
        v.Field.OTHERS.value: picked(list(others)),
        v.Field.REASON.value: {v.PICK: {"selected_option": {"value": reason} if reason else None}},
        v.Field.NOTE.value: {v.TEXT: {"value": note}},
    }
    return view | {"state": {"values": values}}


def test_read_form_needs_a_reason_and_for_a_removal_something_ticked() -> None:
    assert v.read_form(submitted(None, keys=("key-old",))) == {v.Field.REASON.value: "Tell me what happened."}
    assert v.read_form(submitted("stolen")) == {v.Field.KEYS.value: "Tick what I should switch off."}
    assert v.read_form(submitted("made-up", keys=("key-old",))) == {
        v.Field.REASON.value: "Tell me what happened."
    }


def test_read_form_collects_both_groups_once_and_cleans_the_note() -> None:
    form = v.read_form(
        submitted("lost", ("key-old", "key-old"), ("auth-1",), note="on the \u202etrain\u200b " * 60)
    )

    assert isinstance(form, v.FormInput)
    assert (form.report_id, form.reason, form.method_ids) == ("r-1", v.LostReason.LOST, ("key-old", "auth-1"))
    assert "\u202e" not in form.note and "\u200b" not in form.note and len(form.note) <= v.NOTE_MAX


def test_left_at_home_needs_nothing_ticked() -> None:
    form = v.read_form(submitted("at_home"))
    assert isinstance(form, v.FormInput) and form.method_ids == ()


def test_a_modal_without_our_metadata_yields_no_report_id() -> None:
    assert v.report_id_of({"private_metadata": "not json"}) == ""
    assert v.report_id_of({"private_metadata": '{"report": 42}'}) == ""


# --- the confirmation and the outcome -------------------------------------------------------------------
def test_confirmation_says_exactly_what_will_happen() -> None:
    pending = report(
        state=ReportState.CONFIRMING.value,
        reason="stolen",
        methods=entries_json([entry(StepOutcome.PENDING)]),
    )

    view = v.confirm_modal(pending, v.Reader("Morgan Lee", True), last_strong=True)

    shown = text_of(view)
    for fact in (
        "*Daily key (security key)*",
        "YubiKey 5 NFC",
        AAGUID,
        "<!date^",
        "Sign you out everywhere",
        "security alert",
        "no security key left",
        "can't be undone",
    ):
        assert fact in shown, fact
    assert view_errors(view, "modal") == [] and view["callback_id"] == ViewId.LOST_KEY_CONFIRM
    assert json.loads(view["private_metadata"]) == {"report": pending.id}


def test_each_step_is_reported_precisely() -> None:
    partial = report(
        state=ReportState.PARTIAL.value,
        methods=entries_json(
            [
                entry(StepOutcome.PENDING, error="throttled"),
                entry(StepOutcome.ALREADY_GONE, id="a", kind="authenticator", name="Pixel 8", strong=False),
                entry(
                    StepOutcome.REFUSED,
                    id="p",
                    kind="phone",
                    name="mobile",
                    detail="+1 ****00",
                    error="default method",
                ),
                entry(
                    StepOutcome.PENDING, id="h", kind="windows_hello", name="LAPTOP-1", error="unavailable"
                ),
            ]
        ),
        revoke_outcome=StepOutcome.PENDING.value,
        revoke_error="throttled",
    )

    lines = v.outcome_lines(partial, v.Reader("Morgan Lee", True))

    assert lines == [
        ":hourglass_flowing_sand: *Daily key (security key)*: *not removed yet*: Microsoft Entra asked me to wait. "
        "I'll keep trying by myself",
        ":white_check_mark: *Pixel 8 (Microsoft Authenticator)*: was already gone",
        ":no_entry: *+1 ****00 (mobile phone)*: Microsoft Entra refused to remove it (default method). The helpdesk "
        "will remove it by hand.",
        ":hourglass_flowing_sand: *LAPTOP-1 (Windows Hello)*: *not removed yet*: Microsoft Entra didn't answer. "
        "I'll keep trying by myself",
        ":hourglass_flowing_sand: *Not signed out yet*: Microsoft Entra asked me to wait. I'll keep trying by myself",
    ]
    assert "Some steps aren't finished yet" in v.headline(partial, v.Reader("Morgan Lee", True))


def test_the_persons_dm_offers_a_new_key_only_after_the_last_key_went() -> None:
    text, blocks = v.status_dm(report(), "the IT helpdesk")
    assert {Action.LOST_NEW_KEY, Action.LOST_DESK_PICKUP} <= actions(blocks)
    assert message_block_errors(blocks) == [] and "Done." in text

    _, spare_left = v.status_dm(report(strong_left=True), "the IT helpdesk")
    assert not actions(spare_left) and "other security key" in text_of(spare_left)

    _, chosen = v.status_dm(report(desk_pickup_at=T0), "the IT helpdesk")
    assert not actions(chosen) and "pick up a new key at the desk" in text_of(chosen)


def test_a_report_made_by_the_helpdesk_says_so_and_offers_this_wasnt_me() -> None:
    helped = report(reporter_slack_id="U0SAM")

    _, blocks = v.status_dm(helped, "the IT helpdesk")
    assert "<@U0SAM> from the helpdesk reported your key *lost* for you" in text_of(blocks)
    assert Action.LOST_NOT_ME in actions(blocks)
    _, own = v.status_dm(report(), "the IT helpdesk")
    assert Action.LOST_NOT_ME not in actions(own)
    _, mail = v.mail_text(helped, "the IT helpdesk")
    assert "by the helpdesk on your behalf" in mail and "If this wasn't you, contact the IT helpdesk" in mail


def test_the_manager_can_flag_it_and_the_helpdesk_alert_escapes_what_people_typed() -> None:
    sneaky = report(target_name="Morgan <!channel>", note="<@U0BOSS> said ok & go")

    _, blocks = v.manager_notice(sneaky)
    assert Action.LOST_NOT_ME in actions(blocks) and message_block_errors(blocks) == []
    alert = v.helpdesk_alert(sneaky)
    assert "<!channel>" not in alert and "<@U0BOSS>" not in alert
    assert "&lt;@U0BOSS&gt; said ok &amp; go" in alert


def test_left_at_home_message_marks_the_pass_as_for_today() -> None:
    home = report(reason="at_home", methods=[])

    text, blocks = v.at_home_dm(home)

    assert "nothing was removed" in text
    assert "_Key left at home: a pass for today_" in text_of(blocks)
    assert actions(blocks) == {Action.LOST_PASS_TODAY}
    _, asked = v.at_home_dm(report(reason="at_home", methods=[], replacement_request_id="req-1"))
    assert not actions(asked)


def actions(blocks: list[dict[str, Any]]) -> set[str]:
    return {e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]}


def test_the_approver_reads_about_the_person_in_the_third_person() -> None:
    view = v.result_modal(report(reporter_slack_id="U0SAM"), v.Reader("Morgan Lee", False), "the IT helpdesk")

    shown = text_of(view)
    assert "Morgan Lee has no security key left." in shown
    assert "Signed Morgan Lee out everywhere" in shown and "Morgan Lee's lost key" in shown
    assert view_errors(view, "modal") == []

"""Every action_id, callback_id and command keydesk registers, in one place."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    START_SETUP = "start_setup"
    REPORT_LOST = "report_lost_key"
    ASK_HELP = "ask_help"
    OPEN_HOME = "open_home"
    TAP_APPROVE = "tap_approve"
    TAP_DENY = "tap_deny"
    TAP_REVEAL = "tap_reveal"
    TAP_ASK_AGAIN = "tap_ask_again"
    TAP_TARGET_CONFIRM = "tap_target_confirm"
    TAP_TARGET_DECLINE = "tap_target_decline"
    MANAGER_CONFIRM = "manager_confirm"
    MANAGER_REJECT = "manager_reject"
    MANAGER_LOOKS_WRONG = "manager_looks_wrong"
    LOST_NEW_KEY = "lost_new_key"
    LOST_DESK_PICKUP = "lost_desk_pickup"
    LOST_PASS_TODAY = "lost_pass_today"  # noqa: S105 - an action id, not a secret
    LOST_NOT_ME = "lost_not_me"
    # The setup wizard in the DM, its helpdesk thread and App Home (issue #4)
    WIZARD_DONE = "wizard_done"
    WIZARD_BACK = "wizard_back"
    WIZARD_STUCK = "wizard_stuck"
    WIZARD_CHOOSE = "wizard_choose"
    WIZARD_RESUME = "wizard_resume"
    WIZARD_OATH = "wizard_oath"
    STUCK_TAKE = "stuck_take"
    STUCK_RELEASE = "stuck_release"
    # Desk agents (issue #6)
    DESK_AGENT_CONFIRM = "desk_agent_confirm"
    DESK_AGENT_REJECT = "desk_agent_reject"
    # The key inventory's chain of custody (issue #6)
    KEY_HANDOVER = "key_handover"
    KEY_RETIRE = "key_retire"
    KEY_RECEIVED = "key_received"
    KEY_NOT_RECEIVED = "key_not_received"
    DESK_PIN_REVEAL = "desk_pin_reveal"  # the owner of a key prepared for pickup reveals its PIN
    DESK_LOOKS_WRONG = "desk_looks_wrong"  # the manager stops a key prepared in their report's name


class ViewId(StrEnum):
    """Modal callback ids."""

    TAP_APPROVE = "tap_approve_modal"
    TAP_DENY = "tap_deny_modal"
    HELPDESK_TAP_FOR_USER = "helpdesk_tap_for_user_modal"
    LOST_KEY_FORM = "lost_key_form_modal"
    LOST_KEY_CONFIRM = "lost_key_confirm_modal"
    WIZARD_OATH = "wizard_oath_modal"
    KEY_HANDOVER = "key_handover_modal"
    DESK_PROVISION = "desk_provision_modal"


class Callback(StrEnum):
    """Shortcut callback ids (declared in manifest.yml)."""

    START_ONBOARDING_SHORTCUT = "start_onboarding"
    HELPDESK_TAP_SHORTCUT = "helpdesk_tap_for_user"


class Command(StrEnum):
    KEYDESK = "/keydesk"
    LOSTKEY = "/lostkey"

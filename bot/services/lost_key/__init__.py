"""The lost-key journey: pick what is lost, confirm, remove it in Entra, sign out, tell everyone, replace.

A report is one row (`bot.store.models.lost_reports`) keyed by the modal's root view id, so a second
submission of the same modal finds the same row and loses every compare-and-set. The modal carries only
the row's opaque id: whose methods they are lives on the server, and every submitted method id is
checked against what the form offered and what Entra lists now. Steps Graph could not finish (throttled,
down) are finished by the durable deadline `FINISH_DEADLINE`, which honours Retry-After.

Where it lives (one job per module):
- common: the finish deadline's name, loading a report, the audit, updating the modal, method entries
- guards: who may act on a report (the reporter's own modal, approvers for others), never an admin (G9)
- opening: open the form, fill it from Entra, file the report row
- submission: check the submitted choice, or record a key left at home
- screen: the modal from the row; a second submission waits for the first to settle
- removal: 'Remove now': start exactly once, run the steps, tell people
- steps: one pass: delete what is owed, sign out, read back, record the outcome
- notices: the person (DM and mail), their manager and the helpdesk hear about it
- finish: the durable deadline that finishes the steps or hands them to the helpdesk
- next_steps: a new key, a pickup at the desk, a pass for today, "this wasn't me"
"""

from __future__ import annotations

from bot.services.lost_key.finish import register_lost_key_deadlines
from bot.services.lost_key.next_steps import ask_pass_today, choose_desk_pickup, choose_new_key, not_me
from bot.services.lost_key.opening import helpdesk_lost, open_lost_key_modal
from bot.services.lost_key.removal import confirm
from bot.services.lost_key.submission import submit_form

__all__ = [
    "ask_pass_today",
    "choose_desk_pickup",
    "choose_new_key",
    "confirm",
    "helpdesk_lost",
    "not_me",
    "open_lost_key_modal",
    "register_lost_key_deadlines",
    "submit_form",
]

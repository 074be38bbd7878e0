"""`/lostkey` end to end: signed slash commands, block actions and view submissions into the running app,
with Slack and Microsoft Graph simulated. Each test asserts what Graph received, what each person saw,
and the audit log."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from rich.console import Console

from bot.audit import AuditEntry
from bot.sandbox.company import GLOBAL_ADMIN_ROLE, Company, Person
from bot.sandbox.demo import Narrator
from bot.sandbox.demo_lost_key import lost_key_scenario
from bot.sandbox.graph_sim import Fault, MethodKind, RecordedRequest
from bot.sandbox.slack_sim import SimView, SlackSimulator
from bot.sandbox.stack import Stack
from bot.slack.ids import Action, ViewId

from .helpers import (
    ShiftableClock,
    action_ids,
    bot_dms,
    channel_messages,
    current,
    eventually,
    find_card,
    message_text,
    settle,
    tap_posts,
    view_text,
    wait_card,
    wait_channel,
    wait_dm,
)

ANY_DELETE = r"/authentication/[A-Za-z0-9]+Methods/[^/]+$"
FIDO2_DELETE = r"/authentication/fido2Methods/[^/]+$"
AUTHENTICATOR_DELETE = r"/authentication/microsoftAuthenticatorMethods/[^/]+$"
REVOKE = r"/revokeSignInSessions$"
METHODS = r"/authentication/methods$"
LOUD = "<!channel> :rotating_light: *Security alert.*"
MAILBOX = "keydesk@northwind.example"


@pytest.fixture
async def lost(stack: Stack) -> AsyncIterator[Stack]:
    yield stack


# --- reading Graph and the audit ------------------------------------------------------------------------
def requests(
    graph_stack: Stack, method: str, path: str, person: Person | None = None
) -> list[RecordedRequest]:
    found = graph_stack.graph.requests_to(method, path)
    return [r for r in found if person is None or f"/users/{person.entra_id}/" in r.path + "/"]


def method_id(stack: Stack, person: Person, kind: MethodKind, name: str | None = None) -> str:
    for method in stack.graph.tenant.methods_of(person.entra_id):
        if method.kind == kind and (name is None or getattr(method, "display_name", None) == name):
            return method.id
    raise AssertionError(f"{person.name} has no {kind} method {name or ''}")


def kinds_left(stack: Stack, person: Person) -> set[MethodKind]:
    return {m.kind for m in stack.graph.tenant.methods_of(person.entra_id)}


async def lostkey_audit(stack: Stack) -> list[AuditEntry]:
    return await stack.keydesk.rt.audit.entries(action_prefix="lostkey")


async def actions_of(stack: Stack) -> list[str]:
    return [e.action for e in await lostkey_audit(stack)]


async def audit_row(stack: Stack, action: str, **details: object) -> AuditEntry:
    """The newest audit row `action` whose details include `details` (waits for it: work follows acks)."""

    async def probe() -> AuditEntry | None:
        hits = [
            e
            for e in await lostkey_audit(stack)
            if e.action == action and all(e.details.get(k) == v for k, v in details.items())
        ]
        return hits[-1] if hits else None

    loop = asyncio.get_running_loop()
    give_up = loop.time() + 3
    while (row := await probe()) is None:
        if loop.time() > give_up:
            raise AssertionError(f"no audit row {action!r} {details}; saw {await actions_of(stack)}")
        await asyncio.sleep(0.02)
    return row


# --- driving the modals -----------------------------------------------------------------------------------
async def top_view(
    slack: SlackSimulator, user_id: str, accept: Callable[[SimView], bool], what: str, timeout: float = 3.0
) -> SimView:
    def probe() -> SimView | None:
        views = slack.open_views(user_id)
        return views[-1] if views and accept(views[-1]) else None

    return await eventually(probe, f"{user_id}'s modal: {what}", timeout)


def is_form(view: SimView) -> bool:
    return view.callback_id == ViewId.LOST_KEY_FORM


def is_confirm(view: SimView) -> bool:
    return view.callback_id == ViewId.LOST_KEY_CONFIRM


def is_message(*words: str) -> Callable[[SimView], bool]:
    return lambda view: not view.callback_id and any(w in view_text(view) for w in words)


async def open_form(stack: Stack, user_id: str, text: str = "") -> SimView:
    await stack.slack.slash(user_id, "/lostkey", text)
    return await top_view(stack.slack, user_id, is_form, "the lost-key form")


async def submit_form(
    slack: SlackSimulator,
    user_id: str,
    form: SimView,
    reason: str,
    *,
    keys: list[str] | None = None,
    others: list[str] | None = None,
    note: str = "",
    forge: bool = False,
) -> None:
    values: dict[str, dict[str, object]] = {"lost_reason": {"picked": reason}}
    if keys is not None:
        values["lost_keys"] = {"picked": keys}
    if others is not None:
        values["lost_others"] = {"picked": others}
    if note:
        values["lost_note"] = {"text": note}
    await slack.submit_view(user_id, form.id, values, forge=forge)


async def confirm_and_wait(slack: SlackSimulator, user_id: str, confirm: SimView) -> SimView:
    await slack.submit_view(user_id, confirm.id)
    return await top_view(slack, user_id, is_message("Done.", "I've started"), "the result")


async def report(
    stack: Stack,
    person: Person,
    reason: str,
    *,
    keys: list[str] | None = None,
    others: list[str] | None = None,
    note: str = "",
    reporter: Person | None = None,
) -> tuple[SimView, SimView]:
    """Run /lostkey up to the result; returns (confirmation, result) as the reporter saw them."""
    slack = stack.slack
    reporter = reporter or person
    text = f"<@{person.slack_id}>" if reporter is not person else ""
    form = await open_form(stack, reporter.slack_id, text)
    await submit_form(slack, reporter.slack_id, form, reason, keys=keys, others=others, note=note)
    confirm = await top_view(slack, reporter.slack_id, is_confirm, "the confirmation")
    return confirm, await confirm_and_wait(slack, reporter.slack_id, confirm)


# --- lost, stolen, broken -------------------------------------------------------------------------------
async def test_lost_key_is_removed_sessions_revoked_everyone_told_and_a_new_key_offered(
    lost: Stack, company: Company
) -> None:
    stack, slack = lost, lost.slack
    morgan, grace = company.morgan, company.grace
    yubikey = method_id(stack, morgan, MethodKind.FIDO2)

    form = await open_form(stack, morgan.slack_id)
    text = view_text(form)
    assert text.index("YubiKey 5 NFC") < text.index("Morgan's iPhone")  # keys first, then the others
    assert form.private_metadata.startswith('{"report": "') and morgan.entra_id not in form.private_metadata
    await submit_form(slack, morgan.slack_id, form, "lost", keys=[yubikey], note="Left it on the train")
    confirm = await top_view(slack, morgan.slack_id, is_confirm, "the confirmation")
    confirmed = view_text(confirm)
    for promise in (
        "Remove from your account",
        "YubiKey 5 NFC",
        "cb69481e-8ff7-4039-93ec-0a2729a154a8",
        "added",
        "Sign you out everywhere",
        "within a few minutes",
        "no security key left",
    ):
        assert promise in confirmed, promise
    assert "iPhone" not in confirmed  # only what was ticked
    assert requests(stack, "DELETE", ANY_DELETE) == []  # nothing happens before the confirmation

    result = view_text(await confirm_and_wait(slack, morgan.slack_id, confirm))

    [delete] = requests(stack, "DELETE", ANY_DELETE)
    assert delete.path == f"/users/{morgan.entra_id}/authentication/fido2Methods/{yubikey}"
    [revoke] = requests(stack, "POST", REVOKE)
    assert revoke.path == f"/users/{morgan.entra_id}/revokeSignInSessions"
    assert stack.graph.requests.index(delete) < stack.graph.requests.index(
        revoke
    )  # KEY-1: delete, then revoke
    assert kinds_left(stack, morgan) == {MethodKind.PASSWORD, MethodKind.AUTHENTICATOR}
    assert "removed" in result and "Signed you out everywhere" in result and "sign in again" in result
    dm = await wait_dm(slack, morgan.slack_id, "Get a new key")
    assert {Action.LOST_NEW_KEY, Action.LOST_DESK_PICKUP} <= action_ids(dm.blocks)
    assert "no security key left" in message_text(dm)
    notice = await wait_dm(slack, grace.slack_id, "Morgan Lee reported their security key")
    assert "*lost*" in message_text(notice) and Action.LOST_NOT_ME in action_ids(notice.blocks)
    alert = await wait_channel(slack, "reported their key *lost*")
    assert not alert.text.startswith("<!channel>") and "Left it on the train" in message_text(alert)

    await audit_row(stack, "lostkey.notified")
    await slack.click(morgan.slack_id, Action.LOST_NEW_KEY, message=current(slack, dm))
    card = await wait_card(slack, "Replacement after a lost key")
    assert "Morgan Lee" in message_text(card)
    await wait_dm(slack, morgan.slack_id, "You asked for a new key")
    await settle(stack)
    assert tap_posts(stack.graph) == []  # a replacement still needs the helpdesk's approval (IDV-1)
    assert await actions_of(stack) == [
        "lostkey.opened",
        "lostkey.checked",
        "lostkey.confirmed",
        "lostkey.method.removed",
        "lostkey.sessions.revoked",
        "lostkey.verified",
        "lostkey.completed",
        "lostkey.notified",
        "lostkey.replacement.requested",
    ]
    confirmed_row = await audit_row(stack, "lostkey.confirmed")
    assert (
        confirmed_row.actor == f"slack:{morgan.slack_id}"
        and confirmed_row.target == f"entra:{morgan.entra_id}"
    )
    [named] = confirmed_row.details["methods"]
    assert (named["name"], named["aaguid"]) == ("YubiKey 5 NFC", "cb69481e-8ff7-4039-93ec-0a2729a154a8")
    assert named["created"]
    assert (await audit_row(stack, "lostkey.verified")).details["strong_left"] is False
    assert (await stack.keydesk.rt.audit.verify()).ok


@pytest.mark.keydesk_settings(notify_mailbox=MAILBOX)
async def test_stolen_is_a_loud_alert_everyone_is_told_and_a_desk_pickup_is_recorded(
    lost: Stack, company: Company
) -> None:
    stack, slack = lost, lost.slack
    stack.graph.tenant.add_user("keydesk notifications", MAILBOX)
    morgan, grace = company.morgan, company.grace
    yubikey = method_id(stack, morgan, MethodKind.FIDO2)
    phone = method_id(stack, morgan, MethodKind.AUTHENTICATOR)

    confirm, result = await report(stack, morgan, "stolen", keys=[yubikey], others=[phone])

    assert "security alert" in view_text(confirm)
    assert {r.path.rsplit("/", 2)[-2] for r in requests(stack, "DELETE", ANY_DELETE, morgan)} == {
        "fido2Methods",
        "microsoftAuthenticatorMethods",
    }
    assert len(requests(stack, "POST", REVOKE, morgan)) == 1
    assert kinds_left(stack, morgan) == {MethodKind.PASSWORD}
    alert = await wait_channel(slack, "reported their key *stolen*")
    assert alert.text.startswith(LOUD)
    await wait_dm(slack, grace.slack_id, "reported their security key *stolen*")
    [mail] = await eventually(lambda: stack.graph.tenant.sent_mail, "the notification mail")
    assert [r.address for r in mail.to] == [morgan.email]
    assert "If this wasn't you" in mail.body and "YubiKey 5 NFC" in mail.body
    assert not mail.save_to_sent_items  # the shared mailbox doesn't keep copies of security mail
    assert "laptop or phone was taken" in view_text(result)

    dm = await wait_dm(slack, morgan.slack_id, "Pick one up at the desk")
    await slack.click(morgan.slack_id, Action.LOST_DESK_PICKUP, message=dm)
    await wait_channel(slack, "will pick up a replacement security key at the desk")
    picked = await wait_dm(slack, morgan.slack_id, "pick up a new key at the desk")
    assert Action.LOST_NEW_KEY not in action_ids(picked.blocks)  # one choice, made once
    row = await audit_row(stack, "lostkey.desk_pickup")
    assert row.actor == f"slack:{morgan.slack_id}"
    assert (await audit_row(stack, "lostkey.notified")).details == {
        "report_id": row.details["report_id"],
        "dm": True,
        "manager": True,
        "email": True,
        "loud": True,
    }
    assert find_card(slack) is None and tap_posts(stack.graph) == []  # abuse case 41: no pass


async def test_broken_key_with_a_spare_left_offers_no_replacement(lost: Stack, company: Company) -> None:
    stack, slack = lost, lost.slack
    morgan = company.morgan
    stack.graph.tenant.add_fido2(morgan.entra_id, display_name="Spare key")
    broken = method_id(stack, morgan, MethodKind.FIDO2, "YubiKey 5 NFC")

    confirm, result = await report(stack, morgan, "broken", keys=[broken])

    assert "no security key left" not in view_text(confirm)
    assert [r.path.rsplit("/", 1)[-1] for r in requests(stack, "DELETE", ANY_DELETE)] == [broken]
    assert "Spare key" in {
        getattr(m, "display_name", None) for m in stack.graph.tenant.methods_of(morgan.entra_id)
    }
    assert "still sign in with your other security key" in view_text(result)
    dm = await wait_dm(slack, morgan.slack_id, "still sign in with your other security key")
    assert not {Action.LOST_NEW_KEY, Action.LOST_DESK_PICKUP} & action_ids(dm.blocks)
    await wait_channel(slack, "reported their key *broken*")
    assert (await audit_row(stack, "lostkey.verified")).details["strong_left"] is True


# --- left at home ------------------------------------------------------------------------------------------
async def test_left_at_home_removes_nothing_and_offers_a_pass_for_today(
    lost: Stack, company: Company
) -> None:
    stack, slack = lost, lost.slack
    morgan = company.morgan

    form = await open_form(stack, morgan.slack_id)
    await submit_form(slack, morgan.slack_id, form, "at_home")
    result = await top_view(slack, morgan.slack_id, is_message("Nothing was removed"), "the result")

    assert "pass for today" in view_text(result)
    offer = await wait_dm(slack, morgan.slack_id, "Ask for a pass for today")
    assert Action.LOST_NOT_ME not in action_ids(offer.blocks)
    await slack.click(morgan.slack_id, Action.LOST_PASS_TODAY, message=offer)
    card = await wait_card(slack, "Key left at home: a pass for today")
    assert "Morgan Lee" in message_text(card)
    await wait_dm(slack, morgan.slack_id, "You asked for a pass for today")
    await settle(stack)
    assert requests(stack, "DELETE", ANY_DELETE) == [] and requests(stack, "POST", REVOKE) == []
    assert kinds_left(stack, morgan) == {MethodKind.PASSWORD, MethodKind.FIDO2, MethodKind.AUTHENTICATOR}
    assert tap_posts(stack.graph) == []  # the pass itself still needs an approval
    assert not [m for m in channel_messages(slack) if "reported their key" in m.text]
    assert await actions_of(stack) == ["lostkey.opened", "lostkey.at_home", "lostkey.pass_today.requested"]


# --- the helpdesk variant --------------------------------------------------------------------------------------
@pytest.mark.keydesk_settings(notify_mailbox=MAILBOX)
async def test_approver_reports_for_someone_who_phoned_in_and_they_hear_everywhere(
    lost: Stack, company: Company
) -> None:
    stack, slack = lost, lost.slack
    stack.graph.tenant.add_user("keydesk notifications", MAILBOX)
    morgan, sam, grace = company.morgan, company.sam, company.grace
    yubikey = method_id(stack, morgan, MethodKind.FIDO2)

    confirm, result = await report(stack, morgan, "lost", keys=[yubikey], reporter=sam)

    assert "Remove from Morgan Lee's account" in view_text(confirm)
    assert "Done." in view_text(result) and "Morgan Lee" in view_text(result)
    [delete] = requests(stack, "DELETE", ANY_DELETE)
    assert delete.path.startswith(f"/users/{morgan.entra_id}/")
    assert requests(stack, "DELETE", ANY_DELETE, sam) == []  # the approver's own key is untouched
    dm = await wait_dm(slack, morgan.slack_id, f"<@{sam.slack_id}> from the helpdesk reported your key")
    assert Action.LOST_NOT_ME in action_ids(dm.blocks)
    await wait_dm(slack, grace.slack_id, f"through <@{sam.slack_id}> at the helpdesk")
    await wait_channel(slack, f"reported by <@{sam.slack_id}> on their behalf")
    [mail] = await eventually(lambda: stack.graph.tenant.sent_mail, "the notification mail")
    assert [r.address for r in mail.to] == [morgan.email] and "by the helpdesk on your behalf" in mail.body
    confirmed = await audit_row(stack, "lostkey.confirmed")
    assert confirmed.actor == f"slack:{sam.slack_id}" and confirmed.details["for_someone_else"] is True

    await slack.click(morgan.slack_id, Action.LOST_NOT_ME, message=current(slack, dm))
    alert = await wait_channel(slack, "looks wrong")
    assert alert.text.startswith(LOUD) and f"made by <@{sam.slack_id}>" in alert.text
    assert (await audit_row(stack, "lostkey.not_me")).actor == f"slack:{morgan.slack_id}"


async def test_someone_who_is_not_an_approver_cannot_report_for_others(lost: Stack, company: Company) -> None:
    stack, slack = lost, lost.slack
    ada, morgan = company.ada, company.morgan

    await slack.slash(ada.slack_id, "/lostkey", f"<@{morgan.slack_id}>")

    view = await top_view(slack, ada.slack_id, is_message("Only helpdesk approvers"), "the refusal")
    assert "Morgan" not in view_text(view)
    row = await audit_row(stack, "lostkey.refused")
    assert (row.outcome, row.details["reason"], row.target) == (
        "refused",
        "not_authorised",
        f"slack:{morgan.slack_id}",
    )
    await settle(stack)
    assert requests(stack, "GET", METHODS, morgan) == [] and requests(stack, "DELETE", ANY_DELETE) == []


# --- nothing registered, Graph busy or down ---------------------------------------------------------------
async def test_nothing_registered_says_so_and_changes_nothing(lost: Stack, company: Company) -> None:
    stack, slack = lost, lost.slack
    ada = company.ada

    await slack.slash(ada.slack_id, "/lostkey")

    view = await top_view(slack, ada.slack_id, is_message("nothing for me to switch off"), "the answer")
    assert "set up my key" in view_text(view)
    await settle(stack)
    assert requests(stack, "DELETE", ANY_DELETE) == [] and requests(stack, "POST", REVOKE) == []
    assert await actions_of(stack) == ["lostkey.nothing_registered"]


async def test_graph_throttled_when_opening_changes_nothing_and_says_so(
    lost: Stack, company: Company
) -> None:
    stack, slack = lost, lost.slack
    morgan = company.morgan
    stack.graph.add_fault(Fault(method="GET", path=METHODS, status=429, retry_after=120))

    await slack.slash(morgan.slack_id, "/lostkey")

    view = await top_view(slack, morgan.slack_id, is_message("didn't answer"), "the problem")
    assert "Nothing was changed" in view_text(view) and "If the key was stolen, call" in view_text(view)
    row = await audit_row(stack, "lostkey.failed")
    assert (row.outcome, row.details["reason"], row.details["error"]) == (
        "failed",
        "directory_unavailable",
        "Throttled",
    )
    assert requests(stack, "DELETE", ANY_DELETE) == []


async def test_graph_down_during_removal_is_reported_and_finished_later_by_the_deadline(
    lost: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    stack, slack = lost, lost.slack
    morgan = company.morgan
    yubikey = method_id(stack, morgan, MethodKind.FIDO2)
    form = await open_form(stack, morgan.slack_id)
    await submit_form(slack, morgan.slack_id, form, "lost", keys=[yubikey])
    confirm = await top_view(slack, morgan.slack_id, is_confirm, "the confirmation")
    for method, path in (("DELETE", ANY_DELETE), ("POST", REVOKE), ("GET", METHODS)):
        stack.graph.add_fault(Fault(method=method, path=path, status=503, retry_after=90, times=0))

    result = view_text(await confirm_and_wait(slack, morgan.slack_id, confirm))

    assert "YubiKey 5 NFC" in result and "*not removed yet*: Microsoft Entra didn't answer" in result
    assert "*Not signed out yet*" in result
    await wait_channel(slack, "*not removed yet*")
    assert MethodKind.FIDO2 in kinds_left(stack, morgan)
    assert (await audit_row(stack, "lostkey.partial")).details["retry_in"] == 90
    stack.graph.clear_faults()
    tries = len(requests(stack, "DELETE", ANY_DELETE))
    await asyncio.sleep(0.6)  # three pumps: nothing retried before Graph's Retry-After
    assert len(requests(stack, "DELETE", ANY_DELETE)) == tries

    app_clock.advance(timedelta(seconds=91))

    done = await wait_dm(slack, morgan.slack_id, "Your lost-key report is complete")
    assert ":white_check_mark: *YubiKey 5 NFC (security key)*: removed" in message_text(done)
    await wait_channel(slack, "is now complete")
    assert kinds_left(stack, morgan) == {MethodKind.PASSWORD, MethodKind.AUTHENTICATOR}
    assert requests(stack, "POST", REVOKE)[-1].status == 200
    await wait_dm(slack, morgan.slack_id, "Get a new key")  # the status message now offers the replacement
    assert (await audit_row(stack, "lostkey.completed")).actor == "system"


async def test_after_a_day_of_failures_the_helpdesk_is_asked_to_finish_by_hand(
    lost: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    stack, slack = lost, lost.slack
    morgan = company.morgan
    form = await open_form(stack, morgan.slack_id)
    await submit_form(slack, morgan.slack_id, form, "lost", keys=[method_id(stack, morgan, MethodKind.FIDO2)])
    confirm = await top_view(slack, morgan.slack_id, is_confirm, "the confirmation")
    for method, path in (("DELETE", ANY_DELETE), ("POST", REVOKE)):
        stack.graph.add_fault(Fault(method=method, path=path, status=503, retry_after=90, times=0))
    await confirm_and_wait(slack, morgan.slack_id, confirm)

    app_clock.advance(timedelta(hours=25))

    alert = await wait_channel(slack, "Please finish by hand")
    assert alert.text.startswith(LOUD) and "*not removed yet*" in alert.text
    await wait_dm(slack, morgan.slack_id, "Your lost-key report is with the helpdesk")
    assert (await audit_row(stack, "lostkey.gave_up")).outcome == "failed"
    tries = len(requests(stack, "DELETE", ANY_DELETE))
    app_clock.advance(timedelta(hours=1))
    await asyncio.sleep(0.6)
    assert len(requests(stack, "DELETE", ANY_DELETE)) == tries  # handed over: keydesk stops trying
    assert MethodKind.FIDO2 in kinds_left(stack, morgan)  # and it never claimed otherwise


async def test_partial_failure_is_reported_precisely_and_finished_after_retry_after(
    lost: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    stack, slack = lost, lost.slack
    morgan = company.morgan
    yubikey = method_id(stack, morgan, MethodKind.FIDO2)
    phone = method_id(stack, morgan, MethodKind.AUTHENTICATOR)
    form = await open_form(stack, morgan.slack_id)
    await submit_form(slack, morgan.slack_id, form, "stolen", keys=[yubikey], others=[phone])
    confirm = await top_view(slack, morgan.slack_id, is_confirm, "the confirmation")
    stack.graph.add_fault(Fault(method="DELETE", path=FIDO2_DELETE, status=429, retry_after=60))
    stack.graph.add_fault(Fault(method="POST", path=REVOKE, status=429, retry_after=45))

    result = view_text(await confirm_and_wait(slack, morgan.slack_id, confirm))

    assert ":white_check_mark: *Morgan's iPhone (Microsoft Authenticator)*: removed" in result
    assert "*YubiKey 5 NFC (security key)*: *not removed yet*: Microsoft Entra asked me to wait" in result
    assert "*Not signed out yet*: Microsoft Entra asked me to wait" in result
    alert = await wait_channel(slack, "reported their key *stolen*")
    assert alert.text.startswith(LOUD) and "*not removed yet*" in alert.text
    await wait_dm(slack, morgan.slack_id, "Some steps aren't finished yet")
    assert [e.status for e in requests(stack, "DELETE", ANY_DELETE)] == [429, 204]
    assert (await audit_row(stack, "lostkey.partial")).details["retry_in"] == 60
    await asyncio.sleep(0.6)
    assert len(requests(stack, "DELETE", FIDO2_DELETE)) == 1  # Retry-After honoured

    app_clock.advance(timedelta(seconds=61))

    await wait_dm(slack, morgan.slack_id, "Your lost-key report is complete")
    finished = await wait_channel(slack, "is now complete")
    assert finished.text.startswith(LOUD)
    assert [e.status for e in requests(stack, "DELETE", FIDO2_DELETE)] == [429, 204]
    assert len(requests(stack, "DELETE", AUTHENTICATOR_DELETE)) == 1  # never removed twice
    assert [r.status for r in requests(stack, "POST", REVOKE)] == [429, 200]
    assert kinds_left(stack, morgan) == {MethodKind.PASSWORD}
    await audit_row(stack, "lostkey.notified", stage="finished")
    actions = await actions_of(stack)
    assert actions.count("lostkey.method.removed") == 2 and actions.count("lostkey.method.deferred") == 1
    assert actions.count("lostkey.sessions.deferred") == 1 and actions.count("lostkey.sessions.revoked") == 1
    assert actions[-2:] == ["lostkey.completed", "lostkey.notified"]


async def test_graph_404_on_delete_counts_as_done(lost: Stack, company: Company) -> None:
    stack, slack = lost, lost.slack
    morgan = company.morgan
    yubikey = method_id(stack, morgan, MethodKind.FIDO2)
    form = await open_form(stack, morgan.slack_id)
    await submit_form(slack, morgan.slack_id, form, "lost", keys=[yubikey])
    confirm = await top_view(slack, morgan.slack_id, is_confirm, "the confirmation")
    stack.graph.tenant.delete_method(morgan.entra_id, MethodKind.FIDO2, yubikey)  # gone meanwhile
    stack.graph.add_fault(Fault(method="GET", path=METHODS, status=503, retry_after=90))  # one stale read

    result = view_text(await confirm_and_wait(slack, morgan.slack_id, confirm))

    assert [r.status for r in requests(stack, "DELETE", FIDO2_DELETE)] == [404]
    assert "Done." in result and "was already gone" in result
    assert len(requests(stack, "POST", REVOKE)) == 1
    assert (await audit_row(stack, "lostkey.method.already_gone")).outcome == "ok"
    assert (await audit_row(stack, "lostkey.completed")).details["methods"] == ["already_gone"]


# --- never more than asked -------------------------------------------------------------------------------
async def test_forged_method_id_of_someone_else_is_refused_and_audited(lost: Stack, company: Company) -> None:
    stack, slack = lost, lost.slack
    morgan, grace = company.morgan, company.grace
    graces_key = method_id(stack, grace, MethodKind.FIDO2)
    form = await open_form(stack, morgan.slack_id)
    forged = {"selected_options": [{"text": {"type": "plain_text", "text": "x"}, "value": graces_key}]}

    await slack.submit_view(
        morgan.slack_id,
        form.id,
        {"lost_reason": {"picked": "stolen"}, "lost_keys": {"picked": forged}},
        forge=True,
    )

    view = await top_view(slack, morgan.slack_id, is_message("doesn't match"), "the refusal")
    assert "Nothing was removed" in view_text(view)
    alert = await wait_channel(slack, "forged submission")
    assert alert.text.startswith(LOUD)
    row = await audit_row(stack, "lostkey.refused")
    assert (row.outcome, row.details["reason"], row.details["method_ids"]) == (
        "refused",
        "method_not_offered",
        [graces_key],
    )
    await settle(stack)
    assert requests(stack, "DELETE", ANY_DELETE) == [] and requests(stack, "POST", REVOKE) == []
    assert MethodKind.FIDO2 in kinds_left(stack, grace)


async def test_a_form_from_another_modal_or_person_is_refused(lost: Stack, company: Company) -> None:
    stack, slack = lost, lost.slack
    morgan, grace = company.morgan, company.grace
    morgans = await open_form(stack, morgan.slack_id)
    graces = await open_form(stack, grace.slack_id)
    # Grace's client sends Morgan's report id in her own modal's private_metadata.
    stack.slack.core.views.set(replace(graces, private_metadata=morgans.private_metadata))
    graces_key = method_id(stack, grace, MethodKind.FIDO2)

    await submit_form(slack, grace.slack_id, graces, "lost", keys=[graces_key])

    await top_view(slack, grace.slack_id, is_message("isn't yours"), "the refusal")
    row = await audit_row(stack, "lostkey.refused")
    assert (row.actor, row.details["reason"]) == (f"slack:{grace.slack_id}", "not_your_report")
    await settle(stack)
    assert requests(stack, "DELETE", ANY_DELETE) == []


async def test_an_admin_account_is_never_changed_and_goes_to_the_admin_process(
    lost: Stack, company: Company
) -> None:
    stack, slack = lost, lost.slack
    lin = company.lin
    stack.graph.tenant.add_fido2(lin.entra_id, display_name="Admin key")

    await slack.slash(lin.slack_id, "/lostkey")

    view = await top_view(slack, lin.slack_id, is_message("administrator rights"), "the refusal")
    assert "admin process" in view_text(view)
    alert = await wait_channel(slack, "has administrator rights")
    assert alert.text.startswith(LOUD) and "Global Administrator" in alert.text
    row = await audit_row(stack, "lostkey.refused")
    assert (row.details["reason"], row.target) == ("privileged_target", f"entra:{lin.entra_id}")
    await settle(stack)
    assert requests(stack, "DELETE", ANY_DELETE) == [] and requests(stack, "POST", REVOKE) == []


async def test_a_role_granted_while_the_form_was_open_stops_the_removal(
    lost: Stack, company: Company
) -> None:
    stack, slack = lost, lost.slack
    morgan = company.morgan
    form = await open_form(stack, morgan.slack_id)
    stack.graph.tenant.assign_role(morgan.entra_id, GLOBAL_ADMIN_ROLE)

    await submit_form(slack, morgan.slack_id, form, "lost", keys=[method_id(stack, morgan, MethodKind.FIDO2)])

    await top_view(slack, morgan.slack_id, is_message("administrator rights"), "the refusal")
    assert (await audit_row(stack, "lostkey.refused")).details["reason"] == "privileged_target"
    await settle(stack)
    assert requests(stack, "DELETE", ANY_DELETE) == [] and MethodKind.FIDO2 in kinds_left(stack, morgan)


async def test_double_submission_does_everything_once(lost: Stack, company: Company) -> None:
    stack, slack = lost, lost.slack
    morgan = company.morgan
    yubikey = method_id(stack, morgan, MethodKind.FIDO2)
    form = await open_form(stack, morgan.slack_id)

    await asyncio.gather(
        *(submit_form(slack, morgan.slack_id, form, "lost", keys=[yubikey]) for _ in range(2))
    )
    confirm = await top_view(slack, morgan.slack_id, is_confirm, "the confirmation")
    await asyncio.gather(*(slack.submit_view(morgan.slack_id, confirm.id) for _ in range(2)))

    result = await top_view(slack, morgan.slack_id, is_message("Done."), "the result")
    await settle(stack)
    assert "removed" in view_text(result)
    assert len(requests(stack, "DELETE", ANY_DELETE)) == 1
    assert len(requests(stack, "POST", REVOKE)) == 1
    assert len([m for m in bot_dms(slack, morgan.slack_id) if "lost-key report" in m.text]) == 1
    assert len([m for m in channel_messages(slack) if "reported their key" in m.text]) == 1
    actions = await actions_of(stack)
    assert actions.count("lostkey.confirmed") == 1 and actions.count("lostkey.checked") == 1
    assert actions.count("lostkey.submit.duplicate") == 2


async def test_only_the_person_can_choose_their_replacement(lost: Stack, company: Company) -> None:
    stack, slack = lost, lost.slack
    morgan, ada = company.morgan, company.ada
    await report(stack, morgan, "lost", keys=[method_id(stack, morgan, MethodKind.FIDO2)])
    dm = await wait_dm(slack, morgan.slack_id, "Get a new key")

    await slack.click(ada.slack_id, Action.LOST_NEW_KEY, message=dm, forge=True)

    row = await audit_row(stack, "lostkey.replacement.refused")
    assert (row.actor, row.details["reason"]) == (f"slack:{ada.slack_id}", "not_the_person")
    await wait_dm(slack, ada.slack_id, "Only the person whose key it is")
    await settle(stack)
    assert find_card(slack) is None


# --- the demo ------------------------------------------------------------------------------------------------
async def test_demo_scenario_plays(lost: Stack, company: Company) -> None:
    out = io.StringIO()
    narrator = Narrator(lost, company, Console(file=out, width=100), fast=True)

    await lost_key_scenario(narrator)

    shown = out.getvalue()
    assert "Morgan" in shown and "Remove now" in shown and "Get a new key" in shown
    assert MethodKind.FIDO2 not in kinds_left(lost, company.morgan)

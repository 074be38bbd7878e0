"""What people see of the setup wizard: the one DM message, the helpdesk thread, the token modal, App Home.

Pure functions of values. Nothing secret ever reaches them: the token code typed in the modal is read
into a `Secret` by `read_oath_form` and never rendered back.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.domain import wizard as w
from bot.domain.guides import Device, Guide, GuideMethod, human_list
from bot.domain.text import escape_mrkdwn
from bot.secret import Secret
from bot.slack import blocks as b
from bot.slack.ids import Action, ViewId

DEVICE_ICON = {Device.COMPUTER: ":computer:", Device.PHONE: ":iphone:", Device.KEY: ":key:"}
NOUN = {
    GuideMethod.FIDO2: "security key",
    GuideMethod.HARDWARE_OATH: "code token",
    GuideMethod.AUTHENTICATOR: "Authenticator app",
}
OATH_SERIAL, OATH_NAME, OATH_CODE_PREFIX = "oath_serial", "oath_name", "oath_code_"
OATH_DEFAULT_NAME = "Hardware token"
_SERIAL = re.compile(r"^[A-Za-z0-9-]{3,64}$")
_CODE = re.compile(r"^\d{6}$")
EXPIRED = "expired"
NAV_BLOCK, RESULT_BLOCK, AGAIN_BLOCK, CHOOSE_PREFIX = (
    "wizard_nav",
    "wizard_result",
    "wizard_again",
    "wizard_choose_",
)


# --- values the service hands in ---------------------------------------------------------------------
@dataclass(frozen=True)
class Preflight:
    """What the tenant's FIDO2 policy means for one person. `checked` False: Entra didn't answer."""

    checked: bool = False
    fido2_enabled: bool = True
    self_service: bool = True
    in_scope: bool = True
    restriction: str | None = None  # "allow" (only listed models) / "block" (listed models refused)
    restricted_models: int = 0
    attestation: bool = False
    key_models: tuple[str, ...] = ()
    pin_min_length: int = 4

    @property
    def blocker(self) -> str | None:
        """Why this person cannot register a FIDO2 key themselves, or None."""
        if not self.checked:
            return None
        if not self.fido2_enabled:
            return "Security keys (FIDO2) are switched off in your organisation's Microsoft Entra settings"
        if not self.in_scope:
            return "Your account isn't in the group allowed to use security keys (FIDO2) yet"
        if not self.self_service:
            return "Your organisation doesn't let people register security keys themselves"
        if self.restriction == "allow" and self.restricted_models == 0:
            return "Your organisation's key rules allow no key model at all"
        return None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["key_models"] = list(self.key_models)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Preflight:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in (data or {}).items() if k in known}
        if "key_models" in values:
            values["key_models"] = tuple(values["key_models"] or ())
        return cls(**values)


@dataclass(frozen=True)
class FoundMethod:
    """The method Entra showed at the end, as the person will recognise it."""

    method: GuideMethod
    model: str | None
    name: str | None


@dataclass(frozen=True)
class Screen:
    wizard_id: str
    state: w.WizardState
    guide: Guide  # rendered for this person
    alternatives: tuple[Guide, ...] = ()  # other guides the person may pick at the start
    preflight: Preflight = Preflight()
    pass_until: str | None = None  # e.g. "14:35 (Europe/London)"
    ended: str | None = None  # "expired" / "revoked" / "replaced" / "cancelled": the pass is gone
    helper: str | None = None  # the helpdesk member on it
    found: FoundMethod | None = None
    sign_in_url: str = "https://aka.ms/mysecurityinfo"
    support: str = "the IT helpdesk"


def local_time(when: datetime | None, tz: str | None) -> str | None:
    """A wall-clock time in the person's zone (our placeholders are escaped, so no <!date> here)."""
    if when is None:
        return None
    try:
        zone = ZoneInfo(tz) if tz else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone, tz = UTC, None
    label = tz.split("/")[-1].replace("_", " ") if tz else "UTC"
    return f"{when.astimezone(zone):%H:%M} ({label})"


def button_value(wizard_id: str, version: int, extra: str = "") -> str:
    return f"{wizard_id}:{version}" + (f":{extra}" if extra else "")


def parse_value(value: str) -> tuple[str, int, str]:
    """(wizard id, version, extra) from a button value; ValueError when it is not one of ours."""
    wizard_id, _, rest = value.partition(":")
    version, _, extra = rest.partition(":")
    if not wizard_id or not version.isdigit():
        raise ValueError("not a wizard button value")
    return wizard_id, int(version), extra


# --- the DM message ----------------------------------------------------------------------------------
def wizard_message(screen: Screen) -> tuple[str, list[b.Block]]:
    state = screen.state
    if state.phase is w.WizardPhase.COMPLETED:
        return _completed(screen)
    if state.phase is w.WizardPhase.CANCELLED:
        return _cancelled(screen)
    if state.phase is w.WizardPhase.EXPIRED or screen.ended == EXPIRED:
        return _expired(screen)
    if screen.ended:
        return _cancelled(screen)
    if state.phase is w.WizardPhase.CHOOSING:
        return _choosing(screen)
    if state.phase is w.WizardPhase.WAITING_FOR_ENTRA:
        return _waiting(screen)
    return _step(screen)


def _choosing(s: Screen) -> tuple[str, list[b.Block]]:
    guide, value = s.guide, button_value(s.wizard_id, s.state.version)
    blocked = s.preflight.blocker if guide.method is GuideMethod.FIDO2 else None
    until = f" Your pass works until *{s.pass_until}*." if s.pass_until else ""
    body: list[b.Block] = [
        b.header(guide.title),
        b.section(
            f"Let's do this together, one step at a time (about {guide.estimated_minutes} minutes).{until}\n"
            f"{guide.summary}\nI'll notice by myself once Microsoft Entra shows your new {NOUN[guide.method]}."
        ),
    ]
    notes = preflight_lines(s.preflight)
    if notes:
        body.append(b.section("*Before we start*\n" + "\n".join(f"• {n}" for n in notes)))
    body.extend(_help_lines(replace(s, pass_until=None)))
    buttons = [] if blocked else [b.button("Start", Action.WIZARD_DONE, value=value, style="primary")]
    if not s.state.stuck:
        buttons.append(b.button("I'm stuck", Action.WIZARD_STUCK, value=value))
    body.append(b.actions(*buttons, block_id=NAV_BLOCK))
    others = [g for g in s.alternatives if not (g.method is GuideMethod.FIDO2 and s.preflight.blocker)]
    if others:
        body.append(b.context("Want to set up something else instead?"))
    for other in others:
        value = button_value(s.wizard_id, s.state.version, other.id)
        pick = b.button("Use this instead", Action.WIZARD_CHOOSE, value=value)
        body.append(
            b.section(
                f"*{other.title}*\n{other.summary}", block_id=f"{CHOOSE_PREFIX}{other.id}", accessory=pick
            )
        )
    return f"{guide.title}: getting started", body


def preflight_lines(p: Preflight) -> list[str]:
    if not p.checked:
        return [
            "I couldn't read your organisation's security key settings just now, so I can't say in advance "
            "which keys are accepted. You can still go ahead."
        ]
    blocker = p.blocker
    if blocker:
        return [f":no_entry: {blocker}. I've told the helpdesk, so you don't get stuck halfway."]
    lines = ["Security keys are switched on for your account, and you can register one yourself."]
    if p.restriction == "allow":
        models = (
            human_list(escape_mrkdwn(m) for m in p.key_models)
            if p.key_models
            else "the keys the helpdesk hands out"
        )
        lines.append(f"Only approved key models work here: use {models}.")
    elif p.restriction == "block":
        lines.append("A few key models are blocked here. Keys from the helpdesk are fine.")
    if p.attestation:
        lines.append("Microsoft checks that your key is a genuine, certified model.")
    lines.append(f"Your key PIN needs at least *{p.pin_min_length} characters*.")
    return lines


def _step(s: Screen) -> tuple[str, list[b.Block]]:
    state, guide = s.state, s.guide
    step = w.current_step(state, guide)
    assert step is not None
    icon = DEVICE_ICON.get(step.device, ":point_right:") if step.device else ":point_right:"
    progress = w.progress_label(state)
    body: list[b.Block] = [
        b.context(f"{escape_mrkdwn(guide.title)} · *{progress}* {_bar(state)}"),
        b.section(f"{icon} *{step.title}*\n{step.text}"),
    ]
    if step.expect:
        body.append(b.context(f":eyes: *What you should see:* {step.expect}"))
    if step.tip:
        body.append(b.context(f":bulb: {step.tip}"))
    body.extend(_help_lines(s, shown=f"{step.text}\n{step.tip or ''}"))
    body.append(_nav(s, last=state.step_index + 1 == state.step_count))
    return f"{progress}: {step.title}", body


def _bar(state: w.WizardState) -> str:
    done = min(state.step_index, state.step_count)
    return "▰" * done + "▱" * (state.step_count - done) if state.step_count <= 25 else ""


def _help_lines(s: Screen, shown: str = "") -> list[b.Block]:
    """Who is helping, and until when the pass works (unless the step `shown` already says so)."""
    lines: list[str] = []
    if s.helper:
        lines.append(
            f":wave: *{escape_mrkdwn(s.helper)}* from the helpdesk is on it: write to me here and "
            "I'll pass your messages on."
        )
    elif s.state.stuck:
        lines.append(":sos: I've asked the helpdesk to help with this step. Someone will write to you here.")
    if s.pass_until and s.pass_until not in shown:
        lines.append(f":stopwatch: Your pass works until {s.pass_until}.")
    return [b.context(*lines)] if lines else []


def _nav(s: Screen, *, last: bool) -> b.Block:
    value = button_value(s.wizard_id, s.state.version)
    allowed = w.allowed_actions(s.state)
    buttons = []
    if w.WizardAction.BACK in allowed:
        buttons.append(b.button("Back", Action.WIZARD_BACK, value=value))
    if w.WizardAction.DONE in allowed:
        buttons.append(
            b.button("Done, all steps" if last else "Done", Action.WIZARD_DONE, value=value, style="primary")
        )
    if w.WizardAction.STUCK in allowed:
        buttons.append(b.button("I'm stuck", Action.WIZARD_STUCK, value=value))
    if s.guide.method is GuideMethod.HARDWARE_OATH:
        buttons.append(b.button("Enter my token", Action.WIZARD_OATH, value=value))
    return b.actions(*buttons, block_id=NAV_BLOCK)


def _waiting(s: Screen) -> tuple[str, list[b.Block]]:
    noun = NOUN[s.guide.method]
    text = f"All {s.state.step_count} steps done. I'm checking Microsoft Entra for your new {noun}."
    body: list[b.Block] = [
        b.context(f"{escape_mrkdwn(s.guide.title)} · *{w.progress_label(s.state)}*"),
        b.section(
            f":hourglass_flowing_sand: *{text}*\nThis usually takes a minute. I'll update this message "
            "as soon as I see it. If you skipped a step, press *Back*."
        ),
        *_help_lines(s),
        _nav(s, last=True),
    ]
    return text, body


def _completed(s: Screen) -> tuple[str, list[b.Block]]:
    method = s.found.method if s.found else s.guide.method
    noun = NOUN[method]
    what = _found_words(s.found, noun)
    text = f"Your {noun} is set up."
    body = [
        b.header(f":tada: Your {noun} is set up"),
        b.section(
            f"Microsoft Entra now lists {what} for you. I've deleted your Temporary Access Pass, so "
            "nobody can use it any more.",
            block_id=RESULT_BLOCK,
        ),
        b.section("*How to test it*\n" + _how_to_test(method, s.sign_in_url)),
        b.context(_keep_safe(method, s.support)),
    ]
    return text, body


def _found_words(found: FoundMethod | None, noun: str) -> str:
    if found is None:
        return f"your new {noun}"
    model = escape_mrkdwn(found.model) if found.model else noun
    name = f" named _{escape_mrkdwn(found.name)}_" if found.name and found.name != found.model else ""
    return f"*{model}*{name}"


def _how_to_test(method: GuideMethod, url: str) -> str:
    if method is GuideMethod.FIDO2:
        return (
            f"1. On your *Security info* page, click *Sign out everywhere* (save your work first).\n"
            f"2. Open <{url}|{url}>, type your username and choose *Sign in with a security key*.\n"
            "3. Type your key PIN and touch the key. You're in, without a password."
        )
    if method is GuideMethod.HARDWARE_OATH:
        return (
            f"Sign out, then sign in again at <{url}|{url}>. When asked, choose *Use a verification code*, "
            "press your token's button and type the code it shows."
        )
    return (
        f"Sign out, then sign in again at <{url}|{url}>. Approve the request in Microsoft Authenticator on "
        "your phone, but only ever when you are the one signing in."
    )


def _keep_safe(method: GuideMethod, support: str) -> str:
    if method is GuideMethod.FIDO2:
        return "Keep the key on your keyring. Lost it? Type `/lostkey` here straight away and I'll block it."
    return f"Lost it? Type `/lostkey` here, or tell {escape_mrkdwn(support)} straight away."


def _expired(s: Screen) -> tuple[str, list[b.Block]]:
    noun = NOUN[s.guide.method]
    text = "Your pass ran out before I saw your new " + noun + "."
    body = [
        b.section(
            f":hourglass: *{text}*\nNo harm done: I've deleted the pass, so nobody else can use it. "
            "Whenever you're ready, ask for a new one and we'll pick up from here."
        ),
        b.actions(b.button("Ask again", Action.TAP_ASK_AGAIN, style="primary"), block_id=AGAIN_BLOCK),
        b.context(f"Stuck on something? {escape_mrkdwn(s.support)} can help."),
    ]
    return text, body


def _cancelled(s: Screen) -> tuple[str, list[b.Block]]:
    why = {
        "replaced": "You started a new setup, so I closed this one. Carry on in the newest message.",
        "revoked": "Your pass was cancelled for safety, so this setup stopped. "
        f"Please contact {escape_mrkdwn(s.support)}.",
    }.get(s.ended or "", "This setup was stopped. Ask me again whenever you're ready.")
    return "This setup was stopped.", [b.section(f":octagonal_sign: {why}", block_id=RESULT_BLOCK)]


# --- reminders and relayed messages -------------------------------------------------------------------
def nudge_message(
    wizard_id: str, progress: str, step_title: str | None, pass_until: str | None, minutes_left: int
) -> tuple[str, list[b.Block]]:
    text = f"Your pass runs out in about {minutes_left} minutes."
    where = f" You're at *{progress}*" + (f": {step_title}." if step_title else ".")
    until = f" (at {pass_until})" if pass_until else ""
    return text, [
        b.section(
            f":alarm_clock: *{text}*{until}{where}\nFinish now and you won't need a new pass. "
            "Stuck? Press *I'm stuck* on the setup message and the helpdesk will help."
        ),
        b.actions(b.button("Show my setup", Action.WIZARD_RESUME, value=wizard_id, style="primary")),
    ]


def relayed_to_user(helper: str, text: str) -> tuple[str, list[b.Block]]:
    shown = f"*{escape_mrkdwn(helper)}* (helpdesk): {escape_mrkdwn(text)}"
    return f"{helper} (helpdesk): {text}"[:3000], [b.section(shown)]


def relayed_to_thread(user_id: str, text: str) -> tuple[str, list[b.Block]]:
    return f"Reply from the person: {text}"[:3000], [b.section(f"<@{user_id}>: {escape_mrkdwn(text)}")]


def helper_named(helper: str) -> str:
    return (
        f"*{escape_mrkdwn(helper)}* from the helpdesk is on it. Write to me here and I'll pass your "
        "messages on. Never share your pass, PIN or a code, not even with them."
    )


def secret_refused() -> str:
    return (
        "That looks like a pass, PIN or code, so I didn't pass it on. Never share those, not even with "
        "the helpdesk. Describe what you see instead."
    )


# --- the helpdesk thread ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StuckFacts:
    wizard_id: str
    user_id: str
    guide_title: str
    progress: str
    step_title: str | None
    on_step_minutes: int
    total_minutes: int
    helper_id: str | None = None
    again: bool = False


def stuck_post(f: StuckFacts) -> tuple[str, list[b.Block]]:
    where = f"*{f.progress}*" + (f" ({escape_mrkdwn(f.step_title)})" if f.step_title else "")
    lead = "is stuck again" if f.again else "is stuck"
    text = f"<@{f.user_id}> {lead} on {where} of _{escape_mrkdwn(f.guide_title)}_"
    timing = (
        f"On this step for {_minutes(f.on_step_minutes)}; started the setup {_minutes(f.total_minutes)} ago."
    )
    body = [b.section(f":sos: {text}.\n{timing}")]
    if f.helper_id:
        body.append(
            b.context(f"<@{f.helper_id}> is on it: replies here from them go to <@{f.user_id}>'s DM.")
        )
        body.append(b.actions(b.button("Done helping", Action.STUCK_RELEASE, value=f.wizard_id)))
    else:
        body.append(
            b.context(
                "Whoever takes it can reply in this thread: their replies go to the person's DM, "
                "and the person's replies come back here."
            )
        )
        body.append(b.actions(b.button("Take it", Action.STUCK_TAKE, value=f.wizard_id, style="primary")))
    return f"{text}.", body


def _minutes(value: int) -> str:
    return (
        "less than a minute"
        if value < 1
        else f"{value} min"
        if value < 120
        else f"{value // 60} h {value % 60} min"
    )


def completion_note(user_id: str, found: FoundMethod, reveal_minutes: int, total_minutes: int) -> str:
    what = _found_words(found, NOUN[found.method])
    return (
        f":white_check_mark: <@{user_id}> registered {what}, {_minutes(reveal_minutes)} after revealing "
        f"the pass ({_minutes(total_minutes)} after asking). The pass is deleted and the request is closed."
    )


# --- the hardware token modal -------------------------------------------------------------------------
@dataclass(frozen=True)
class OathForm:
    serial: str
    code: Secret
    name: str


def oath_modal(
    wizard_id: str, *, serial: str = "", attempt: int = 0, problem: str | None = None
) -> dict[str, Any]:
    """A fresh code field per attempt (a new block id), so a refused code never shows again."""
    blocks: list[b.Block] = [
        b.section(
            "Type the serial number from the back of your token, then press its button and type the "
            "6-digit code it shows. I'll add the token to your account."
        ),
    ]
    if problem:
        blocks.append(b.section(f":warning: {problem}"))
    serial_input: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "max_length": 64}
    if serial:
        serial_input["initial_value"] = serial
    blocks += [
        {
            "type": "input",
            "block_id": OATH_SERIAL,
            "label": b.plain("Serial number"),
            "element": serial_input,
        },
        {
            "type": "input",
            "block_id": f"{OATH_CODE_PREFIX}{attempt}",
            "label": b.plain("Code on the token now"),
            "element": {
                "type": "plain_text_input",
                "action_id": "value",
                "min_length": 6,
                "max_length": 6,
                "placeholder": b.plain("6 digits"),
            },
        },
        {
            "type": "input",
            "block_id": OATH_NAME,
            "optional": True,
            "label": b.plain("A name for it (optional)"),
            "element": {
                "type": "plain_text_input",
                "action_id": "value",
                "max_length": 60,
                "placeholder": b.plain("e.g. Token2 C202, work keyring"),
            },
        },
    ]
    return b.modal(
        "Add my token",
        blocks,
        callback_id=ViewId.WIZARD_OATH,
        submit="Add token",
        close="Cancel",
        private_metadata=f"{wizard_id}:{attempt}",
    )


def oath_metadata(view: dict[str, Any]) -> tuple[str, int]:
    wizard_id, _, attempt = str(view.get("private_metadata") or "").partition(":")
    return wizard_id[:64], int(attempt) if attempt.isdigit() else 0


def read_oath_form(view: dict[str, Any]) -> OathForm | dict[str, str]:
    """The submitted form, or Slack `errors` by block id. The code goes straight into a Secret."""
    values = (view.get("state") or {}).get("values") or {}
    _, attempt = oath_metadata(view)
    code_block = f"{OATH_CODE_PREFIX}{attempt}"

    def text(block: str) -> str:
        return str(((values.get(block) or {}).get("value") or {}).get("value") or "").strip()

    serial, code, name = (
        text(OATH_SERIAL).replace(" ", ""),
        text(code_block).replace(" ", ""),
        text(OATH_NAME),
    )
    errors: dict[str, str] = {}
    if not _SERIAL.match(serial):
        errors[OATH_SERIAL] = "Type the serial number exactly as printed on the back (letters and digits)."
    if not _CODE.match(code):
        errors[code_block] = "Type the 6 digits the token shows right now."
    if errors:
        return errors
    return OathForm(serial=serial, code=Secret(code), name=(name or OATH_DEFAULT_NAME)[:60])


def oath_working() -> dict[str, Any]:
    return b.modal(
        "Add my token", [b.section(":hourglass_flowing_sand: Adding your token in Microsoft Entra…")]
    )


def oath_result(message: str) -> dict[str, Any]:
    return b.modal("Add my token", [b.section(message)], close="Close")


# --- App Home -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HomeFacts:
    request_label: str | None = None  # the open request's state, as the helpdesk card says it
    pass_until: str | None = None
    wizard_id: str | None = None
    progress: str | None = None
    step_title: str | None = None
    helper: str | None = None
    finished: str | None = None  # e.g. "*YubiKey 5 NFC* named _blue keyring_ on 2026-03-01"


def home_blocks(f: HomeFacts) -> list[b.Block]:
    if not (f.request_label or f.wizard_id or f.finished):
        return []
    body: list[b.Block] = [b.divider(), b.header("Your setup")]
    if f.request_label:
        line = f"*Request:* {f.request_label}"
        if f.pass_until:
            line += f"\n*Pass:* works until {f.pass_until}"
        body.append(b.section(line))
    if f.wizard_id and f.progress:
        where = f"*Setup:* {f.progress}" + (f": {escape_mrkdwn(f.step_title)}" if f.step_title else "")
        if f.helper:
            where += f"\n:wave: {escape_mrkdwn(f.helper)} from the helpdesk is helping you."
        body.append(b.section(where))
        body.append(
            b.actions(b.button("Resume setup", Action.WIZARD_RESUME, value=f.wizard_id, style="primary"))
        )
    elif f.finished:
        body.append(b.section(f":white_check_mark: Set up {f.finished}."))
    return body

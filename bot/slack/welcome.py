"""The first conversation: the welcome DM and the App Home status tab."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.directory import AuthMethod, MethodKind
from bot.domain.method_names import METHOD_LABELS
from bot.slack import blocks as b
from bot.slack.ids import Action


def welcome_text(name: str) -> str:
    return f"Hi {name}! I'm keydesk, and I help you set up and look after your security key."


def welcome(name: str, support: str) -> tuple[str, list[b.Block]]:
    text = welcome_text(name)
    blocks = [
        b.section(
            f"{text}\n\nHere's what I can do for you:\n"
            "• *Set up your security key*: I check your account, ask the helpdesk for a one-time pass, "
            "and walk you through it step by step.\n"
            "• *Report a lost or stolen key*: I switch it off straight away so nobody else can use it.\n"
            f"• *Get a human*: I'll bring in {support}."
        ),
        b.actions(
            b.button("Set up my security key", Action.START_SETUP, style="primary"),
            b.button("I lost my key", Action.REPORT_LOST),
            b.button("Talk to the helpdesk", Action.ASK_HELP),
        ),
        b.context("You can also type what you need, like _set up my key_ or _I lost my key_."),
    ]
    return text, blocks


def _method_line(method: AuthMethod, tz_offset: int) -> str:
    label = METHOD_LABELS.get(method.kind, "Other method")
    parts = [f"*{label}*"]
    if method.display_name:
        parts.append(method.display_name)
    if method.model and method.model != method.display_name:
        parts.append(method.model)
    if method.created:
        parts.append(f"added {_local_date(method.created, tz_offset)}")
    return " · ".join(parts)


def _local_date(when: datetime, tz_offset: int) -> str:
    return f"<!date^{int(when.timestamp())}^{{date_short}}|{when.date().isoformat()}>"


def home(
    name: str,
    methods: list[AuthMethod] | None,
    *,
    problem: str | None = None,
    extra: list[b.Block] | None = None,
    tz_offset: int = 0,
) -> dict[str, Any]:
    """The App Home tab: the methods Entra lists for the user, and what to do next."""
    body: list[b.Block] = [b.header("Your sign-in methods")]
    if problem:
        body.append(b.section(problem))
    elif methods is None:
        body.append(b.section("I couldn't reach Microsoft Entra just now. Open this tab again in a minute."))
    else:
        shown = [m for m in methods if m.kind is not MethodKind.PASSWORD]
        strong = [m for m in shown if m.kind.phishing_resistant]
        if strong:
            body.append(b.section(":white_check_mark: You have a phishing-resistant sign-in method. Nice."))
        else:
            body.append(
                b.section(":warning: You don't have a security key or passkey yet. Let's set one up.")
            )
        if shown:
            ordered = sorted(shown, key=lambda m: (not m.kind.phishing_resistant, m.kind.value))
            body.append(b.section("\n".join(_method_line(m, tz_offset) for m in ordered)))
        else:
            body.append(b.context("Microsoft Entra lists no sign-in methods for you besides your password."))
    body.extend(extra or [])
    body.append(b.divider())
    body.append(
        b.actions(
            b.button("Set up my security key", Action.START_SETUP, style="primary"),
            b.button("I lost my key", Action.REPORT_LOST),
            b.button("Ask for help", Action.ASK_HELP),
        )
    )
    body.append(b.context(f"Signed in to Slack as {name}. keydesk never asks for your password or PIN."))
    return {"type": "home", "blocks": body}

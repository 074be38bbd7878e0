"""Untrusted text from Slack: normalised, stripped of invisible controls, capped, and escaped for mrkdwn."""

from __future__ import annotations

import re
import unicodedata

# Bidirectional overrides/isolates and zero-width characters can disguise what a person reads.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean(text: str | None, max_length: int = 2000) -> str:
    """NFKC-normalise, strip invisible and control characters, trim, and cap the length."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub("", _INVISIBLE.sub("", text)).strip()
    return text if len(text) <= max_length else text[: max_length - 1] + "…"


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack treats as control sequences in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe(text: str | None, max_length: int = 2000) -> str:
    """Clean and escape: the form in which user-supplied text may appear in our messages."""
    return escape_mrkdwn(clean(text, max_length))


_SPECIAL_MENTION = re.compile(r"<!(?:channel|here|everyone)(?:\|[^>]*)?>\s*")
_REFERENCE = re.compile(r"<([@#]?)([^<>|]+)(?:\|([^<>]*))?>")
_EMOJI = re.compile(r":[a-z][a-z0-9_+-]*:\s*")


def mrkdwn_to_plain(text: str) -> str:
    """What a Slack mrkdwn message says, for readers outside Slack (a SIEM, a pager): no @channel, no
    emoji codes or bold marks; `<@U1>` reads `@U1`, `<#C1|help>` reads `#help`, `<url|label>` reads
    `label (url)`."""

    def reference(match: re.Match[str]) -> str:
        sigil, target, label = match.group(1), match.group(2), match.group(3)
        if sigil:
            return sigil + (label or target)
        return f"{label} ({target})" if label and label != target else target

    text = _EMOJI.sub("", _SPECIAL_MENTION.sub("", text))
    text = _REFERENCE.sub(reference, text).replace("*", "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()

"""What a person wants, read from the words of a DM."""

from __future__ import annotations

import re
from enum import StrEnum

from bot.domain.text import clean


class Intent(StrEnum):
    SET_UP_KEY = "set_up_key"
    LOST_KEY = "lost_key"
    HELP = "help"
    GREETING = "greeting"
    UNKNOWN = "unknown"


_PATTERNS: tuple[tuple[Intent, re.Pattern[str]], ...] = (
    (Intent.LOST_KEY, re.compile(r"\b(lost|stolen|stole|missing|broke|broken|left .*at home|can'?t find)\b")),
    (
        Intent.SET_UP_KEY,
        re.compile(
            r"\b(set ?up|setup|register|onboard\w*|enrol+\w*|new (security )?key|temporary access|"
            r"\btap\b|(access )?pass|get started|first key|passkey)\b"
        ),
    ),
    (Intent.HELP, re.compile(r"\b(help|stuck|support|human|agent|problem|issue)\b")),
    (Intent.GREETING, re.compile(r"^(hi|hello|hey|yo|good (morning|afternoon|evening)|hiya)\b")),
)


def classify(text: str | None) -> Intent:
    words = clean(text, 500).lower()
    for intent, pattern in _PATTERNS:
        if pattern.search(words):
            return intent
    return Intent.UNKNOWN

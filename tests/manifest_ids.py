"""The entry points a Slack app manifest declares, so tests can check each has a Bolt listener.

Import it from tests as `from manifest_ids import manifest_entry_points` (tests/ is on sys.path
because tests/conftest.py lives there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = (REPO / "manifest.yml", REPO / "manifest.http.yml")

EntryPoint = tuple[str, str]


def load_manifest(path: Path | str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} is not a YAML mapping")
    return loaded


def manifest_entry_points(path: Path | str) -> set[EntryPoint]:
    """("command", "/keydesk"), ("shortcut", "start_onboarding"), ("event", "message.im"), ...

    Event names are the manifest's subscription names; Bolt listens by event type, which is the
    part before the dot (`bolt_event_type("message.im") == "message"`).
    """
    manifest = load_manifest(path)
    features = manifest.get("features", {})
    settings = manifest.get("settings", {})
    points: set[EntryPoint] = {("command", c["command"]) for c in features.get("slash_commands", [])}
    points |= {("shortcut", s["callback_id"]) for s in features.get("shortcuts", [])}
    points |= {("event", e) for e in settings.get("event_subscriptions", {}).get("bot_events", [])}
    return points


def bolt_event_type(subscription: str) -> str:
    return subscription.split(".", 1)[0]

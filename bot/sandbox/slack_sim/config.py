"""The simulated app's identity and installation: ids, tokens, scopes and event subscriptions."""

from __future__ import annotations

from dataclasses import dataclass, field

# The bot scopes and events keydesk's manifests declare (tests/unit/test_manifest.py keeps them in step).
DEFAULT_SCOPES: frozenset[str] = frozenset(
    {"chat:write", "im:write", "im:history", "users:read", "users:read.email", "commands", "groups:history"}
)
DEFAULT_BOT_EVENTS: frozenset[str] = frozenset({"app_home_opened", "message.im", "message.groups"})

# Slack's documented windows.
TRIGGER_TTL_SECONDS = 3.0
ACK_TIMEOUT_SECONDS = 3.0
RESPONSE_URL_TTL_SECONDS = 30 * 60
RESPONSE_URL_MAX_USES = 5


@dataclass(frozen=True)
class SimConfig:
    signing_secret: str
    team_id: str = "T0KEYDESK"
    enterprise_id: str | None = None
    app_id: str = "A0KEYDESK"
    bot_user_id: str = "U0KEYBOT"
    bot_id: str = "B0KEYBOT"
    bot_token: str = "xoxb-sim-token"
    app_token: str = "xapp-sim-token"
    team_domain: str = "keydesk-sim"
    team_name: str = "Keydesk Sim"
    enterprise_name: str = "Keydesk Sim Grid"
    bot_name: str = "keydesk"
    # The deprecated verification token Slack still puts in every payload.
    verification_token: str = "sim-verification-token"
    scopes: frozenset[str] = field(default=DEFAULT_SCOPES)
    bot_events: frozenset[str] = field(default=DEFAULT_BOT_EVENTS)
    home_tab_enabled: bool = True
    messages_tab_enabled: bool = True

    @property
    def team_url(self) -> str:
        return f"https://{self.team_domain}.slack.com/"

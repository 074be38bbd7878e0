"""Settings: one typed object, read once from the environment (and `.env`)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_VERIFICATION_METHODS = (
    "video_call_photo_id=Video call with photo ID",
    "in_person=In person at the desk",
    "manager_confirmed=Manager confirmed",
)


def _env(name: str, *more: str) -> Any:
    """Accept exactly the documented variable name(s), case-insensitively."""
    return AliasChoices(name, *more)


class ConfigError(Exception):
    """Startup configuration is missing or invalid; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Every setting keydesk reads. Standard ecosystem names where they exist, KEYDESK_* for ours."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    # --- Slack -------------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("SLACK_BOT_TOKEN"),
        description="the bot token (xoxb-...) from your Slack app's OAuth & Permissions page",
    )
    slack_app_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("SLACK_APP_TOKEN"),
        description="an app-level token (xapp-...) with connections:write; setting it selects Socket Mode",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias=_env("SLACK_SIGNING_SECRET"),
        description="the signing secret from your Slack app's Basic Information page (HTTP mode)",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        validation_alias=_env("KEYDESK_SLACK_API_URL"),
        description="the Slack Web API base URL, e.g. https://slack.com/api/",
    )
    slack_team_id: str | None = Field(
        default=None,
        validation_alias=_env("KEYDESK_SLACK_TEAM_ID"),
        description="your workspace id (T...); requests from any other team are refused. "
        "Default: the team of the bot token",
    )
    slack_app_id: str | None = Field(
        default=None,
        validation_alias=_env("KEYDESK_SLACK_APP_ID"),
        description="your Slack app id (A...); requests for any other app are refused",
    )
    helpdesk_channel: str | None = Field(
        default=None,
        validation_alias=_env("KEYDESK_HELPDESK_CHANNEL"),
        description="the id (C... or G...) of the private helpdesk channel; invite the bot into it",
    )
    max_body_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        validation_alias=_env("KEYDESK_MAX_BODY_BYTES"),
        description="the largest Slack request body accepted, in bytes",
    )

    # --- Microsoft Entra / Graph -------------------------------------------------------------
    azure_tenant_id: str | None = Field(
        default=None,
        validation_alias=_env("AZURE_TENANT_ID"),
        description="your Entra tenant id (a GUID)",
    )
    azure_client_id: str | None = Field(
        default=None,
        validation_alias=_env("AZURE_CLIENT_ID"),
        description="the application (client) id of keydesk's app registration",
    )
    azure_client_secret: SecretStr | None = Field(
        default=None,
        validation_alias=_env("AZURE_CLIENT_SECRET"),
        description="a client secret of keydesk's app registration",
    )
    azure_client_certificate_path: Path | None = Field(
        default=None,
        validation_alias=_env("AZURE_CLIENT_CERTIFICATE_PATH"),
        description="a PEM or PFX certificate of keydesk's app registration (instead of a secret)",
    )
    approver_group_id: str | None = Field(
        default=None,
        validation_alias=_env("KEYDESK_APPROVER_GROUP_ID"),
        description="the object id of the Entra group whose members may approve requests",
    )
    privileged_approver_group_id: str | None = Field(
        default=None,
        validation_alias=_env("KEYDESK_PRIVILEGED_APPROVER_GROUP_ID"),
        description="the object id of a separate Entra group whose members alone may approve a privileged "
        "account (both approvals); needed when KEYDESK_ALLOW_PRIVILEGED_TARGETS is true",
    )
    graph_url: str = Field(
        default="https://graph.microsoft.com",
        validation_alias=_env("KEYDESK_GRAPH_URL"),
        description="the Microsoft Graph base URL, without /v1.0",
    )
    graph_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("KEYDESK_GRAPH_TOKEN"),
        description="a static bearer token, only for a Graph simulator on a loopback address",
    )
    graph_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        validation_alias=_env("KEYDESK_GRAPH_TIMEOUT"),
        description="seconds before a Graph call is abandoned",
    )

    # --- Server ------------------------------------------------------------------------------
    database_url: str = Field(
        default="sqlite+aiosqlite:///keydesk.db",
        validation_alias=_env("KEYDESK_DATABASE_URL"),
        description="a SQLAlchemy async URL: sqlite+aiosqlite:///keydesk.db or "
        "postgresql+asyncpg://user:password@host/db",
    )
    http_host: str = Field(
        default="127.0.0.1",
        validation_alias=_env("KEYDESK_HTTP_HOST"),
        description="the address the HTTP server binds (0.0.0.0 in a container)",
    )
    http_port: int = Field(
        default=3000,
        ge=0,
        le=65535,
        validation_alias=_env("KEYDESK_HTTP_PORT"),
        description="the TCP port of the HTTP server (0-65535)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        validation_alias=_env("KEYDESK_LOG_LEVEL"),
        description="DEBUG, INFO, WARNING or ERROR (Slack's SDK loggers never go below WARNING: they would log secrets)",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        validation_alias=_env("KEYDESK_LOG_FORMAT"),
        description="auto (JSON unless on a terminal), json or console",
    )
    deadline_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        le=15,
        validation_alias=_env("KEYDESK_DEADLINE_POLL_SECONDS"),
        description="how often due deadlines are pumped, in seconds (at most 15)",
    )
    replica_id: str | None = Field(
        default=None,
        validation_alias=_env("KEYDESK_REPLICA_ID"),
        description="a name for this replica in deadline claims (default: host name and pid)",
    )

    # --- Onboarding policy (Temporary Access Pass) ------------------------------------------
    tap_lifetime_minutes: int = Field(
        default=60,
        ge=10,
        le=43200,
        validation_alias=_env("KEYDESK_TAP_LIFETIME_MINUTES"),
        description="the pass lifetime in minutes (10-43200), clamped to the tenant's TAP policy",
    )
    today_pass_minutes: int = Field(
        default=480,
        ge=10,
        le=1440,
        validation_alias=_env("KEYDESK_TODAY_PASS_MINUTES"),
        description="the lifetime in minutes (10-1440) of a pass for today, for someone who left their "
        "key at home (/lostkey): a working day by default; clamped to the tenant's TAP policy",
    )
    tap_usable_once: bool = Field(
        default=True,
        validation_alias=_env("KEYDESK_TAP_USABLE_ONCE"),
        description="true for one-time passes (recommended)",
    )
    request_ttl_minutes: int = Field(
        default=240,
        ge=5,
        validation_alias=_env("KEYDESK_REQUEST_TTL_MINUTES"),
        description="minutes a request waits for a decision before it expires",
    )
    approval_validity_minutes: int = Field(
        default=60,
        ge=5,
        validation_alias=_env("KEYDESK_APPROVAL_VALIDITY_MINUTES"),
        description="minutes after approval during which the user may reveal the pass",
    )
    max_passes_per_user_per_day: int = Field(
        default=1,
        ge=1,
        validation_alias=_env("KEYDESK_MAX_PASSES_PER_USER_PER_DAY"),
        description="passes issued to one user in 24 hours",
    )
    max_requests_per_user_per_day: int = Field(
        default=3,
        ge=1,
        validation_alias=_env("KEYDESK_MAX_REQUESTS_PER_USER_PER_DAY"),
        description="requests one user may file in 24 hours",
    )
    max_approvals_per_approver_per_hour: int = Field(
        default=10,
        ge=1,
        validation_alias=_env("KEYDESK_MAX_APPROVALS_PER_APPROVER_PER_HOUR"),
        description="approvals one approver may make in an hour",
    )
    max_passes_per_hour: int = Field(
        default=10,
        ge=1,
        validation_alias=_env("KEYDESK_MAX_PASSES_PER_HOUR"),
        description="passes and desk keys issued tenant-wide in an hour before issuance pauses "
        "(circuit breaker)",
    )
    require_manager_confirmation: bool = Field(
        default=True,
        validation_alias=_env("KEYDESK_REQUIRE_MANAGER_CONFIRMATION"),
        description="true to ask the user's manager and require their yes or an in-person/photo-ID check",
    )
    verification_methods: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_VERIFICATION_METHODS,
        validation_alias=_env("KEYDESK_VERIFICATION_METHODS"),
        description="comma-separated key=Label pairs the approver chooses from",
    )
    strong_verification_methods: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("video_call_photo_id", "in_person"),
        validation_alias=_env("KEYDESK_STRONG_VERIFICATION_METHODS"),
        description="comma-separated keys of verification methods that suffice without the manager",
    )
    excluded_group_ids: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        validation_alias=_env("KEYDESK_EXCLUDED_GROUP_IDS"),
        description="comma-separated Entra group ids (break-glass, VIP) whose members are never served",
    )
    allow_privileged_targets: bool = Field(
        default=False,
        validation_alias=_env("KEYDESK_ALLOW_PRIVILEGED_TARGETS"),
        description="true to let privileged accounts through the admin process (two approvers, cooling-off)",
    )
    risk_check: Literal["required", "if_available", "off"] = Field(
        default="if_available",
        validation_alias=_env("KEYDESK_RISK_CHECK"),
        description="Entra ID Protection user risk before a request (needs Entra ID P2 and "
        "IdentityRiskyUser.Read.All): required (refuse when it can't be read), if_available, or off",
    )
    privileged_cooling_off_minutes: int = Field(
        default=60,
        ge=0,
        validation_alias=_env("KEYDESK_PRIVILEGED_COOLING_OFF_MINUTES"),
        description="minutes between the second approval and the pass for a privileged account",
    )
    notify_mailbox: str | None = Field(
        default=None,
        validation_alias=_env("KEYDESK_NOTIFY_MAILBOX"),
        description="a mailbox (UPN) to send notification email from through Graph (Mail.Send); "
        "unset: no email",
    )
    security_webhook_url: SecretStr | None = Field(  # secret: many collector URLs carry their token
        default=None,
        validation_alias=_env("KEYDESK_SECURITY_WEBHOOK_URL"),
        description="an https URL that receives every security alert as JSON (a SIEM or pager collector); "
        "unset: alerts stay in Slack and the log",
    )
    security_webhook_authorization: SecretStr | None = Field(
        default=None,
        validation_alias=_env("KEYDESK_SECURITY_WEBHOOK_AUTHORIZATION"),
        description="the Authorization header sent with each alert, e.g. 'Bearer <token>' or 'Splunk <token>'",
    )
    sign_in_url: str = Field(
        default="https://aka.ms/mysecurityinfo",
        validation_alias=_env("KEYDESK_SIGN_IN_URL"),
        description="the page where users register their security key",
    )
    support_contact: str = Field(
        default="the IT helpdesk",
        validation_alias=_env("KEYDESK_SUPPORT_CONTACT"),
        description="how users reach a human, e.g. 'the IT helpdesk (#it-help, ext. 4357)'",
    )
    guides_dir: Path | None = Field(
        default=None,
        validation_alias=_env("KEYDESK_GUIDES_DIR"),
        description="a folder of guide YAML files that override or extend the shipped guides",
    )

    # --- Desk agents -------------------------------------------------------------------------
    agent_signing_key_file: Path = Field(
        default=Path("keydesk-agent-link.key"),
        validation_alias=_env("KEYDESK_AGENT_SIGNING_KEY_FILE"),
        description="the file holding the server's Ed25519 key that signs jobs for desk agents; created "
        "(owner-only) on first use; every replica must read the same file",
    )
    agent_pairing_needs_second_approver: bool = Field(
        default=True,
        validation_alias=_env("KEYDESK_AGENT_PAIRING_NEEDS_SECOND_APPROVER"),
        description="true: a newly paired desk agent gets no jobs until a second approver confirms it",
    )
    agent_long_poll_seconds: float = Field(
        default=25.0,
        gt=0,
        le=60,
        validation_alias=_env("KEYDESK_AGENT_LONG_POLL_SECONDS"),
        description="how long a desk agent's request for work is held open when there is none, in seconds",
    )
    provisioning_challenge_minutes: int = Field(
        default=5,
        ge=5,
        le=43200,
        validation_alias=_env("KEYDESK_PROVISIONING_CHALLENGE_MINUTES"),
        description="how long Entra accepts the challenge of a key being provisioned at a desk, in "
        "minutes: 5 uses Graph v1.0; longer (up to 43200) uses the beta endpoint",
    )
    desk_min_pin_length: int = Field(
        default=6,
        ge=4,
        le=63,
        validation_alias=_env("KEYDESK_DESK_MIN_PIN_LENGTH"),
        description="the minimum PIN length a desk sets on a key it prepares for someone (after Entra "
        "registered it, together with the forced PIN change at first use)",
    )
    pin_seal_key_file: Path = Field(
        default=Path("keydesk-pin-seal.key"),
        validation_alias=_env("KEYDESK_PIN_SEAL_KEY_FILE"),
        description="the file holding the AES key that seals the random PINs of keys prepared for pickup "
        "until their owner reveals them (24 h at most); created (owner-only) on first use; every replica "
        "must read the same file",
    )
    agent_job_ttl_seconds: int = Field(
        default=300,
        ge=30,
        le=300,
        validation_alias=_env("KEYDESK_AGENT_JOB_TTL_SECONDS"),
        description="seconds a desk job stays valid, from queueing to the agent's answer (30-300)",
    )
    agent_requests_per_source_per_minute: int = Field(
        default=120,
        ge=1,
        validation_alias=_env("KEYDESK_AGENT_REQUESTS_PER_SOURCE_PER_MINUTE"),
        description="requests to /agent/v1/* one source address may make per minute (then 429)",
    )
    agent_pair_attempts_per_source: int = Field(
        default=10,
        ge=1,
        validation_alias=_env("KEYDESK_AGENT_PAIR_ATTEMPTS_PER_SOURCE"),
        description="pairing attempts one source address may make per 10 minutes (then 429)",
    )
    agent_pair_attempts_per_code: int = Field(
        default=5,
        ge=1,
        validation_alias=_env("KEYDESK_AGENT_PAIR_ATTEMPTS_PER_CODE"),
        description="pairing attempts with one code per 10 minutes (then 429)",
    )
    agent_polls_per_minute: int = Field(
        default=30,
        ge=1,
        validation_alias=_env("KEYDESK_AGENT_POLLS_PER_MINUTE"),
        description="requests for work one desk agent may make per minute (then 429)",
    )
    agent_pair_failure_alert_threshold: int = Field(
        default=5,
        ge=1,
        validation_alias=_env("KEYDESK_AGENT_PAIR_FAILURE_ALERT_THRESHOLD"),
        description="pairing attempts with never-issued codes in an hour that raise a security alert",
    )
    agent_trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        validation_alias=_env("KEYDESK_AGENT_TRUSTED_PROXIES"),
        description="comma-separated addresses of reverse proxies in front of keydesk; for requests "
        "from them the agent's address is taken from X-Forwarded-For (for rate limits and audit)",
    )

    @field_validator(
        "verification_methods",
        "strong_verification_methods",
        "excluded_group_ids",
        "agent_trusted_proxies",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("verification_methods")
    @classmethod
    def _check_methods(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            key, sep, label = item.partition("=")
            if not sep or not key.strip() or not label.strip():
                raise ValueError(f"'{item}' is not key=Label")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _slack_url_slash(cls, value: str) -> str:
        _require_http_url(value)
        return value if value.endswith("/") else value + "/"

    @field_validator("graph_url")
    @classmethod
    def _graph_url_plain(cls, value: str) -> str:
        _require_http_url(value)
        return value.rstrip("/")

    @model_validator(mode="after")
    def _graph_token_only_on_loopback(self) -> Settings:
        if self.graph_token is not None and not is_loopback_url(self.graph_url):
            raise ValueError(
                "KEYDESK_GRAPH_TOKEN is accepted only when KEYDESK_GRAPH_URL is a loopback address "
                "(a simulator); for Microsoft Graph use AZURE_CLIENT_ID and a secret, certificate or "
                "managed identity"
            )
        return self

    @field_validator("security_webhook_url")
    @classmethod
    def _webhook_over_https(cls, value: SecretStr | None) -> SecretStr | None:
        url = value.get_secret_value() if value is not None else ""
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_url(url)):
            # The value itself is never repeated: the URL may carry the collector's token.
            raise ValueError("must be an https:// URL (plain http only on a loopback address, for tests)")
        return value

    @model_validator(mode="after")
    def _privileged_approvers_are_a_separate_group(self) -> Settings:
        group = self.privileged_approver_group_id
        if (
            group
            and self.approver_group_id
            and group.strip().lower() == self.approver_group_id.strip().lower()
        ):
            raise ValueError(
                "KEYDESK_PRIVILEGED_APPROVER_GROUP_ID must be a separate group from KEYDESK_APPROVER_GROUP_ID: "
                "approving a privileged account is not a helpdesk approver's right"
            )
        return self

    # --- Derived values ------------------------------------------------------------------------
    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def verification_choices(self) -> dict[str, str]:
        return {k.strip(): v.strip() for k, _, v in (m.partition("=") for m in self.verification_methods)}

    def problems_for_run(self) -> list[str]:
        """What `keydesk run` still needs; each line names the variable and what to put there."""
        problems: list[str] = []

        def need(var: str, present: bool) -> None:
            if not present:
                problems.append(f"{var} is not set: put {describe(var)} there")

        need("SLACK_BOT_TOKEN", self.slack_bot_token is not None)
        if not self.socket_mode:
            need("SLACK_SIGNING_SECRET", self.slack_signing_secret is not None)
        need("KEYDESK_HELPDESK_CHANNEL", bool(self.helpdesk_channel))
        need("KEYDESK_APPROVER_GROUP_ID", bool(self.approver_group_id))
        if self.allow_privileged_targets:
            need("KEYDESK_PRIVILEGED_APPROVER_GROUP_ID", bool(self.privileged_approver_group_id))
        if self.graph_token is None:
            need("AZURE_TENANT_ID", bool(self.azure_tenant_id))
            need("AZURE_CLIENT_ID", bool(self.azure_client_id))
        token = self.slack_bot_token.get_secret_value() if self.slack_bot_token else ""
        if token and not token.startswith("xoxb-"):
            problems.append(
                "SLACK_BOT_TOKEN does not start with xoxb-: put the bot token there, not a user token"
            )
        app_token = self.slack_app_token.get_secret_value() if self.slack_app_token else ""
        if app_token and not app_token.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN does not start with xapp-: put an app-level token there")
        return problems


def _require_http_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{value}' is not an http(s) URL")


_ALIASES: dict[str, str] = {}
for _name, _field in Settings.model_fields.items():
    _alias = _field.validation_alias
    if isinstance(_alias, AliasChoices):
        _ALIASES[_name] = str(_alias.choices[0])


def env_name(field: str) -> str:
    return _ALIASES.get(field, field.upper())


def describe(var: str) -> str:
    for name, alias in _ALIASES.items():
        if alias == var:
            return Settings.model_fields[name].description or "a value"
    return "a value"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning validation errors into one clear line per problem."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ())]
            field = loc[0] if loc else ""
            var = env_name(field) if field in Settings.model_fields else (field or "configuration")
            message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
            if var == "configuration" or not field:
                problems.append(message)
            else:
                problems.append(f"{var} is invalid ({message}): put {describe(var)} there")
        raise ConfigError(problems) from None

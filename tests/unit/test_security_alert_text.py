"""What a security alert says outside Slack, and where it may be sent."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config import Settings
from bot.domain.text import mrkdwn_to_plain


@pytest.mark.parametrize(
    ("mrkdwn", "plain"),
    [
        ("<!channel> :rotating_light: *Security alert.* done", "Security alert. done"),
        ("<@U0ADA> asked", "@U0ADA asked"),
        ("<@U0ADA|ada> asked", "@ada asked"),
        ("see <#C0HELP|helpdesk>", "see #helpdesk"),
        ("see <https://example.com/x|the card>", "see the card (https://example.com/x)"),
        ("see <https://example.com/x>", "see https://example.com/x"),
        ("at 10:30:00, &lt;b&gt; &amp; more", "at 10:30:00, <b> & more"),
        ("key_id stays as_is", "key_id stays as_is"),
    ],
)
def test_mrkdwn_reads_plainly(mrkdwn: str, plain: str) -> None:
    assert mrkdwn_to_plain(mrkdwn) == plain


def test_the_webhook_must_be_https_and_is_never_repeated_in_the_error() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, security_webhook_url="http://collector.example/hook?sig=SECRET")  # type: ignore[call-arg]
    message = str(refused.value.errors()[0]["msg"])
    assert "must be an https:// URL" in message and "SECRET" not in message


@pytest.mark.parametrize("url", ["https://collector.example/hook?sig=x", "http://127.0.0.1:8088/alerts"])
def test_https_or_a_loopback_collector_is_accepted(url: str) -> None:
    settings = Settings(_env_file=None, security_webhook_url=url)  # type: ignore[call-arg]
    assert settings.security_webhook_url is not None
    assert settings.security_webhook_url.get_secret_value() == url
    assert url not in settings.model_dump_json()  # `keydesk check` shows it masked

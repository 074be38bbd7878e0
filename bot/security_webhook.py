"""The gateway to the security team's collector (a SIEM or pager): the only code that sends alerts out
of Slack. One JSON POST per alert; it owns the timeout and maps every failure to `WebhookFailed`.

Retries are not done here: the caller delivers through a durable deadline, which retries with backoff
across restarts and honours `retry_after` (see services/security_alerts.py).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.retry_after import retry_after_seconds

TIMEOUT_SECONDS = 10.0
USER_AGENT = "keydesk-security-alerts/1"


class WebhookFailed(Exception):
    """The collector did not take the alert. `retry_after`: when it said how long to wait (429 / 503)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class SecurityWebhook:
    """POSTs alerts to one URL. The URL and the Authorization value are secrets: never logged or raised."""

    def __init__(self, url: str, authorization: str | None = None) -> None:
        self._url = url
        self._authorization = authorization
        self._session: aiohttp.ClientSession | None = None

    async def send(self, alert: dict[str, Any]) -> None:
        headers = {"User-Agent": USER_AGENT}
        if self._authorization:
            headers["Authorization"] = self._authorization
        try:
            # No redirects: aiohttp would turn the POST into a GET, and that GET's 2xx is no delivery.
            post = self._client().post(self._url, json=alert, headers=headers, allow_redirects=False)
            async with post as response:
                if 200 <= response.status < 300:
                    return
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                raise WebhookFailed(f"http_{response.status}", retry_after)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WebhookFailed(type(exc).__name__) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS))
        return self._session

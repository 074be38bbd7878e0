"""Which azure-identity credential keydesk signs in to Graph with (all async variants)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AccessToken

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from bot.config import Settings

GRAPH_SCOPES = ["https://graph.microsoft.com/.default"]


class StaticTokenCredential:
    """A fixed bearer token for a Graph simulator on a loopback address (Settings only allows it there).

    Quacks like an azure-core AsyncTokenCredential and never contacts Entra ID. The token is kept out of
    repr so it cannot end up in a log line.
    """

    def __init__(self, token: str, lifetime_seconds: int = 3600) -> None:
        self._token = token
        self._lifetime = lifetime_seconds

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + self._lifetime)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return "StaticTokenCredential(<token>)"


def credential_kind(settings: Settings) -> str:
    """A name for the credential `build_credential` would pick (for `keydesk check` and logs)."""
    if settings.graph_token is not None:
        return "static-token"
    if settings.azure_client_secret is not None:
        return "client-secret"
    if settings.azure_client_certificate_path is not None:
        return "client-certificate"
    return "default-azure-credential"


def build_credential(settings: Settings) -> AsyncTokenCredential:
    """Static token (simulator) > client secret > certificate > DefaultAzureCredential (managed identity,
    workload identity, environment, Azure CLI for a developer)."""
    kind = credential_kind(settings)
    if kind == "static-token":
        assert settings.graph_token is not None
        return StaticTokenCredential(settings.graph_token.get_secret_value())
    if kind in ("client-secret", "client-certificate"):
        tenant, client = _app_identity(settings)
        if kind == "client-secret":
            from azure.identity.aio import ClientSecretCredential

            assert settings.azure_client_secret is not None
            return ClientSecretCredential(tenant, client, settings.azure_client_secret.get_secret_value())
        from azure.identity.aio import CertificateCredential

        return CertificateCredential(
            tenant, client, certificate_path=str(settings.azure_client_certificate_path)
        )
    from azure.identity.aio import DefaultAzureCredential

    # Settings may come from .env, which azure-identity does not read: hand the ids over explicitly.
    options: dict[str, Any] = {}
    if settings.azure_client_id:
        options["managed_identity_client_id"] = settings.azure_client_id
        options["workload_identity_client_id"] = settings.azure_client_id
    if settings.azure_tenant_id:
        options["workload_identity_tenant_id"] = settings.azure_tenant_id
    return DefaultAzureCredential(**options)


def _app_identity(settings: Settings) -> tuple[str, str]:
    missing = [
        name
        for name, value in (
            ("AZURE_TENANT_ID", settings.azure_tenant_id),
            ("AZURE_CLIENT_ID", settings.azure_client_id),
        )
        if not value
    ]
    if missing:
        raise ValueError(f"{' and '.join(missing)} must be set to sign in to Microsoft Graph")
    assert settings.azure_tenant_id is not None and settings.azure_client_id is not None
    return settings.azure_tenant_id, settings.azure_client_id

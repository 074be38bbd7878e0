"""Build the v1.0 and beta GraphServiceClients (graph.md §2, §6.2 option B).

* The SDK's default middleware stays (redirects, URL replace, telemetry, headers) but its RetryHandler
  is switched off: `resilience.CallRunner` owns retries (see its docstring for why).
* `base_url` is set explicitly without a trailing slash; the default produces `//users/...`.
* The bearer token is only attached for the configured Graph host (an `@odata.nextLink` pointing
  anywhere else gets no token).
* Scopes are always `https://graph.microsoft.com/.default`, also against a simulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph import graph_request_adapter as v1_adapter_module
from msgraph_beta import GraphRequestAdapter as BetaRequestAdapter
from msgraph_beta import GraphServiceClient as BetaServiceClient
from msgraph_beta import graph_request_adapter as beta_adapter_module
from msgraph_core import APIVersion, GraphClientFactory

from bot.directory.credentials import GRAPH_SCOPES


@dataclass
class GraphClients:
    v1: GraphServiceClient
    beta: BetaServiceClient
    http: tuple[httpx.AsyncClient, ...]

    async def aclose(self) -> None:
        for client in self.http:
            await client.aclose()


def build_clients(graph_url: str, credential: AsyncTokenCredential, *, timeout: float) -> GraphClients:
    root = graph_url.rstrip("/")
    host = urlsplit(root).hostname or ""
    auth = AzureIdentityAuthenticationProvider(credential, scopes=list(GRAPH_SCOPES), allowed_hosts=[host])
    v1_http = _http_client(f"{root}/v1.0", timeout, APIVersion.v1, v1_adapter_module.options)
    beta_http = _http_client(f"{root}/beta", timeout, APIVersion.beta, beta_adapter_module.options)
    v1_adapter = GraphRequestAdapter(auth, client=v1_http)
    v1_adapter.base_url = f"{root}/v1.0"
    beta_adapter = BetaRequestAdapter(auth, client=beta_http)
    beta_adapter.base_url = f"{root}/beta"
    return GraphClients(
        v1=GraphServiceClient(request_adapter=v1_adapter),
        beta=BetaServiceClient(request_adapter=beta_adapter),
        http=(v1_http, beta_http),
    )


def _http_client(
    base_url: str, timeout: float, version: APIVersion, sdk_options: dict[str, Any]
) -> httpx.AsyncClient:
    options = dict(sdk_options)
    options[RetryHandlerOption.get_key()] = RetryHandlerOption(max_retries=0, should_retry=False)
    client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(timeout), http2=True)
    return GraphClientFactory.create_with_default_middleware(
        api_version=version, client=client, options=options
    )

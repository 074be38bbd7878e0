"""Send requests the SDK's request builders made through its request adapter (auth, middleware), and
read the answers as raw JSON.

Why not the builders' own `.get()` / `.post()`: they deserialise answers into kiota models, whose
`get_field_deserializers` run hundreds of local imports and build large dicts on every object (a
single `list_methods` cost ~80 ms of CPU on the event loop). Here a response is `json.loads`-ed and
mapped straight into our frozen values (`mapping.py`); no SDK model is ever built for a success.
Errors still go through the SDK's error mapping into `ODataError` (small models, and only on the
failure path) so `errormap` reads code, message, request id and Retry-After as before.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from kiota_abstractions.method import Method
from kiota_abstractions.request_adapter import RequestAdapter
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

JsonObject = dict[str, Any]
JSON = "application/json"
# Every non-2xx answer: the Graph error envelope (v1.0 and beta share its shape).
ERROR_MAPPING: dict[str, Any] = {"XXX": ODataError}


class Builder(Protocol):
    """What every generated request builder has: its URL template and path parameters."""

    url_template: str
    path_parameters: dict[str, Any]


async def fetch(adapter: RequestAdapter[Any], request: RequestInformation) -> JsonObject | None:
    """The answer's JSON object, or None when Graph answered without a body (204, empty 200)."""
    expand_once(adapter, request)
    answer: object = await adapter.send_primitive_async(request, "bytes", ERROR_MAPPING)
    raw = answer if isinstance(answer, bytes) else None
    if not raw:
        return None
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("the answer is not a JSON object")  # never the body: it may hold a pass
    return data


async def send(adapter: RequestAdapter[Any], request: RequestInformation) -> None:
    """For answers whose body we do not need (204, revokeSignInSessions' 200 `{"value": true}`)."""
    expand_once(adapter, request)
    await adapter.send_no_response_content_async(request, ERROR_MAPPING)


def expand_once(adapter: RequestAdapter[Any], request: RequestInformation) -> None:
    """Expand the URL template now and keep the result. `RequestInformation.url` re-expands it (a
    per-character RFC 6570 encoder, ~0.2-0.5 ms) every time it is read, and one send reads it three
    times (auth provider, URL parsing, httpx request). The path parameters are copied first: the SDK
    shares the builder's dict with the request, and setting `url` clears it."""
    if request.url_template is None:
        return  # already an absolute URL (a nextLink)
    request.path_parameters = {**request.path_parameters, "baseurl": adapter.base_url}
    request.url = request.url


def post(builder: Builder, payload: JsonObject | None = None) -> RequestInformation:
    """A POST to the builder's URL with a JSON body we wrote ourselves (the wire names of the Graph
    schema), rather than an SDK model run through kiota's serialisation writer."""
    request = RequestInformation(Method.POST, builder.url_template, builder.path_parameters)
    request.headers.try_add("Accept", JSON)
    if payload is not None:
        request.set_stream_content(json.dumps(payload, separators=(",", ":")).encode(), JSON)
    return request


def get_url(url: str) -> RequestInformation:
    """A GET of an absolute URL Graph handed us (`@odata.nextLink`). The auth provider attaches the
    token only when its host is the configured Graph host."""
    request = RequestInformation(Method.GET)
    request.url = url
    request.headers.try_add("Accept", JSON)
    return request

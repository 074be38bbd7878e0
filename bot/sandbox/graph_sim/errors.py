"""Graph's error envelope, and the exception the simulator raises to produce one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

DEFAULT_CODES: dict[int, str] = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Authorization_RequestDenied",
    404: "Request_ResourceNotFound",
    405: "Request_BadRequest",
    409: "Request_MultipleObjectsWithSameKeyValue",
    429: "TooManyRequests",
    500: "generalException",
    502: "BadGateway",
    503: "serviceNotAvailable",
    504: "GatewayTimeout",
}

DEFAULT_MESSAGES: dict[int, str] = {
    429: "Please retry again later.",
    500: "General exception while processing.",
    503: "The service is temporarily unavailable. Please retry later.",
    504: "The gateway timed out.",
}


class GraphError(Exception):
    """Raised by a route or a tenant operation; the server turns it into Graph's error response."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_body(
    code: str, message: str, *, when: datetime, request_id: str, client_request_id: str
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": when.strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }


def resource_not_found(key: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def segment_not_found(segment: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


def method_not_found() -> GraphError:
    """The authentication-methods service answers unknown method ids with its own lower-camel codes."""
    return GraphError(404, "itemNotFound", "The requested authentication method was not found.")


def bad_request(message: str, code: str = "badRequest") -> GraphError:
    return GraphError(400, code, message)


def policy_refusal(method_type: str) -> GraphError:
    return GraphError(
        400,
        "badRequest",
        "Converged UserCredentialPolicy does not allow creating or updating this authentication method. "
        f"AuthMethodType [{method_type}].",
    )

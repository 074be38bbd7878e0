"""Route table: path templates over the version-less, decoded path, with Graph's 400/405 fallbacks."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import GraphError, resource_not_found, segment_not_found
from .model import SimUser
from .tenant import Tenant

V1 = "v1.0"
BETA = "beta"


@dataclass
class Ctx:
    """Everything a route needs about one request."""

    tenant: Tenant
    method: str
    version: str
    path: str
    encoded_path: str
    params: dict[str, str]
    query: dict[str, str]  # option names lower-cased, without the '$'
    raw_query: str
    body: Any
    headers: dict[str, str]
    service_root: str
    page_size: int
    route: str = ""

    @property
    def now(self) -> datetime:
        return self.tenant.clock.now()

    def context(self, fragment: str) -> str:
        return f"{self.service_root}/$metadata#{fragment}"

    def user(self, param: str = "user") -> SimUser:
        key = self.params[param]
        found = self.tenant.find_user(key)
        if found is None:
            raise resource_not_found(key)
        return found

    def json_object(self) -> dict[str, Any]:
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
        return self.body


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Ctx], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler
    beta_only: bool


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(regex + "/?", re.IGNORECASE)


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, *, beta_only: bool = False) -> None:
        self.routes.append(Route(method.upper(), template, _compile(template), handler, beta_only))

    def resolve(self, method: str, version: str, path: str) -> tuple[Route, dict[str, str]]:
        """The handler for a request, or the GraphError Graph would answer with."""
        path_matched = False
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            if route.beta_only and version != BETA:
                raise segment_not_found(_first_beta_segment(path))
            path_matched = True
            if route.method == method:
                return route, match.groupdict()
        if path_matched:
            raise GraphError(
                405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
            )
        segments = [s for s in path.split("/") if s]
        raise segment_not_found(segments[-1] if segments else "")


def _first_beta_segment(path: str) -> str:
    for segment in path.split("/"):
        if segment in ("hardwareOathMethods", "authenticationMethodDevices", "transitiveRoleAssignments"):
            return segment
    return path.rsplit("/", 1)[-1]

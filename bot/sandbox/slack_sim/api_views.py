"""views.*: modals opened with a trigger, pushed, updated; Home tabs published per user."""

from __future__ import annotations

from typing import Any

from bot.sandbox.slack_sim.api_base import ApiError, ApiRequest, api_method, invalid_arguments
from bot.sandbox.slack_sim.core import SimCore
from bot.sandbox.slack_sim.entities import JSON
from bot.sandbox.slack_sim.validation import view_errors, view_too_large
from bot.sandbox.slack_sim.views import STACK_MAX, TriggerError, ViewRegistry


def checked_view(core: SimCore, payload: Any, expect: str, *, replacing: str | None = None) -> JSON:
    """The view payload if Slack would accept it as a `expect` view; else the matching ApiError."""
    if isinstance(payload, str):
        raise invalid_arguments("view must be a JSON object")
    if payload is None:
        raise invalid_arguments("missing required field: view")
    errors = view_errors(payload, expect)
    if errors:
        raise ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})
    if view_too_large(payload):
        raise ApiError("view_too_large")
    if core.views.external_id_taken(payload.get("external_id") or "", except_view=replacing):
        raise ApiError("duplicate_external_id")
    return dict(payload)


def _exchange(registry: ViewRegistry, req: ApiRequest) -> Any:
    try:
        return registry.exchange(req.params.get("trigger_id") or req.params.get("interactivity_pointer"))
    except TriggerError as exc:
        raise ApiError(exc.code) from None


@api_method("views.open")
def views_open(core: SimCore, req: ApiRequest) -> JSON:
    grant = _exchange(core.views, req)
    payload = checked_view(core, req.decoded("view"), "modal")
    view = core.views.build(grant.user_id, payload)
    core.views.consume(grant)
    core.views.open_root(view)
    return {"view": view.to_api()}


@api_method("views.push")
def views_push(core: SimCore, req: ApiRequest) -> JSON:
    grant = _exchange(core.views, req)
    payload = checked_view(core, req.decoded("view"), "modal")
    stack = core.views.stack(grant.user_id)
    if not stack:
        raise invalid_arguments("views.push needs a modal open for this user (simulator rule)")
    if len(stack) >= STACK_MAX:
        raise ApiError("push_limit_reached")
    view = core.views.build(grant.user_id, payload, root=stack[0].id, previous=stack[-1].id)
    core.views.consume(grant)
    core.views.push(view)
    return {"view": view.to_api()}


@api_method("views.update")
def views_update(core: SimCore, req: ApiRequest) -> JSON:
    view_id, external_id = req.opt("view_id"), req.opt("external_id")
    if not view_id and not external_id:
        raise invalid_arguments("either view_id or external_id is required")
    current = core.views.find(view_id, external_id)
    if current is None:
        raise ApiError("not_found")
    if req.opt("hash") and req.opt("hash") != current.hash:
        raise ApiError("hash_conflict")
    payload = checked_view(core, req.decoded("view"), current.type, replacing=current.id)
    return {"view": core.views.update(current, payload).to_api()}


@api_method("views.publish")
def views_publish(core: SimCore, req: ApiRequest) -> JSON:
    user = core.workspace.users.get(req.opt("user_id") or "")
    if user is None:
        raise invalid_arguments("invalid `user_id`")
    if not core.config.home_tab_enabled:
        raise ApiError("not_enabled")
    current = core.views.home(user.id)
    if req.opt("hash") and current is not None and req.opt("hash") != current.hash:
        raise ApiError("hash_conflict")
    payload = checked_view(core, req.decoded("view"), "home", replacing=current.id if current else None)
    return {"view": core.views.publish_home(user.id, payload).to_api()}
